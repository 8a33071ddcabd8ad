"""Greedy word piece by piece (the paper's way) vs the likeliest whole candidate word (Decoding.word_choice), paired.

    python -m benchmarks.word_choice --data build/demo/data/he_dev.jsonl --data build/demo/data/he_test.jsonl

For each file (evaluation's reader: every verse without its last word): exact-match hits of both choices on the same
examples, exact McNemar p and a paired bootstrap interval (evaluation.significance), and the share of the most
frequent predicted word (a choice that finds more words by repeating one is not simply better). Translations come
from the translation cache, so a second run only decodes. Choose on dev; report test.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

import torch

from evaluation.evaluate import load_dataset
from evaluation.metrics import exact_match, normalize_word
from evaluation.significance import mcnemar_exact, paired_bootstrap
from tall_data.translation_cache import DEFAULT_TRANSLATION_CACHE, open_prefix_cache, translate_prefixes
from tall_model import load
from tall_model.decoding import WORD_CHOICES
from tall_model.predict import predict

BATCH = 16


def words_for(model, prefixes, english, choice: str) -> list[str]:
    decoding = model.config.decoding.greedy().replace(word_choice=choice)
    out = []
    for i in range(0, len(prefixes), BATCH):
        out += [p.word for p in predict(model, prefixes[i:i + BATCH], translations=english[i:i + BATCH],
                                        decoding=decoding, output_attentions=False)]
    return out


def compare_choices(model, path: str, cache_path: str) -> dict:
    dataset = load_dataset(path)
    prefixes, golds = [e.prefix for e in dataset.examples], [e.target for e in dataset.examples]
    with open_prefix_cache(model, cache_path) as cache:
        english = translate_prefixes(model, cache, prefixes, None, BATCH)
    result, hits = {"data": path, "n": len(golds)}, {}
    for choice in WORD_CHOICES:
        words = words_for(model, prefixes, english, choice)
        hits[choice] = [exact_match(w, g) for w, g in zip(words, golds)]
        top, count = Counter(normalize_word(w) for w in words).most_common(1)[0]
        result[choice] = {"hits": sum(hits[choice]), "top_word": top, "top_share": round(count / len(words), 4)}
    only_best, only_pieces, p = mcnemar_exact(hits["best_candidate"], hits["pieces"])
    diff, low, high = paired_bootstrap(hits["best_candidate"], hits["pieces"])
    result["best_candidate_vs_pieces"] = {"only_best_candidate": only_best, "only_pieces": only_pieces,
                                          "mcnemar_p": round(p, 4), "difference": round(diff, 4),
                                          "ci95": [round(low, 4), round(high, 4)]}
    return result


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.word_choice", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", action="append", required=True, help="Hebrew corpus file; repeat for several")
    ap.add_argument("--checkpoint", default="checkpoints/demo/tall")
    ap.add_argument("--translation-cache", default=str(DEFAULT_TRANSLATION_CACHE))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load(args.checkpoint, device="cpu")
    for path in args.data:
        print(json.dumps(compare_choices(model, path, args.translation_cache), ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
