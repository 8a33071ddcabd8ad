"""The Compare tab: one prefix through TALL and every baseline available, and a checkpoint's last evaluation.

Approaches come from the registry in `training.approaches`; they share the loaded model's frozen backbones
and its he→en translation of the prefix. Soft-prompt and fine-tuned baselines are available when their PEFT
adapters (training.train_baseline) are found under checkpoints/ and fit the loaded LLM.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .paths import CHECKPOINTS_ROOT, find_results, list_baseline_adapters
from .predicting import DecodingChoice, check_prefix

COMPARE_HEADERS = ["approach", "predicted word", "top candidates", "seconds"]
RESULT_HEADERS = ["dataset", "approach", "examples", "greedy %", "sampled % (± 95% CI)", "top-5 %", "mean log p",
                  "empty %"]

_lock = threading.Lock()
_built: dict[int, tuple[object, dict, dict]] = {}  # id(LoadedModel) -> (loaded, approaches, unavailable reasons)


def _approach_names() -> tuple[str, ...]:
    from training.approaches import APPROACH_NAMES

    return APPROACH_NAMES


def build_approaches(loaded, root: Path | None = None) -> tuple[dict, dict]:
    """({name: Approach}, {name: why it is unavailable}) for a loaded TALL model, built once per model."""
    with _lock:
        cached = _built.get(id(loaded))
        if cached is not None and cached[0] is loaded:
            return cached[1], cached[2]
    from training.approach_base import ApproachUnavailable, BaselineModels
    from training.approaches import ApproachResources, build_approach

    model = loaded.model
    backbones = model.tokenizers  # TallModel keeps its Backbones (models and tokenizers) there
    adapters = list_baseline_adapters(root or CHECKPOINTS_ROOT)
    resources = ApproachResources(BaselineModels(model.config, backbones), tall=model)
    approaches, unavailable = {}, {}
    for name in _approach_names():
        candidates = adapters.get(name, []) if name in ("soft-prompt", "fine-tuned") else [None]
        if not candidates:
            unavailable[name] = "no adapter under checkpoints/ (train one with `python -m training.train_baseline`)"
            continue
        for adapter in candidates:
            if name == "soft-prompt":
                resources.soft_prompt = adapter
            elif name == "fine-tuned":
                resources.fine_tuned = adapter
            try:
                approaches[name] = build_approach(name, resources)
                unavailable.pop(name, None)
                break
            except (ApproachUnavailable, ValueError, OSError) as why:
                unavailable[name] = str(why)
    with _lock:
        for key in [k for k, v in _built.items() if v[0] is not loaded and len(_built) >= 4]:
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
            lines.append(f"- *{name}* not available: {why}")
        return "\n".join(lines)


def compare(loaded, prefix, decoding: DecodingChoice, num_candidates: int = 5, root: Path | None = None,
            names: list[str] | None = None) -> Comparison:
    """The prefix through every available approach (or `names`), side by side."""
    from tall_model.predict import fit_prefix
    from training.approach_base import Decoding

    text = check_prefix(prefix)
    used, _ = fit_prefix(loaded.model, text)
    translation = loaded.translation(used)
    approaches, unavailable = build_approaches(loaded, root)
    settings = (Decoding(True, decoding.temperature, decoding.top_k, decoding.top_p, decoding.seed)
                if decoding.sample else Decoding())
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
            word, candidates = "(error)", str(err)
        rows.append([name, word, candidates, round(time.perf_counter() - started, 2)])
    return Comparison(used, translation, rows, dict(unavailable))


def _pct(value) -> str:
    return "" if value is None else f"{100 * float(value):.2f}"


def results_table(checkpoint_dir: Path | None) -> tuple[list[list], str]:
    """(rows, note) of the last evaluation of a checkpoint (training.evaluate's metrics.json)."""
    if checkpoint_dir is None:
        return [], ("No checkpoint is loaded (untrained adapters): evaluate a checkpoint with "
                    "`python -m training.evaluate --tall checkpoints/NAME/best --data FILE`.")
    found = find_results(checkpoint_dir)
    if found is None:
        return [], (f"No evaluation results for `{Path(checkpoint_dir).name}` yet: run `python -m training.evaluate "
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
