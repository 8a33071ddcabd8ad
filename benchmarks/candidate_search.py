"""How the candidate words are searched (Decoding.candidate_search and candidate_pool), paired on the same examples.

    python -m benchmarks.candidate_search --data build/demo/data/he_dev_all.jsonl --data build/demo/data/he_test.jsonl \
        [--checkpoint checkpoints/demo/tall] [--variant first_pieces:10 --variant beam:10 ...]

A variant is SEARCH:POOL. For each file (evaluation's reader: every verse without its last word) and variant, with
the checkpoint's own word choice: greedy and top-5 exact-match hits, the share of the most frequent predicted word
and the seconds spent; each variant after the first is paired with the first (exact McNemar p and a paired
bootstrap interval, evaluation.significance). Translations come from the translation cache, so the variants read
the same English. Choose on dev; report test.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

import torch

from evaluation.evaluate import load_dataset
from evaluation.metrics import exact_match, normalize_word
from evaluation.significance import mcnemar_exact, paired_bootstrap
from tall_data.translation_cache import DEFAULT_TRANSLATION_CACHE, open_prefix_cache, translate_prefixes
from tall_model import load
from tall_model.decoding import CANDIDATE_SEARCHES
from tall_model.predict import predict

BATCH = 16
TOP = 5


def parse_variant(text: str) -> tuple[str, int]:
    search, _, pool = text.partition(":")
    if search not in CANDIDATE_SEARCHES or not pool.isdigit() or int(pool) < 1:
        raise argparse.ArgumentTypeError(f"a variant is SEARCH:POOL with SEARCH one of {', '.join(CANDIDATE_SEARCHES)} "
                                         f"and POOL >= 1, got {text!r}")
    return search, int(pool)


def run_variant(model, prefixes, english, search: str, pool: int) -> tuple[list[str], list[list[str]], float]:
    decoding = model.config.decoding.greedy().replace(candidate_search=search, candidate_pool=pool)
    words, lists, started = [], [], time.perf_counter()
    for i in range(0, len(prefixes), BATCH):
        for p in predict(model, prefixes[i:i + BATCH], translations=english[i:i + BATCH], decoding=decoding,
                         output_attentions=False, num_candidates=TOP):
            words.append(p.word)
            lists.append([c.word for c in p.candidates])
    return words, lists, time.perf_counter() - started


def paired(hits: list[bool], base: list[bool]) -> dict:
    only_this, only_base, p = mcnemar_exact(hits, base)
    diff, low, high = paired_bootstrap(hits, base)
    return {"only_this": only_this, "only_first": only_base, "mcnemar_p": round(p, 5), "difference": round(diff, 4),
            "ci95": [round(low, 4), round(high, 4)]}


def compare(model, path: str, cache_path: str, variants: list[tuple[str, int]]) -> dict:
    dataset = load_dataset(path)
    prefixes, golds = [e.prefix for e in dataset.examples], [e.target for e in dataset.examples]
    with open_prefix_cache(model, cache_path) as cache:
        english = translate_prefixes(model, cache, prefixes, None, BATCH)
    result, first = {"data": path, "n": len(golds), "variants": {}}, None
    for search, pool in variants:
        words, lists, seconds = run_variant(model, prefixes, english, search, pool)
        greedy = [exact_match(w, g) for w, g in zip(words, golds)]
        top5 = [any(exact_match(w, g) for w in ws) for ws, g in zip(lists, golds)]
        word, count = Counter(normalize_word(w) for w in words).most_common(1)[0]
        row = {"greedy": sum(greedy), "top5": sum(top5), "top_word": word, "top_share": round(count / len(words), 4),
               "seconds": round(seconds, 1)}
        if first is None:
            first = greedy, top5
        else:
            row |= {"greedy_vs_first": paired(greedy, first[0]), "top5_vs_first": paired(top5, first[1])}
        result["variants"][f"{search}:{pool}"] = row
    return result


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.candidate_search", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", action="append", required=True, help="Hebrew corpus file; repeat for several")
    ap.add_argument("--checkpoint", default="checkpoints/demo/tall")
    ap.add_argument("--variant", action="append", type=parse_variant, help="SEARCH:POOL (repeat; the first is the "
                    "base of the pairing); default first_pieces:10, beam:10")
    ap.add_argument("--translation-cache", default=str(DEFAULT_TRANSLATION_CACHE))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load(args.checkpoint, device="cpu")
    variants = args.variant or [("first_pieces", 10), ("beam", 10)]
    for path in args.data:
        print(json.dumps(compare(model, path, args.translation_cache, variants), ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
