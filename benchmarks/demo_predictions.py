"""Greedy predictions of the shipped demo on every test-book example, compared with a stored reference.

A refactoring that must not change behaviour is checked with this (the reference was written before it):

    python -m benchmarks.demo_predictions --compare benchmarks/demo_greedy_reference.jsonl
    python -m benchmarks.demo_predictions --write benchmarks/demo_greedy_reference.jsonl   # a new reference

Every test-book verse (demo_build.data's split) without its last word, as `evaluation.evaluate` frames them (731
examples); greedy word, its probability, the he→en translation and the top-5 candidate words. Takes ~2 minutes.

With `--quantize int8` and/or `--translation-engine ctranslate2` (not exact), `--compare` reports the agreement with
the reference instead of demanding identity: the same words, the same translations, and both exact-match counts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm


def test_examples():
    from demo_build.data import split_verses
    from evaluation.evaluate import load_dataset

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "he_test.jsonl"
        with path.open("w", encoding="utf-8") as fh:
            for verse in split_verses()["test"]:
                fh.write(json.dumps({"text": verse.he, "id": verse.id}, ensure_ascii=False) + "\n")
        return load_dataset(path).examples


def predictions(batch_size: int = 16, **settings) -> list[dict]:
    from tall_model import load
    from tall_model.predict import predict

    model, examples, rows = load("demo", **settings), test_examples(), []
    for start in tqdm(range(0, len(examples), batch_size), desc="predicting", unit="batch"):
        chunk = examples[start:start + batch_size]
        for ex, p in zip(chunk, predict(model, [e.prefix for e in chunk], num_candidates=5, output_attentions=False)):
            rows.append({"prefix": ex.prefix, "gold": ex.target, "translation": p.translation, "word": p.word,
                         "prob": round(p.word_prob, 6), "candidates": [c.word for c in p.candidates]})
    return rows


def difference_summary(rows: list[dict], reference: list[dict]) -> str:
    """Which fields differ, row by row: on another CPU or thread count a sum's order changes the probability's last
    digits, which matters only where it moves a word, a translation or the top five."""
    pairs = list(zip(rows, reference))
    count = {key: sum(a[key] != b[key] for a, b in pairs) for key in ("word", "translation", "candidates")}
    only_prob = sum(a != b and all(a[k] == b[k] for k in a if k != "prob") for a, b in pairs)
    hits = [sum(r["word"] == r["gold"] for r in rs) for rs in (rows, reference)]
    largest = max((abs(a["prob"] - b["prob"]) for a, b in pairs), default=0.0)
    return (f"word {count['word']}, translation {count['translation']}, top-5 {count['candidates']}, probability "
            f"only {only_prob}; largest probability difference {largest:.6f}; exact words {hits[0]} here vs "
            f"{hits[1]} in the reference")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", type=Path, help="write the predictions here")
    group.add_argument("--compare", type=Path, help="compare the predictions with this reference")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quantize", default="none", help="as tall_model.load's (int8: report the agreement)")
    ap.add_argument("--translation-engine", default="transformers", help="as tall_model.load's")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    rows = predictions(quantize=args.quantize, translation_engine=args.translation_engine)
    print(f"{len(rows)} predictions in {time.perf_counter() - started:.1f} s")
    if args.write:
        args.write.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        return 0
    reference = [json.loads(line) for line in args.compare.read_text(encoding="utf-8").splitlines()]
    differ = [i for i, (a, b) in enumerate(zip(rows, reference)) if a != b]
    if args.quantize != "none" or args.translation_engine != "transformers":
        same = {key: sum(a[key] == b[key] for a, b in zip(rows, reference)) for key in ("word", "translation")}
        hits = [sum(r["word"] == r["gold"] for r in rs) for rs in (rows, reference)]
        print(f"agreement with the reference over {len(rows)} rows: the same word {same['word']}, the same "
              f"translation {same['translation']}; exact words {hits[0]} here vs {hits[1]} in the reference")
        return 0
    if len(rows) != len(reference) or differ:
        print(f"DIFFERENT: {len(rows)} vs {len(reference)} rows; {len(differ)} rows differ ({difference_summary(rows, reference)}), "
              f"e.g. {[(rows[i], reference[i]) for i in differ[:2]]}")
        return 1
    words = sum(r["word"] == r["gold"] for r in rows)
    print(f"identical: all {len(rows)} rows (word, probability, translation, top-5) match the reference; "
          f"{words} exact words")
    return 0


if __name__ == "__main__":
    sys.exit(main())
