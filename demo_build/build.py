"""Build the offline demo into checkpoints/demo/: data split, small backbones, TALL adapters, baselines, the miniature
paper table and the model cards.

    python -m demo_build [--stages data,tokenizers,...] [--workdir build/demo] [--out checkpoints/demo]
                         [--steps-he-en 3600 --steps-en-he 3600 --steps-lm 1500] [--versions-for en-he]
                         [--force STAGE ...]

Stages run in the order of STAGES.  A stage is skipped when its done-marker (<workdir>/stages/<name>.done) and all
its declared outputs exist, so the build is resumable stage by stage; translator and LM training also checkpoint every
few hundred steps (with the RNG state) and resume mid-stage.  Budgets are optimizer steps, so a rebuild is the same
on any machine; the minutes each stage took are logged in build_log.json.  Seed: 1234 everywhere (python, torch,
SentencePiece, batch order); the TALL and baseline training runs use seed 0.

Extending: define ``def run_x(ctx: BuildContext) -> dict | None`` and call
``register_stage(Stage("x", run_x, outputs=lambda c: [c.out / "x" / "..."]), before="cards")``
(or append to STAGES).  A stage may add metrics with ``ctx.add_metrics({...})`` and declare training files with
``ctx.add_training_files([...])`` (they go into split_manifest.json).  The returned dict goes into build_log.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from baselines.word_ngram import NGRAM_FILE
from demo_build import ablation_stages as ablations
from demo_build import backbone_stages as backbones
from demo_build import data_stage
from demo_build import fusion_stage as fusion
from demo_build import ngram_stage as ngram
from demo_build import prior_stage as prior
from demo_build import tall_stages as tall
from demo_build import word_list_stage as word_list
from demo_build.cards import write_cards, write_demo_readme
from demo_build.context import SEED, BuildContext, Stage, dir_mb, machine
from demo_build.results import output_stats, update_readme
from demo_build.tall_stages import he_files
from demo_build.targets import stage_minutes
from evaluation.report import read_predictions
from tall_model.config import REPO_ROOT, demo_dir
from tall_model.prior import PRIOR_FILE
from tall_model.word_list import TRAINING_WORDS


def stage_cards(ctx: BuildContext):
    sizes = write_cards(ctx)
    ctx.add_metrics({"sizes_mb": sizes})
    log = ctx.out / "build_log.json"
    if log.exists():  # the build-time target's figure, so the README reads it from metrics.json
        ctx.add_metrics({"build_minutes": stage_minutes(json.loads(log.read_text(encoding="utf-8")))},
                        replace=True)
    predictions, training = ctx.out / "eval" / "predictions.jsonl", he_files(ctx)["train"]
    if predictions.exists() and training.exists():  # computed here, so the README never types a count
        records = read_predictions(predictions)
        ctx.add_metrics({"next_word": {"output_stats": output_stats(records, set(word_list.training_words(training)))}})
    write_demo_readme(ctx, tuple(s.name for s in STAGES))
    if ctx.out.resolve() == demo_dir().resolve():  # the shipped demo: its numbers in the repository README too
        update_readme(REPO_ROOT / "README.md", ctx.metrics())
    return sizes


STAGES: list[Stage] = [
    Stage("data", data_stage.stage_data,
          lambda c: [c.data_dir / "train.jsonl", c.data_dir / "train_versions.jsonl", c.out / "split_manifest.json"],
          "verse pairs, splits, LM text, split_manifest.json"),
    Stage("tokenizers", backbones.stage_tokenizers,
          lambda c: [c.marian_tok_dir / "vocab.json", c.lm_tok_dir / "tokenizer.json"],
          "joint SentencePiece (MarianTokenizer) + byte-level BPE for the LM"),
    Stage("lm", backbones.stage_lm, lambda c: [c.out / "lm" / "config.json"],
          "train the BLOOM-architecture English LM (short; runs before the long translator stages)"),
    Stage("he-en", backbones.stage_he_en,
          lambda c: [c.workdir / "he-en" / "final" / "config.json", c.out / "he-en" / "config.json"],
          "train he->en Marian"),
    Stage("en-he", backbones.stage_en_he,
          lambda c: [c.workdir / "en-he" / "final" / "config.json", c.out / "en-he" / "config.json"],
          "train en->he Marian (warm start from he->en)"),
    Stage("eval-translators", backbones.stage_eval_translators, lambda c: [c.out / "metrics.json"],
          "chrF/BLEU on held-out books, choose the repetition guard"),
    Stage("hebrew", tall.stage_hebrew, lambda c: [c.data_dir / "he_test.jsonl", c.out / "test_examples.jsonl"],
          "Hebrew-only corpora of each split + the app's example prefixes"),
    Stage("adapters", tall.stage_adapters, lambda c: [c.out / "tall" / "config.json"],
          "train the TALL adapters and bridges (training.train.train on the demo preset)"),
    Stage("baselines", tall.stage_baselines,
          lambda c: [c.out / "baselines" / k / "baseline.json" for k in ("soft-prompt", "fine-tuned")],
          "train the soft-prompt and fine-tuned baselines (baselines.train.train_baseline)"),
    Stage("evaluate", tall.stage_evaluate, lambda c: [c.out / "eval" / "metrics.json"],
          "the paper's table in miniature on every test-book verse (evaluation.evaluate.evaluate)"),
    Stage("word-list", word_list.stage_word_list, lambda c: [c.out / TRAINING_WORDS],
          "TALL restricted to the training Hebrew's words, paired against free TALL (demo_build.word_list_stage)"),
    Stage("prior", prior.stage_prior, lambda c: [c.out / PRIOR_FILE],
          "TALL with its first-piece prior divided out, w chosen on dev, paired against free TALL "
          "(demo_build.prior_stage)"),
    Stage("ngram", ngram.stage_ngram, lambda c: [c.out / NGRAM_FILE],
          "what the training Hebrew alone gives: a word n-gram, order chosen on dev, paired against TALL "
          "(demo_build.ngram_stage)"),
    Stage("fusion", fusion.stage_fusion, lambda c: [c.workdir / "eval-fusion" / "test" / "metrics.json"],
          "TALL weighed with the word n-gram (shallow fusion), λ chosen on dev, paired against TALL and the n-gram "
          "(demo_build.fusion_stage)"),
    Stage("ablations", ablations.stage_ablations, lambda c: [c.out / "ablations" / "metrics.json"],
          "ablations and sweeps of TALL on one budget, each against the full model (demo_build.ablation_stages)"),
    Stage("cards", stage_cards, lambda c: [c.out / "he-en" / "README.md"],
          "model cards, checkpoints/demo/README.md, size check"),
]


def register_stage(stage: Stage, before: str | None = None, after: str | None = None) -> None:
    names = [s.name for s in STAGES]
    if stage.name in names:
        STAGES[names.index(stage.name)] = stage
    elif before:
        STAGES.insert(names.index(before), stage)
    elif after:
        STAGES.insert(names.index(after) + 1, stage)
    else:
        STAGES.append(stage)


def _log_stage(ctx: BuildContext, name: str, entry: dict) -> None:
    p = ctx.out / "build_log.json"
    d = json.loads(p.read_text()) if p.exists() else {"seed": ctx.seed, "stages": {}}
    d.setdefault("stages", {})[name] = entry
    d["updated"] = time.strftime("%Y-%m-%d %H:%M:%S")
    d["threads"] = ctx.args.threads
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(d, indent=2, ensure_ascii=False, default=str) + "\n")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m demo_build", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stages", default="all", help="comma list, or 'all' (" + ",".join(s.name for s in STAGES) + ")")
    ap.add_argument("--force", nargs="*", default=[], help="re-run these stages even if their outputs exist")
    ap.add_argument("--workdir", default="build/demo")
    ap.add_argument("--out", default="checkpoints/demo")
    # step budgets: the same run on any machine.  Defaults = the shipped build's (build_log.json); the first build
    # had 964 / 1964 / 387 (what its 25/46/10-minute time budgets reached on 2 shared cores).
    ap.add_argument("--steps-he-en", type=int, default=3600, help="optimizer steps of the he->en translator")
    ap.add_argument("--steps-en-he", type=int, default=3600, help="optimizer steps of the en->he translator")
    ap.add_argument("--steps-lm", type=int, default=1500, help="optimizer steps of the LM (batches of 32 x 128)")
    ap.add_argument("--versions", default="all", help="English versions the data stage verifies (comma list of "
                    "demo_build.versions.VERSIONS names, or 'all'); those that fail verification are left out")
    ap.add_argument("--versions-for", default="en-he",
                    help="stages that train on the verified English versions too (comma list of he-en, en-he, lm; "
                         "'none' = the JPS/KJV data of the first build).  he-en is off by default: its target "
                         "style should stay JPS, the dev/test reference; lm too: at an equal budget the extra "
                         "English gave a worse JPS dev perplexity (benchmarks/RESULTS.md)")
    ap.add_argument("--no-versions-new-testament", dest="versions_new_testament", action="store_false",
                    help="leave the versions' New Testament out of the LM text")
    ap.add_argument("--he-en-lr", type=float, default=1e-3, help="peak learning rate of the he->en translator")
    ap.add_argument("--en-he-init", choices=["he-en", "scratch"], default="he-en")
    ap.add_argument("--en-he-lr", type=float, default=1e-3)
    ap.add_argument("--en-he-warmup", type=int, default=200)
    ap.add_argument("--en-he-dropout", type=float, default=0.1,
                    help="dropout of the warm-started en->he run (the he->en model's own is 0.1)")
    ap.add_argument("--snapshot-steps", type=int, default=0,
                    help="keep each translator's model every this many steps (a multiple of 250) in "
                         "<stage>/snapshots/, to score them after the run")
    ap.add_argument("--en-he-mix-he-en", type=float, default=0.0,
                    help="share of he->en pairs per epoch while training en->he (0: en->he only)")
    ap.add_argument("--bidir", action="store_true",
                    help="experimental: one model trained on both directions (see demo_build.translators)")
    ap.add_argument("--max-tokens", type=int, default=5000, help="padded src+tgt tokens per batch (calibrated: 5000)")
    ap.add_argument("--eval-limit", type=int, default=0, help="evaluate on this many verses only (smoke tests)")
    ap.add_argument("--adapter-sentences", type=int, default=0, help="TRAIN verses for TALL and the baselines "
                    "(a seeded sample; 0 = all ~21k, whose translation takes ~6 min on 2 cores)")
    ap.add_argument("--adapter-positions", default="last", help="TrainConfig.positions of the TALL run")
    ap.add_argument("--adapter-epochs", type=int, default=2)
    ap.add_argument("--adapter-max-target-pieces", type=int, default=0,
                    help="train TALL, and give the baselines, only the verses whose last word is at most N he→en "
                         "pieces (TrainConfig.max_target_pieces; 0: every verse; see the one-piece ablation rows)")
    ap.add_argument("--adapter-steps", type=int, default=0, help="cap on TALL training steps (0: epochs decide)")
    ap.add_argument("--adapter-batch-size", type=int, default=16)
    ap.add_argument("--adapter-lr", type=float, default=5e-4)
    ap.add_argument("--adapter-eval-every", type=int, default=250)
    ap.add_argument("--tall-preset", default="demo", help="backbones of the TALL stages (smoke tests: tiny)")
    ap.add_argument("--baseline-steps", type=int, default=0,
                    help="steps of each trainable baseline (0: as many as TALL's run took; batch: TALL's)")
    ap.add_argument("--baseline-sentences", type=int, default=None,
                    help="TRAIN verses for the baselines (default: TALL's --adapter-sentences; the soft prompt "
                         "translates each whole verse too)")
    ap.add_argument("--ablation-steps", type=int, default=400, help="training steps of every ablation row")
    ap.add_argument("--ablations", default="all", help="comma list of ablation rows (the reference always runs)")
    ap.add_argument("--ablations-finished-only", action="store_true",
                    help="write the ablation table from the rows already trained and scored; list the rest as pending")
    ap.add_argument("--eval-seeds", type=int, default=5, help="sampled runs in the next-word evaluation")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-adaptive-threads", dest="adaptive_threads", action="store_false",
                    help="do not probe 1 thread vs --threads during training")
    ap.add_argument("--seed", type=int, default=SEED)
    return ap.parse_args(argv)


def _run_stage(ctx: BuildContext, stage: Stage) -> None:
    done = ctx.workdir / "stages" / f"{stage.name}.done"
    outputs = [Path(p) for p in stage.outputs(ctx)]
    if stage.name not in ctx.args.force and done.exists() and all(p.exists() for p in outputs):
        ctx.log(f"== {stage.name}: outputs exist, skipped")
        return
    ctx.log(f"== {stage.name}: start")
    t0 = time.time()
    _log_stage(ctx, stage.name, {"status": "running", "started": time.strftime("%Y-%m-%d %H:%M:%S")})
    try:
        info = stage.run(ctx) or {}
    except Exception as e:
        _log_stage(ctx, stage.name, {"status": "failed", "error": repr(e), "seconds": round(time.time() - t0, 1)})
        raise
    secs = round(time.time() - t0, 1)
    _log_stage(ctx, stage.name, {"status": "done", "seconds": secs, "minutes": round(secs / 60, 2),
                                 "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(), "info": info})
    done.parent.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps({"seconds": secs}))
    ctx.log(f"== {stage.name}: done in {secs / 60:.1f} min")


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # backbones are local folders; never ask the hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    ctx = BuildContext(args=args, workdir=Path(args.workdir), out=Path(args.out), seed=args.seed)
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    ctx.out.mkdir(parents=True, exist_ok=True)
    wanted = [s.name for s in STAGES] if args.stages == "all" else [x.strip() for x in args.stages.split(",")]
    unknown = set(wanted) - {s.name for s in STAGES}
    if unknown:
        sys.exit(f"unknown stages: {sorted(unknown)}")
    t_all = time.time()
    for stage in STAGES:
        if stage.name in wanted:
            _run_stage(ctx, stage)
    if (ctx.out / "split_manifest.json").exists():
        data_stage.write_manifest(ctx)  # refresh the training-file list (later stages may have added files)
    ctx.log(f"build finished in {(time.time() - t_all) / 60:.1f} min; {ctx.out} = {dir_mb(ctx.out)} MB")


if __name__ == "__main__":
    main()
