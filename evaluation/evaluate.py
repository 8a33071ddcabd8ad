"""Evaluate TALL and the baselines on next-word prediction, per approach and per dataset.

    python -m evaluation.evaluate --preset tiny --data FILE [--data FILE2 ...] [--tall CKPT] [--soft-prompt DIR]
        [--fine-tuned DIR] [--ngram-data TRAIN_FILE] [--approaches tall,direct,naive,soft-prompt,fine-tuned,word-ngram]
        [--seeds 5] [--limit N] [--out results/NAME] [--backbone-dir DIR]

Several processes (`torchrun --nproc_per_node N -m evaluation.evaluate ...`, or `accelerate launch --multi_gpu`):
the translate-once step and every approach's prediction passes are shared out batch by batch (round robin), the
results gathered; process 0 writes the cache and the files, which are those one process writes.

Each dataset (named by its file stem) gives one example per sentence: the sentence without its last word
(tall_data.examples, word framing). Metrics: greedy exact-match accuracy; sampled accuracy (temperature 0.7,
top-k 50, top-p 0.95, the paper's) as the mean over seeds 0..n-1 with a 95 % Student-t interval over seeds;
top-5 accuracy; mean log-probability of the gold word where the approach can score it. Every he→en
translation goes through one translation cache, so each distinct prefix is translated once. Writes
OUT/metrics.csv, OUT/metrics.json (with the command line, seeds and model ids) and OUT/predictions.jsonl.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import peft
import torch
import transformers
from accelerate import PartialState
from accelerate.utils import gather_object
from tqdm.auto import tqdm

from baselines.adapters import AdapterError
from baselines.approach import Approach, BaselineModels
from baselines.registry import APPROACH_NAMES, ApproachResources, build_approaches
from baselines.word_lm import WORD_MAX_NEW_TOKENS
from baselines.word_ngram import DEFAULT_ORDER, MAX_ORDER, NgramError
from evaluation.report import (
    CONFIDENCE,
    PREDICTIONS,
    TOP_K,
    ResultRow,
    format_table,
    make_row,
    write_csv,
    write_predictions,
)
from evaluation.significance import PairedComparison, compare, format_markdown
from tall_data.corpus import CorpusError, read_corpus
from tall_data.examples import Example, make_examples
from tall_data.files import write_json
from tall_data.translation_cache import (
    DEFAULT_TRANSLATION_CACHE,
    TranslationCache,
    fill_shared,
    open_prefix_cache,
    translate_prefixes,
)
from tall_model.backbones import BackboneNotFoundError, load_backbones
from tall_model.checkpoint import CheckpointError, checkpoint_config
from tall_model.config import PRESETS, REPO_ROOT, on_backbones, preset_config
from tall_model.decoding import Decoding
from tall_model.load import DeviceError, resolve_device, resolve_dtype
from tall_model.text import has_hebrew
from tall_model.translate import translate, translator_id


@dataclass
class Dataset:
    name: str
    path: str
    examples: list[Example]
    sentences: int
    dropped_no_hebrew_prefix: int = 0


def load_dataset(path, limit: int | None = None) -> Dataset:
    """One example per sentence (its last word), the first `limit` kept. Prefixes without a Hebrew letter are
    dropped (TALL refuses them, and every approach must see the same examples)."""
    corpus = read_corpus(path)
    examples = make_examples(corpus.sentences, framing="word", positions="last")
    kept = [ex for ex in examples if has_hebrew(ex.prefix)]
    if not kept:
        raise CorpusError(f"{path}: no example with a Hebrew prefix ({len(corpus)} sentences read)")
    return Dataset(Path(path).stem, str(path), kept[:limit], len(corpus), len(examples) - len(kept))


@dataclass
class Evaluation:
    """A run's approaches, caches and collected results."""

    approaches: list[Approach]
    cache_path: str
    seeds: int
    decoding: Decoding  # greedy runs use it as is, sampled ones with seeds 0..seeds-1
    batch_size: int = 16
    progress: bool = True
    caches: dict[str, TranslationCache] = field(default_factory=dict)
    rows: list[ResultRow] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)
    rank: int = 0  # this process among nproc (torchrun / accelerate launch); batches are shared out round robin
    nproc: int = 1

    def _gather(self, items: list) -> list:
        return gather_object(items) if self.nproc > 1 else items

    def _barrier(self) -> None:
        if self.nproc > 1:
            PartialState().wait_for_everyone()

    def translations(self, approach: Approach, prefixes: list[str]) -> list[str] | None:
        if not approach.uses_translation:
            return None
        translator = approach.translator
        key = translator_id(translator)  # names the translator and its decoding settings
        if key not in self.caches:
            self.caches[key] = open_prefix_cache(translator, self.cache_path)
        cache, sent = self.caches[key], 0
        if self.nproc > 1:  # shared out first; the read below then finds every prefix cached
            counts = fill_shared(cache, lambda texts: translate(translator, texts), prefixes, self.batch_size,
                                 rank=self.rank, nproc=self.nproc, gather=gather_object, barrier=self._barrier)
            sent = sum(counts)
            if self.rank == 0 and sent:
                print(f"{approach.name}: translated {sent} prefixes on {self.nproc} processes (by process: "
                      f"{counts})")
        bar = None if self.progress and self.rank == 0 else False  # None: a bar only on a terminal
        english = translate_prefixes(translator, cache, prefixes, bar, self.batch_size)
        # the counts one process would report: what the fill sent was not a cache hit
        cache.stats.hits, cache.stats.sent = cache.stats.hits - sent, cache.stats.sent + sent
        cache.stats.calls += -(-sent // self.batch_size)
        return english

    def close(self) -> None:
        for cache in self.caches.values():
            cache.close()

    def run_dataset(self, dataset: Dataset) -> None:
        prefixes = [ex.prefix for ex in dataset.examples]
        golds = [ex.target for ex in dataset.examples]
        for approach in self.approaches:
            self.rows.append(self._run(approach, dataset.name, prefixes, golds))

    def _chunks(self, n: int):
        return [slice(i, i + self.batch_size) for i in range(0, n, self.batch_size)]

    def _run(self, approach: Approach, dataset: str, prefixes: list[str], golds: list[str]) -> ResultRow:
        started = time.time()
        english = self.translations(approach, prefixes)
        chunks = self._chunks(len(prefixes))
        passes = 1 + self.seeds + int(approach.can_score)
        bar = tqdm(total=passes * len(chunks), desc=f"{dataset}/{approach.name}",
                   disable=not self.progress or self.rank > 0)

        def each(run_chunk) -> list:
            """run_chunk(slice) → a list per example, over this process's chunks; all chunks' results, in order.
            A chunk is the same batch whichever process runs it, so sampling seeded per batch is unchanged."""
            mine = {}
            for index, part in enumerate(chunks):
                if index % self.nproc == self.rank:
                    mine[index] = run_chunk(part)
                bar.update()
            merged = {index: out for part in self._gather([mine]) for index, out in part.items()}
            return [item for index in range(len(chunks)) for item in merged[index]]

        def predicted(decoding: Decoding, k: int) -> list:
            return each(lambda part: approach.predict(prefixes[part], None if english is None else english[part],
                                                      decoding, k))

        greedy = predicted(self.decoding.greedy(), TOP_K if approach.can_rank else 0)
        sampled = {seed: [o.word for o in predicted(self.decoding.sampled(seed), 0)] for seed in range(self.seeds)}
        log_probs = None
        if approach.can_score:
            log_probs = each(lambda part: approach.log_probs(prefixes[part], golds[part],
                                                             None if english is None else english[part]))
        bar.close()
        candidates = [o.candidates or [] for o in greedy] if approach.can_rank else None
        for i, (prefix, gold) in enumerate(zip(prefixes, golds)):
            self.records.append({
                "dataset": dataset, "approach": approach.name, "prefix": prefix, "gold": gold,
                "translation": None if english is None else english[i], "greedy": greedy[i].word,
                "candidates": greedy[i].candidates, "sampled": [sampled[s][i] for s in sorted(sampled)],
                "log_prob": None if log_probs is None else log_probs[i]})
        return make_row(dataset, approach.name, golds, [o.word for o in greedy], candidates, sampled, log_probs,
                        time.time() - started)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m evaluation.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="tiny", choices=PRESETS, help="backbones of the baselines")
    p.add_argument("--backbone-dir", default=None, help="a folder whose he-en/, lm/ and en-he/ replace the preset's "
                   "(those it holds; a demo build's --out)")
    p.add_argument("--data", action="append", required=True, help="Hebrew corpus file; repeat for several")
    p.add_argument("--tall", help="TALL checkpoint directory")
    p.add_argument("--soft-prompt", help="soft-prompt adapter directory (baselines.train soft-prompt)")
    p.add_argument("--fine-tuned", help="LoRA adapter directory (baselines.train fine-tuned)")
    p.add_argument("--approaches", default=",".join(APPROACH_NAMES), help="comma-separated subset")
    p.add_argument("--seeds", type=int, default=5, help="sampled runs, seeds 0..n-1 (0: no sampling)")
    p.add_argument("--limit", type=int, default=None, help="first N examples of each dataset")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=WORD_MAX_NEW_TOKENS,
                   help="LLM tokens allowed for one word (direct, naive, soft-prompt, fine-tuned)")
    p.add_argument("--translation-cache", default=str(DEFAULT_TRANSLATION_CACHE))
    p.add_argument("--translation-max-new-tokens", type=int, default=None,
                   help="he→en/en→he length limit of the baselines (default: the TALL checkpoint's, else the "
                        "preset's)")
    p.add_argument("--word-list", default=None, help="TALL predicts only these words (a UTF-8 file, one word per "
                   "line; a departure from the paper, which decodes freely); the other approaches are unchanged")
    p.add_argument("--prior", default=None, help="TALL chooses its greedy word's first piece with this prior divided "
                   "out (a file from python -m tall_model.prior; a departure from the paper)")
    p.add_argument("--prior-weight", type=float, default=None,
                   help="the prior's weight w (default: the one the prior file carries, else 0.5)")
    p.add_argument("--ngram", default=None, help="TALL weighs its candidate words with this word n-gram (shallow "
                   "fusion, a departure from the paper; checkpoints/demo/word_ngram.json); the word-ngram row is "
                   "--ngram-data's")
    p.add_argument("--ngram-weight", type=float, default=None, help="its λ (default: the one the n-gram file carries)")
    p.add_argument("--ngram-discount", type=float, default=None, help="μ: words frequent anywhere gain less from it "
                   "(default: the one the n-gram file carries, else 0)")
    p.add_argument("--subword-word-start", action=argparse.BooleanOptionalAction, default=None,
                   help="a subword-framing TALL checkpoint (the paper's) predicts a piece that starts a word, not one "
                        "that would continue the prefix's last word (a departure from the paper); "
                        "--no-subword-word-start: the paper's free piece (default: the checkpoint's)")
    p.add_argument("--subword-skip-bare-start", action=argparse.BooleanOptionalAction, default=None,
                   help="a subword-framing TALL checkpoint never predicts the word-start marker ▁ alone (the empty "
                        "word; a departure from the paper; default: the checkpoint's)")
    p.add_argument("--ngram-data", default=None, help="the training Hebrew the word-ngram reference counts, or a saved "
                   "n-gram (.json: checkpoints/demo/word_ngram.json); not one of the paper's baselines; without it "
                   "word-ngram is skipped")
    p.add_argument("--ngram-order", type=int, default=DEFAULT_ORDER, choices=range(1, MAX_ORDER + 1),
                   metavar=f"1-{MAX_ORDER}", help=f"its order (default {DEFAULT_ORDER})")
    p.add_argument("--out", default=None, help="output directory (default runs/eval-<UTC time>)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto (CUDA when present)")
    p.add_argument("--dtype", default=None, help="of the frozen backbones: fp32 (default), bf16 or fp16")
    args = p.parse_args(argv)
    args.approaches = [a.strip() for a in args.approaches.split(",") if a.strip()]
    unknown = [a for a in args.approaches if a not in APPROACH_NAMES]
    if unknown:
        p.error(f"unknown approach(es) {', '.join(unknown)}; choose from {', '.join(APPROACH_NAMES)}")
    if args.seeds < 0 or (args.limit is not None and args.limit < 1) or args.batch_size < 1:
        p.error("--seeds must be >= 0, --limit and --batch-size >= 1")
    return args


