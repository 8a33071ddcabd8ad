"""Experiment summary: the rows of benchmarks/RESULTS.md's seed table, read from finished full_budget_ablation runs.

    python -m experiments.seed_table build/full-tall-s1/result.json \
        build/full-no-llm-s1/result-against-full-tall-s1.json

Why: the table's figures are computed, never typed. Each result file (result.json: against the shipped TALL;
result-against-<name>.json: against another finished run) becomes one markdown row: hits of the row and of its
reference on all DEV-book verses and the test-book examples, the discordant pairs and exact McNemar p of greedy hits,
top-5 hits with their p, and the row's most frequent greedy test word (its test/predictions.jsonl).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from evaluation.report import read_predictions
from experiments.full_budget_ablation import SHIPPED, reference_run

HEADER = ("| row (seed) against | chosen | dev greedy | dev only row / only ref, p | dev top-5 (p) | test greedy "
          "| test only row / only ref, p | test top-5 (p) | top test word |\n|---|---|---|---|---|---|---|---|---|")


def p_text(p: float) -> str:
    """Two significant digits, as the tables print a p-value (1 when it rounds to it)."""
    return "1" if p >= 0.995 else f"{p:#.2g}"


def run_label(result: dict) -> str:
    return f"{result['row']} ({result['seed']})"


def reference_label(result: dict) -> str:
    if result["reference"] == SHIPPED:
        return "shipped tall (0)"
    return run_label(reference_run(result))


def chosen_text(selection: dict) -> str:
    """The checkpoint the dev rule chose, and the other one's dev hits when both were scored."""
    chosen, steps = selection["selected"], selection["steps"]
    if steps["best"] == steps["last"]:  # the dev sample rose at every evaluation: one checkpoint, nothing to choose
        return f"best = last ({steps['last']:,})"
    text = f"{chosen} ({steps[chosen]:,})"
    other = "last" if chosen == "best" else "best"
    hits = selection.get("hits") or {}
    if other in hits:
        if hits[other] == hits[chosen]:
            return f"{text}, {other}/ as many dev hits"
        text += f"; {other}/ {hits[other]['greedy']}, p = {p_text(selection['mcnemar_p'])}"
    return text


def split_cells(split: dict) -> list[str]:
    greedy, top5 = split["greedy"], split["top5"]
    row, ref = (round(greedy[k] * greedy["n"]) for k in ("approach_accuracy", "reference_accuracy"))
    return [f"{row} vs {ref}", f"{greedy['only_approach']} / {greedy['only_reference']}, p = {p_text(greedy['mcnemar_p'])}",
            f"{top5['row']} vs {top5['shipped']} ({p_text(top5['mcnemar_p'])})"]


def top_word(predictions: Path) -> str:
    words = Counter(r["greedy"] for r in read_predictions(predictions, "tall"))
    word, count = words.most_common(1)[0]
    return f"{word} {100 * count / sum(words.values()):.1f} %"


def table_row(path: Path) -> str:
    result = json.loads(path.read_text())
    cells = [f"{run_label(result)} vs {reference_label(result)}", chosen_text(result["selection"]),
             *split_cells(result["dev"]), *split_cells(result["test"]),
             top_word(path.parent / "test" / "predictions.jsonl")]
    return "| " + " | ".join(cells) + " |"


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(prog="python -m experiments.seed_table", description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+", type=Path, help="result*.json files written by experiments.full_budget_ablation")
    table = "\n".join([HEADER, *(table_row(p) for p in ap.parse_args(argv).results)])
    print(table)
    return table


if __name__ == "__main__":
    main()
