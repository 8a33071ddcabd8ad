"""What weighing with the word n-gram costs per prediction: free TALL's best whole word against the same with the
shipped n-gram (`Decoding.ngram`), side by side in one run.

    python -m benchmarks.fusion_speed [--repeats 5] [--threads 1]

The demo's eight app examples (checkpoints/demo/test_examples.jsonl), each prefix predicted alone as the app does,
with its English given (so the translation, the same for both, is not timed) and without attention maps. Rounds
alternate the two decodings; the figure is the median over rounds of the seconds for all eight, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from tall_model import load  # noqa: E402
from tall_model.config import demo_dir  # noqa: E402
from tall_model.predict import predict  # noqa: E402
from tall_model.word_ngram import NGRAM_FILE  # noqa: E402


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.fusion_speed", description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the app uses 1 on a 2-core machine)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load(demo_dir() / "tall", device="cpu")
    examples = [json.loads(line) for line in (demo_dir() / "test_examples.jsonl").open(encoding="utf-8")]
    free = model.config.decoding
    decodings = {"free": free, "fused": free.replace(ngram=str(demo_dir() / NGRAM_FILE))}

    def run(decoding) -> float:
        start = time.perf_counter()
        for e in examples:
            predict(model, e["prefix"], decoding=decoding, translations=e["en"], output_attentions=False)
        return time.perf_counter() - start

    for decoding in decodings.values():  # warm-up: the n-gram file is counted once, caches filled
        run(decoding)
    times: dict[str, list[float]] = {name: [] for name in decodings}
    for _ in range(args.repeats):
        for name, decoding in decodings.items():
            times[name].append(run(decoding))
    medians = {name: statistics.median(t) for name, t in times.items()}
    machine = platform.processor() or platform.machine()
    print(f"{len(examples)} predictions, {args.threads} thread(s), {args.repeats} rounds, {machine}, "
          f"load average {os.getloadavg()[0]:.2f}")
    for name, seconds in medians.items():
        print(f"  {name}: {seconds:.3f} s ({1000 * seconds / len(examples):.0f} ms per prediction)")
    print(f"  fused / free: {medians['fused'] / medians['free']:.2f}×")
    return medians


if __name__ == "__main__":
    main()
