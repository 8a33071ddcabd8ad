"""Experiment summary: every ablation row kept as run records, pooled over its seeds against TALL, in one table.

    python -m experiments.pooled_table                                   # print the table and its verdict
    python -m experiments.pooled_table --json benchmarks/results/pooled.json --readme README.md \
        --plot docs/pooled_ablations.svg

Why: the full-budget ablations were run a seed or two per session, and their verdicts were sentences with typed
numbers, each checked by its own test. This computes all of them from the committed records
(benchmarks/results/runs, experiments.run_record) in one pass: per row, every seed with both the row's record and
TALL's at the same seed (experiments.seed_pooled), the four comparisons (dev and test books, greedy and top-5 exact
match; a paired sign-flip permutation test over examples, hits averaged over seeds), Holm-adjusted within the row
(four measures are four chances at p < 0.05), and a verdict that says only what the adjusted p-values support.
A row joins the table once it is kept at MIN_SEEDS seeds (`--min-seeds`); until then it is listed under it.
`--readme` rewrites the README's block between POOLED_START and POOLED_END; a test regenerates it and compares.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from demo_build.ablation_stages import REFERENCE, ablations
from demo_build.results import SIGNIFICANCE_LEVEL, listed, rewrite_block
from evaluation.significance import RESAMPLES, SEED, holm
from experiments.pooled_plot import write_forest
from experiments.run_record import MEASURES, SPLITS, hits
from experiments.seed_pooled import pairs_from_records, pooled
from experiments.seed_table import p_text
from tall_model import preset_config

RUNS = Path("benchmarks/results/runs")
ABLATION_METRICS = Path("checkpoints/demo/ablations/metrics.json")  # the 400-step table: each row's parameter count
POOLED_START = ("<!-- pooled-ablations: generated from benchmarks/results/runs by `python -m experiments.pooled_table "
                "--readme README.md`; do not edit by hand -->")
POOLED_END = "<!-- /pooled-ablations -->"
HEADER = ("| row | what changes | seeds | test greedy %, row / TALL | row − TALL, points (95 % CI), p | "
          "test top-5 %, row / TALL | row − TALL (95 % CI), p | dev greedy, row − TALL (p) | "
          "dev top-5, row − TALL (p) | smallest Holm p | test words per seed, row − TALL | trainable parameters |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|")
# One or two seeds cannot tell a row from seed noise (TALL alone moved by 7 test words between seeds), so a row
# joins the pooled table from three seeds on.
MIN_SEEDS = 3


def paired_seeds(folder: Path) -> dict[str, list[int]]:
    """{row: the seeds it has a record at where TALL has one too}, for every ablation row of the demo preset with
    any, in the ablation table's row order."""
    tall = {p.stem.rsplit("-s", 1)[1] for p in folder.glob(f"{REFERENCE}-s*.json")}
    kept: dict[str, set[int]] = {}
    for p in folder.glob("*-s*.json"):
        row, seed = p.stem.rsplit("-s", 1)
        if seed in tall and seed.isdigit():
            kept.setdefault(row, set()).add(int(seed))
    return {r.name: sorted(kept[r.name]) for r in ablations(preset_config("demo"))
            if r.name in kept and r.name != REFERENCE}


def waiting(folder: Path, min_seeds: int = MIN_SEEDS) -> dict[str, list[int]]:
    """{row: its paired seeds} for the rows kept at fewer than `min_seeds` seeds: recorded, not yet pooled."""
    return {row: seeds for row, seeds in paired_seeds(folder).items() if len(seeds) < min_seeds}


def _shape(changes: dict) -> str:
    """A row's changes less its decoding (which has no parameters), as a key."""
    return json.dumps({k: v for k, v in changes.items() if k != "decoding"}, sort_keys=True)


def parameter_counts(metrics: Path) -> dict[str, int]:
    """{row: trainable parameters} from the ablation table's metrics.json (demo_build.ablation_stages), for the
    reference and every row whose change there is still the row's change now (a redefined row's count is dropped,
    not shown beside records of another configuration), and for a row absent there whose change differs from a
    counted row's only in its decoding (subword-framing-wordstart has subword-framing's count) or not at all (a row
    that changes only the training data, one-piece-targets, has TALL's). The count depends
    only on the configuration, not on the budget, seed or decoding, so the 400-step run's count is the full-budget
    run's too."""
    changes = {r.name: r.changes for r in ablations(preset_config("demo"))}
    rows = json.loads(metrics.read_text(encoding="utf-8"))["rows"]
    counted = {r["name"]: r["trainable_parameters"] for r in rows if changes.get(r["name"], None) == r["changes"]}
    by_shape = {_shape(changes[name]): n for name, n in counted.items()}
    return {name: by_shape[_shape(c)] for name, c in changes.items() if _shape(c) in by_shape}


