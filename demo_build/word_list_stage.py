"""TALL with a closed vocabulary (`Decoding.word_list`, a departure from the paper), scored against free TALL.

    python -m demo_build --stages hebrew,word-list

Writes the training Hebrew's distinct words (without surrounding punctuation, as exact match compares them) to
checkpoints/demo/training_words.txt, re-scores the shipped TALL adapters greedily on every test-book verse with
that list (build/demo/eval-word-list), and pairs each example with the free TALL of the evaluate stage: the exact
McNemar p of the greedy hits, top-5, and how the outputs change. Runs after evaluate; reuses its translation cache,
so it takes about a minute.
"""

from __future__ import annotations

import json
from pathlib import Path

from demo_build.context import BuildContext
from demo_build.results import output_stats
from demo_build.tall_stages import command_line, he_files, translation_cache
from evaluation.evaluate import evaluate
from evaluation.report import PREDICTIONS, read_predictions
from evaluation.significance import compare
from tall_data.examples import distinct_words
from tall_model.word_list import TRAINING_WORDS

LISTED = "tall, listed words"  # the approach name of the restricted run in the paired test


def training_words(train_file: Path) -> list[str]:
    """The distinct words of the TRAIN books' Hebrew, normalised as exact match normalises them, sorted."""
    with train_file.open(encoding="utf-8") as fh:
        return distinct_words(json.loads(line)["text"] for line in fh)


def stage_word_list(ctx: BuildContext):
    a, files = ctx.args, he_files(ctx)
    free_file = ctx.out / "eval" / "predictions.jsonl"
    if not free_file.exists():
        raise RuntimeError(f"{free_file} is missing: run the evaluate stage before word-list")
    words = training_words(files["train"])
    listed = ctx.out / TRAINING_WORDS
    listed.write_text("\n".join(words) + "\n", encoding="utf-8")
    work, tall = ctx.workdir / "eval-word-list", ctx.out / "tall"
    command = command_line("evaluation.evaluate", *ctx.preset_args(), "--data", files["test"], "--tall", tall,
                           "--approaches", "tall", "--seeds", 0, "--word-list", listed,
                           "--translation-cache", translation_cache(ctx), "--out", work,
                           *(["--limit", a.eval_limit] if a.eval_limit else []))
    payload = evaluate([files["test"]], preset=a.tall_preset, backbone_dir=ctx.backbone_dir, tall=tall,
                       approaches=("tall",), seeds=0, limit=a.eval_limit or None,
                       translation_cache=translation_cache(ctx), out=work, command=command, word_list=listed)
    free = read_predictions(free_file, "tall")
    restricted = [{**r, "approach": LISTED} for r in read_predictions(work / PREDICTIONS)]
    (paired,) = compare(free + restricted, reference="tall")
    (row,) = payload["rows"]
    (free_row,) = [r for r in json.loads((ctx.out / "eval" / "metrics.json").read_text())["rows"]
                   if r["approach"] == "tall"]
    changed = sum(f["greedy"] != r["greedy"] for f, r in zip(free, restricted, strict=True))
    result = {"file": TRAINING_WORDS, "words": len(words), "command": command, "examples": row["examples"],
              "greedy": row["accuracy"], "top5": row["top5_accuracy"], "free_top5": free_row["top5_accuracy"],
              "changed_greedy": changed,
              "vs_free": paired.as_dict(), "output": output_stats(restricted, set(words))[LISTED]}
    ctx.add_metrics({"word_list": result})
    return {k: result[k] for k in ("words", "greedy", "top5", "changed_greedy")}
