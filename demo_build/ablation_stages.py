"""Ablations and sweeps of TALL on one training budget (the paper's open question 4: what each part contributes).

    python -m demo_build --stages hebrew,ablations [--ablation-steps 400] [--ablations tall,no-llm,...]

Every row is a TALL run on the demo backbones with one change to the preset's config, the same TRAIN verses,
steps, batch size, learning rate and seed (0) as every other row, and the full model trained on that budget as
the reference row `tall` (so the table compares like with like; the shipped `tall/` adapters may have had a
larger budget). Each row is scored greedy and top-5 on every test-book verse without its last word, and compared
with the reference on the same examples (exact McNemar p, 95 % paired bootstrap interval).

Resumable row by row: build/demo/ablations/<row>/train (training.train's run folder, resumed from last/), then
.../eval (evaluation.evaluate's output). Writes checkpoints/demo/ablations/{metrics.json,predictions.jsonl}.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from demo_build.context import BuildContext
from demo_build.tall_stages import (
    ADAPTER_SEED,
    adapter_config,
    check_same_run,
    command_line,
    he_files,
    train_resumable,
    translation_cache,
)
from evaluation.evaluate import evaluate
from evaluation.significance import compare
from tall_model import TallConfig
from tall_model.backbones import load_backbones
from training.train import TrainConfig

REFERENCE = "tall"
LORA_RANK = 16  # the rank measured at the full budget (experiments/decoder_lora.py, benchmarks/RESULTS.md)


@dataclass(frozen=True)
class Ablation:
    name: str
    what: str
    changes: dict  # TallConfig.changed(...) of the preset's config
    train: dict = field(default_factory=dict)  # TrainConfig fields the row changes (its data), on top of the run's


def ablations(base: TallConfig) -> list[Ablation]:
    """The rows, from the preset's own sizes: factors and depths are relative to what the preset uses."""
    factor, depth = base.adapter_hidden_factor, base.bridge_in.layers
    rows = [
        Ablation(REFERENCE, "the full model (reference)", {}),
        Ablation("no-llm", "LLM bypassed: bridge-in's output goes straight to the output adapter",
                 {"bypass_llm": True}),
        Ablation("concat-bridge", "bridge-in without cross-attention: self-attention over [Hebrew; English]",
                 {"bridge_in_mode": "concat"}),
        Ablation("no-translation", "no translation input: bridge-in reads the aligned Hebrew alone",
                 {"bridge_in_mode": "hebrew_only"}),
        Ablation("adapter-x0.5", f"adapter hidden factor {factor * 0.5:g} (×0.5)",
                 {"adapter_hidden_factor": factor * 0.5}),
        Ablation("adapter-x2", f"adapter hidden factor {factor * 2:g} (×2)", {"adapter_hidden_factor": factor * 2}),
    ]
    for layers in (1, 2, 4):
        if layers != depth:
            rows.append(Ablation(f"bridges-{layers}", f"bridge-in and bridge-out depth {layers} (reference: {depth})",
                                 {"bridge_in": {"layers": layers}, "bridge_out": {"layers": layers}}))
    rows += [
        Ablation("subword-framing", "the paper's framing: the next piece only, loss on its one position "
                 "(scored on whole words)", {"framing": "subword", "loss": "last"}),
        Ablation("subword-framing-wordstart", "the paper's framing, its predicted piece held to pieces that start "
                 "a word (scored on whole words)",
                 {"framing": "subword", "loss": "last", "decoding": {"subword_word_start": True}}),
        Ablation("one-piece-targets", "the word framing trained only on verses whose last word is one subword piece "
                 "(what the subword framing is taught at a word boundary)", {}, train={"max_target_pieces": 1}),
        Ablation("one-piece-targets-3-epochs", "one-piece-targets for three epochs, not two (nearer TALL's steps: its "
                 "fewer verses make shorter epochs)", {}, train={"max_target_pieces": 1, "epochs": 3}),
        Ablation("two-piece-targets-3-epochs", "the word framing for three epochs on verses whose last word is at "
                 "most two subword pieces (does the one-piece rows' gain hold as longer targets come back?)", {},
                 train={"max_target_pieces": 2, "epochs": 3}),
        Ablation("no-scale-matching", "without our embedding-scale matching (match_llm_scale off, as in the paper)",
                 {"match_llm_scale": False}),
    ]
    if base.decoder_lora_rank:  # the other departure from the paper, tried the other way round
        rows.append(Ablation("frozen-decoder", "stage 7 frozen, as in the paper (no decoder LoRA)",
                             {"decoder_lora_rank": 0}))
    else:
        rows.append(Ablation("decoder-lora", f"stage 7 adapted: LoRA rank {LORA_RANK} in the en→he decoder's layers "
                             "(ours, not the paper's)", {"decoder_lora_rank": LORA_RANK}))
    return rows


def _selected(ctx: BuildContext, base: TallConfig) -> list[Ablation]:
    rows = ablations(base)
    wanted = ctx.args.ablations
    if wanted == "all":
        return rows
    names = [x.strip() for x in wanted.split(",") if x.strip()]
    unknown = sorted(set(names) - {r.name for r in rows})
    if unknown:
        raise ValueError(f"unknown ablations {unknown}; choose from {[r.name for r in rows]}")
    return [r for r in rows if r.name in names or r.name == REFERENCE]  # the reference is always needed


