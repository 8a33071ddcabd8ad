"""Where a demo translator's training step spends its time: is the stage bound by its matrix products?

    python -m demo_build.step_profile --data build/demo/data/train.jsonl --tokenizer checkpoints/demo/he-en

One seeded epoch of the stage's batches (`demo_build.translators.make_batches`, the shipped recipe's 5,000 padded
tokens a batch) on a fresh translator of the shipped size, trained as the stage trains it. Printed:
  * the batches' padding: the share of source and of target positions that hold a real piece;
  * the median step time, and its matrix products' FLOPs (torch.utils.flop_counter, forward and backward) per second
    against this CPU's own rate on one large square product (the best these kernels do here);
  * the matrix products of a mean step of the epoch, and the minutes `--budget-steps` of them take at that best rate
    alone: a floor under the stage's time that no kernel-level change removes;
  * the step's profiled CPU time by kind of operation (matrix products, dropout masks, the vocabulary's log-softmax,
    the rest).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from demo_build.data_stage import read_pairs
from demo_build.marian_tokenizer import load_marian_tokenizer
from demo_build.translators import collate, encode_pairs, make_batches, new_marian, new_optimizer, optimizer_step

MATMUL_OPS = ("mm", "addmm", "bmm", "baddbmm")
# profiler op names (self time) -> the kind of work they are; everything else is "other"
KINDS = {
    "matrix products": tuple(f"aten::{op}" for op in MATMUL_OPS),
    "dropout masks": ("aten::bernoulli_",),
    "vocabulary log-softmax and loss": ("aten::_log_softmax", "aten::_log_softmax_backward_data",
                                        "aten::nll_loss_forward", "aten::nll_loss_backward"),
    "attention softmax": ("aten::_softmax", "aten::_softmax_backward_data"),
}


def padding_efficiency(data, batches) -> tuple[float, float]:
    """(source, target) share of the padded positions that hold a real piece, over `batches` of `data`."""
    real_src = real_tgt = padded_src = padded_tgt = 0
    for ids in batches:
        src, tgt = [len(data[i][0]) for i in ids], [len(data[i][1]) for i in ids]
        real_src, real_tgt = real_src + sum(src), real_tgt + sum(tgt)
        padded_src, padded_tgt = padded_src + len(ids) * max(src), padded_tgt + len(ids) * max(tgt)
    return real_src / padded_src, real_tgt / padded_tgt


class TrainStep:
    """One optimizer step of the translator stage (its loss, clipping and optimizer)."""

    def __init__(self, model, lr: float = 5e-4, smoothing: float = 0.1) -> None:
        self.model, self.opt, self.smoothing = model.train(), new_optimizer(model, lr), smoothing

    def __call__(self, batch) -> None:
        optimizer_step(self.model, self.opt, batch, self.smoothing)


def matmul_flops(step: TrainStep, batch) -> int:
    """FLOPs of the matrix products (KINDS' first entry) of one training step, forward and backward."""
    with FlopCounterMode(display=False) as counter:
        step(batch)
    return _matmul_part(counter)


@torch.no_grad()
def forward_matmul_flops(model, batches) -> int:
    """FLOPs of the matrix products of the forward passes over `batches` (no training: an epoch's count is cheap;
    a step's backward does twice its forward's, which matmul_flops measures)."""
    with FlopCounterMode(display=False) as counter:
        for inp, att, dec, _ in batches:
            model(input_ids=inp, attention_mask=att, decoder_input_ids=dec)
    return _matmul_part(counter)


def _matmul_part(counter: FlopCounterMode) -> int:
    return sum(n for op, n in counter.get_flop_counts()["Global"].items() if str(op).split(".")[1] in MATMUL_OPS)


def time_by_kind(step: TrainStep, batches) -> tuple[dict[str, float], dict[str, float]]:
    """Profiled CPU seconds (self time) of the steps over `batches`, by KINDS (and 'other'); and the seconds of
    each operation counted as 'other'."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in batches:
            step(batch)
    out, other = dict.fromkeys([*KINDS, "other"], 0.0), {}
    kind_of = {name: kind for kind, names in KINDS.items() for name in names}
    for event in prof.key_averages():
        kind = kind_of.get(event.key, "other")
        out[kind] += event.self_cpu_time_total / 1e6
        if kind == "other":
            other[event.key] = event.self_cpu_time_total / 1e6
    return out, other


def step_seconds(step: TrainStep, batches) -> list[float]:
    """Wall-clock seconds of one step on each of `batches`."""
    times = []
    for batch in batches:
        begin = time.perf_counter()
        step(batch)
        times.append(time.perf_counter() - begin)
    return times


def square_matmul_rate(n: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of one n x n fp32 matrix product on this CPU (the fastest of `repeats`: the floor computed from it is
    the lowest)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        begin = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - begin)
    return 2 * n ** 3 / best


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m demo_build.step_profile", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", action="append", help="the build's TRAIN pairs (JSONL; repeat to add e.g. "
                    "train_versions.jsonl, as the en-he stage does); default build/demo/data/train.jsonl")
    ap.add_argument("--tokenizer", default="checkpoints/demo/he-en", help="the demo's joint Marian tokenizer")
    ap.add_argument("--direction", default="he-en", choices=("he-en", "en-he"))
    ap.add_argument("--max-tokens", type=int, default=5000)
    ap.add_argument("--steps", type=int, default=12, help="timed steps (after 3 warm-up steps)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget-steps", type=int, default=3600, help="the stage's steps (shipped: 3,600)")
    ap.add_argument("--count-batches", type=int, default=250,
                    help="batches of the shuffled epoch whose FLOPs give the mean step (all when fewer)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    tok = load_marian_tokenizer(args.tokenizer)
    pairs = [pair for path in args.data or ["build/demo/data/train.jsonl"] for pair in read_pairs(path)]
    data = encode_pairs(tok, pairs, args.direction)
    batches = make_batches(data, args.max_tokens, random.Random(0))
    src_eff, tgt_eff = padding_efficiency(data, batches)
    print(f"{len(data):,} pairs, {len(batches)} batches an epoch; real pieces: {src_eff:.1%} of the source "
          f"positions, {tgt_eff:.1%} of the target positions")

    step = TrainStep(new_marian(tok, seed=0, eager=args.direction == "en-he"))
    pad, start = tok.pad_token_id, step.model.config.decoder_start_token_id
    collated = [collate(data, ids, pad, start) for ids in batches]
    timed = collated[3:3 + args.steps]
    for batch in collated[:3]:
        step(batch)
    times = step_seconds(step, timed)
    flops = [matmul_flops(step, batch) for batch in timed]  # a batch's FLOPs depend on its shapes only
    counted = collated[:args.count_batches]
    epoch_forward = forward_matmul_flops(step.model, counted)
    kinds, other = time_by_kind(step, collated[3 + args.steps:3 + 2 * args.steps])
    total = sum(kinds.values())
    square = square_matmul_rate()
    backward_ratio = sum(flops) / forward_matmul_flops(step.model, timed)
    per_step = epoch_forward * backward_ratio / len(counted)
    matmul_share = kinds["matrix products"] / total
    print(f"median step {statistics.median(times):.3f} s ({args.threads} threads); its matrix products: "
          f"{sum(flops) / sum(times) / 1e9:.1f} GFLOP/s over the whole step, "
          f"{sum(flops) / (matmul_share * sum(times)) / 1e9:.1f} GFLOP/s in them; "
          f"one 2048-square product here: {square / 1e9:.1f} GFLOP/s")
    print(f"the epoch's mean step ({len(counted)} batches): {per_step / 1e9:.1f} GFLOP of matrix products "
          f"(training = {backward_ratio:.2f} x forward); {args.budget_steps:,} steps of them at the square "
          f"product's rate: {args.budget_steps * per_step / square / 60:.1f} min")
    for kind, seconds in kinds.items():
        print(f"  {kind:34s} {seconds / total:6.1%}")
    top = sorted(other.items(), key=lambda kv: -kv[1])[:6]
    print("  largest in 'other': " + ", ".join(f"{name} {seconds / total:.1%}" for name, seconds in top))


if __name__ == "__main__":
    main()
