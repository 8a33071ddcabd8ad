"""Is the demo's over-used greedy word a length effect? Re-rank the candidate words with a bonus per extra piece.

    python -m benchmarks.word_length_bonus --data build/demo-v3/data/he_dev_all.jsonl \
        --data build/demo-v3/data/he_test.jsonl --translation-cache build/demo-v3/translations-103ead2b1839.sqlite

The demo's greedy word is the likeliest whole candidate (P(first piece) · P(next pieces) · P(end)); the words it
over-uses (יהוה, הארץ, ...) are single pieces, and a product of more factors is smaller, so a long word may lose only
for its length. Each example is predicted once with its ten candidates; each β then picks the candidate maximising
log P(word) + β · (pieces − 1), the same pool. Printed per file and β: greedy hits against β = 0 (exact McNemar),
top-5, the most frequent predicted word and its share. Choose on dev, report test.
"""

from __future__ import annotations

import argparse
import math
from collections import Counter

import torch

from evaluation.evaluate import load_dataset
from evaluation.metrics import exact_match, normalize_word
from evaluation.significance import mcnemar_exact
from tall_data.translation_cache import DEFAULT_TRANSLATION_CACHE, open_prefix_cache, translate_prefixes
from tall_model import load
from tall_model.predict import predict

BATCH = 16
POOL = 10
BETAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


def scored_candidates(model, path: str, cache_path: str) -> tuple[list[list[tuple[str, float, int]]], list[str]]:
    """Per example: (word, log P(word), pieces) of its candidates, likeliest first; and the gold words."""
    dataset = load_dataset(path)
    prefixes, golds = [e.prefix for e in dataset.examples], [e.target for e in dataset.examples]
    with open_prefix_cache(model, cache_path) as cache:
        english = translate_prefixes(model, cache, prefixes, None, BATCH)
    decoding = model.config.decoding.greedy().replace(candidate_pool=POOL)
    out = []
    for i in range(0, len(prefixes), BATCH):
        for p in predict(model, prefixes[i:i + BATCH], translations=english[i:i + BATCH], decoding=decoding,
                         output_attentions=False, num_candidates=POOL):
            out.append([(c.word, math.log(max(c.prob, 1e-300)), len(c.pieces)) for c in p.candidates if c.word])
    return out, golds


def ranked(candidates: list[tuple[str, float, int]], beta: float) -> list[str]:
    return [w for w, _, _ in sorted(candidates, key=lambda c: -(c[1] + beta * (c[2] - 1)))]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.word_length_bonus", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", action="append", required=True, help="Hebrew corpus file; repeat for several")
    ap.add_argument("--checkpoint", default="checkpoints/demo/tall")
    ap.add_argument("--translation-cache", default=str(DEFAULT_TRANSLATION_CACHE))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load(args.checkpoint, device="cpu")
    for path in args.data:
        candidates, golds = scored_candidates(model, path, args.translation_cache)
        print(f"\n{path}: {len(golds)} examples\n\n| β | greedy hits | only β / only β=0 | McNemar p | top-5 | "
              "most frequent word |\n|---|---|---|---|---|---|")
        base = None
        for beta in BETAS:
            lists = [ranked(c, beta) for c in candidates]
            words = [ws[0] if ws else "" for ws in lists]
            hits = [exact_match(w, g) for w, g in zip(words, golds)]
            base = hits if base is None else base
            only_new, only_base, p = mcnemar_exact(hits, base)
            top5 = sum(any(exact_match(w, g) for w in ws[:5]) for ws, g in zip(lists, golds))
            top, count = Counter(normalize_word(w) for w in words).most_common(1)[0]
            print(f"| {beta:g} | {sum(hits)} ({sum(hits) / len(golds):.2%}) | {only_new} / {only_base} | {p:.3g} | "
                  f"{top5 / len(golds):.2%} | {top} {count / len(golds):.2%} |", flush=True)


if __name__ == "__main__":
    main()
