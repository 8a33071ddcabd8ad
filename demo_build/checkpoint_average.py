"""Checkpoint averaging for a translator: the element-wise mean of the weights of several saved models of ONE run
(as Marian's and fairseq's `average_checkpoints` do), which smooths the last steps' noise at no training cost.

    python -m demo_build.checkpoint_average --out build/x/avg4 \
        build/x/he-en/snapshots/step-{3000,3250,3500} build/x/he-en/final [--export build/x-out/avg4]

Writes the averaged model (fp32, with the first folder's tokenizer) to --out, and with --export also the fp16 folder
the build ships (`demo_build.export.export_fp16`), so `demo_build.translator_compare` scores it as it scores a stage's
export. Folders must hold the same architecture (same config); integer buffers are taken from the last folder.

Measured on the demo's he->en recipe (benchmarks/RESULTS.md, session 36): the mean of the last 2, 3 or 5 checkpoints
is not significantly different from the last step's model in chrF or in repetition loops, the last 8's is worse, so
the build does not average."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from transformers import MarianMTModel

from demo_build.export import export_fp16
from demo_build.marian_tokenizer import load_marian_tokenizer


class MismatchedSnapshots(ValueError):
    """The folders do not hold models of one architecture: their mean would not be a model."""


def average_models(folders: list[Path]) -> MarianMTModel:
    """The model whose every floating-point tensor is the mean of those tensors over `folders` (the last folder's
    model object, so its config and generation config are kept)."""
    if not folders:
        raise ValueError("no folders to average")
    total: dict[str, torch.Tensor] = {}
    model = None
    for folder in folders:
        model = MarianMTModel.from_pretrained(str(folder), dtype=torch.float32)
        state = model.state_dict()
        if total and set(state) != set(total):
            raise MismatchedSnapshots(f"{folder}: tensor names differ from {folders[0]}'s "
                                      f"({len(set(state) ^ set(total))} not in both)")
        for name, tensor in state.items():
            if not tensor.is_floating_point():
                continue
            if name in total and total[name].shape != tensor.shape:
                raise MismatchedSnapshots(f"{folder}: {name} has shape {tuple(tensor.shape)}, "
                                          f"{folders[0]} has {tuple(total[name].shape)}")
            total[name] = total[name] + tensor.double() if name in total else tensor.double().clone()
    mean = {name: (t / len(folders)).to(torch.float32) for name, t in total.items()}
    model.load_state_dict(mean, strict=False)  # integer buffers (none in Marian today) stay the last folder's
    return model


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path, help="saved models of one run (save_pretrained folders)")
    ap.add_argument("--out", type=Path, required=True, help="write the averaged fp32 model here")
    ap.add_argument("--export", type=Path, default=None, help="also write the fp16 export the build ships here")
    ap.add_argument("--eager", action="store_true", help="the export uses eager attention (the en-he stage's export)")
    args = ap.parse_args(argv)
    for folder in args.folders:
        if not (folder / "config.json").is_file():
            ap.error(f"{folder}: not a saved model (no config.json)")
    model = average_models(args.folders)
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(args.out))
    load_marian_tokenizer(args.folders[0]).save_pretrained(str(args.out))
    print(f"averaged {len(args.folders)} models into {args.out}")
    if args.export:
        export_fp16(args.out, args.export, eager=args.eager)
        print(f"fp16 export in {args.export}")
    return args.out


if __name__ == "__main__":
    main()