def pool_all(folder: Path, resamples: int = RESAMPLES, seed: int = SEED, min_seeds: int = MIN_SEEDS,
             counts: dict[str, int] | None = None) -> dict:
    """{row: seed_pooled.pooled(...) plus "what", "holm" ({split: {measure: adjusted p}}), "per_seed" (test
    greedy hits of the row minus TALL's, seed by seed) and "trainable_parameters" (row and TALL, from `counts`,
    None where it has none)}, in the ablation table's row order, for every row kept at `min_seeds` seeds or more."""
    counts = counts or {}
    what = {r.name: r.what for r in ablations(preset_config("demo"))}
    out = {}
    for row, seeds in paired_seeds(folder).items():
        if len(seeds) < min_seeds:
            continue
        pairs = pairs_from_records(folder, row, seeds)
        result = pooled(pairs, resamples, seed)
        keys = [(split, measure) for split in SPLITS for measure in MEASURES]
        adjusted = dict(zip(keys, holm([result[s][m]["permutation_p"] for s, m in keys]), strict=True))
        result["holm"] = {s: {m: adjusted[s, m] for m in MEASURES} for s in SPLITS}
        result["per_seed"] = [sum(hits(r, "test", "greedy")) - sum(hits(t, "test", "greedy")) for r, t in pairs]
        result["trainable_parameters"] = {"row": counts.get(row), REFERENCE: counts.get(REFERENCE)}
        out[row] = {"what": what[row], **result}
    return out


def _interval(c: dict) -> str:
    """"+0.55 (-0.21 … +1.33), 0.19": row − TALL in points, its 95 % interval and permutation p."""
    return (f"{100 * c['difference']:+.2f} ({100 * c['ci_low']:+.2f} … {100 * c['ci_high']:+.2f}), "
            f"{p_text(c['permutation_p'])}")


def _accuracies(c: dict) -> str:
    return f"{100 * c['a_accuracy']:.2f} / {100 * c['b_accuracy']:.2f}"


def _said(split: str, measure: str, c: dict) -> str:
    direction = "higher" if c["difference"] > 0 else "lower"
    return f"{split} {measure} {abs(100 * c['difference']):.2f} points {direction}"


def _parameters(counts: dict) -> str:
    """"3,677,824 (+46 %)": the row's trainable parameters and how many more or fewer than TALL's ("—": unknown)."""
    row, tall = counts["row"], counts[REFERENCE]
    if row is None:
        return "—"
    if not tall:
        return f"{row:,}"
    return f"{row:,} ({'as TALL' if row == tall else f'{100 * (row - tall) / tall:+.0f} %'})"


def table(results: dict) -> str:
    lines = [HEADER]
    for row, r in results.items():
        tg, t5, dg, d5 = r["test"]["greedy"], r["test"]["top-5"], r["dev"]["greedy"], r["dev"]["top-5"]
        smallest = min((p, r[s][m]["permutation_p"], s, m) for s, ps in r["holm"].items() for m, p in ps.items())
        lines.append(
            f"| {row} | {r['what']} | {listed([str(s) for s in r['seeds']])} | {_accuracies(tg)} | {_interval(tg)} | "
            f"{_accuracies(t5)} | {_interval(t5)} | {100 * dg['difference']:+.2f} ({p_text(dg['permutation_p'])}) | "
            f"{100 * d5['difference']:+.2f} ({p_text(d5['permutation_p'])}) | {p_text(smallest[0])} "
            f"({smallest[2]} {smallest[3]}) | {', '.join(f'{x:+d}' if x else '0' for x in r['per_seed'])} | "
            f"{_parameters(r['trainable_parameters'])} |")
    return "\n".join(lines)


def verdict(results: dict, level: float = SIGNIFICANCE_LEVEL) -> str:
    """What the Holm-adjusted p-values support, and what only the unadjusted ones would have."""
    found, level_rows, uncorrected = [], [], []
    for row, r in results.items():
        cells = [(s, m, r[s][m], r["holm"][s][m]) for s in SPLITS for m in MEASURES]
        if significant := [c for c in cells if c[3] < level]:
            found.append(f"{row} ({'; '.join(f'{_said(s, m, c)}, Holm p = {p_text(h)}' for s, m, c, h in significant)})")
        else:
            level_rows.append(f"{row} (smallest Holm p {p_text(min(c[3] for c in cells))})")
        uncorrected += [f"{row}'s {_said(s, m, c)}, p = {p_text(c['permutation_p'])}"
                        for s, m, c, h in cells if h >= level > c["permutation_p"]]
    head = f"With each row's four comparisons Holm-adjusted (level {level}), "
    if not found:
        text = [f"{head}no row differs from TALL on any of the four ({listed(level_rows)})."]
    else:
        rest = f"; {listed(level_rows)} do{'es' if len(level_rows) == 1 else ''} not on any of the four" * bool(level_rows)
        text = [f"{head}{listed(found)} differ{'s' if len(found) == 1 else ''} from TALL{rest}."]
    if uncorrected:
        text.append(f"Unadjusted, {listed(uncorrected)} would pass {level} too; adjusted, "
                    f"{'it does' if len(uncorrected) == 1 else 'they do'} not.")
    return " ".join(text)


