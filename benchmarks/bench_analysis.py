"""The linguist's workbench on the shipped demo, measured side by side in one run.

    python -m benchmarks.bench_analysis [--repeats 5] [--threads 2] [--batch 500] [--complete 20]
                                        [--parts attribution,complete,lens,batch]

- attribution: latency of one word's attribution (integrated gradients at 4–64 steps, input × gradient) to the
  Hebrew encoder outputs and to the LLM input embeddings, with IG's completeness error |Σ attributions −
  (log P(word) − log P(word | baseline))|; target ≤ 2 s at 16 steps.
- complete: over the first N test-book prefixes (the greedy reference's), integrated gradients of the predicted
  word at a fixed 16 steps against `until_complete` (doubling from 16 up to 128 until the completeness error is
  within 1 % of the log-probability change): how often each is complete, the steps and the seconds.
- lens: a demo prediction with and without the logit lens, interleaved pairs (target: ≤ 10 % added).
- batch: the last word of the first N test-book verses (benchmarks/demo_greedy_reference.jsonl) with
  evaluation.batch.predict_rows, as the Batch tab runs it (target: 500 in ≤ 60 s).

Medians of `--repeats`; the load average is printed (other work on the cores slows every number).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from benchmarks.timing import median_seconds

PREFIX = "ויהי דבר יהוה אל יונה בן"  # Jonah 1:1 without its last words (a held-out book)
REFERENCE = Path(__file__).with_name("demo_greedy_reference.jsonl")


def bench_attribution(model, pred, repeats: int) -> None:
    from tall_model.attribution import attribute

    print("\n| target | method | steps | median s | completeness error | rel. to log-p change |")
    print("|---|---|---|---|---|---|")
    for target in ("hebrew", "english"):
        attribute(model, pred, target=target, steps=4)  # warm-up
        for steps in (4, 8, 16, 32, 64):
            a = attribute(model, pred, target=target, steps=steps)
            seconds = median_seconds(lambda: attribute(model, pred, target=target, steps=steps), repeats)
            change = a.log_prob - a.baseline_log_prob
            print(f"| {target} | integrated gradients | {steps} | {seconds:.3f} | {abs(a.delta):.2e} | "
                  f"{abs(a.delta) / abs(change):.2%} |")
        seconds = median_seconds(lambda: attribute(model, pred, target=target, method="input_x_gradient"), repeats)
        print(f"| {target} | input × gradient | – | {seconds:.3f} | – | – |")


def bench_complete(model, n: int) -> None:
    from tall_model.attribution import DEFAULT_STEPS, attribute
    from tall_model.predict import predict

    rows = [json.loads(line) for line in REFERENCE.open(encoding="utf-8")][:n]
    print("\n| target | integrated gradients | prefixes | complete (≤ 1 % of the change) | median rel. error | "
          "steps (median, max) | median s | total s |")
    print("|---|---|---|---|---|---|---|---|")
    preds = [predict(model, r["prefix"]) for r in rows]
    preds = [p for p in preds if p.word]
    for target in ("hebrew", "english"):
        for label, adaptive in ((f"{DEFAULT_STEPS} steps", False), (f"until complete (from {DEFAULT_STEPS})", True)):
            out, seconds = [], []
            for pred in preds:
                start = time.perf_counter()
                out.append(attribute(model, pred, target=target, until_complete=adaptive))
                seconds.append(time.perf_counter() - start)
            rel = [abs(a.delta) / max(abs(a.log_prob - a.baseline_log_prob), 1e-12) for a in out]
            steps = [a.steps for a in out]
            print(f"| {target} | {label} | {len(out)} | {sum(a.complete for a in out)} | "
                  f"{statistics.median(rel):.2%} | {statistics.median(steps):g}, {max(steps)} | "
                  f"{statistics.median(seconds):.2f} | {sum(seconds):.1f} |")


def bench_lens(model, pred, repeats: int) -> None:
    from tall_model.predict import predict

    translation = [pred.translation]

    def run(lens: bool):
        return predict(model, PREFIX, translations=translation, with_logit_lens=lens)

    run(True), run(False)
    plain, lens = [], []
    for _ in range(max(repeats, 5) * 2):  # interleaved pairs: load changes hit both sides alike
        for flag, out in ((False, plain), (True, lens)):
            start = time.perf_counter()
            run(flag)
            out.append(time.perf_counter() - start)
    a, b = statistics.median(plain), statistics.median(lens)
    print(f"\nlogit lens: prediction {a * 1000:.1f} ms without, {b * 1000:.1f} ms with: +{(b / a - 1):.1%} "
          f"(median of {len(plain)} interleaved pairs, translation cached as in the app)")


def bench_batch(model, n: int) -> None:
    from evaluation.batch import last_word_examples, predict_rows

    rows = [json.loads(line) for line in REFERENCE.open(encoding="utf-8")][:n]
    examples = last_word_examples([f"{r['prefix']} {r['gold']}" for r in rows])
    ticks = []
    start = time.perf_counter()
    out = list(predict_rows(model, examples, on_progress=lambda done, total: ticks.append(done)))
    seconds = time.perf_counter() - start
    same = sum(o.prediction == r["word"] for o, r in zip(out, rows))
    print(f"\nbatch: {len(out)} sentences in {seconds:.1f} s ({len(out) / seconds:.1f}/s), {len(ticks)} progress "
          f"updates; {same}/{len(out)} predictions identical to the greedy reference")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--complete", type=int, default=20, help="prefixes for the completeness part")
    p.add_argument("--parts", default="attribution,complete,lens,batch")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from tall_model import load
    from tall_model.predict import predict

    print(f"load average before: {os.getloadavg()}; threads {args.threads}; torch {torch.__version__}")
    model = load("demo")
    pred = predict(model, PREFIX)
    print(f"prefix {PREFIX!r} → {pred.word!r}; translation {pred.translation!r}")
    parts = set(args.parts.split(","))
    if "attribution" in parts:
        bench_attribution(model, pred, args.repeats)
    if "complete" in parts:
        bench_complete(model, args.complete)
    if "lens" in parts:
        bench_lens(model, pred, args.repeats)
    if "batch" in parts:
        bench_batch(model, args.batch)
    print(f"\nload average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
