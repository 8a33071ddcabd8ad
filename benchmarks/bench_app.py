"""Latency of a Predict request through the running app (gradio_client over HTTP) against the same work called
directly (AppService.predict + both attention figures: everything the callback does).

    python -m benchmarks.bench_app [--preset demo] [--n 20] [--warmup 3]

The app runs as its own process (`python app.py`), as it does when deployed; the client and the direct calls run
in this process, on the same preset and checkpoint, each warmed up first (model loaded, translation cached), and
interleaved so that changes in machine load hit both alike. The difference is what the server adds: the queue,
(de)serialising the figures, HTTP and gradio_client's own polling. Prints the medians, the overhead ratio
(target <= 1.3x) and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PREFIX = "ויהי דבר יהוה אל יונה בן אמתי"
TARGET = 1.3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="demo", help="demo (falls back to tiny when not built), tiny, ...")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--prefix", default=PREFIX)
    args = ap.parse_args(argv)

    import subprocess

    import httpx
    import torch
    from gradio_client import Client
    from transformers.utils import logging as hf_logging

    from tall_app.service import AppService
    from tall_model import Decoding

    hf_logging.disable_progress_bar()
    service = AppService(args.preset)
    checkpoint = service.default_checkpoint()
    port = free_port()
    repo = Path(__file__).resolve().parent.parent
    server = subprocess.Popen([sys.executable, str(repo / "app.py"), "--host", "127.0.0.1", "--port", str(port),
                               "--preset", args.preset], cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.time() + 300
        while True:
            if server.poll() is not None:
                raise SystemExit(f"the app exited: {server.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(url + "config", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise SystemExit("the app did not start within 300 s")
            time.sleep(0.5)
        client = Client(url, verbose=False)
        d = Decoding()
        request = (args.prefix, service.preset, checkpoint, "greedy", d.temperature, d.top_k, d.top_p, d.seed, 1, 1,
                   True, 1, 1, True)

        def direct():
            out = service.predict(*request[:8])
            service.attention(out.prediction, "bridge", 1, 1, True)
            service.attention(out.prediction, "decoder", 1, 1, True)

        def served():
            client.predict(*request, api_name="/predict")

        timed(direct, args.warmup)  # loads the model, fills the translation cache
        timed(served, args.warmup)
        direct_s, served_s = [], []
        for _ in range(args.n):  # interleaved, so drifting machine load hits both alike
            direct_s += timed(direct, 1)
            served_s += timed(served, 1)
    finally:
        server.terminate()
        server.wait(30)
    d, s = statistics.median(direct_s), statistics.median(served_s)
    result = {"preset": service.preset, "checkpoint": checkpoint, "n": args.n, "direct_median_s": round(d, 4),
              "app_median_s": round(s, 4), "overhead_ratio": round(s / d, 3), "overhead_ms": round(1000 * (s - d), 1),
              "target_ratio": TARGET, "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count()}
    print(f"preset {result['preset']} ({checkpoint}), N={args.n}, {result['cpus']} CPUs")
    print(f"direct AppService.predict + figures: median {1000 * d:.1f} ms")
    print(f"through the app (gradio_client):    median {1000 * s:.1f} ms")
    print(f"overhead: {1000 * (s - d):.1f} ms, ratio {s / d:.2f}x (target <= {TARGET}x): "
          f"{'OK' if s / d <= TARGET else 'ABOVE TARGET'}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
