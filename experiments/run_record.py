"""Experiment record: a finished full-budget run reduced to its per-example hits, small enough to commit.

    python -m experiments.run_record build/full-tall-s1 build/full-no-translation-s1 shipped \
        --workdir build/demo-v3 --out benchmarks/results/runs

Why: a pooled test over seeds (experiments.seed_pooled) needs every run's hits on every example, and the run
folders (checkpoints, 25 MB each) live in build/, which a fresh machine does not have. Sessions kept losing them
and retraining three seeds to add a fourth. A record keeps, per split (all DEV-book verses, the test-book examples),
a digest of the examples (prefix and gold word), the greedy and top-5 hits as strings of 0 and 1, and the most
frequent greedy word and how many greedy words are not words of the training Hebrew (made up, or a word's ending
alone such as ך; checkpoints/demo/training_words.txt, which every run's own list equals): 4 KB a run. `shipped` is
the shipped TALL (row tall, seed 0): its dev hits come from the build's own selection run in --workdir, its test hits from checkpoints/demo/eval. Each record is written as
<row>-s<seed>.json; one of an experiment folder also says what the run trained on (`training`: sentences, examples,
steps, the chosen checkpoint's step; records kept before session 33 lack it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import Counter
from pathlib import Path

from demo_build.ablation_stages import REFERENCE
from demo_build.build import parse_args
from demo_build.context import BuildContext
from demo_build.tall_stages import ADAPTER_SEED
from evaluation.report import read_predictions
from experiments.full_budget_ablation import SHIPPED, greedy_hits, reference_predictions, top5_hits
from tall_model.text import normalize_word
from tall_model.word_list import demo_word_list, read_word_list

SPLITS = ("dev", "test")
MEASURES = {"greedy": greedy_hits, "top-5": top5_hits}


def examples_digest(records: list[dict]) -> str:
    """sha256 over the examples' prefixes and gold words, in order: two runs pair only if theirs are equal."""
    text = "\n".join(f"{r['prefix']}\t{r['gold']}" for r in records)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split_record(records: list[dict], training_words: set[str] | None = None) -> dict:
    """One split's record; with `training_words`, also how many non-empty greedy words are not among them."""
    word, count = Counter(r["greedy"] for r in records).most_common(1)[0]
    spoken = [w for w in (normalize_word(r["greedy"]) for r in records) if w]
    unseen = {} if training_words is None else {"unseen_count": sum(w not in training_words for w in spoken)}
    return {"n": len(records), "examples_sha256": examples_digest(records),
            **{name: "".join("1" if h else "0" for h in hits(records)) for name, hits in MEASURES.items()},
            "top_word": word, "top_word_count": count, **unseen}


def make_record(row: str, seed: int, selected: str, predictions: dict[str, Path], source: str,
                training_words: set[str] | None = None) -> dict:
    """{row, seed, selected, source, dev: split_record, test: split_record} from the dev and test predictions."""
    return {"row": row, "seed": seed, "selected": selected, "source": source,
            **{split: split_record(read_predictions(predictions[split], "tall"), training_words) for split in SPLITS}}


def run_record(folder: Path, training_words: set[str] | None = None) -> dict:
    """The record of an experiment folder that experiments.full_budget_ablation finished (any result*.json there
    names its row, seed and chosen checkpoint; pairing does not change them)."""
    results = sorted(folder.glob("result*.json"))
    if not results:
        raise SystemExit(f"{folder}: no result*.json (run experiments.full_budget_ablation there to the end first)")
    result = json.loads(results[0].read_text())
    selected = result["selection"]["selected"]
    predictions = {"dev": folder / "adapters" / "selection" / selected / "predictions.jsonl",
                   "test": folder / "test" / "predictions.jsonl"}
    record = make_record(result["row"], result["seed"], selected, predictions, str(folder), training_words)
    return {**record, "training": training_size(folder / "adapters" / selected / "config.json")}


def training_size(config: Path) -> dict:
    """What the run trained on, from its chosen checkpoint: {sentences, examples, steps, chosen_step} (a row that
    filters its data, such as one-piece-targets, trains on fewer examples of the same sentences, so for fewer steps;
    a chosen step at the last says dev was still rising or level at the end)."""
    extra = json.loads(config.read_text(encoding="utf-8"))["extra"]
    return {"sentences": extra["sentences"], "examples": extra["train_examples"], "steps": extra["total_steps"],
            "chosen_step": extra["step"]}


def shipped_record(ctx: BuildContext, training_words: set[str] | None = None) -> dict:
    dev, test = reference_predictions(ctx, None)
    return make_record(REFERENCE, ADAPTER_SEED, dev.parent.name, {"dev": dev, "test": test}, SHIPPED, training_words)


def hits(record: dict, split: str, measure: str) -> list[bool]:
    bits = record[split][measure]
    if len(bits) != record[split]["n"] or set(bits) - {"0", "1"}:
        raise ValueError(f"{record['row']} at seed {record['seed']}: {split} {measure} hits are not {record[split]['n']}"
                         " characters of 0 and 1")
    return [b == "1" for b in bits]


def record_name(record: dict) -> str:
    return f"{record['row']}-s{record['seed']}.json"


def read_record(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(prog="python -m experiments.run_record", description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="finished experiment folders, or `shipped` for the shipped TALL")
    ap.add_argument("--workdir", default="build/demo", help="the demo build's work folder (for `shipped`)")
    ap.add_argument("--out", type=Path, required=True, help="where <row>-s<seed>.json are written")
    ap.add_argument("--training-words", type=Path, default=demo_word_list(),
                    help="the training Hebrew's words, one a line (for each split's unseen_count)")
    args = ap.parse_args(argv)
    words = set(read_word_list(args.training_words))
    build = parse_args(["--workdir", args.workdir])
    ctx = BuildContext(args=build, workdir=Path(args.workdir), out=Path(build.out))
    records = [shipped_record(ctx, words) if run == "shipped" else run_record(Path(run), words) for run in args.runs]
    args.out.mkdir(parents=True, exist_ok=True)
    for record in records:
        (args.out / record_name(record)).write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n",
                                                    encoding="utf-8")
        print(f"{args.out / record_name(record)}: dev {record['dev']['greedy'].count('1')} / {record['dev']['n']}, "
              f"test {record['test']['greedy'].count('1')} / {record['test']['n']} greedy hits")
    return records


if __name__ == "__main__":
    main()
