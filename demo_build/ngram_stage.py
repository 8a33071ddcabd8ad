"""What the training Hebrew alone gives: a word n-gram counted on the TRAIN verses (a reference row, not one of the
paper's baselines), scored like every approach and paired against TALL.

    python -m demo_build --stages hebrew,ngram

Chooses the order among ORDERS by greedy exact match on every DEV-book verse (he_dev_all.jsonl; a tie goes to the
lower order), writes the n-gram (its order and the TRAIN verses it counts) to checkpoints/demo/word_ngram.json,
which the app's Compare tab counts from, scores every test-book verse with that file (greedy, top-5, the evaluate
stage's sampled seeds; build/demo/eval-ngram) and pairs each example with TALL of the evaluate stage: the exact
McNemar p of the greedy hits and a paired bootstrap interval. No model runs, so it takes about a minute. New counts
make the fusion stage's λ stale: it is marked to run again.
"""

from __future__ import annotations

from baselines.word_ngram import NGRAM_FILE, save_ngram
from demo_build.context import BuildContext, repo_relative
from demo_build.results import output_stats
from demo_build.tall_stages import command_line, he_files, translation_cache
from demo_build.word_list_stage import training_words
from evaluation.evaluate import evaluate
from evaluation.report import PREDICTIONS, read_predictions
from evaluation.significance import compare
from tall_data.corpus import read_corpus

NGRAM = "word-ngram"
ORDERS = (2, 3, 4, 5)


def stage_ngram(ctx: BuildContext):
    a, files = ctx.args, he_files(ctx)
    free_file = ctx.out / "eval" / "predictions.jsonl"
    if not free_file.exists():
        raise RuntimeError(f"{free_file} is missing: run the evaluate stage before ngram")
    work = ctx.workdir / "eval-ngram"
    common = dict(preset=a.tall_preset, backbone_dir=ctx.backbone_dir, approaches=(NGRAM,),
                  ngram_data=files["train"], translation_cache=translation_cache(ctx), progress=False)
    dev = {n: evaluate([files["dev_all"]], ngram_order=n, seeds=0, out=work / f"dev-{n}", **common)["rows"][0]
           for n in ORDERS}
    order = max(ORDERS, key=lambda n: (dev[n]["accuracy"], -n))
    ctx.log("[ngram] dev greedy exact match by order: "
            + ", ".join(f"{n}: {r['accuracy']:.4f}" for n, r in dev.items()) + f" -> order {order}")
    saved = save_ngram(ctx.out / NGRAM_FILE, read_corpus(files["train"]).sentences, order,
                       f"the TRAIN verses of {repo_relative(files['train'])}")
    _forget_fusion(ctx)
    limit = ["--limit", a.eval_limit] if a.eval_limit else []
    command = command_line("evaluation.evaluate", *ctx.preset_args(), "--data", files["test"],
                           "--approaches", NGRAM, "--ngram-data", saved, "--seeds", a.eval_seeds,
                           "--out", work / "test", *limit)
    payload = evaluate([files["test"]], **{**common, "ngram_data": saved}, seeds=a.eval_seeds,
                       limit=a.eval_limit or None, out=work / "test", command=command)
    tall = read_predictions(free_file, "tall")
    counted = read_predictions(work / "test" / PREDICTIONS)
    (paired,) = compare(tall + counted, reference="tall")
    (row,) = payload["rows"]
    result = {"file": NGRAM_FILE, "order": order, "orders": list(ORDERS), "dev_examples": dev[order]["examples"],
              "dev_accuracy": {str(n): r["accuracy"] for n, r in dev.items()},
              "sentences": payload["models"][NGRAM]["sentences"], "command": command, "row": row,
              "vs_tall": paired.as_dict(),
              "output": output_stats(counted, set(training_words(files["train"])))[NGRAM]}
    ctx.add_metrics({"word_ngram": result})
    return {"order": order, "greedy": row["accuracy"], "top5": row["top5_accuracy"], "p": paired.mcnemar_p}


def _forget_fusion(ctx: BuildContext) -> None:
    """A fresh n-gram file carries no fusion weight and the fusion figures were for the old counts: the fusion stage
    is marked not done (the next build runs it again) and its figures leave metrics.json."""
    done = ctx.workdir / "stages" / "fusion.done"
    if done.exists() or ctx.metrics().get("fusion"):
        done.unlink(missing_ok=True)
        ctx.add_metrics({"fusion": None})
        ctx.log("[ngram] new counts: the fusion stage will run again (its λ and figures were for the old n-gram)")
