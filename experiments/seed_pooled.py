"""Experiment summary: one ablation row against TALL, pooled over the training seeds both were run at.

    python -m experiments.seed_pooled build/full-no-scale-s0/result.json \
        build/full-no-scale-s1/result-against-full-tall-s1.json \
        build/full-no-scale-s2/result-against-full-tall-s2.json --workdir build/demo-v3

Why: one seed's McNemar test answers "did these two runs differ?", not "does the change help?"; a row that leans
the same way at every seed but is significant at only some of them needs one test over all of them. Each result
file (written by experiments.full_budget_ablation) pairs the row at seed S with TALL at the same seed S (the
shipped TALL for its own seed, or `--against` a retrained one). Per split (all DEV-book verses, the test-book
examples) and measure (greedy and top-5 exact match), every example's hits are averaged over the seeds and the row
and TALL compared with evaluation.significance.pooled_over_seeds (a paired sign-flip permutation test over
examples and a paired bootstrap interval, fixed seeds). `--workdir` is the build folder whose adapters/selection
holds the shipped TALL's dev predictions.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from demo_build.build import parse_args
from demo_build.context import BuildContext
from evaluation.report import read_predictions
from evaluation.significance import RESAMPLES, SEED, PooledComparison, pooled_over_seeds
from experiments.full_budget_ablation import SHIPPED, greedy_hits, reference_predictions, reference_run, top5_hits
from experiments.seed_table import p_text

MEASURES = {"greedy": greedy_hits, "top-5": top5_hits}
HEADER = ("| split | measure | seeds | row % | TALL % | examples better in row / in TALL | "
          "difference row − TALL, points (95 % CI) | permutation p |\n|---|---|---|---|---|---|---|---|")


def prediction_files(path: Path, result: dict, ctx: BuildContext) -> dict[str, tuple[Path, Path]]:
    """{split: (the row's predictions, its reference's)} for the result file at `path`."""
    against = None if result["reference"] == SHIPPED else Path(result["reference"])
    reference_dev, reference_test = reference_predictions(ctx, against)
    row_dev = path.parent / "adapters" / "selection" / result["selection"]["selected"] / "predictions.jsonl"
    return {"dev": (row_dev, reference_dev), "test": (path.parent / "test" / "predictions.jsonl", reference_test)}


def check_runs(results: list[dict]) -> None:
    """One row, each seed once, each paired with TALL at its own seed: otherwise the pooling means nothing."""
    if len({r["row"] for r in results}) != 1:
        raise SystemExit(f"pool one row at a time, not {sorted({r['row'] for r in results})}")
    seeds = [r["seed"] for r in results]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"each seed once: got seeds {seeds}")
    for r in results:
        if (paired_seed := reference_run(r)["seed"]) != r["seed"]:
            raise SystemExit(f"{r['row']} at seed {r['seed']} is paired with TALL at seed {paired_seed}: "
                             "pair it with TALL at the same seed (full_budget_ablation --against)")


def pooled(paths: list[Path], ctx: BuildContext, resamples: int = RESAMPLES, seed: int = SEED) -> dict:
    """{split: {measure: PooledComparison as a dict}}, the row as a and TALL as b."""
    results = [json.loads(p.read_text()) for p in paths]
    check_runs(results)
    files = [prediction_files(p, r, ctx) for p, r in zip(paths, results)]
    out = {"row": results[0]["row"], "seeds": [r["seed"] for r in results], "results": [str(p) for p in paths]}
    for split in ("dev", "test"):
        runs = [(read_predictions(row, "tall"), read_predictions(ref, "tall")) for row, ref in (f[split] for f in files)]
        prefixes = [[r["prefix"] for r in records] for pair in runs for records in pair]
        if any(p != prefixes[0] for p in prefixes):
            raise SystemExit(f"{split}: the prediction files are not all on the same examples")
        out[split] = {name: pooled_over_seeds([hits(row) for row, _ in runs], [hits(ref) for _, ref in runs],
                                              resamples, seed).as_dict()
                      for name, hits in MEASURES.items()}
    return out


def table(result: dict) -> str:
    lines = [HEADER]
    for split in ("dev", "test"):
        for measure, c in result[split].items():
            c = PooledComparison(**c)
            lines.append(f"| {split} ({c.n}) | {measure} | {c.seeds} | {100 * c.a_accuracy:.2f} | "
                         f"{100 * c.b_accuracy:.2f} | {c.a_better} / {c.b_better} | {100 * c.difference:+.2f} "
                         f"({100 * c.ci_low:+.2f} … {100 * c.ci_high:+.2f}) | {p_text(c.permutation_p)} |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m experiments.seed_pooled", description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+", type=Path, help="result*.json files of one row, one per seed")
    ap.add_argument("--workdir", default="build/demo", help="the demo build's work folder (the shipped TALL's dev run)")
    ap.add_argument("--resamples", type=int, default=RESAMPLES)
    ap.add_argument("--seed", type=int, default=SEED, help="the permutation and bootstrap seed")
    ap.add_argument("--json", type=Path, default=None, help="also write the comparisons here")
    args = ap.parse_args(argv)
    build = parse_args(["--workdir", args.workdir])
    result = pooled(args.results, BuildContext(args=build, workdir=Path(args.workdir), out=Path(build.out)),
                    args.resamples, args.seed)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"{result['row']} against TALL, pooled over seeds {result['seeds']}\n\n{table(result)}")
    return result


if __name__ == "__main__":
    main()
