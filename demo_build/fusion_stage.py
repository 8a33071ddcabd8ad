"""TALL weighed with the word n-gram (`Decoding.ngram`: shallow fusion, a departure from the paper), scored against
free TALL and against the n-gram alone.

    python -m demo_build --stages hebrew,fusion

The n-gram stage's file (checkpoints/demo/word_ngram.json) adds its best next words to TALL's candidates, TALL scores
them, and the candidates are ranked by log P_TALL(word) + λ · log S_ngram(word) − μ · log P_train(word). The pool of
candidates does not depend on λ or μ, so every DEV-book verse (he_dev_all.jsonl) is predicted once and its pool
re-ranked for each setting of WEIGHTS × DISCOUNTS (`tall_model.fusion.fused`, the ranking `predict` uses). The
setting chosen is the prior stage's rule: the best dev greedy exact match among the settings whose most frequent
greedy word is at most TOP_WORD_CEILING of the verses (issue 13's ceiling; all settings if none is), then top-5, a tie
going to the smaller λ, then the smaller μ. λ and μ are written into the n-gram file, so `--ngram` alone and the
app's "greedy, with the word n-gram" decode as scored here. Every test-book verse is then scored through
`evaluation.evaluate` (build/demo/eval-fusion) and paired with free TALL (the evaluate stage) and with the n-gram
(the ngram stage): exact McNemar p and a paired bootstrap interval. Runs after evaluate and ngram; about 6 minutes.
"""

from __future__ import annotations

import json
from pathlib import Path

from baselines.word_ngram import NGRAM_FILE, load_ngram, save_ngram
from demo_build.context import BuildContext
from demo_build.prior_stage import BATCH, TOP_WORD_CEILING, candidate_pools, top_word_share
from demo_build.results import output_stats
from demo_build.tall_stages import command_line, he_files, translation_cache
from demo_build.word_list_stage import training_words
from evaluation.evaluate import base_decoding, evaluate, load_dataset
from evaluation.metrics import accuracy, top_k_accuracy
from evaluation.report import PREDICTIONS, read_predictions
from evaluation.significance import compare
from tall_data.translation_cache import open_prefix_cache, translate_prefixes
from tall_model import load
from tall_model.fusion import fused

FUSED = "tall + word-ngram"  # the approach name of the fused run in the paired tests
WEIGHTS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)  # λ
DISCOUNTS = (0.0, 0.5, 1.0, 1.5)  # μ


def fused_pools(model, tall: Path, ngram_file: Path, prefixes: list[str], english: list[str], preset: str) -> list:
    """Each prefix's prediction with every candidate of the fused pool (TALL's candidate_pool words and the n-gram's),
    under the decoding evaluation gives the checkpoint."""
    decoding = base_decoding(preset, tall, ngram=ngram_file, ngram_weight=1.0, ngram_discount=0.0)
    return candidate_pools(model, decoding, prefixes, english, 2 * decoding.candidate_pool, "[fusion] dev pools")


def ranked_words(pools: list, ngram, weight: float, discount: float) -> list[list[str]]:
    """Each pool's words best first at (λ, μ), as `predict` ranks them."""
    return [[c.word for c in fused(p.candidates, ngram, p.prefix_used, weight, None, discount)] for p in pools]


def sweep(pools: list, golds: list[str], ngram) -> list[dict]:
    """Greedy and top-5 exact match and the top word's share for every (λ, μ)."""
    rows = []
    for mu in DISCOUNTS:
        for lam in WEIGHTS:
            ranked = ranked_words(pools, ngram, lam, mu)
            greedy = [r[0] if r else "" for r in ranked]
            rows.append({"weight": lam, "discount": mu, "greedy": accuracy(greedy, golds),
                         "top5": top_k_accuracy(ranked, golds, 5),
                         "top_share": top_word_share([{"greedy": w} for w in greedy])})
    return rows


def choose_setting(rows: list[dict], ceiling: float | None = TOP_WORD_CEILING) -> dict:
    """The best greedy, then top-5, among the rows within the top-word ceiling (all rows if none is, or if the
    ceiling is None); ties to the smaller λ, then the smaller μ (the nearer to TALL alone)."""
    allowed = [r for r in rows if ceiling is None or r["top_share"] <= ceiling] or rows
    return max(allowed, key=lambda r: (r["greedy"], r["top5"], -r["weight"], -r["discount"]))


