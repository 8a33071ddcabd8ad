"""Which demo translator size gives the best dev score per CPU minute? (issue 13: "sizes chosen by measured dev score
per CPU minute")

    python -m demo_build.translator_sizes --data build/demo/data --steps 300 \
        --sizes 192x2x576,256x3x768,320x3x960 [--direction he-en] [--threads 2]

Trains one fresh translator per size (d_model × layers per side × FFN width, 4 heads) on the build's TRAIN pairs
with the build's recipe (demo_build.translators: tokenizer of the shipped model, batches of ≤ 5,000 tokens, AdamW
1e-3, label smoothing 0.1, seed 1234) to the same step budget, the schedule annealed to that budget (warm-up a fifth
of it), then scores it on the first DEV verses: dev loss, greedy chrF / BLEU against the reference and the share of
greedy outputs in a repetition loop (demo_build.scoring). Prints one row per size with its training minutes and
seconds per step. Equal steps, not equal minutes: the minutes column is the cost. The work folders go
under --workdir (resumable per size).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from transformers import MarianMTModel

from demo_build import data as dd
from demo_build.marian_tokenizer import load_marian_tokenizer
from demo_build.scoring import GEN_CANDIDATES, LENGTH_RATIO, loop_fraction, score, translate
from demo_build.translators import MODEL_DIMS, train_translator

HEADS = MODEL_DIMS["encoder_attention_heads"]


def parse_size(text: str) -> dict:
    """'256x3x768' → MODEL_DIMS-shaped dims (d_model, layers per side, FFN width; MODEL_DIMS' heads)."""
    try:
        d_model, layers, ffn = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"a size is D_MODELxLAYERSxFFN, e.g. 256x3x768; got {text!r}") from None
    if min(d_model, layers, ffn) < 1 or d_model % HEADS:
        raise ValueError(f"size {text!r}: every part must be positive and d_model a multiple of {HEADS} heads")
    return dict(d_model=d_model, encoder_layers=layers, decoder_layers=layers, encoder_attention_heads=HEADS,
                decoder_attention_heads=HEADS, encoder_ffn_dim=ffn, decoder_ffn_dim=ffn)


def measure(size: str, *, direction: str, tok, train, dev, steps: int, workdir: Path, threads: int, seed: int,
            dev_verses: int) -> dict:
    dims = parse_size(size)
    info = train_translator(direction=direction, tok=tok, train_pairs=train, dev_pairs=dev,
                            stage_dir=workdir / f"{direction}-{size}", steps=steps, seed=seed, threads=(threads,),
                            dims=dims, warmup=max(1, steps // 5), ckpt_steps=max(1, steps // 3))
    model = MarianMTModel.from_pretrained(str(workdir / f"{direction}-{size}" / "final"), dtype=torch.float32)
    pairs = dev[:dev_verses]
    src = [p.he if direction == "he-en" else p.en for p in pairs]
    refs = [p.en if direction == "he-en" else p.he for p in pairs]
    hyps = translate(model, tok, src, GEN_CANDIDATES["greedy"], LENGTH_RATIO[direction])
    return {"size": size, "parameters": info["params"], "steps": info["steps"], "minutes": info["train_minutes"],
            "dev_loss": info["dev_loss"], **score(hyps, refs), "loops": loop_fraction(hyps), "verses": len(pairs)}


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(prog="python -m demo_build.translator_sizes", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="build/demo/data", help="the build's data folder (train.jsonl, dev.jsonl)")
    ap.add_argument("--tokenizer", default="checkpoints/demo/he-en", help="a folder with the demo's Marian tokenizer")
    ap.add_argument("--sizes", default="192x2x576,256x3x768,320x3x960", help="comma list of D_MODELxLAYERSxFFN")
    ap.add_argument("--direction", default="he-en", choices=("he-en", "en-he"))
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--dev-verses", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--workdir", default="build/translator-sizes")
    ap.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    try:
        for size in sizes:
            parse_size(size)  # refuse a bad size before any training
    except ValueError as why:
        raise SystemExit(f"error: {why}") from None
    data = Path(args.data)
    train, dev = dd.read_jsonl(data / "train.jsonl"), dd.read_jsonl(data / "dev.jsonl")
    tok = load_marian_tokenizer(args.tokenizer)
    rows = [measure(s, direction=args.direction, tok=tok, train=train, dev=dev, steps=args.steps,
                    workdir=Path(args.workdir), threads=args.threads, seed=args.seed, dev_verses=args.dev_verses)
            for s in sizes]
    print("| size (d×layers×ffn) | parameters | steps | training minutes | dev loss | greedy chrF | BLEU | loops | "
          "seconds per step |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']} | {r['parameters']:,} | {r['steps']} | {r['minutes']} | {r['dev_loss']} | {r['chrF']} | "
              f"{r['BLEU']} | {100 * r['loops']:.1f} % | {60 * r['minutes'] / r['steps']:.2f} |")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return rows


if __name__ == "__main__":
    main()
