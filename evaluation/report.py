"""Evaluation results: one row per approach × dataset, written as CSV and JSON and printed as a table.

Rates are fractions in the files and percentages in the printed table; a metric an approach cannot give
(log-probability of naive, interval with one seed) is blank in the CSV and null in the JSON.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from evaluation.metrics import accuracy, empty_rate, mean_interval, mean_log_prob, top_k_accuracy

TOP_K = 5
CONFIDENCE = 0.95
PREDICTIONS = "predictions.jsonl"  # one record per approach × example (prefix, gold, greedy, candidates, ...)


@dataclass
class ResultRow:
    dataset: str
    approach: str
    examples: int
    accuracy: float  # greedy exact match
    sampled_accuracy: float | None  # mean over seeds
    sampled_ci_low: float | None
    sampled_ci_high: float | None
    sampled_ci_half_width: float | None
    seeds: int
    top5_accuracy: float | None
    mean_log_prob: float | None
    empty_greedy: float  # share of greedy predictions with no word
    seconds: float


def make_row(dataset: str, approach: str, golds: Sequence[str], greedy: Sequence[str],
             candidates: Sequence[Sequence[str]] | None, sampled: dict[int, Sequence[str]],
             log_probs: Sequence[float] | None, seconds: float) -> ResultRow:
    """All metrics of one approach on one dataset from its raw predictions."""
    per_seed = [accuracy(words, golds) for _, words in sorted(sampled.items())]
    interval = mean_interval(per_seed, CONFIDENCE) if per_seed else None
    return ResultRow(
        dataset, approach, len(golds), accuracy(greedy, golds),
        interval.mean if interval else None, interval.low if interval else None,
        interval.high if interval else None, interval.half_width if interval else None, len(per_seed),
        top_k_accuracy(candidates, golds, TOP_K) if candidates is not None else None,
        mean_log_prob(log_probs) if log_probs is not None else None,
        empty_rate(greedy), round(seconds, 2))


def write_csv(rows: Sequence[ResultRow], path: Path) -> None:
    names = [f.name for f in fields(ResultRow)]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=names)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in asdict(row).items()})


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}"


def _cells(r: ResultRow) -> list[str]:
    sampled = _pct(r.sampled_accuracy)
    if sampled and r.sampled_ci_half_width is not None:
        sampled += f" ± {100 * r.sampled_ci_half_width:.2f}"
    return [r.dataset, r.approach, str(r.examples), _pct(r.accuracy), sampled, _pct(r.top5_accuracy),
            "" if r.mean_log_prob is None else f"{r.mean_log_prob:.3f}", _pct(r.empty_greedy)]


HEADER = ["dataset", "approach", "n", "greedy %", f"sampled % (±{CONFIDENCE:.0%} CI)", f"top-{TOP_K} %",
          "mean log p", "empty %"]


def format_table(rows: Sequence[ResultRow]) -> str:
    """A plain-text table (percentages); the sampled column is mean ± 95 % t-interval half-width."""
    lines = [HEADER] + [_cells(r) for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)


def format_markdown(rows: Sequence[ResultRow]) -> str:
    """The same table in Markdown (README, model cards)."""
    lines = [HEADER, ["---"] * len(HEADER)] + [_cells(r) for r in rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def rows_from_json(rows: Sequence[dict]) -> list[ResultRow]:
    """ResultRows back from metrics.json's "rows"."""
    return [ResultRow(**{f.name: r.get(f.name) for f in fields(ResultRow)}) for r in rows]


def write_predictions(path: Path, records: Iterable[dict]) -> None:
    """An evaluation's records, one JSON object a line (Hebrew kept readable)."""
    with path.open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def read_predictions(path: Path, approach: str | None = None) -> list[dict]:
    """The records of a predictions.jsonl, all of them or `approach`'s. ValueError names a line that is not a JSON
    object, or the approaches the file does hold when it has none of `approach`'s."""
    records = []
    with Path(path).open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}, line {number}: not JSON ({err.msg})") from None
            if not isinstance(record, dict) or "approach" not in record:
                raise ValueError(f"{path}, line {number}: not an evaluation record (no 'approach')")
            records.append(record)
    if approach is None:
        return records
    chosen = [r for r in records if r["approach"] == approach]
    if not chosen:
        held = ", ".join(sorted({r["approach"] for r in records})) or "nothing"
        raise ValueError(f"{path} has no {approach!r} predictions (it holds {held})")
    return chosen
