"""Experiment: let stage 7 adapt. The demo's TALL adapters trained with LoRA in the en→he decoder, then scored.

    python -m experiments.decoder_lora --out build/decoder-lora --rank 16

Why: the paper freezes the en→he decoder, a translator: it writes what its memory says and stops. TALL must make
stages 2–6 say the *next* word in the translator's own terms, and at demo size they do not (TALL fits 8.8 % of its
training verses; the decoder reading the whole verse's English writes 35 % of test last words, from the prefix's
English 1.8 %). `TallConfig.decoder_lora_rank` (tall_model/decoder_lora.py) lets the decoder itself learn to
continue a Hebrew prefix; before training it is the paper's model.

Since session 13 the `demo` preset itself has rank 64 and the best whole word (this experiment chose them), so
`--rank 0` is now the paper's frozen stage 7 and the reference predictions are the LoRA demo's.

The run is the demo build's adapters stage with that one field changed (demo preset, seed 0, 2 epochs × batch 16,
lr 5e-4, the same 400 dev verses and checkpoint choice), so history.json compares with
build/demo-v2/adapters/history.json step by step. Then the best-dev checkpoint is scored on the test books as the
demo table scores TALL (evaluation.evaluate, greedy and top-5) and paired with the shipped TALL's predictions
(exact McNemar on greedy and on top-5 hits). Rerunning with the same --out resumes the training.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from evaluation.evaluate import evaluate
from evaluation.metrics import exact_match
from evaluation.significance import mcnemar_exact
from tall_model.config import preset_config
from training.train import TqdmCallbacks, TrainConfig, train


def paired(ours: list[dict], theirs: list[dict]) -> dict:
    """Greedy and top-5 hits of two prediction lists on the same examples, with exact McNemar p-values."""
    if [r["prefix"] for r in ours] != [r["prefix"] for r in theirs]:
        raise SystemExit("the two prediction files are not on the same examples")
    out = {}
    for name, hit in (("greedy", lambda r: exact_match(r["greedy"], r["gold"])),
                      ("top5", lambda r: any(exact_match(c, r["gold"]) for c in r["candidates"][:5]))):
        a, b = [hit(r) for r in ours], [hit(r) for r in theirs]
        only_ours, only_theirs, p = mcnemar_exact(a, b)
        out[name] = {"hits": sum(a), "reference_hits": sum(b), "only_this": only_ours,
                     "only_reference": only_theirs, "mcnemar_p": p}
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m experiments.decoder_lora", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default="build/demo-v2/data")
    ap.add_argument("--translation-cache", default="build/demo-v2/translations-65efce7a8081.sqlite")
    ap.add_argument("--reference", default="build/demo-v2/eval-next-word/predictions.jsonl",
                    help="the shipped TALL's test predictions (evaluation.evaluate's file), to pair with")
    ap.add_argument("--out", required=True)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    data, out = Path(args.data_dir), Path(args.out)
    config = TrainConfig(model=preset_config("demo").replace(decoder_lora_rank=args.rank),
                         data=str(data / "he_train.jsonl"), dev_data=str(data / "he_dev.jsonl"), positions="last",
                         epochs=args.epochs, max_steps=args.max_steps, batch_size=16, lr=args.lr, eval_every=250,
                         eval_limit=400, log_every=20, out=str(out), translation_cache=args.translation_cache,
                         threads=args.threads, seed=0, low_memory=False)
    if (out / "last").exists():
        config = TrainConfig(resume=str(out / "last"))
    result = train(config, TqdmCallbacks()) if not (out / "finished.json").exists() else None
    if result is not None:
        if result.stopped:
            raise SystemExit(f"stopped at step {result.step}; rerun the same command to resume")
        (out / "finished.json").write_text(json.dumps({"best": result.best_metrics, "step": result.step}))
    torch.set_num_threads(args.threads)
    payload = evaluate([data / "he_test.jsonl"], preset="demo", tall=str(out / "best"), approaches=["tall"],
                       seeds=1, translation_cache=args.translation_cache, out=out / "eval-test",
                       command="python -m experiments.decoder_lora")
    ours = [json.loads(line) for line in (out / "eval-test" / "predictions.jsonl").open(encoding="utf-8")]
    reference = [r for r in map(json.loads, Path(args.reference).open(encoding="utf-8")) if r["approach"] == "tall"]
    row = payload["rows"][0]
    summary = {"rank": args.rank, **json.loads((out / "finished.json").read_text()), "test_greedy": row["accuracy"],
               "test_top5": row["top5_accuracy"], "test_mean_log_prob": row["mean_log_prob"],
               "vs_reference": paired(ours, reference)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
