"""The paper's greedy word (piece by piece) against the decoding options that depart from it, paired.

    python -m benchmarks.word_choice --data build/demo/data/he_dev.jsonl --data build/demo/data/he_test.jsonl \
        [--prior checkpoints/demo/first_piece_prior.safetensors] [--word-list checkpoints/demo/training_words.txt]

Variants: the likeliest whole candidate word (Decoding.word_choice); with --prior, the prior divided out of the first
piece (Decoding.prior, at the weight the file carries), alone and with the whole-word choice; with --word-list, the
training words only (Decoding.word_list), alone and with the prior. For each file (evaluation's reader: every verse
without its last word): exact-match hits of each variant and of the paper's greedy on the same examples, exact
McNemar p and a paired bootstrap interval (evaluation.significance), and the share of the most frequent predicted word
(a choice that finds more words by repeating one is not simply better). Translations come from the translation
cache, so a second run only decodes. Choose on dev; report test.
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
from tall_model import Decoding, load
from tall_model.predict import predict

BATCH = 16
PAPER = "pieces"


def variants(prior: str | None, word_list: str | None) -> dict[str, dict]:
    """name → the Decoding fields it changes from the paper's greedy."""
    out = {PAPER: {}, "best_candidate": {"word_choice": "best_candidate"}}
    if prior:
        out |= {"prior": {"prior": prior}, "best_candidate+prior": {"word_choice": "best_candidate", "prior": prior}}
    if word_list:
        out |= {"word_list": {"word_list": word_list}}
        if prior:
            out |= {"word_list+prior": {"word_list": word_list, "prior": prior}}
    return out


def words_for(model, prefixes, english, decoding: Decoding) -> list[str]:
    out = []
    for i in range(0, len(prefixes), BATCH):
        out += [p.word for p in predict(model, prefixes[i:i + BATCH], translations=english[i:i + BATCH],
                                        decoding=decoding, output_attentions=False, num_candidates=0)]
    return out


def compare_variants(model, path: str, cache_path: str, options: dict[str, dict]) -> dict:
    dataset = load_dataset(path)
    prefixes, golds = [e.prefix for e in dataset.examples], [e.target for e in dataset.examples]
    with open_prefix_cache(model, cache_path) as cache:
        english = translate_prefixes(model, cache, prefixes, None, BATCH)
    result, hits = {"data": path, "n": len(golds)}, {}
    greedy = model.config.decoding.greedy()
    for name, changes in options.items():
        words = words_for(model, prefixes, english, greedy.replace(**changes))
        hits[name] = [exact_match(w, g) for w, g in zip(words, golds)]
        top, count = Counter(normalize_word(w) for w in words).most_common(1)[0]
        result[name] = {"hits": sum(hits[name]), "top_word": top, "top_share": round(count / len(words), 4)}
        if name != PAPER:
            only_variant, only_paper, p = mcnemar_exact(hits[name], hits[PAPER])
            diff, low, high = paired_bootstrap(hits[name], hits[PAPER])
            result[name] |= {"only_this": only_variant, "only_pieces": only_paper, "mcnemar_p": round(p, 4),
                             "difference": round(diff, 4), "ci95": [round(low, 4), round(high, 4)]}
    return result


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.word_choice", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", action="append", required=True, help="Hebrew corpus file; repeat for several")
    ap.add_argument("--checkpoint", default="checkpoints/demo/tall")
    ap.add_argument("--translation-cache", default=str(DEFAULT_TRANSLATION_CACHE))
    ap.add_argument("--prior", help="a prior file of this checkpoint (python -m tall_model.prior)")
    ap.add_argument("--word-list", help="a word list (one word per line)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load(args.checkpoint, device="cpu")
    options = variants(args.prior, args.word_list)
    for path in args.data:
        print(json.dumps(compare_variants(model, path, args.translation_cache, options), ensure_ascii=False),
              flush=True)


if __name__ == "__main__":
    main()