def _train_config(ctx: BuildContext, base: TallConfig, row: Ablation, run: Path) -> TrainConfig:
    """The adapters stage's run with the row's change, on the ablation budget (one dev evaluation, at the end)."""
    steps = ctx.args.ablation_steps
    return dataclasses.replace(adapter_config(ctx, run), model=base.changed(row.changes), **row.train,
                               max_steps=steps, eval_every=steps, log_every=50)


def _train_row(ctx: BuildContext, base: TallConfig, row: Ablation, folder: Path) -> dict:
    run, finished = folder / "train", folder / "trained.json"
    config = _train_config(ctx, base, row, run)
    check_same_run(run, config, f"ablation {row.name}")  # a finished row of another base is not this row
    if finished.exists():
        return json.loads(finished.read_text())
    ctx.log(f"[ablations] {row.name}: {row.what}")
    result = train_resumable(ctx, run, config, f"ablation {row.name}")
    saved = json.loads((run / "last" / "config.json").read_text())
    info = {"steps": result.step, "final_dev": result.final_metrics,
            "trainable_parameters": saved["parameters"]["trainable"]}
    finished.write_text(json.dumps(info, default=str))
    return info


def _evaluate_row(ctx: BuildContext, row: Ablation, folder: Path, backbones) -> list[dict]:
    a, test_file, out = ctx.args, he_files(ctx)["test"], folder / "eval"
    if not (out / "predictions.jsonl").exists():
        checkpoint = folder / "train" / "last"
        command = command_line("evaluation.evaluate", *ctx.preset_args(), "--data", test_file, "--tall",
                           checkpoint, "--approaches", "tall", "--seeds", 0, "--out", out,
                           *(["--limit", a.eval_limit] if a.eval_limit else []))
        evaluate([test_file], preset=a.tall_preset, backbone_dir=ctx.backbone_dir, tall=checkpoint,
                 approaches=("tall",), seeds=0, limit=a.eval_limit or None, translation_cache=translation_cache(ctx),
                 out=out, backbones=backbones, command=command)
    records = [json.loads(line) for line in (out / "predictions.jsonl").open(encoding="utf-8")]
    return [{**r, "approach": row.name} for r in records]


def _table_row(row: Ablation, trained: dict, metrics: dict, batch_size: int) -> dict:
    (scores,) = [r for r in metrics["rows"] if r["approach"] == "tall"]
    dev = trained.get("final_dev") or {}
    return {"name": row.name, "what": row.what, "changes": row.changes, **({"train": row.train} if row.train else {}),
            "trainable_parameters": trained["trainable_parameters"], "steps": trained["steps"],
            "batch_size": batch_size, "dev_accuracy": dev.get("dev_accuracy"), "examples": scores["examples"],
            "greedy": scores["accuracy"], "top5": scores["top5_accuracy"], "empty": scores["empty_greedy"]}


def _finished(folder: Path) -> bool:
    return (folder / "trained.json").exists() and (folder / "eval" / "predictions.jsonl").exists()


def stage_ablations(ctx: BuildContext):
    base = ctx.tall_config()
    root = ctx.workdir / "ablations"
    backbones = None  # loaded once, when a row first needs scoring: every row shares the build's frozen backbones
    table, records, pending = [], [], []
    for row in _selected(ctx, base):
        folder = root / row.name
        if ctx.args.ablations_finished_only and not _finished(folder):
            pending.append(row.name)
            continue
        folder.mkdir(parents=True, exist_ok=True)
        trained = _train_row(ctx, base, row, folder)
        if backbones is None and not (folder / "eval" / "predictions.jsonl").exists():
            backbones = load_backbones(base)
        records += _evaluate_row(ctx, row, folder, backbones)
        metrics = json.loads((folder / "eval" / "metrics.json").read_text())
        table.append(_table_row(row, trained, metrics, ctx.args.adapter_batch_size))
    paired = {c.approach: c.as_dict() for c in compare(records, reference=REFERENCE)}
    for r in table:
        r["vs_reference"] = paired.get(r["name"])
    dest = ctx.out / "ablations"
    dest.mkdir(parents=True, exist_ok=True)
    payload = {"budget": {"steps": ctx.args.ablation_steps, "batch_size": ctx.args.adapter_batch_size,
                          "lr": ctx.args.adapter_lr, "sentences": ctx.args.adapter_sentences, "seed": ADAPTER_SEED},
               "reference": REFERENCE, "rows": table, "pending": pending}
    (dest / "metrics.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")
    with (dest / "predictions.jsonl").open("w", encoding="utf-8") as fh:  # enough for the paired tests, no more
        for r in records:
            slim = {k: r[k] for k in ("dataset", "approach", "prefix", "gold", "greedy")}
            fh.write(json.dumps({**slim, "candidates": (r.get("candidates") or [])[:5]}, ensure_ascii=False) + "\n")
    ctx.add_metrics({"ablations": payload})
    return {"rows": [r["name"] for r in table], "pending": pending}
