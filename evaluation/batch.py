"""Many sentences at once: predict the last word of every sentence of a file with one TALL model.

    python -m evaluation.batch --checkpoint demo --data sentences.txt --out predictions.csv [--batch-size 16]

The file goes through the same ingestion as training (tall_data.corpus: .txt/.csv/.tsv/.jsonl, UTF-8, a report of
what was dropped); each sentence becomes one example, the sentence without its last word (tall_data.examples, word
framing). Greedy decoding, the model's own settings. The command takes any number of sentences and writes each CSV
row as soon as its batch is predicted (a progress bar on stderr); the app's Batch tab caps a file at
MAX_APP_SENTENCES.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from evaluation.metrics import exact_match, normalize_word
from tall_data.corpus import read_corpus
from tall_data.examples import Example, make_examples
from tall_model import load
from tall_model.predict import fit_prefix, predict
from tall_model.text import validate_prefix
from tall_model.translate import translate

MAX_APP_SENTENCES = 2000
BATCH_SIZE = 16
TRANSLATION_WINDOW = 64  # prefixes translated together: translate() sorts them by length into batches of 32
CSV_HEADERS = ["prefix", "gold", "prediction", "probability", "correct", "top5", "in_top5"]
DEFAULT_MAX_BYTES = 50_000_000


def cli_max_bytes(path: str) -> int:
    """The command takes a file of any size (the app caps uploads): at least the file's own size."""
    data = Path(path)
    return max(DEFAULT_MAX_BYTES, data.stat().st_size + 1 if data.is_file() else 0)


@dataclass
class BatchRow:
    prefix: str
    gold: str
    prediction: str
    probability: float
    top5: list[str]

    @property
    def correct(self) -> bool:
        return exact_match(self.prediction, self.gold)

    @property
    def in_top5(self) -> bool:
        return any(exact_match(word, self.gold) for word in self.top5)

    def as_list(self) -> list:
        return [self.prefix, self.gold, self.prediction, round(self.probability, 6), self.correct,
                " | ".join(self.top5), self.in_top5]


def last_word_examples(sentences: Iterable[str]) -> list[Example]:
    """One example per sentence of at least two words: the sentence without its last word, and that word."""
    return make_examples(sentences, framing="word", positions="last")


def predict_rows(model, examples: list[Example], *, batch_size: int = BATCH_SIZE,
                 on_progress: Callable[[int, int], None] | None = None) -> Iterator[BatchRow]:
    """Predict every example in order: prefixes translated TRANSLATION_WINDOW at a time (length-sorted batches),
    then `batch_size` prefixes per forward pass. Greedy, with the model's own translation settings."""
    decoding = model.config.decoding.greedy()
    done = 0
    if on_progress is not None:
        on_progress(0, len(examples))
    for start in range(0, len(examples), TRANSLATION_WINDOW):
        window = examples[start:start + TRANSLATION_WINDOW]
        used = [fit_prefix(model, validate_prefix(ex.prefix), decoding.max_word_pieces)[0] for ex in window]
        english = translate(model, used, batch_size=32, decoding=decoding)
        for i in range(0, len(window), batch_size):
            chunk = window[i:i + batch_size]
            preds = predict(model, [ex.prefix for ex in chunk], decoding=decoding,
                            translations=english[i:i + batch_size], output_attentions=False)
            for ex, pred in zip(chunk, preds):
                yield BatchRow(ex.prefix, ex.target, pred.word, pred.word_prob if pred.pieces else 0.0,
                               [c.word for c in pred.candidates[:5]])
            done += len(chunk)
            if on_progress is not None:
                on_progress(done, len(examples))


def summarize(rows: list[BatchRow], top: int = 10) -> dict:
    """Accuracy, top-5 accuracy, the most frequent predictions and the gold words most often missed."""
    n = len(rows)
    missed = Counter(normalize_word(r.gold) for r in rows if not r.correct)
    return {"n": n, "accuracy": sum(r.correct for r in rows) / n if n else 0.0,
            "top5_accuracy": sum(r.in_top5 for r in rows) / n if n else 0.0,
            "most_predicted": Counter(r.prediction or "∅" for r in rows).most_common(top),
            "most_missed": missed.most_common(top)}


def write_rows(rows: Iterable[BatchRow], out) -> int:
    """Write CSV rows to an open text file as they come; returns how many."""
    writer = csv.writer(out)
    writer.writerow(CSV_HEADERS)
    count = 0
    for row in rows:
        writer.writerow(row.as_list())
        out.flush()
        count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evaluation.batch", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default="demo", help="a preset, or a checkpoint folder (default: the demo)")
    p.add_argument("--data", required=True, help=".txt/.csv/.tsv/.jsonl file of Hebrew sentences")
    p.add_argument("--out", default="-", help="CSV file to write (default: standard output)")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    corpus = read_corpus(args.data, max_bytes=cli_max_bytes(args.data))
    print(corpus.report.summary(), file=sys.stderr)
    examples = last_word_examples(corpus.sentences)
    model = load(args.checkpoint)
    bar = tqdm(total=len(examples), unit="sentence", disable=args.no_progress, file=sys.stderr)
    rows = predict_rows(model, examples, batch_size=args.batch_size,
                        on_progress=lambda done, _: bar.update(done - bar.n))
    if args.out == "-":
        count = write_rows(rows, sys.stdout)
    else:
        out_path = Path(args.out)
        tmp = out_path.with_name(out_path.name + ".part")
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            count = write_rows(rows, fh)
        tmp.replace(out_path)  # a finished file only; the .part grows while it runs
    bar.close()
    print(f"{count} sentences predicted", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