def waiting_sentence(waiting_rows: dict[str, list[int]], min_seeds: int = MIN_SEEDS) -> str:
    """"Kept as records, but pooled only from 3 seeds on: adapter-x2 (seeds 0 and 1)." (empty when none waits)."""
    if not waiting_rows:
        return ""
    rows = [f"{row} (seed{'s' * (len(seeds) > 1)} {listed([str(s) for s in seeds])})"
            for row, seeds in waiting_rows.items()]
    return f"Kept as records, but pooled only from {min_seeds} seeds on: {listed(rows)}."


def _tall_parameters(result: dict) -> str:
    tall = result["trainable_parameters"][REFERENCE]
    return f" {tall:,}" if tall else ""


def markdown(results: dict, waiting_rows: dict[str, list[int]] | None = None, min_seeds: int = MIN_SEEDS) -> str:
    first = next(iter(results.values()))
    test, dev = first["test"]["greedy"], first["dev"]["greedy"]
    return "\n".join([
        "Each row at seed S against TALL retrained at the same seed S (seed 0: the shipped TALL), both on the shipped "
        "TALL's full budget, pooled over the seeds both are kept at: every example's hits averaged over the seeds, a "
        f"paired sign-flip permutation test over examples and a 95 % paired bootstrap interval ({test['resamples']:,} "
        f"resamples, seed {test['seed']}, so p = {p_text(2 / (test['resamples'] + 1))} is the smallest p it can report); "
        f"test = the {test['n']:,} test-book examples, dev = all {dev['n']:,} "
        "DEV-book verses (which also chose each run's checkpoint). The last but one column is each seed's test greedy "
        "hits of the row minus TALL's; the last, the row's trainable parameters and how many more than TALL's"
        f"{_tall_parameters(first)}, as the ablation table's run of the same configuration (its decoding aside) "
        "counted them.", "",
        table(results), "", verdict(results), "",
        *([waiting_sentence(waiting_rows, min_seeds), ""] if waiting_rows else [])])


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m experiments.pooled_table", description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=Path, default=RUNS, help="a folder of run records (experiments.run_record)")
    ap.add_argument("--resamples", type=int, default=RESAMPLES)
    ap.add_argument("--seed", type=int, default=SEED, help="the permutation and bootstrap seed")
    ap.add_argument("--min-seeds", type=int, default=MIN_SEEDS,
                    help="pool a row only when it is kept at this many seeds paired with TALL (fewer: listed)")
    ap.add_argument("--ablations", type=Path, default=ABLATION_METRICS,
                    help="the ablation table's metrics.json, for each row's trainable parameter count")
    ap.add_argument("--json", type=Path, default=None, help="also write every row's comparisons here")
    ap.add_argument("--readme", type=Path, default=None, help="rewrite this README's pooled-ablations block")
    ap.add_argument("--plot", type=Path, default=None, help="also draw the forest plot here (*.svg)")
    args = ap.parse_args(argv)
    if args.plot and args.plot.suffix != ".svg":
        ap.error(f"--plot {args.plot}: the forest plot is written as SVG; name it *.svg")
    if not args.records.is_dir():
        ap.error(f"{args.records}: no such folder of run records")
    if args.ablations != ABLATION_METRICS and not args.ablations.is_file():
        ap.error(f"--ablations {args.ablations}: no such file (the ablation table's metrics.json)")
    if args.min_seeds < 1:
        ap.error(f"--min-seeds {args.min_seeds}: a row needs at least one seed to be pooled")
    counts = parameter_counts(args.ablations) if args.ablations.is_file() else {}
    results = pool_all(args.records, args.resamples, args.seed, args.min_seeds, counts)
    waiting_rows = waiting(args.records, args.min_seeds)
    if not results:
        kept = f" (fewer than {args.min_seeds} seeds: {', '.join(waiting_rows)})" * bool(waiting_rows)
        raise SystemExit(f"{args.records}: no ablation row has records at {args.min_seeds} or more seeds TALL has "
                         f"one at{kept}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.plot:
        write_forest(results, args.plot)
    text = markdown(results, waiting_rows, args.min_seeds)
    if args.readme and rewrite_block(args.readme, POOLED_START, POOLED_END, text):
        print(f"{args.readme}: pooled-ablations block rewritten")
    print(text)
    return results


if __name__ == "__main__":
    main()
