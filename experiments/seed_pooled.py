"""Experiment summary: one ablation row against TALL, pooled over the training seeds both were run at.

    python -m experiments.seed_pooled --records benchmarks/results/runs --row no-translation
    python -m experiments.seed_pooled --records benchmarks/results/runs --row one-piece-targets \
        --against subword-framing-wordstart
    python -m experiments.seed_pooled build/full-no-scale-s0/result.json \
        build/full-no-scale-s1/result-against-full-tall-s1.json \
        build/full-no-scale-s2/result-against-full-tall-s2.json --workdir build/demo-v3

Why: one seed's McNemar test answers "did these two runs differ?", not "does the change help?"; a row that leans
the same way at every seed but is significant at only some of them needs one test over all of them. The row at
seed S is paired with TALL at the same seed S. With `--records`, the runs are the committed records
(experiments.run_record, <row>-s<seed>.json), and every seed with both the row's record and tall-s<seed>.json is
pooled, so nothing needs retraining. Otherwise each result file (written by experiments.full_budget_ablation)
names its reference (the shipped TALL for seed 0, or `--against` a retrained one) and the runs' predictions are read
from build/; `--workdir` is the build folder whose adapters/selection holds the shipped TALL's dev predictions. Per
split (all DEV-book verses, the test-book examples) and measure (greedy and top-5 exact match), every example's
hits are averaged over the seeds and the row and TALL compared with evaluation.significance.pooled_over_seeds (a
paired sign-flip permutation test over examples and a paired bootstrap interval, fixed seeds). `--against ROW`
(with --records) pairs the row with another row at the same seeds instead of TALL, to ask whether two changes do
the same thing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from demo_build.ablation_stages import REFERENCE
from demo_build.build import parse_args
from demo_build.context import BuildContext
from evaluation.significance import RESAMPLES, SEED, PooledComparison, pooled_over_seeds
from experiments.full_budget_ablation import SHIPPED, reference_predictions, reference_run
from experiments.run_record import MEASURES, SPLITS, hits, make_record, read_record
from experiments.seed_table import p_text

HEADER = ("| split | measure | seeds | row % | TALL % | examples better in row / in TALL | "
          "difference row − TALL, points (95 % CI) | permutation p |\n|---|---|---|---|---|---|---|---|")
Pair = tuple[dict, dict]  # (the row's run record, TALL's at the same seed)


def pair_from_result(path: Path, ctx: BuildContext) -> Pair:
    """The row's and its reference's records for the result file at `path` (predictions read from build/)."""
    result = json.loads(path.read_text())
    against = None if result["reference"] == SHIPPED else Path(result["reference"])
    reference_dev, reference_test = reference_predictions(ctx, against)
    selected = result["selection"]["selected"]
    row = make_record(result["row"], result["seed"], selected,
                      {"dev": path.parent / "adapters" / "selection" / selected / "predictions.jsonl",
                       "test": path.parent / "test" / "predictions.jsonl"}, str(path.parent))
    reference = make_record(REFERENCE, reference_run(result)["seed"], reference_dev.parent.name,
                            {"dev": reference_dev, "test": reference_test}, result["reference"])
    return row, reference


def pairs_from_records(folder: Path, row: str, seeds: list[int] | None = None,
                       reference: str = REFERENCE) -> list[Pair]:
    """Every seed (or those named) with both <row>-s<seed>.json and <reference>-s<seed>.json in `folder`."""
    if row == reference:
        raise SystemExit(f"pair {row} with another row, not with itself")
    suffixes = (p.stem.removeprefix(f"{row}-s") for p in folder.glob(f"{row}-s*.json"))
    found = {int(s) for s in suffixes if s.isdigit()}
    paired = sorted(s for s in found if (folder / f"{reference}-s{s}.json").is_file())
    if seeds is not None:
        if missing := sorted(set(seeds) - set(paired)):
            raise SystemExit(f"{folder}: no {row} and {reference} records both at seeds {missing} (have {paired})")
        paired = sorted(set(seeds))
    if not paired:
        raise SystemExit(f"{folder}: no seed with both {row}-s<seed>.json and {reference}-s<seed>.json")
    return [(read_record(folder / f"{row}-s{s}.json"), read_record(folder / f"{reference}-s{s}.json")) for s in paired]


def check_pairs(pairs: list[Pair], reference: str = REFERENCE) -> None:
    """One row, each seed once, each paired with the reference (TALL) at its own seed, all on the same examples:
    otherwise the pooling means nothing."""
    if len({row["row"] for row, _ in pairs}) != 1:
        raise SystemExit(f"pool one row at a time, not {sorted({row['row'] for row, _ in pairs})}")
    seeds = [row["seed"] for row, _ in pairs]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"each seed once: got seeds {seeds}")
    for row, tall in pairs:
        if tall["row"] != reference or tall["seed"] != row["seed"]:
            raise SystemExit(f"{row['row']} at seed {row['seed']} is paired with {tall['row']} at seed {tall['seed']}: "
                             f"pair it with {reference} at the same seed (full_budget_ablation --against)")
    for split in SPLITS:
        if len({r[split]["examples_sha256"] for pair in pairs for r in pair}) != 1:
            raise SystemExit(f"{split}: the runs are not all on the same examples")


def pooled(pairs: list[Pair], resamples: int = RESAMPLES, seed: int = SEED, reference: str = REFERENCE) -> dict:
    """{row, reference, seeds, runs, split: {measure: PooledComparison as a dict}}, the row as a and the reference
    (TALL) as b."""
    check_pairs(pairs, reference)
    out = {"row": pairs[0][0]["row"], "reference": reference, "seeds": [row["seed"] for row, _ in pairs],
           "runs": [[row["source"], tall["source"]] for row, tall in pairs]}
    for split in SPLITS:
        out[split] = {measure: pooled_over_seeds([hits(row, split, measure) for row, _ in pairs],
                                                 [hits(tall, split, measure) for _, tall in pairs],
                                                 resamples, seed).as_dict()
                      for measure in MEASURES}
    return out


def table(result: dict, against: str = "TALL") -> str:
    lines = [HEADER.replace("TALL", against)]
    for split in SPLITS:
        for measure, c in result[split].items():
            c = PooledComparison(**c)
            lines.append(f"| {split} ({c.n}) | {measure} | {c.seeds} | {100 * c.a_accuracy:.2f} | "
                         f"{100 * c.b_accuracy:.2f} | {c.a_better} / {c.b_better} | {100 * c.difference:+.2f} "
                         f"({100 * c.ci_low:+.2f} … {100 * c.ci_high:+.2f}) | {p_text(c.permutation_p)} |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m experiments.seed_pooled", description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="*", type=Path, help="result*.json files of one row, one per seed")
    ap.add_argument("--records", type=Path, default=None, help="a folder of run records (experiments.run_record)")
    ap.add_argument("--row", default=None, help="with --records: the row to pool against tall")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="with --records: only these seeds")
    ap.add_argument("--against", default=REFERENCE, help="with --records: pair with this row instead of TALL")
    ap.add_argument("--workdir", default="build/demo", help="the demo build's work folder (the shipped TALL's dev run)")
    ap.add_argument("--resamples", type=int, default=RESAMPLES)
    ap.add_argument("--seed", type=int, default=SEED, help="the permutation and bootstrap seed")
    ap.add_argument("--json", type=Path, default=None, help="also write the comparisons here")
    args = ap.parse_args(argv)
    if (args.records is None) == (not args.results) or (args.records is not None) != (args.row is not None):
        ap.error("give either result files, or --records with --row")
    if args.against != REFERENCE and args.records is None:
        ap.error("--against ROW pairs records: give --records and --row")
    if args.records is not None:
        pairs = pairs_from_records(args.records, args.row, args.seeds, args.against)
    else:
        build = parse_args(["--workdir", args.workdir])
        ctx = BuildContext(args=build, workdir=Path(args.workdir), out=Path(build.out))
        pairs = [pair_from_result(p, ctx) for p in args.results]
    result = pooled(pairs, args.resamples, args.seed, args.against)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    against = "TALL" if args.against == REFERENCE else args.against
    print(f"{result['row']} against {against}, pooled over seeds {result['seeds']}\n\n{table(result, against)}")
    return result


if __name__ == "__main__":
    main()
