"""The Batch tab's plain functions: a file of Hebrew sentences in, the last word of each predicted, a summary, a
table and a CSV out (evaluation.batch does the predicting; the command line takes any size, the app caps it)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from evaluation.batch import CSV_HEADERS, MAX_APP_SENTENCES, BatchRow, last_word_examples, predict_rows, summarize


@dataclass
class BatchOutcome:
    report: str  # the ingestion report (markdown)
    summary: str  # accuracy, most frequent predictions, most missed words (markdown)
    rows: list[list]  # one per sentence, CSV_HEADERS
    csv_path: Path


def check_size(n_examples: int, cap: int = MAX_APP_SENTENCES) -> None:
    if n_examples > cap:
        raise ValueError(f"The file has {n_examples:,} sentences; the app predicts at most {cap:,} at a time. Split "
                         "the file, or run the command line, which takes any size and streams its output: python -m "
                         "evaluation.batch --checkpoint CHECKPOINT --data FILE --out predictions.csv")


def summary_markdown(rows: list[BatchRow]) -> str:
    s = summarize(rows)
    predicted = ", ".join(f"{w} ({n})" for w, n in s["most_predicted"]) or "—"
    missed = ", ".join(f"{w} ({n})" for w, n in s["most_missed"]) or "—"
    return (f"**{s['n']:,} sentences** · exact match **{s['accuracy']:.1%}** · gold word in the top 5 "
            f"**{s['top5_accuracy']:.1%}**\n\n- Most frequent predictions: {predicted}\n"
            f"- Gold words most often missed: {missed}")


def write_csv(rows: list[BatchRow], out_dir: Path, name: str = "tall-batch.csv") -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_HEADERS)
        writer.writerows(r.as_list() for r in rows)
    tmp.replace(path)  # never a half-written file
    return path


def run_batch(model, sentences: list[str], report: str, out_dir: Path, on_progress=None,
              cap: int = MAX_APP_SENTENCES) -> BatchOutcome:
    examples = last_word_examples(sentences)
    if not examples:
        raise ValueError("No sentence of two words or more: nothing to predict.")
    check_size(len(examples), cap)
    rows = list(predict_rows(model, examples, on_progress=on_progress))
    return BatchOutcome(report, summary_markdown(rows), [r.as_list() for r in rows], write_csv(rows, out_dir))
