"""Experiment: one ablation row trained on the shipped TALL's own budget, chosen and scored as the shipped TALL is.

    python -m experiments.full_budget_ablation concat-bridge --workdir build/demo-v3 --out build/full-concat

Why: the ablation table (demo_build.ablation_stages) trains every row on 400 steps, and no row differs significantly
from its reference there; concat-bridge came closest (7 words found only by it, 1 only by the reference, p = 0.070).
A short budget can hide or fake a difference, so this trains the row the way the adapters stage trains the shipped
TALL (its `adapter_config` with the row's one change: the same TRAIN verses, positions, epochs, batch, lr, seed,
dev sample and evaluation steps), picks best/ or last/ on every DEV-book verse by the adapters stage's rule
(demo_build.selection), scores the pick on the test books as the demo table scores TALL, and pairs it with the
shipped TALL on the same dev verses (the build's own selection run) and test verses (checkpoints/demo/eval): exact
McNemar p on greedy hits and a 95 % paired bootstrap interval (evaluation.significance), and top-5 hits.

`--reproduce` retrains the shipped TALL itself (row tall, seed 0: the adapters stage's run again, in --out) and says
how close it comes: the same chosen step, the same greedy words and candidate lists, the weights as shipped (fp16).

`--against DIR` pairs the row with another finished experiment folder instead (e.g. with tall at the same seed).
`--seed S` trains the row at another seed (initialisation, positions, batch order, dropout); row `tall` at a seed
other than the shipped one's is the reference retrained, which says how far two seeds of the same model differ.

Resumable: rerunning with the same --out resumes the training and reuses every score already written. The
build's --workdir must hold its data, translation cache and adapters/selection (python -m demo_build --stages
data,hebrew,adapters).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from demo_build.ablation_stages import REFERENCE, Ablation, ablations
from demo_build.build import parse_args
from demo_build.context import BuildContext, machine
from demo_build.selection import choose_checkpoint, dev_hits
from demo_build.tall_stages import (
    ADAPTER_SEED,
    adapter_config,
    check_same_run,
    he_files,
    train_resumable,
    translation_cache,
)
from evaluation.evaluate import evaluate
from evaluation.metrics import exact_match
from evaluation.report import read_predictions
from evaluation.significance import compare, mcnemar_exact
from experiments.same_predictions import same_predictions, same_weights
from training.train_config import TrainConfig

SHIPPED = "the shipped TALL"  # a result's "reference" when it is paired with the shipped TALL (no --against)


def greedy_hits(records: list[dict]) -> list[bool]:
    return [exact_match(r["greedy"], r["gold"]) for r in records]


def top5_hits(records: list[dict]) -> list[bool]:
    return [any(exact_match(w, r["gold"]) for w in (r.get("candidates") or [])[:5]) for r in records]


def paired(row: str, ours: list[dict], shipped: list[dict]) -> dict:
    """The row against the shipped TALL on the same examples: greedy (McNemar, bootstrap) and top-5 hits."""
    if row == REFERENCE:
        raise ValueError(f"name the row something other than {REFERENCE!r} (the reference's own label)")
    if [r["prefix"] for r in ours] != [r["prefix"] for r in shipped]:
        raise SystemExit("the two prediction files are not on the same examples")
    records = [{**r, "approach": "tall"} for r in shipped] + [{**r, "approach": row} for r in ours]
    (greedy,) = [c.as_dict() for c in compare(records, reference="tall")]
    top5 = [top5_hits(rs) for rs in (ours, shipped)]
    only_row, only_shipped, p = mcnemar_exact(*top5)
    return {"greedy": greedy, "top5": {"row": sum(top5[0]), "shipped": sum(top5[1]), "only_row": only_row,
                                       "only_shipped": only_shipped, "mcnemar_p": p}}


def row_config(ctx: BuildContext, name: str, seed: int, run: Path,
               reproduce: bool = False) -> tuple[Ablation, TrainConfig]:
    """The row and its training run: the shipped TALL's (adapter_config) with the row's one change and `seed`."""
    base = ctx.tall_config()
    rows = {r.name: r for r in ablations(base)}
    shipped = name == REFERENCE and seed == ADAPTER_SEED
    if reproduce and not shipped:
        raise SystemExit(f"--reproduce retrains the shipped TALL: row {REFERENCE} at --seed {ADAPTER_SEED}")
    if name not in rows or (shipped and not reproduce):
        raise SystemExit(f"unknown row {name!r}; choose from {sorted(set(rows) - {REFERENCE})} (or {REFERENCE} "
                         f"with a --seed other than {ADAPTER_SEED}: the shipped TALL is that one; --reproduce "
                         "retrains it)")
    row = rows[name]
    return row, dataclasses.replace(adapter_config(ctx, run), model=base.changed(row.changes), **row.train, seed=seed)


def reproduction(chosen: Path, shipped: Path, splits: dict[str, tuple[list[dict], list[dict]]]) -> dict:
    """How close a retrained shipped TALL comes to it: per split, the examples whose greedy word, candidate list
    (and the rest of experiments.same_predictions) are the same; the weights cast to the shipped dtype (fp16)."""
    out = {split: next(iter(same_predictions(ours, theirs).values())) for split, (ours, theirs) in splits.items()}
    try:
        out["weights"] = same_weights(shipped / "model.safetensors", chosen / "model.safetensors")
    except ValueError as err:
        raise SystemExit(str(err)) from None
    return out


def curve_agreement(ours: list[dict], shipped: list[dict]) -> dict:
    """A retrained run's dev curve against the shipped run's (metrics.json's adapters.dev_curve), step by step."""
    theirs = {r["step"]: r for r in shipped}
    pairs = [(r, theirs[r["step"]]) for r in ours if r.get("dev_loss") is not None and r["step"] in theirs]
    if not pairs:
        raise SystemExit("the two runs share no evaluated step")
    return {"steps": len(pairs), "same_dev_accuracy": sum(a["dev_accuracy"] == b["dev_accuracy"] for a, b in pairs),
            **{f"{k}_largest_difference": max(abs(a[k] - b[k]) for a, b in pairs) for k in ("dev_loss", "train_loss")}}


def reference_run(result: dict) -> dict:
    """The run a result was paired with: the shipped TALL (row tall, seed ADAPTER_SEED) or its --against run."""
    if result["reference"] == SHIPPED:
        return {"row": REFERENCE, "seed": ADAPTER_SEED}
    return json.loads((Path(result["reference"]) / "result.json").read_text())


def reference_predictions(ctx: BuildContext, against: Path | None) -> tuple[Path, Path]:
    """The dev and test predictions a row is paired with: the shipped TALL's (the build's selection run and
    checkpoints/demo/eval), or those of another finished experiment folder (its chosen checkpoint's)."""
    if against is None:
        selected = json.loads((ctx.out / "metrics.json").read_text())["adapters"]["selection"]["selected"]
        return (ctx.workdir / "adapters" / "selection" / selected / "predictions.jsonl",
                ctx.out / "eval" / "predictions.jsonl")
    if not (against / "result.json").is_file():
        raise SystemExit(f"--against {against}: no result.json there (run that experiment to the end first)")
    selected = json.loads((against / "result.json").read_text())["selection"]["selected"]
    return against / "adapters" / "selection" / selected / "predictions.jsonl", against / "test" / "predictions.jsonl"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m experiments.full_budget_ablation",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("row", help="an ablation row's name (demo_build.ablation_stages), e.g. concat-bridge")
    ap.add_argument("--workdir", default="build/demo", help="the demo build's work folder")
    ap.add_argument("--out", type=Path, required=True, help="this experiment's folder")
    ap.add_argument("--seed", type=int, default=ADAPTER_SEED,
                    help=f"the row's training seed (the shipped TALL's: {ADAPTER_SEED})")
    ap.add_argument("--against", type=Path, default=None,
                    help="pair with another finished experiment folder (e.g. tall at the same --seed) instead of the "
                         "shipped TALL; writes result-against-<its name>.json")
    ap.add_argument("--reproduce", action="store_true",
                    help="retrain the shipped TALL itself (row tall, seed 0) and say how close it comes")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    build = parse_args(["--workdir", args.workdir, "--threads", str(args.threads)])  # the shipped build's settings
    ctx = BuildContext(args=build, workdir=Path(args.workdir), out=Path(build.out))
    run, files, cache = args.out / "adapters", he_files(ctx), translation_cache(ctx)
    row, config = row_config(ctx, args.row, args.seed, run, args.reproduce)
    check_same_run(run, config, args.row)
    if not (run / "finished.json").exists():
        result = train_resumable(ctx, run, config, args.row)
        (run / "finished.json").write_text(json.dumps({"step": result.step}))
    selection = choose_checkpoint(run, files["dev_all"], cache)
    chosen = run / selection["selected"]
    dev_hits(chosen, files["dev_all"], cache)  # the rule's own dev scores (written once; none when best/ is last/)
    dev_out, test_out = run / "selection" / selection["selected"], args.out / "test"
    if not (test_out / "predictions.jsonl").exists():
        evaluate([files["test"]], preset=build.tall_preset, tall=chosen, approaches=("tall",), seeds=0,
                 translation_cache=cache, out=test_out,
                 command=f"python -m evaluation.evaluate --preset {build.tall_preset} --data {files['test']} "
                         f"--tall {chosen} --approaches tall --seeds 0 --out {test_out}")
    reference_dev, reference_test = reference_predictions(ctx, args.against)
    label = ("tall@reproduced" if args.reproduce else row.name if args.seed == ADAPTER_SEED
             else f"{row.name}@seed{args.seed}")
    result = {"row": row.name, "what": row.what, "changes": row.changes, "train": row.train, "seed": args.seed,
              "steps": config.max_steps or None, "reference": str(args.against or SHIPPED),
              "selection": selection,
              "dev": paired(label, read_predictions(dev_out / "predictions.jsonl", "tall"),
                            read_predictions(reference_dev, "tall")),
              "test": paired(label, read_predictions(test_out / "predictions.jsonl", "tall"),
                             read_predictions(reference_test, "tall"))}
    if args.reproduce:
        result["reproduction"] = reproduction(chosen, ctx.out / "tall", {
            split: (read_predictions(ours, "tall"), read_predictions(theirs, "tall"))
            for split, ours, theirs in (("dev", dev_out / "predictions.jsonl", reference_dev),
                                        ("test", test_out / "predictions.jsonl", reference_test))})
        result["reproduction"]["dev_curve"] = curve_agreement(
            json.loads((run / "history.json").read_text()),
            json.loads((ctx.out / "metrics.json").read_text())["adapters"]["dev_curve"])
        result["reproduction"]["machine"] = machine()
    name = f"result-against-{args.against.name}.json" if args.against else "result.json"
    (args.out / name).write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    return result


if __name__ == "__main__":
    main()
