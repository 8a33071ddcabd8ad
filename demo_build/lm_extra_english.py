"""Does the demo LM gain from the verified English versions?  Trains the demo LM twice on one step budget, seed and
tokenizer: on the shipped build's text (lm_train.txt: JPS 1917 + KJV of the TRAIN books) and on what
`--versions-for lm` gives it (JPS of the TRAIN books + every verified version's TRAIN books and New Testament), and
prints the dev perplexity (JPS English of the DEV books) side by side at the same steps, with the load average.

    python -m demo_build.lm_extra_english [--workdir build/demo] [--steps 300] [--threads 2]

Needs the data and tokenizers stages of that work folder (python -m demo_build --stages data,tokenizers).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import time
from pathlib import Path

import torch
from transformers import AutoTokenizer

from demo_build import data as dd
from demo_build.data_stage import chapters
from demo_build.lm import train_lm

SEED = 1234


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default="build/demo")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--eval-steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    work = Path(args.workdir)
    data = work / "data"
    for needed in (data / "lm_train_versions.txt", work / "tok" / "lm" / "tokenizer.json"):
        if not needed.exists():
            raise SystemExit(f"{needed} is missing: run python -m demo_build --workdir {work} --stages data,tokenizers")
    torch.set_num_threads(args.threads)
    tok = AutoTokenizer.from_pretrained(str(work / "tok" / "lm"))
    dev = _lines(data / "lm_dev.txt")
    with_versions = chapters(dd.read_jsonl(data / "train.jsonl")) + _lines(data / "lm_train_versions.txt")
    random.Random(SEED).shuffle(with_versions)  # as demo_build.backbone_stages.stage_lm does
    runs = {"shipped text (JPS + KJV)": _lines(data / "lm_train.txt"), "JPS + verified versions + NT": with_versions}
    out = {"steps": args.steps, "threads": args.threads, "load_before": os.getloadavg(), "runs": {}}
    for name, docs in runs.items():
        t0 = time.time()
        run_dir = work / "bench_lm_extra" / name[:4].strip()
        shutil.rmtree(run_dir, ignore_errors=True)  # a fresh run each time, never a resumed one
        info = train_lm(tok=tok, train_docs=docs, dev_docs=dev, stage_dir=run_dir,
                        steps=args.steps, seed=SEED, eval_steps=args.eval_steps, threads=(args.threads,),
                        log=lambda msg: None)
        out["runs"][name] = dict(dev_token_ppl={h["step"]: h["dev_token_ppl"] for h in info["history"]},
                                 train_tokens=info["train_tokens"], epochs=info["epochs"],
                                 train_minutes=info["train_minutes"], wall_minutes=round((time.time() - t0) / 60, 2),
                                 load_after=os.getloadavg())
    out["load_after"] = os.getloadavg()
    steps = sorted(next(iter(out["runs"].values()))["dev_token_ppl"])
    print(f"dev token perplexity (JPS, DEV books), {args.steps} steps of 32x128 tokens, seed {SEED}, "
          f"{args.threads} thread(s); load {out['load_before'][0]:.1f} -> {out['load_after'][0]:.1f}")
    print("| step | " + " | ".join(out["runs"]) + " |")
    for s in steps:
        print(f"| {s} | " + " | ".join(str(r["dev_token_ppl"][s]) for r in out["runs"].values()) + " |")
    for name, r in out["runs"].items():
        print(f"{name}: {r['train_tokens']:,} training tokens, {r['epochs']} epochs, {r['train_minutes']} min")
    (work / "bench_lm_extra" / "result.json").write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
