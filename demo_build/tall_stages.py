"""Demo build stages on top of the demo backbones: TALL adapters, the trainable baselines, the miniature paper table.

They call the same functions as the normal commands (training.train.train, baselines.train.train_baseline,
evaluation.evaluate.evaluate) with the `demo` preset on the backbones --out holds, so the demo is trained and
scored exactly as a user's run would be:

  hebrew     Hebrew-only corpora of each split (build/demo/data/he_{train,dev,test}.jsonl, {"text": verse}) and the
             app's example prefixes (checkpoints/demo/test_examples.jsonl)
  adapters   TALL adapters and bridges on the TRAIN books' Hebrew; dev = a seeded sample of DEV-book verses
             (training keeps the best of its dev evaluations and the last step); of those two, the one with more
             greedy hits on every DEV-book verse (he_dev_all.jsonl) is saved in fp16 to checkpoints/demo/tall
  baselines  soft prompt and LoRA fine-tuning on the same Hebrew → checkpoints/demo/baselines/{soft-prompt,fine-tuned}
  evaluate   every TEST-book verse without its last word, all five approaches, sampled with seeds 0-4
             → checkpoints/demo/eval/metrics.{json,csv}

Every he→en translation goes through one cache (build/demo/translations-<he-en weights digest>.sqlite), shared by
the three stages, so each prefix is translated once and a rebuilt translator never reuses stale entries.
The `command` recorded in the shipped files is the equivalent command line (`python -m ...`, repository-relative
paths).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import shlex
import shutil
from pathlib import Path

import torch

from baselines.adapters import KINDS
from baselines.approach import BaselineModels
from baselines.train import BaselineConfig, train_baseline, with_short_targets
from demo_build.context import BuildContext, repo_relative
from demo_build.data import read_jsonl
from demo_build.selection import choose_checkpoint
from evaluation.evaluate import evaluate
from tall_data.corpus import read_corpus
from tall_model import TallConfig, load
from tall_model.backbones import load_backbones, model_folder
from tall_model.checkpoint import save_pretrained
from training.train import TqdmCallbacks, TrainConfig, TrainResult, train
from training.train_config import RESUME_OVERRIDES
from training.train_state import read_trainer_state

ADAPTER_SEED = 0  # training.train / train_baseline seed (batch order, init, dropout); the data split uses ctx.seed
DEV_SAMPLE = 400  # DEV-book verses scored during adapter training (model selection)
APP_EXAMPLES = 8


def he_files(ctx: BuildContext) -> dict[str, Path]:
    """train, dev (the seeded sample scored during training), dev_all (every DEV-book verse: the final choice between
    the run's best and last checkpoints) and test."""
    return {split: ctx.data_dir / f"he_{split}.jsonl" for split in ("train", "dev", "dev_all", "test")}


def translation_cache(ctx: BuildContext) -> Path:
    """One he→en cache per trained he→en model (keyed by its weights' digest)."""
    config = ctx.tall_config()
    weights = model_folder("lr_hr_translator", config.lr_hr_translator) / "model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    return ctx.workdir / f"translations-{digest}.sqlite"


def command_line(module: str, *args) -> str:
    """The command line that does what a stage did, for the shipped files: `python -m`, paths repo-relative."""
    return shlex.join(["python", "-m", module, *(repo_relative(a) if isinstance(a, Path) else str(a) for a in args)])


# ---------------------------------------------------------------- hebrew ------------------------------------------

def _write_texts(path: Path, verses) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for v in verses:
            fh.write(json.dumps({"text": v.he, "id": v.id}, ensure_ascii=False) + "\n")


def stage_hebrew(ctx: BuildContext):
    splits = {s: read_jsonl(ctx.data_dir / f"{s}.jsonl") for s in ("train", "dev", "test")}
    files = he_files(ctx)
    train_verses = list(splits["train"])
    random.Random(ctx.seed).shuffle(train_verses)  # so --adapter-sentences N takes verses from every book
    _write_texts(files["train"], train_verses)
    dev = random.Random(ctx.seed).sample(splits["dev"], min(DEV_SAMPLE, len(splits["dev"])))
    _write_texts(files["dev"], dev)
    _write_texts(files["dev_all"], splits["dev"])
    _write_texts(files["test"], splits["test"])  # every test-book verse, Song of Songs included (Hebrew only)
    ctx.add_training_files([files["train"]])  # dev verses only choose checkpoints; the test file is never trained on
    examples = _app_examples(splits["test"], ctx.seed)
    with (ctx.out / "test_examples.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(e, ensure_ascii=False) + "\n" for e in examples)
    return {"he_train": len(train_verses), "he_dev": len(dev), "he_dev_all": len(splits["dev"]),
            "he_test": len(splits["test"]),
            "app_examples": [e["id"] for e in examples]}


def _app_examples(test, seed: int) -> list[dict]:
    """A seeded pick of short test verses, one or two per book, each as prefix + the missing last word."""
    rnd = random.Random(seed)
    by_book: dict[str, list] = {}
    for v in test:
        if 4 <= len(v.he.split()) <= 12:
            by_book.setdefault(v.book, []).append(v)
    picked = []
    books = sorted(by_book)
    while len(picked) < APP_EXAMPLES and any(by_book.values()):
        for b in books:
            if by_book[b] and len(picked) < APP_EXAMPLES:
                picked.append(by_book[b].pop(rnd.randrange(len(by_book[b]))))
    return [{"id": v.id, "prefix": " ".join(v.he.split()[:-1]), "target": v.he.split()[-1], "en": v.en}
            for v in picked]


# ---------------------------------------------------------------- adapters ----------------------------------------

def adapter_config(ctx: BuildContext, run: Path) -> TrainConfig:
    """The TALL training run of the build (the demo preset's whole model config, the build's data and settings)."""
    a, files = ctx.args, he_files(ctx)
    if a.adapter_max_target_pieces and a.adapter_positions != "last":
        # the baselines are given the verses whose *last* word is short: only one example per verse matches that
        raise ValueError(f"--adapter-max-target-pieces keeps verses by their last word, so it needs "
                         f"--adapter-positions last (got {a.adapter_positions!r})")
    return TrainConfig(
        model=ctx.tall_config(), data=str(files["train"]), dev_data=str(files["dev"]),
        max_sentences=a.adapter_sentences or None, positions=a.adapter_positions, epochs=a.adapter_epochs,
        max_target_pieces=a.adapter_max_target_pieces or None,
        max_steps=a.adapter_steps, batch_size=a.adapter_batch_size, lr=a.adapter_lr,
        eval_every=a.adapter_eval_every, eval_limit=DEV_SAMPLE, log_every=20, out=str(run),
        translation_cache=str(translation_cache(ctx)), threads=a.threads, seed=ADAPTER_SEED,
        low_memory=False)  # demo models are small: keeping activations beats recomputing them


def _weight_settings(config: dict) -> dict:
    """A run's settings that shape its weights, flattened (`model.bridge_in.layers`): not the RESUME_OVERRIDES, nor
    the dev file's path (its verses are checked on resume by their fingerprint)."""
    defaults = dataclasses.asdict(TrainConfig())
    # a field added since that run: the dataclass default, which is what the run had (not the preset's value today)
    config = {**defaults, **config, "model": TallConfig.from_dict(config["model"]).to_dict()}
    flat: dict = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else key, inner)
        else:
            flat[prefix] = value
    walk("", {k: v for k, v in config.items() if k not in (*RESUME_OVERRIDES, "dev_data")})
    return flat


def check_same_run(run: Path, config: TrainConfig, label: str) -> None:
    """A run folder that a previous build trained with other settings (the preset changed since, another budget)
    is refused with the differences named, never silently reused or resumed; nothing in it is touched."""
    state = run / "last" / "trainer_state.json"
    if not state.exists():
        return
    saved, wanted = _weight_settings(read_trainer_state(run / "last")["config"]), _weight_settings(config.to_dict())
    differ = [k for k in sorted(set(saved) | set(wanted)) if saved.get(k) != wanted.get(k)]
    if differ:
        shown = "; ".join(f"{k}: {saved.get(k)!r} there, {wanted.get(k)!r} now" for k in differ[:6])
        raise RuntimeError(f"[{label}] {run} was trained with other settings than this build asks for ({shown}"
                           f"{'; …' if len(differ) > 6 else ''}). Move or delete that folder to train it again "
                           "(or use another --workdir).")


def train_resumable(ctx: BuildContext, run: Path, config: TrainConfig, label: str) -> TrainResult:
    """Train into `run`, resuming from its last checkpoint when a previous build got that far (callers first
    check_same_run, which also guards a finished run); a stop is an error that names how to go on (rerunning the
    build resumes)."""
    if (run / "last").exists():
        ctx.log(f"[{label}] resuming {run / 'last'}")
        result = train(TrainConfig(resume=str(run / "last")), TqdmCallbacks())
    else:
        if run.exists():
            shutil.rmtree(run)  # a start that died before its first checkpoint
        result = train(config, TqdmCallbacks())
    if result.stopped:
        raise RuntimeError(f"{label} training stopped at step {result.step}; rerun the build to resume it")
    return result


def stage_adapters(ctx: BuildContext):
    run = ctx.workdir / "adapters"
    finished = run / "finished.json"
    config = adapter_config(ctx, run)
    check_same_run(run, config, "adapters")
    if not finished.exists():
        result = train_resumable(ctx, run, config, "adapters")
        finished.write_text(json.dumps({"step": result.step, "best": result.best_metrics,
                                        "final": result.final_metrics}, default=str))
    info = json.loads(finished.read_text())
    selection = choose_checkpoint(run, he_files(ctx)["dev_all"], translation_cache(ctx), ctx.backbone_dir)
    best = run / selection["selected"]
    model = load(best, device="cpu")
    trained = json.loads((best / "config.json").read_text(encoding="utf-8"))["extra"]
    history = json.loads((run / "history.json").read_text()) if (run / "history.json").exists() else []
    save_pretrained(model, ctx.out / "tall", dtype=torch.float16,
                    extra={"trained_by": "python -m demo_build (stage adapters)",
                           "selected": best.name, "steps": info["step"],
                           "train_examples": trained.get("train_examples"),
                           "max_target_pieces": config.max_target_pieces,
                           "dev": "seeded sample of DEV-book verses", "best_dev": info.get("best"),
                           "selection": selection})
    curve = [{k: r.get(k) for k in ("step", "train_loss", "dev_loss", "dev_accuracy")} for r in history
             if r.get("dev_loss") is not None]
    ctx.add_metrics({"adapters": {"steps": info["step"], "best_dev": _slim(info.get("best")),
                                  "final_dev": _slim(info.get("final")), "dev_curve": curve,
                                  "selection": selection, "decoder_lora_rank": model.config.decoder_lora_rank,
                                  "word_choice": model.config.decoding.word_choice},
                     "budgets": {"tall": tall_budget(ctx)}})  # also when the baselines are not re-run
    return {"steps": info["step"], "selected": best.name, "best_dev": _slim(info.get("best")),
            "selection": {k: selection[k] for k in ("examples", "hits", "mcnemar_p")}}


def _slim(metrics: dict | None) -> dict | None:
    return None if not metrics else {k: metrics[k] for k in ("step", "dev_loss", "dev_accuracy", "dev_examples")
                                     if k in metrics}


# ---------------------------------------------------------------- baselines ---------------------------------------

def tall_budget(ctx: BuildContext) -> dict:
    """What the shipped TALL adapters were trained with (read from their config.json)."""
    path = ctx.out / "tall" / "config.json"
    if not path.exists():
        raise RuntimeError(f"{path} is missing: run the adapters stage before the baselines")
    meta = json.loads(path.read_text())
    # the verses read as the baselines read them (duplicates dropped), so the budgets table compares like with like
    sentences = len(read_corpus(he_files(ctx)["train"], max_sentences=ctx.args.adapter_sentences or None))
    budget = {"steps": int(meta["extra"]["steps"]), "batch_size": ctx.args.adapter_batch_size,
              "sentences": sentences, "trainable_parameters": meta["parameters"]["trainable"]}
    if meta["extra"].get("max_target_pieces"):  # only the verses whose last word is short (one example each)
        budget.update(sentences=meta["extra"]["train_examples"], max_target_pieces=meta["extra"]["max_target_pieces"])
    return budget


def baseline_budget(ctx: BuildContext) -> tuple[int, int]:
    """(steps, sentences) of each trainable baseline: by default TALL's own (the fair comparison)."""
    a = ctx.args
    steps = a.baseline_steps or tall_budget(ctx)["steps"]
    return steps, (a.baseline_sentences if a.baseline_sentences is not None else a.adapter_sentences)


def stage_baselines(ctx: BuildContext):
    a, train_file, cache = ctx.args, he_files(ctx)["train"], translation_cache(ctx)
    steps, sentences = baseline_budget(ctx)
    config = ctx.tall_config()
    models = BaselineModels(config, load_backbones(config))  # loaded once for both baselines
    # the first N of the same shuffled file, those whose last word is short if TALL's were: TALL's own verses
    corpus = read_corpus(train_file, max_sentences=sentences or None)
    most = a.adapter_max_target_pieces or None
    verses = with_short_targets(corpus.sentences, models.backbones, most)
    out = {}
    for kind in KINDS:
        target = ctx.out / "baselines" / kind
        options = BaselineConfig(kind, steps=steps, seed=ADAPTER_SEED, batch_size=a.adapter_batch_size)
        command = command_line("baselines.train", kind, *ctx.preset_args(), "--data", train_file,
                               "--out", target, "--steps", steps, "--seed", ADAPTER_SEED,
                               "--batch-size", a.adapter_batch_size, "--translation-cache", cache,
                               *(["--max-sentences", sentences] if sentences else []),
                               *(["--max-target-pieces", most] if most else []))
        ctx.log(f"[baselines] {kind}: {command}")
        train_baseline(models, verses, options, target, cache,
                       extra={"data": repo_relative(train_file), "sentences": len(verses),
                              "max_target_pieces": most, "command": command})
        meta = json.loads((target / "baseline.json").read_text())
        out[kind] = {"steps": steps, "batch_size": a.adapter_batch_size, "sentences": len(verses),
                     **({"max_target_pieces": most} if most else {}),
                     "final_loss": meta.get("final_loss"), "seconds": meta.get("seconds"),
                     "trainable_parameters": meta.get("trainable_parameters")}
    ctx.add_metrics({"baselines": out, "budgets": {"tall": tall_budget(ctx), **out}})
    return out


# ---------------------------------------------------------------- evaluate ----------------------------------------

def stage_evaluate(ctx: BuildContext):
    a, test_file = ctx.args, he_files(ctx)["test"]
    work, cache = ctx.workdir / "eval-next-word", translation_cache(ctx)
    tall, soft, tuned = (ctx.out / "tall", ctx.out / "baselines" / "soft-prompt",
                         ctx.out / "baselines" / "fine-tuned")
    command = command_line("evaluation.evaluate", *ctx.preset_args(), "--data", test_file, "--tall", tall,
                       "--soft-prompt", soft, "--fine-tuned", tuned, "--seeds", a.eval_seeds,
                       "--translation-cache", cache, "--out", work,
                       *(["--limit", a.eval_limit] if a.eval_limit else []))
    payload = evaluate([test_file], preset=a.tall_preset, backbone_dir=ctx.backbone_dir, tall=tall, soft_prompt=soft,
                       fine_tuned=tuned, seeds=a.eval_seeds, limit=a.eval_limit or None, translation_cache=cache,
                       out=work, command=command)
    dest = ctx.out / "eval"
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("metrics.json", "metrics.csv", "predictions.jsonl"):  # predictions: for paired tests, linguists
        shutil.copyfile(work / name, dest / name)
    ctx.add_metrics({"next_word": {"datasets": payload["datasets"], "seeds": payload["seeds"],
                                   "rows": payload["rows"], "significance": payload["significance"]}})
    return {"rows": len(payload["rows"]), "skipped": payload.get("skipped")}
