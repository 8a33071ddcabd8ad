"""A whole paper-bloomz Predict request on the CPU with each inference setting (issue 10's ≤ 1.5 s target): fp32 or
int8 frozen backbones (tall_model.quantize) × transformers or CTranslate2 writing the he→en text.

Each setting runs in its own fresh process, back to back in one run: a process holds one setting, as the app does,
and CTranslate2's own OpenMP pool slows torch's later work in a process that used it (measured: +30-40 % on the
prediction), which would bias settings measured after it in a shared process. Per setting, medians of `--repeats`:
the translation alone (12-word prefix, capped at 30 pieces: random translators never stop), the prediction on a
given translation, and the whole request (translation, then the word with 5 candidates and both attention maps);
the process's peak RSS; and the words and translations on 8 fixed 12-word prefixes against the default's.

    python -m tall_model.standins --preset paper-bloomz --cache /work/standins     # once (≈1.7 GB)
    HF_HOME=/work/standins HF_HUB_OFFLINE=1 python -m benchmarks.bench_request [--threads 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from benchmarks.bench_paper import PREFIX, SEED, _decoding, peak_rss_gb, sentences
from benchmarks.timing import median_seconds

SETTINGS = (("transformers", "none"), ("ctranslate2", "none"), ("transformers", "int8"), ("ctranslate2", "int8"))


def measure(preset: str, engine: str, quantize: str, repeats: int) -> dict:
    from tall_model import load
    from tall_model.predict import predict
    from tall_model.translate import translate

    model = load(preset, decoding=_decoding(), seed=SEED, translation_engine=engine, quantize=quantize)
    english = translate(model, [PREFIX])[0]
    predict(model, PREFIX)  # warm-up (and CTranslate2's conversion, cached by fingerprint)
    prefixes = [" ".join(s.split()[:12]) for s in sentences(8, 13)]
    outputs = [predict(model, p, num_candidates=0, output_attentions=False) for p in prefixes]
    return {"translate_s": median_seconds(lambda: translate(model, [PREFIX]), repeats, digits=3),
            "predict_given_translation_s": median_seconds(lambda: predict(model, PREFIX, translations=english),
                                                          repeats, digits=3),
            "request_s": median_seconds(lambda: predict(model, PREFIX), repeats, digits=3),
            "words": [o.word for o in outputs], "translations": [o.translation for o in outputs],
            "peak_rss_gb": round(peak_rss_gb(), 3)}


def compare(rows: dict) -> dict:
    """Speed-up and agreement of every setting against the default (the first)."""
    base = next(iter(rows.values()))
    for row in rows.values():
        row["speedup"] = round(base["request_s"] / row["request_s"], 2)
        row["same_words"] = sum(a == b for a, b in zip(row["words"], base["words"]))
        row["same_translations"] = sum(a == b for a, b in zip(row["translations"], base["translations"]))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="paper-bloomz", choices=("paper-bloomz", "paper-qwen"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--one", metavar="ENGINE:QUANTIZE", help="measure one setting in this process (internal)")
    args = ap.parse_args(argv)
    if args.one:
        import torch

        torch.set_num_threads(args.threads)
        engine, quantize = args.one.split(":")
        print(json.dumps(measure(args.preset, engine, quantize, args.repeats), ensure_ascii=False))
        return 0
    print(f"# load average at the start: {os.getloadavg()}", flush=True)
    rows = {}
    for engine, quantize in SETTINGS:
        cmd = [sys.executable, "-m", "benchmarks.bench_request", "--preset", args.preset, "--threads",
               str(args.threads), "--repeats", str(args.repeats), "--one", f"{engine}:{quantize}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            print(proc.stderr[-3000:], file=sys.stderr)
            return proc.returncode
        rows[engine + ("" if quantize == "none" else f"+{quantize}")] = json.loads(proc.stdout.strip().splitlines()[-1])
    rows = compare(rows)
    print("| setting | translation | prediction on it | whole request | speed-up | same words | same texts | peak RSS |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['translate_s']:.2f} s | {r['predict_given_translation_s']:.2f} s | "
              f"**{r['request_s']:.2f} s** | {r['speedup']:.2f}× | {r['same_words']}/8 | {r['same_translations']}/8 "
              f"| {r['peak_rss_gb']:.2f} GB |")
    print(f"# load average at the end: {os.getloadavg()}")
    print(json.dumps({name: {k: v for k, v in r.items() if k not in ("words", "translations")}
                      for name, r in rows.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
