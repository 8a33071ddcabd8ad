"""Prefix translation (he→en, TALL's stage-3 input) with length-sorted batches and the per-row length cap, against
input-order batches without the cap, on the same model and prefixes, side by side in one run.

    python -m benchmarks.bench_translate [--preset demo] [--n 192] [--batch-size 32] [--threads 2]

Prefixes: the first N test-book verses of checkpoints/demo/test_examples.jsonl's source (build/demo/data/he_test.jsonl
when present, else the demo's test examples repeated), each without its last word. Prints seconds and the ratio,
and how many outputs differ (they may only differ where the uncapped run looped past the cap).
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from tall_model import load  # noqa: E402
from tall_model import translate as tr  # noqa: E402
from tall_model.batching import pad, source_ids  # noqa: E402
from tall_model.config import REPO_ROOT, demo_dir  # noqa: E402


def prefixes(n: int) -> list[str]:
    src = REPO_ROOT / "build" / "demo" / "data" / "he_test.jsonl"
    if src.exists():
        texts = [json.loads(line)["text"] for line in src.open(encoding="utf-8")]
    else:
        texts = [json.loads(line)["prefix"] + " x" for line in (demo_dir() / "test_examples.jsonl").open()]
    texts = (texts * (n // len(texts) + 1))[:n]
    return [" ".join(t.split()[:-1]) for t in texts]


@torch.no_grad()
def unsorted_uncapped(model, texts: list[str], batch_size: int) -> list[str]:
    """The previous translate(): input order, every batch may run to translation_max_new_tokens."""
    tok, out = model.backbones.lr_hr_tokenizer, []
    for start in range(0, len(texts), batch_size):
        ids, mask = pad([source_ids(model, t)[0] for t in texts[start:start + batch_size]],
                        model.lr_hr.config.pad_token_id)
        decoding = model.config.decoding
        gen = model.lr_hr.generate(input_ids=ids, attention_mask=mask, num_beams=decoding.translation_beams,
                                   max_new_tokens=decoding.translation_max_new_tokens)
        out.extend(t.strip() for t in tok.batch_decode(gen, skip_special_tokens=True))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--n", type=int, default=192)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load(args.preset)
    texts = prefixes(args.n)
    print(f"# {model.source}; {len(texts)} prefixes, batch {args.batch_size}, {args.threads} thread(s)")
    t0 = time.perf_counter()
    old = unsorted_uncapped(model, texts, args.batch_size)
    t_old = time.perf_counter() - t0
    t0 = time.perf_counter()
    new = tr.translate(model, texts, batch_size=args.batch_size)
    t_new = time.perf_counter() - t0
    differ = sum(a != b for a, b in zip(old, new))
    print(f"input order, uncapped : {t_old:7.1f} s ({len(texts) / t_old:5.1f} prefixes/s)")
    print(f"sorted, capped        : {t_new:7.1f} s ({len(texts) / t_new:5.1f} prefixes/s)")
    print(f"speed-up              : {t_old / t_new:.2f}x; outputs that differ: {differ} of {len(texts)}")


if __name__ == "__main__":
    main()