def stage_fusion(ctx: BuildContext):
    a, files = ctx.args, he_files(ctx)
    free_file, ngram_file = ctx.out / "eval" / "predictions.jsonl", ctx.out / NGRAM_FILE
    counted_file = ctx.workdir / "eval-ngram" / "test" / "predictions.jsonl"
    for needed, stage in ((free_file, "evaluate"), (ngram_file, "ngram"), (counted_file, "ngram")):
        if not needed.exists():
            raise RuntimeError(f"{needed} is missing: run the {stage} stage before fusion")
    tall, cache_path, work = ctx.out / "tall", translation_cache(ctx), ctx.workdir / "eval-fusion"
    model = load(tall, device="cpu")
    examples = load_dataset(files["dev_all"]).examples
    prefixes, golds = [e.prefix for e in examples], [e.target for e in examples]
    with open_prefix_cache(model, cache_path) as cache:
        english = translate_prefixes(model, cache, prefixes, None, BATCH)
    rows = sweep(fused_pools(model, tall, ngram_file, prefixes, english, a.tall_preset), golds, load_ngram(ngram_file))
    chosen, most_hits = choose_setting(rows), choose_setting(rows, None)
    weight, discount = chosen["weight"], chosen["discount"]
    ctx.log("[fusion] dev greedy / top-5 (top word's share) by λ, μ: " + ", ".join(
        f"{r['weight']:g},{r['discount']:g}: {r['greedy']:.4f} / {r['top5']:.4f} ({r['top_share']:.4f})" for r in rows)
        + f" -> λ = {weight:g}, μ = {discount:g}")
    saved = json.loads(ngram_file.read_text(encoding="utf-8"))
    save_ngram(ngram_file, saved["sentences"], saved["order"], saved["source"], fusion_weight=weight,
               fusion_discount=discount)
    limit = ["--limit", a.eval_limit] if a.eval_limit else []
    command = command_line("evaluation.evaluate", *ctx.preset_args(), "--data", files["test"], "--tall", tall,
                           "--approaches", "tall", "--seeds", 0, "--ngram", ngram_file,
                           "--translation-cache", cache_path, "--out", work / "test", *limit)
    payload = evaluate([files["test"]], preset=a.tall_preset, backbone_dir=ctx.backbone_dir, tall=tall,
                       approaches=("tall",), seeds=0, translation_cache=cache_path, backbones=model.backbones,
                       progress=False, ngram=ngram_file, limit=a.eval_limit or None, out=work / "test",
                       command=command)
    fused_records = [{**r, "approach": FUSED} for r in read_predictions(work / "test" / PREDICTIONS)]
    free = read_predictions(free_file, "tall")
    counted = [r for r in read_predictions(counted_file) if r["approach"] != "tall"]
    paired = {c.approach: c.as_dict() for c in compare(fused_records + free + counted, reference=FUSED)}
    (row,) = payload["rows"]
    result = {"file": NGRAM_FILE, "weight": weight, "discount": discount, "weights": list(WEIGHTS),
              "discounts": list(DISCOUNTS), "top_word_ceiling": TOP_WORD_CEILING,
              "within_ceiling": chosen["top_share"] <= TOP_WORD_CEILING, "dev_examples": len(examples),
              "dev": rows, "dev_chosen": chosen, "dev_most_hits": most_hits, "command": command,
              "examples": row["examples"], "greedy": row["accuracy"], "top5": row["top5_accuracy"],
              "changed_greedy": sum(f["greedy"] != c["greedy"] for f, c in zip(free, fused_records, strict=True)),
              "vs": paired, "output": output_stats(fused_records, set(training_words(files["train"])))[FUSED]}
    ctx.add_metrics({"fusion": result}, replace=True)  # an older run's fields (its λ grid) must not stay beside these
    return {"weight": weight, "discount": discount, "greedy": row["accuracy"], "top5": row["top5_accuracy"],
            "p_tall": paired["tall"]["mcnemar_p"], "p_ngram": paired["word-ngram"]["mcnemar_p"]}