def _versions() -> dict:
    return {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__}


def base_decoding(preset: str, tall=None, translation_max_new_tokens: int | None = None,
                  **tall_only) -> Decoding:
    """The decoding every approach shares (so all read the same English for a prefix): the TALL checkpoint's
    when one is given, else the preset's; the he→en/en→he length limit and TALL's own options (`word_list`,
    `prior`, `prior_weight`, `ngram`, `ngram_weight`, `subword_word_start`, `subword_skip_bare_start`; the baselines ignore them) where given
    (not None). An n-gram to weigh makes TALL choose the best whole word (the ranking fusion reorders)."""
    decoding = checkpoint_config(tall).decoding if isinstance(tall, (str, Path)) else preset_config(preset).decoding
    if translation_max_new_tokens is not None:
        decoding = decoding.replace(translation_max_new_tokens=translation_max_new_tokens)
    changes = {k: (str(v) if isinstance(v, Path) else v) for k, v in tall_only.items() if v is not None}
    if changes.get("ngram") and changes.get("ngram_weight") != 0:
        changes["word_choice"] = "best_candidate"  # fusion ranks whole words, whatever the checkpoint's choice
    return decoding.replace(**changes)


def evaluate(data: list[str | Path], *, preset: str = "tiny", tall=None, soft_prompt=None, fine_tuned=None,
             approaches=APPROACH_NAMES, seeds: int = 5, limit: int | None = None, batch_size: int = 16,
             lm_max_new_tokens: int = WORD_MAX_NEW_TOKENS, translation_max_new_tokens: int | None = None,
             translation_cache=DEFAULT_TRANSLATION_CACHE, out=None, progress: bool = True, backbones=None,
             command: str = "", device: str | None = "cpu", dtype: str | None = None,
             backbone_dir: str | Path | None = None,
             word_list: str | Path | None = None, prior: str | Path | None = None,
             prior_weight: float | None = None, ngram_data: str | Path | None = None,
             ngram_order: int = DEFAULT_ORDER, ngram: str | Path | None = None,
             ngram_weight: float | None = None, ngram_discount: float | None = None,
             subword_word_start: bool | None = None, subword_skip_bare_start: bool | None = None) -> dict:
    """Evaluate the approaches on each dataset; writes OUT/metrics.{csv,json} and predictions.jsonl and returns
    the JSON payload. `backbones`: the preset's already-loaded backbones, to skip reloading. `backbone_dir`: its
    he-en/, lm/, en-he/ replace the preset's (tall_model.config.on_backbones). `device` (auto, cpu, cuda) and
    `dtype` (of the frozen backbones) apply to backbones loaded here."""
    started = datetime.now(timezone.utc)
    device = resolve_device(device)  # --device cuda without a GPU fails here, before anything loads
    rank, nproc = 0, 1
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # launched as several processes: a gloo group on the CPU
        state = PartialState(cpu=device.type == "cpu")
        rank, nproc = state.process_index, state.num_processes
        device = state.device if device.type != "cpu" else device
    out = Path(out or REPO_ROOT / "runs" / f"eval-{started:%Y%m%d-%H%M%S}")
    datasets = [load_dataset(path, limit) for path in data]
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise CorpusError(f"datasets are named by file stem and these repeat: {names}; rename a file")
    decoding = base_decoding(preset, tall, translation_max_new_tokens, word_list=word_list, prior=prior,
                             prior_weight=prior_weight, ngram=ngram, ngram_weight=ngram_weight,
                             ngram_discount=ngram_discount, subword_word_start=subword_word_start,
                             subword_skip_bare_start=subword_skip_bare_start)
    config = preset_config(preset).replace(decoding=decoding)
    if backbone_dir is not None:
        config = on_backbones(config, backbone_dir)
    if backbones is None:
        backbones = load_backbones(config, dtype=resolve_dtype(dtype))
        for frozen in (backbones.lr_hr, backbones.llm, backbones.hr_lr):
            frozen.to(device)
    models = BaselineModels(config, backbones)
    resources = ApproachResources(models, tall, soft_prompt, fine_tuned, lm_max_new_tokens,
                                  ngram_data=ngram_data, ngram_order=ngram_order)
    built, skipped = build_approaches(list(approaches), resources, translation_cache)
    for name, why in skipped.items() if rank == 0 else ():
        print(f"Skipping {name}: {why}", file=sys.stderr)
    run = Evaluation(list(built.values()), str(translation_cache), seeds, decoding, batch_size, progress,
                     rank=rank, nproc=nproc)
    try:
        for dataset in datasets:
            run.run_dataset(dataset)
    finally:
        run.close()
        if resources.back_cache is not None:
            resources.back_cache.close()
    payload = _payload(run, models, datasets, skipped, started, preset, limit, command)
    if rank == 0:
        _write(out, run, payload)
    return payload


