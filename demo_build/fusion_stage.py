"""TALL weighed with the word n-gram (`Decoding.ngram`: shallow fusion, a departure from the paper), scored against
free TALL and against the n-gram alone.

    python -m demo_build --stages hebrew,fusion

The n-gram stage's file (checkpoints/demo/word_ngram.json) adds its best next words to TALL's candidates, TALL scores
them, and the candidates are ranked by log P_TALL(word) + λ · log S_ngram(word). λ is chosen among WEIGHTS on every
DEV-book verse (he_dev_all.jsonl): the best greedy exact match, then top-5, a tie going to the smaller λ; it is
written into the n-gram file, so `--ngram` without `--ngram-weight` and the app's "greedy, with the word n-gram"
decode as scored here. Every test-book verse is scored with it (build/demo/eval-fusion) and paired with free TALL
(the evaluate stage) and with the n-gram (the ngram stage): exact McNemar p and a paired bootstrap interval. Runs
after evaluate and ngram; about 12 minutes (four weights on every dev verse, then the test books).
"""

from __future__ import annotations

import json

from baselines.word_ngram import NGRAM_FILE, save_ngram
from demo_build.context import BuildContext
from demo_build.results import output_stats, read_records
from demo_build.tall_stages import command_line, he_files, translation_cache
from demo_build.word_list_stage import training_words
from evaluation.evaluate import evaluate
from evaluation.significance import compare
from tall_model import load

FUSED = "tall + word-ngram"  # the approach name of the fused run in the paired tests
WEIGHTS = (0.5, 1.0, 2.0, 3.0)


def choose_weight(greedy: dict[float, float], top5: dict[float, float]) -> float:
    """The best dev greedy exact match, then top-5; ties to the smaller λ (the nearer to TALL alone)."""
    return max(greedy, key=lambda w: (greedy[w], top5[w], -w))


def stage_fusion(ctx: BuildContext):
    a, files = ctx.args, he_files(ctx)
    free_file, ngram_file = ctx.out / "eval" / "predictions.jsonl", ctx.out / NGRAM_FILE
    counted_file = ctx.workdir / "eval-ngram" / "test" / "predictions.jsonl"
    for needed, stage in ((free_file, "evaluate"), (ngram_file, "ngram"), (counted_file, "ngram")):
        if not needed.exists():
            raise RuntimeError(f"{needed} is missing: run the {stage} stage before fusion")
    tall, cache_path, work = ctx.out / "tall", translation_cache(ctx), ctx.workdir / "eval-fusion"
    model = load(tall, device="cpu")
    common = dict(preset=a.tall_preset, tall=tall, approaches=("tall",), seeds=0, translation_cache=cache_path,
                  backbones=model.backbones, progress=False, ngram=ngram_file)
    dev = {w: evaluate([files["dev_all"]], ngram_weight=w, out=work / f"dev-l{w:g}", **common)["rows"][0]
           for w in WEIGHTS}
    weight = choose_weight({w: r["accuracy"] for w, r in dev.items()}, {w: r["top5_accuracy"] for w, r in dev.items()})
    shares = {w: output_stats(read_records(work / f"dev-l{w:g}" / "predictions.jsonl"), set())["tall"]["top_share"]
              for w in WEIGHTS}
    ctx.log("[fusion] dev greedy / top-5 exact match (top word's share) by λ: "
            + ", ".join(f"{w:g}: {r['accuracy']:.4f} / {r['top5_accuracy']:.4f} ({shares[w]:.4f})"
                        for w, r in dev.items()) + f" -> λ = {weight:g}")
    saved = json.loads(ngram_file.read_text(encoding="utf-8"))
    save_ngram(ngram_file, saved["sentences"], saved["order"], saved["source"], fusion_weight=weight)
    limit = ["--limit", a.eval_limit] if a.eval_limit else []
    command = command_line("evaluation.evaluate", "--preset", a.tall_preset, "--data", files["test"], "--tall", tall,
                           "--approaches", "tall", "--seeds", 0, "--ngram", ngram_file,
                           "--translation-cache", cache_path, "--out", work / "test", *limit)
    payload = evaluate([files["test"]], limit=a.eval_limit or None, out=work / "test", command=command, **common)
    fused = [{**r, "approach": FUSED} for r in read_records(work / "test" / "predictions.jsonl")]
    free = [r for r in read_records(free_file) if r["approach"] == "tall"]
    counted = [r for r in read_records(counted_file) if r["approach"] != "tall"]
    paired = {c.approach: c.as_dict() for c in compare(fused + free + counted, reference=FUSED)}
    (row,) = payload["rows"]
    result = {"file": NGRAM_FILE, "weight": weight, "weights": list(WEIGHTS), "dev_examples": dev[weight]["examples"],
              "dev_accuracy": {f"{w:g}": r["accuracy"] for w, r in dev.items()},
              "dev_top5": {f"{w:g}": r["top5_accuracy"] for w, r in dev.items()},
              "dev_top_word_share": {f"{w:g}": s for w, s in shares.items()}, "command": command,
              "examples": row["examples"], "greedy": row["accuracy"], "top5": row["top5_accuracy"],
              "changed_greedy": sum(f["greedy"] != c["greedy"] for f, c in zip(free, fused, strict=True)),
              "vs": paired, "output": output_stats(fused, set(training_words(files["train"])))[FUSED]}
    ctx.add_metrics({"fusion": result})
    return {"weight": weight, "greedy": row["accuracy"], "top5": row["top5_accuracy"],
            "p_tall": paired["tall"]["mcnemar_p"], "p_ngram": paired["word-ngram"]["mcnemar_p"]}
