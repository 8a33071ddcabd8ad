"""Where do an approach's hits fall? Greedy exact-match hits per book, for one or more runs on the same verses; with
--word W, where a run says W: per book, how often W is the gold word, and how often each run predicts it (and is
right).

    python -m evaluation.by_book --data build/demo-v2/data/he_test.jsonl \
        shipped=RUN_A/predictions.jsonl ngram=RUN_B/predictions.jsonl [--approach tall] [--word יהוה]

DATA is the JSON-lines file the runs were scored on (each verse's Hebrew "text" and its "id", "Book.chapter.verse").
A prediction is matched to its verse by prefix + " " + gold; verses with the same text are taken in file order, as
the evaluation reads them. A prediction that matches no verse is an error (the run was scored on other data), never
guessed. Each RUN is NAME=predictions.jsonl as written by `python -m evaluation.evaluate`; --approach picks the rows
of files that hold several approaches (default: the file must hold exactly one).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict, deque
from collections.abc import Sequence
from pathlib import Path

from evaluation.metrics import exact_match, normalize_word
from evaluation.report import read_predictions


def verse_books(data_lines: Sequence[str]) -> dict[str, deque[str]]:
    """Verse text → the books of the verses with that text, in file order."""
    books: dict[str, deque[str]] = defaultdict(deque)
    for number, line in enumerate(data_lines, 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not row.get("id") or "." not in row["id"]:
            raise ValueError(f"line {number}: a verse needs an id like 'Ruth.1.1', got {row.get('id')!r}")
        books[" ".join(row["text"].split())].append(row["id"].split(".")[0])
    return books


def booked(data_lines: Sequence[str], records: Sequence[dict]):
    """(book, record) for each prediction record, its verse found by text (ValueError when none is left)."""
    books = verse_books(data_lines)
    for record in records:
        text = " ".join(f"{record['prefix']} {record['gold']}".split())
        if not books.get(text):
            raise ValueError(f"no verse of the data ends a prefix this way: {text[:60]!r} (scored on other data?)")
        yield books[text].popleft(), record


def hits_by_book(data_lines: Sequence[str], records: Sequence[dict]) -> dict[str, list[int]]:
    """Book → [examples, greedy hits] for one run's prediction records."""
    table: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for book, record in booked(data_lines, records):
        counts = table[book]
        counts[0] += 1
        counts[1] += exact_match(record["greedy"], record["gold"])
    return dict(table)


def word_by_book(data_lines: Sequence[str], records: Sequence[dict], word: str) -> dict[str, list[int]]:
    """Book → [examples, gold is `word`, greedy is `word`, both] for one run (words compared as exact match does)."""
    word = normalize_word(word)
    table: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for book, record in booked(data_lines, records):
        gold, said = normalize_word(record["gold"]) == word, normalize_word(record["greedy"] or "") == word
        counts = table[book]
        counts[0] += 1
        counts[1] += gold
        counts[2] += said
        counts[3] += gold and said
    return dict(table)


def read_run(path: Path, approach: str | None) -> list[dict]:
    records = read_predictions(path)
    approaches = sorted({r["approach"] for r in records})
    if len(approaches) <= 1:  # a file of one approach is read whole, whatever --approach says
        return records
    if approach not in approaches:
        raise ValueError(f"{path} holds several approaches ({', '.join(approaches)}): pick one with --approach")
    return [r for r in records if r["approach"] == approach]


def format_markdown(runs: dict[str, dict[str, list[int]]]) -> str:
    books = sorted({book for table in runs.values() for book in table})
    examples = {book: max(table.get(book, [0, 0])[0] for table in runs.values()) for book in books}
    lines = ["| book | examples | " + " | ".join(runs) + " |", "|---|---|" + "---|" * len(runs)]
    for book in books:
        lines.append(f"| {book} | {examples[book]} | "
                     + " | ".join(str(table.get(book, [0, 0])[1]) for table in runs.values()) + " |")
    totals = [sum(hits for _, hits in table.values()) for table in runs.values()]
    lines.append(f"| all | {sum(examples.values())} | " + " | ".join(map(str, totals)) + " |")
    return "\n".join(lines)


def format_word_markdown(word: str, runs: dict[str, dict[str, list[int]]]) -> str:
    """Per book: examples, how often `word` is the gold word, and each run's "predicted (right)" count of it."""
    books = sorted({book for table in runs.values() for book in table})
    first = next(iter(runs.values()))
    lines = [f"| book | examples | gold {word} | " + " | ".join(f"{name}: {word} predicted (right)" for name in runs)
             + " |", "|---|---|---|" + "---|" * len(runs)]
    for book in [*books, "all"]:
        def cell(table, index, book=book):
            return sum(c[index] for c in table.values()) if book == "all" else table.get(book, [0] * 4)[index]
        lines.append(f"| {book} | {cell(first, 0)} | {cell(first, 1)} | "
                     + " | ".join(f"{cell(t, 2)} ({cell(t, 3)})" for t in runs.values()) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.by_book", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="the JSON-lines verses the runs were scored on")
    ap.add_argument("runs", nargs="+", metavar="NAME=PREDICTIONS", help="predictions.jsonl of evaluation.evaluate")
    ap.add_argument("--approach", default=None, help="the approach to read from files that hold several")
    ap.add_argument("--word", default=None, help="count this word per book (gold, predicted, right) instead of hits")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    args = ap.parse_args(argv)
    if args.word is not None and not normalize_word(args.word):
        print(f"error: --word needs a word, got {args.word!r}", file=sys.stderr)
        return 2
    try:
        data_lines = args.data.read_text(encoding="utf-8").splitlines()
        runs = {}
        for spec in args.runs:
            name, sep, path = spec.partition("=")
            if not sep or not name or not path:
                raise ValueError(f"a run is NAME=predictions.jsonl, got {spec!r}")
            records = read_run(Path(path), args.approach)
            runs[name] = (hits_by_book(data_lines, records) if args.word is None
                          else word_by_book(data_lines, records, args.word))
    except (OSError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(runs, indent=2, ensure_ascii=False))
    else:
        print(format_markdown(runs) if args.word is None else format_word_markdown(args.word, runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
