"""The Compare tab: one prefix through TALL and every baseline available, and a checkpoint's last evaluation.

Approaches come from the registry in `baselines.registry`; they share the loaded model's frozen backbones
and its he→en translation of the prefix. Soft-prompt and fine-tuned baselines are available when their PEFT
adapters (baselines.train) are found under checkpoints/ and fit the loaded LLM; the word-ngram reference when the
loaded checkpoint has a saved n-gram beside it (the demo's word_ngram.json).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from baselines.approach import BaselineModels
from baselines.registry import APPROACH_NAMES, ApproachResources, build_approaches
from baselines.word_ngram import NGRAM_FILE
from tall_model import Decoding
from tall_model.checkpoint import checkpoint_file
from tall_model.predict import fit_prefix
from tall_model.text import has_hebrew

from .paths import CHECKPOINTS_ROOT, find_results, list_baseline_adapters, public_message
from .predicting import check_prefix, for_model

COMPARE_HEADERS = ["approach", "predicted word", "top candidates", "seconds"]
RESULT_HEADERS = ["dataset", "approach", "examples", "greedy %", "sampled % (± 95% CI)", "top-5 %", "mean log p",
                  "empty %"]
ADAPTER_APPROACHES = ("soft-prompt", "fine-tuned")
NO_ADAPTER = "no adapter under checkpoints/ (train one with `python -m baselines.train {name} ...`)"
NO_NGRAM = (f"a reference, not one of the paper's baselines: it counts the checkpoint's training corpus, and this "
            f"checkpoint has no {NGRAM_FILE} (`python -m evaluation.evaluate --approaches word-ngram --ngram-data "
            f"TRAIN_FILE` counts one)")
NOT_HEBREW = ("*{name}* answered {word}, which has no Hebrew letter (א–ת): an LLM that learned English only does not "
              "write Hebrew, whatever the decoding (README, \"Why the LLM-only baselines find nothing\").")
MAX_BUILT = 4  # models whose approaches are kept

_lock = threading.Lock()
_built: dict[int, tuple[object, dict, dict]] = {}  # id(LoadedModel) -> (loaded, approaches, unavailable reasons)


def approaches_for(loaded, root: Path | None = None) -> tuple[dict, dict]:
    """({name: Approach}, {name: why it is unavailable}) for a loaded TALL model, built once per model by
    `baselines.registry.build_approaches` on the model's own backbones; a baseline adapter is the first one found
    under `root` that fits them."""
    with _lock:
        cached = _built.get(id(loaded))
        if cached is not None and cached[0] is loaded:
            return cached[1], cached[2]
    model = loaded.model
    adapters = list_baseline_adapters(root or CHECKPOINTS_ROOT)
    resources = ApproachResources(BaselineModels(model.config, model.backbones), tall=model,
                                  soft_prompt=adapters.get("soft-prompt") or None,
                                  fine_tuned=adapters.get("fine-tuned") or None,
                                  ngram_data=checkpoint_file(model, NGRAM_FILE))  # the demo ships one
    approaches, unavailable = build_approaches(APPROACH_NAMES, resources)
    for name in ADAPTER_APPROACHES:  # say where the app looks, not which command-line flag was missing
        if name in unavailable and not adapters.get(name):
            unavailable[name] = NO_ADAPTER.format(name=name)
    if "word-ngram" in unavailable and resources.ngram_data is None:
        unavailable["word-ngram"] = NO_NGRAM
    with _lock:
        if len(_built) >= MAX_BUILT:
            for key in [k for k, v in _built.items() if v[0] is not loaded]:
                del _built[key]
        _built[id(loaded)] = (loaded, approaches, unavailable)
    return approaches, unavailable


@dataclass
class Comparison:
    prefix: str
    translation: str
    rows: list[list]
    unavailable: dict

    def notes_markdown(self) -> str:
        lines = [f"**English translation (shared by every approach that reads it):** {self.translation}"]
        for name, why in self.unavailable.items():
            lines.append(f"- *{name}* not available: {public_message(str(why))}")
        for name, word, *_ in self.rows:  # a visitor should not take a letter run or English for a broken app
            if word not in ("(none)", "(error)") and not has_hebrew(word):
                lines.append("- " + NOT_HEBREW.format(name=name, word=f"`{word}`"))
        return "\n".join(lines)


def compare(loaded, prefix, decoding: Decoding, num_candidates: int = 5, root: Path | None = None,
            names: list[str] | None = None) -> Comparison:
    """The prefix through every available approach (or `names`), side by side, all with the same decoding (the
    sampling choice of `decoding` on the model's translation settings) and the same English translation."""
    text = check_prefix(prefix)
    used, _ = fit_prefix(loaded.model, text)
    translation = loaded.translation(used)
    approaches, unavailable = approaches_for(loaded, root)
    settings = for_model(decoding, loaded.model)
    rows = []
    for name, approach in approaches.items():
        if names is not None and name not in names:
            continue
        started = time.perf_counter()
        try:
            english = [translation] if approach.uses_translation else None
            out = approach.predict([used], english, settings, num_candidates if approach.can_rank else 0)[0]
            word, candidates = out.word or "(none)", ", ".join(out.candidates or [])
        except (ValueError, RuntimeError) as err:
            word, candidates = "(error)", public_message(str(err), root)
        rows.append([name, word, candidates, round(time.perf_counter() - started, 2)])
    return Comparison(used, translation, rows, dict(unavailable))


def _pct(value) -> str:
    return "" if value is None else f"{100 * float(value):.2f}"


def results_table(checkpoint_dir: Path | None) -> tuple[list[list], str]:
    """(rows, note) of the last evaluation of a checkpoint (evaluation.evaluate's metrics.json)."""
    if checkpoint_dir is None:
        return [], ("No checkpoint is loaded (untrained adapters): evaluate a checkpoint with "
                    "`python -m evaluation.evaluate --tall checkpoints/NAME/best --data FILE`.")
    found = find_results(checkpoint_dir)
    if found is None:
        return [], (f"No evaluation results for `{Path(checkpoint_dir).name}` yet: run `python -m evaluation.evaluate "
                    f"--tall <checkpoint> --data FILE --out <checkpoint>/../eval`.")
    path, data = found
    rows = []
    for r in data.get("rows", []):
        if not isinstance(r, dict):
            continue
        sampled = _pct(r.get("sampled_accuracy"))
        if sampled and r.get("sampled_ci_half_width") is not None:
            sampled += f" ± {100 * float(r['sampled_ci_half_width']):.2f}"
        log_p = r.get("mean_log_prob")
        rows.append([r.get("dataset", ""), r.get("approach", ""), r.get("examples", ""), _pct(r.get("accuracy")),
                     sampled, _pct(r.get("top5_accuracy")), "" if log_p is None else f"{float(log_p):.3f}",
                     _pct(r.get("empty_greedy"))])
    try:
        shown = path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        shown = path.name
    return rows, f"From `{shown}` (started {data.get('started', '?')}, seeds {len(data.get('seeds', []))})."