def _payload(run: Evaluation, models: BaselineModels, datasets, skipped, started, preset, limit, command) -> dict:
    decoding = run.decoding
    return {
        "command": command, "started": started.isoformat(timespec="seconds"), "preset": preset,
        "seeds": list(range(run.seeds)),
        "sampling": {"temperature": decoding.temperature, "top_k": decoding.top_k, "top_p": decoding.top_p,
                     "seeding": "seed s: TALL seeds a torch.Generator per prefix; LLM baselines call "
                                "torch.manual_seed(s) before each batch"},
        "interval": f"{CONFIDENCE:.0%} Student-t interval of the mean over seeds (n-1 degrees of freedom)",
        "top_k": TOP_K, "limit": limit,
        "backbones": {"lr_hr_translator": models.config.lr_hr_translator, "llm": models.config.llm,
                      "hr_lr_translator": models.config.hr_lr_translator,
                      "fingerprints": models.backbones.fingerprints(),
                      "translation_beams": decoding.translation_beams,
                      "translation_max_new_tokens": decoding.translation_max_new_tokens},
        "word_list": decoding.word_list, "prior": decoding.prior,
        "prior_weight": decoding.prior_weight if decoding.prior else None,
        "ngram": decoding.ngram, "ngram_weight": decoding.ngram_weight if decoding.ngram else None,
        "ngram_discount": decoding.ngram_discount if decoding.ngram else None,
        "subword_word_start": decoding.subword_word_start,
        "subword_skip_bare_start": decoding.subword_skip_bare_start,
        "models": {a.name: a.describe() for a in run.approaches}, "skipped": skipped,
        "datasets": {d.name: {"path": d.path, "sentences": d.sentences, "examples": len(d.examples),
                              "dropped_no_hebrew_prefix": d.dropped_no_hebrew_prefix} for d in datasets},
        "translation": {key: asdict(cache.stats) for key, cache in run.caches.items()},
        "rows": [asdict(r) for r in run.rows],
        "significance": [c.as_dict() for c in compare(run.records)],  # TALL against each other approach, paired
        "versions": _versions(),
    }


