"""Threads for the demo build's translator training: 1 or 2 per process, and two 1-thread stages at once?

    python -m demo_build.thread_bench --data build/demo-v2/data [--steps 40] [--repeats 3]

The he→en stage is the build's longest (≈ 70 quiet minutes on 2 threads), and the build runs its stages one after
another. Two questions decide how to cut that: does the stage run faster on 1 thread than on 2 (the shipped build's
thread probe switched between them), and would two 1-thread stages side by side (e.g. he→en beside the LM) do more
work per minute than one 2-thread stage? Each measurement times the same `--steps` optimizer steps of the he→en recipe
(demo_build.translators: the same model, batches, seed) after 3 untimed warm-up steps, in a fresh process; "pair"
starts two such processes on 1 thread each at the same moment. Printed: seconds per step (median of the repeats) and
the ratios side by side. Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from demo_build import data as dd
from demo_build.marian_tokenizer import load_marian_tokenizer
from demo_build.translators import TranslatorRecipe, _TranslatorRun, collate, make_batches

WARMUP = 3


def time_steps(data: Path, tokenizer: str, steps: int, threads: int, seed: int) -> float:
    """Seconds per step of `steps` he→en training steps on `threads` threads, in this process."""
    torch.set_num_threads(threads)
    tok = load_marian_tokenizer(tokenizer)
    with tempfile.TemporaryDirectory() as stage_dir:
        run = _TranslatorRun("he-en", tok, Path(stage_dir), 10_000, seed, TranslatorRecipe(), lambda message: None)
        run.prepare(dd.read_jsonl(data / "train.jsonl"), dd.read_jsonl(data / "dev.jsonl")[:8], None, {})
        run.model.train()
        run.tuner = type("Fixed", (), {"update": lambda *a: None, "cur": threads})()
        epoch = run.epoch_data(0)
        batches = make_batches(epoch, run.recipe.max_tokens, random.Random(seed * 1000))
        if len(batches) < WARMUP + steps:
            raise SystemExit(f"{len(batches)} batches in the training data, fewer than {WARMUP} + {steps} steps")
        run.t_mark = time.time()
        for b in batches[:WARMUP]:
            run._step(collate(epoch, b, run.pad_id, run.dec_start))
        start = time.perf_counter()
        for b in batches[WARMUP:WARMUP + steps]:
            run._step(collate(epoch, b, run.pad_id, run.dec_start))
        return (time.perf_counter() - start) / steps


def _child(args, threads: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "demo_build.thread_bench", "--child", str(threads), "--data", str(args.data),
           "--tokenizer", args.tokenizer, "--steps", str(args.steps), "--seed", str(args.seed)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen) -> float:
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"a timing process failed (exit {proc.returncode})")
    return json.loads(out.strip().splitlines()[-1])["seconds_per_step"]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m demo_build.thread_bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("build/demo-v2/data"))
    ap.add_argument("--tokenizer", default="checkpoints/demo/he-en")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps({"seconds_per_step": time_steps(args.data, args.tokenizer, args.steps, args.child,
                                                          args.seed)}))
        return {}
    runs: dict[str, list[float]] = {"1 thread": [], "2 threads": [], "pair, each 1 thread": []}
    for repeat in range(args.repeats):
        print(f"repeat {repeat + 1}/{args.repeats}, load average {os.getloadavg()[0]:.2f}", file=sys.stderr)
        runs["1 thread"].append(_result(_child(args, 1)))
        runs["2 threads"].append(_result(_child(args, 2)))
        pair = [_child(args, 1), _child(args, 1)]
        runs["pair, each 1 thread"].append(max(_result(p) for p in pair))  # the slower sets the pair's pace
    median = {k: statistics.median(v) for k, v in runs.items()}
    # work per second: one process does 1 / s steps a second; the pair does 2 / s between them
    throughput = {"1 thread": 1 / median["1 thread"], "2 threads": 1 / median["2 threads"],
                  "pair, each 1 thread": 2 / median["pair, each 1 thread"]}
    print(f"\n{args.steps} he→en steps after {WARMUP} warm-up, {args.repeats} repeats (median)\n"
          "| setting | seconds per step (each process) | steps per minute, all processes | vs 2 threads |\n"
          "|---|---|---|---|")
    for k in runs:
        print(f"| {k} | {median[k]:.3f} ({', '.join(f'{x:.3f}' for x in runs[k])}) | {60 * throughput[k]:.1f} | "
              f"{throughput[k] / throughput['2 threads']:.2f}× |")
    return {"runs": runs, "median": median, "throughput_per_s": throughput}


if __name__ == "__main__":
    main()
