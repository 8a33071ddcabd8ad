"""Does TALL know anything the word n-gram does not? The n-gram proposes, TALL chooses.

    python -m benchmarks.ngram_rerank --data build/demo-v2/data/he_dev.jsonl --data build/demo-v2/data/he_test.jsonl \
        --translation-cache build/demo-v2/translations-65efce7a8081.sqlite [--checkpoint checkpoints/demo/tall]

For every verse without its last word, the shipped word n-gram (checkpoints/demo/word_ngram.json) ranks its K best
next words; TALL scores each as it is trained to, the teacher-forced log-probability of the word's pieces and of the
verse's end after them; the best-scored one is the answer. K = 1 is the n-gram itself; a larger K lets TALL overrule
it among more candidates. Each K's greedy exact match is paired with K = 1 (exact McNemar p). Nothing is trained.
"""

from __future__ import annotations

import argparse
from collections import Counter

import torch
from torch.nn import functional as F

from baselines.word_ngram import NGRAM_FILE, load_ngram
from evaluation.metrics import exact_match, normalize_word
from evaluation.significance import mcnemar_exact
from tall_data.corpus import read_corpus
from tall_data.examples import make_examples
from tall_data.translation_cache import DEFAULT_TRANSLATION_CACHE, open_prefix_cache, translate_prefixes
from tall_model import load
from tall_model.config import demo_dir

BATCH = 48
KS = (1, 2, 3, 5, 10, 20)


@torch.no_grad()
def word_log_probs(model, prefixes: list[str], translations: list[str], words: list[str]) -> list[float]:
    """log P(word's pieces, then the verse's end | prefix) under TALL, one per (prefix, translation, word) row.

    The training loss's event, through the training batch: the candidates compete as the verse's *last* word.
    (`baselines.tall.tall_gold_log_probs` scores the word followed by any word boundary, as `predict` decodes.)"""
    out = []
    for i in range(0, len(words), BATCH):
        batch = model.make_batch(prefixes[i:i + BATCH], translations[i:i + BATCH], words[i:i + BATCH])
        result = model(batch)
        piece = F.log_softmax(result.logits.float(), -1).gather(1, result.labels[:, None]).squeeze(1)
        out += [float(row.sum()) for row in piece.split(batch.loss_mask.sum(1).tolist())]
    return out


def choose(scored: list[list[tuple[str, float]]], k: int) -> list[str]:
    """Per verse, the best-scored of the n-gram's first k words ("" when the n-gram had none)."""
    return [max(words[:k], key=lambda ws: ws[1])[0] if words else "" for words in scored]


def score_candidates(model, ngram, prefixes, translations, k: int) -> list[list[tuple[str, float]]]:
    candidates = [ngram.ranked(p, k) for p in prefixes]
    rows = [(i, w) for i, words in enumerate(candidates) for w in words]
    scores = word_log_probs(model, [prefixes[i] for i, _ in rows], [translations[i] for i, _ in rows],
                            [w for _, w in rows])
    scored: list[list[tuple[str, float]]] = [[] for _ in prefixes]
    for (i, word), s in zip(rows, scores):
        scored[i].append((word, s))
    return scored


def table(scored, golds: list[str], ks=KS) -> list[dict]:
    base = [exact_match(w, g) for w, g in zip(choose(scored, 1), golds)]
    rows = []
    for k in ks:
        picks = choose(scored, k)
        hits = [exact_match(w, g) for w, g in zip(picks, golds)]
        top, count = Counter(normalize_word(w) for w in picks).most_common(1)[0]
        only_k, only_ngram, p = mcnemar_exact(hits, base)
        rows.append({"k": k, "n": len(golds), "hits": sum(hits), "accuracy": sum(hits) / len(golds),
                     "top_word": top, "top_share": count / len(golds), "only_this": only_k,
                     "only_ngram": only_ngram, "mcnemar_p": p})
    return rows


def main(argv=None) -> dict[str, list[dict]]:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.ngram_rerank", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", action="append", required=True, help="Hebrew corpus (repeat); each verse's last word")
    ap.add_argument("--checkpoint", default="checkpoints/demo/tall")
    ap.add_argument("--ngram", default=str(demo_dir() / NGRAM_FILE))
    ap.add_argument("--translation-cache", default=str(DEFAULT_TRANSLATION_CACHE))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, ngram = load(args.checkpoint, device="cpu").eval(), load_ngram(args.ngram)
    results = {}
    for path in args.data:
        examples = make_examples(read_corpus(path).sentences, framing="word", positions="last", seed=0,
                                 piece_tokenizer=model.backbones.lr_hr_tokenizer)
        prefixes = [e.prefix for e in examples]
        with open_prefix_cache(model, args.translation_cache) as cache:
            translations = translate_prefixes(model, cache, prefixes, None, 16)
        rows = table(score_candidates(model, ngram, prefixes, translations, max(KS)), [e.target for e in examples])
        results[path] = rows
        print(f"\n{path}\n| K | hits | exact match | most frequent word | only this / only K = 1 | McNemar p |\n"
              "|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['k']} | {r['hits']} / {r['n']} | {100 * r['accuracy']:.2f} % | {r['top_word']} "
                  f"{100 * r['top_share']:.1f} % | {r['only_this']} / {r['only_ngram']} | {r['mcnemar_p']:.3g} |")
    return results


if __name__ == "__main__":
    main()
