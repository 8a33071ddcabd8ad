"""TALL and the word n-gram, weighed together: does a log-linear mix find more words than either alone?

    python -m benchmarks.ngram_fusion \\
        --dev build/demo-v2/adapters/selection/last/predictions.jsonl \\
        --test build/demo-v2/eval-next-word/predictions.jsonl [--checkpoint checkpoints/demo/tall]

Reads TALL's evaluation records (predictions.jsonl: prefix, gold, the cached translation, TALL's top five). Each
verse's candidates are TALL's five and the n-gram's `--ngram-k` best; each candidate gets TALL's log-probability of
the word and a word boundary after it (as `predict`'s best whole word scores it, `tall_gold_log_probs`), the
n-gram's stupid-backoff log score, and the shipped prior's log P̄ of the word's first piece (`tall_model.prior`). A
verse's answer is the candidate with the highest
    log P_TALL(word) − w · log P̄(first piece) + λ · log S_ngram(word) − μ · log P_train(word),
λ = 0 being TALL over the pooled candidates and λ = ∞ the n-gram's order; the last term (μ, a discount of words
frequent anywhere, P_train being the word's add-one unigram frequency in the counted Hebrew) turns the n-gram's
score towards how much more likely the context makes a word than it is anyway. (λ, w, μ) is chosen on dev as the
prior stage chooses w: the most greedy hits (then top-5 hits) among the settings whose most frequent greedy word stays within
3 % of the verses, and for comparison without that rule; only the chosen settings are read on test, paired (exact
McNemar, paired bootstrap) with TALL and with the n-gram. Shallow fusion in speech recognition's sense; the n-gram
counts the same training Hebrew TALL was trained on. The scores are kept in `--features` (JSON), so a rerun only
re-weighs them.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from pathlib import Path

import torch
from tqdm import tqdm

from baselines.tall import tall_gold_log_probs
from baselines.word_ngram import NGRAM_FILE, load_ngram
from evaluation.metrics import exact_match, normalize_word
from evaluation.report import read_predictions
from evaluation.significance import mcnemar_exact, paired_bootstrap
from tall_model import load
from tall_model.batching import target_pieces
from tall_model.config import demo_dir
from tall_model.prior import demo_prior, log_prior

BATCH = 32
LAMBDAS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, math.inf)
PRIOR_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
DISCOUNTS = (0.0, 0.5, 1.0, 1.5)
TOP_WORD_CEILING = 0.03  # issue 13: no greedy word above 3 % of the verses


def pooled_candidates(records: list[dict], ngram, k: int) -> list[list[str]]:
    """TALL's candidates, then the n-gram's k best, each normalised word once (empty words dropped)."""
    out = []
    for r in records:
        words = [normalize_word(w) for w in r["candidates"] + ngram.ranked(r["prefix"], k)]
        out.append(list(dict.fromkeys(w for w in words if w)))
    return out


Scored = list[list[tuple]]  # per verse: (word, log P_TALL, log S_ngram, log P̄ first[, log P_train])


@torch.no_grad()
def score(model, ngram, prior: torch.Tensor, records: list[dict], candidates: list[list[str]]) -> Scored:
    """(word, log P_TALL, log S_ngram, log P̄ of its first piece) for every candidate of every verse."""
    rows = [(i, w) for i, words in enumerate(candidates) for w in words]
    tall = []
    for start in tqdm(range(0, len(rows), BATCH), desc="TALL scores", unit="batch"):
        part = rows[start:start + BATCH]
        tall += tall_gold_log_probs(model, [records[i]["prefix"] for i, _ in part], [w for _, w in part],
                                    [records[i]["translation"] for i, _ in part])
    scored: Scored = [[] for _ in records]
    for (i, word), t in zip(rows, tall):
        first = float(prior[target_pieces(model, word)[0]])
        scored[i].append((word, t, ngram.backoff_log_score(records[i]["prefix"], word), first))
    return scored


def ranking(words, weight: float, prior_weight: float = 0.0, discount: float = 0.0) -> list[str]:
    """The candidates best first under log P_TALL − prior_weight · log P̄ + weight · log S_ngram − discount ·
    log P_train (weight ∞: the n-gram's order, the rest breaking ties; a discount needs the fifth feature)."""
    def tall(s):
        return s[1] - prior_weight * s[3] - (discount * s[4] if discount else 0.0)
    key = (lambda s: (s[2], tall(s))) if math.isinf(weight) else (lambda s: tall(s) + weight * s[2])
    return [s[0] for s in sorted(words, key=key, reverse=True)]


def read_out(scored, golds: list[str], weight: float, prior_weight: float = 0.0, discount: float = 0.0) -> dict:
    ranked = [ranking(words, weight, prior_weight, discount) for words in scored]
    greedy = [r[0] if r else "" for r in ranked]
    hits = [exact_match(w, g) for w, g in zip(greedy, golds)]
    top5 = [any(exact_match(w, g) for w in r[:5]) for r, g in zip(ranked, golds)]
    word, count = Counter(greedy).most_common(1)[0]
    return {"lambda": weight, "w": prior_weight, "mu": discount, "n": len(golds), "hits": hits, "top5": top5,
            "greedy": greedy, "top_word": word, "top_share": count / len(golds)}


def choose(rows: list[dict], ceiling: float | None) -> dict:
    """The most greedy hits, then top-5 hits, among rows whose top word is within `ceiling` (None: all rows)."""
    allowed = [r for r in rows if ceiling is None or r["top_share"] <= ceiling] or rows
    return max(allowed, key=lambda r: (sum(r["hits"]), sum(r["top5"])))


def versus(a: dict, b_hits: list[bool]) -> str:
    only_a, only_b, p = mcnemar_exact(a["hits"], b_hits)
    diff, low, high = paired_bootstrap(a["hits"], b_hits)
    return f"{only_a} / {only_b}, p = {p:.2g}; {100 * diff:+.2f} ({100 * low:+.2f} … {100 * high:+.2f})"


def show(name: str, rows: list[dict], tall_hits: list[bool], ngram_hits: list[bool]) -> None:
    print(f"\n{name}\n| λ | w | μ | greedy | top-5 | most frequent word | vs TALL | vs n-gram |\n"
          "|---|---|---|---|---|---|---|---|")
    for r in rows:
        n = r["n"]
        hits, top5 = sum(r["hits"]), sum(r["top5"])
        print(f"| {r['lambda']:g} | {r['w']:g} | {r['mu']:g} | {hits} ({100 * hits / n:.2f} %) | {top5} "
              f"({100 * top5 / n:.2f} %) | {r['top_word']} {100 * r['top_share']:.1f} % | "
              f"{versus(r, tall_hits)} | {versus(r, ngram_hits)} |")


def features(args, ngram, split: str, records: list[dict]) -> Scored:
    """The candidates' scores, read from `--features` when it holds this split's verses, else computed (and saved)."""
    cache = Path(args.features) if args.features else None
    saved = json.loads(cache.read_text(encoding="utf-8")) if cache and cache.exists() else {}
    key = f"{split}:{args.checkpoint}:{args.ngram}:{args.ngram_k}:{len(records)}"
    if key in saved:
        return [[tuple(c) for c in words] for words in saved[key]]
    model = load(args.checkpoint, device="cpu").eval()
    prior, _ = log_prior(model, args.prior)
    scored = score(model, ngram, prior, records, pooled_candidates(records, ngram, args.ngram_k))
    if cache:
        cache.write_text(json.dumps(saved | {key: scored}, ensure_ascii=False), encoding="utf-8")
    return scored


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.ngram_fusion", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dev", required=True, help="an evaluation's predictions.jsonl on dev (λ is chosen here)")
    ap.add_argument("--test", required=True, help="an evaluation's predictions.jsonl on test (read at the chosen λ)")
    ap.add_argument("--checkpoint", default="checkpoints/demo/tall")
    ap.add_argument("--ngram", default=str(demo_dir() / NGRAM_FILE))
    ap.add_argument("--prior", default=str(demo_prior()))
    ap.add_argument("--ngram-k", type=int, default=10, help="the n-gram's best words added to TALL's five")
    ap.add_argument("--features", help="keep the candidates' scores here (JSON) and reuse them")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="write the per-setting figures (no per-verse lists) here as JSON")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    grid = [(lam, w, mu) for mu in DISCOUNTS for w in PRIOR_WEIGHTS for lam in LAMBDAS]
    ngram = load_ngram(args.ngram)
    results = {}
    for split, path in (("dev", args.dev), ("test", args.test)):
        records = read_predictions(path, "tall")
        golds = [r["gold"] for r in records]
        scored = [[(*c, ngram.log_frequency(c[0])) for c in words] for words in features(args, ngram, split, records)]
        tall_hits = [exact_match(r["greedy"], r["gold"]) for r in records]
        ngram_hits = [exact_match((ngram.ranked(r["prefix"], 1) or [""])[0], r["gold"]) for r in records]
        rows = [read_out(scored, golds, *setting) for setting in grid]
        results[split] = {"path": path, "rows": rows, "tall_hits": tall_hits, "ngram_hits": ngram_hits}
    dev, test = results["dev"], results["test"]
    show(f"dev: {dev['path']} ({len(dev['tall_hits'])} verses; TALL alone {sum(dev['tall_hits'])}, the n-gram "
         f"{sum(dev['ngram_hits'])})", [r for r in dev["rows"] if r["w"] in (0.0, 0.75) and r["mu"] in (0.0, 1.0)],
         dev["tall_hits"], dev["ngram_hits"])
    chosen = {}
    for rule, ceiling in (("most dev hits", None), ("top word ≤ 3 % on dev", TOP_WORD_CEILING)):
        best = choose(dev["rows"], ceiling)
        chosen[rule] = (best["lambda"], best["w"], best["mu"])
        on_test = test["rows"][grid.index(chosen[rule])]
        print(f"\n{rule}: λ = {best['lambda']:g}, w = {best['w']:g}, μ = {best['mu']:g} (dev {sum(best['hits'])} "
              f"greedy, {sum(best['top5'])} top-5, {best['top_word']} {100 * best['top_share']:.1f} %)")
        show(f"test: {test['path']} ({len(test['tall_hits'])} verses; TALL alone {sum(test['tall_hits'])}, the "
             f"n-gram {sum(test['ngram_hits'])})", [on_test], test["tall_hits"], test["ngram_hits"])
    if args.out:
        summary = {split: [{k: v for k, v in r.items() if k not in ("hits", "top5", "greedy")}
                           | {"greedy_hits": sum(r["hits"]), "top5_hits": sum(r["top5"])} for r in res["rows"]]
                   for split, res in results.items()}
        Path(args.out).write_text(json.dumps(summary | {"chosen": chosen}, ensure_ascii=False, indent=1))
    return results | {"chosen": chosen}


if __name__ == "__main__":
    main()
