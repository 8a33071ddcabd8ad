"""The opt-in CTranslate2 engine for the he→en text against transformers' generate, side by side in one process:
time, identical translations and identical predicted words on a fixed prefix set.

    python -m benchmarks.bench_ct2 --model demo            # the shipped demo's 731 test prefixes (~3 min)
    HF_HOME=/work/standins HF_HUB_OFFLINE=1 python -m benchmarks.bench_ct2 --model paper-bloomz   # full size

demo: every test-book prefix (benchmarks/demo_predictions' 731), translated in batches of 16 as `predict` does, by
both engines (the engine's first call, which converts the model into .cache/ctranslate2, is timed apart); then the
greedy word of every prefix through the engine, against benchmarks/demo_greedy_reference.jsonl (transformers).
paper-bloomz: the 12-word prefix, translation capped at 30 pieces, median of 3 per engine, and 8 fixed 12-word
prefixes' translations and greedy words.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REFERENCE = Path(__file__).resolve().parent / "demo_greedy_reference.jsonl"


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _chunked(model, texts, size=16):
    from tall_model.translate import translate

    return [t for start in range(0, len(texts), size) for t in translate(model, texts[start:start + size])]


def demo() -> dict:
    from tall_model import load
    from tall_model.predict import predict

    rows = [json.loads(line) for line in REFERENCE.read_text(encoding="utf-8").splitlines()]
    prefixes = [r["prefix"] for r in rows]
    plain = load("demo")
    engine = load("demo", backbones=plain.backbones, translation_engine="ctranslate2")
    _, first_call_s = _timed(lambda: _chunked(engine, prefixes[:1]))  # conversion (once per translator) + load
    ours, transformers_s = _timed(lambda: _chunked(plain, prefixes))
    theirs, ct2_s = _timed(lambda: _chunked(engine, prefixes))
    words = [p.word for start in range(0, len(prefixes), 16)
             for p in predict(engine, prefixes[start:start + 16], num_candidates=5, output_attentions=False)]
    return {"prefixes": len(prefixes), "threads": torch.get_num_threads(),
            "translate_all_transformers_s": round(transformers_s, 2), "translate_all_ct2_s": round(ct2_s, 2),
            "ct2_first_call_s": round(first_call_s, 2),
            "translations_identical_to_now": sum(a == b for a, b in zip(ours, theirs)),
            "transformers_translations_identical_to_reference": sum(a == r["translation"] for a, r in zip(ours, rows)),
            "ct2_translations_identical_to_reference": sum(b == r["translation"] for b, r in zip(theirs, rows)),
            "ct2_words_identical_to_reference": sum(w == r["word"] for w, r in zip(words, rows))}


def paper(preset: str) -> dict:
    from benchmarks.bench_paper import PREFIX, SEED, _decoding, sentences
    from tall_model import load
    from tall_model.predict import predict
    from tall_model.translate import translate

    plain = load(preset, decoding=_decoding(), seed=SEED)
    engine = load(plain.config, backbones=plain.backbones, translation_engine="ctranslate2", seed=SEED)
    _, first_call_s = _timed(lambda: translate(engine, [PREFIX]))
    out = {"threads": torch.get_num_threads(), "ct2_first_call_s": round(first_call_s, 2)}
    for name, model in (("transformers", plain), ("ct2", engine)):
        out[f"translate_{name}_s"] = round(statistics.median(_timed(lambda: translate(model, [PREFIX]))[1]
                                                             for _ in range(3)), 3)
    prefixes = [" ".join(s.split()[:12]) for s in sentences(8, 13)]
    ours, theirs = translate(plain, prefixes), translate(engine, prefixes)
    out["translations_identical"] = f"{sum(a == b for a, b in zip(ours, theirs))}/{len(prefixes)}"
    words = [(predict(plain, p, translations=a, num_candidates=0, output_attentions=False).word,
              predict(plain, p, translations=b, num_candidates=0, output_attentions=False).word)
             for p, a, b in zip(prefixes, ours, theirs)]
    out["words_identical"] = f"{sum(a == b for a, b in words)}/{len(prefixes)}"
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="demo", choices=("demo", "paper-bloomz", "paper-qwen"))
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# load average: {os.getloadavg()}")
    print(json.dumps({"model": args.model, **(demo() if args.model == "demo" else paper(args.model))}))
    print(f"# load average: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