def _write(out: Path, run: Evaluation, payload: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_csv(run.rows, out / "metrics.csv")
    write_json(out / "metrics.json", payload, allow_nan=False)
    write_predictions(out / PREDICTIONS, run.records)
    print(format_table(run.rows))
    if payload["significance"]:
        print(format_markdown([PairedComparison(**c) for c in payload["significance"]]))
    for name, why in payload["skipped"].items():
        print(f"(skipped {name}: {why})")
    print(f"Wrote {out / 'metrics.csv'}, {out / 'metrics.json'} and {out / 'predictions.jsonl'}")


def main(argv=None, *, backbones=None) -> dict:
    """CLI entry; returns the JSON payload."""
    args = parse_args(argv)
    argv_used = sys.argv[1:] if argv is None else list(argv)
    return evaluate(args.data, preset=args.preset, tall=args.tall, soft_prompt=args.soft_prompt,
                    fine_tuned=args.fine_tuned, approaches=args.approaches, seeds=args.seeds, limit=args.limit,
                    batch_size=args.batch_size, lm_max_new_tokens=args.max_new_tokens,
                    translation_max_new_tokens=args.translation_max_new_tokens,
                    translation_cache=args.translation_cache, out=args.out, progress=not args.no_progress,
                    backbones=backbones, command=shlex.join(["python", "-m", "evaluation.evaluate", *argv_used]),
                    device=args.device, dtype=args.dtype, word_list=args.word_list, prior=args.prior,
                    prior_weight=args.prior_weight, ngram_data=args.ngram_data, ngram_order=args.ngram_order,
                    ngram=args.ngram, ngram_weight=args.ngram_weight, ngram_discount=args.ngram_discount,
                    subword_word_start=args.subword_word_start,
                    subword_skip_bare_start=args.subword_skip_bare_start, backbone_dir=args.backbone_dir)


def cli() -> None:
    """`main` with the errors a user can fix shown as one line instead of a traceback."""
    try:
        main()
    except (AdapterError, BackboneNotFoundError, CheckpointError, CorpusError, DeviceError, NgramError) as err:
        raise SystemExit(f"error: {err}") from err


if __name__ == "__main__":
    cli()
