"""Exported translators of one direction side by side on the build's held-out verses, with a paired significance test.

    python -m demo_build.translator_compare --data build/demo-v2/data --direction he-en \
        shipped=checkpoints/demo/he-en longer=build/heen-3600-out/he-en [--dev-limit N] [--out FILE.json]

Each model (NAME=FOLDER, a folder the he-en / en-he stage exports) translates every DEV pair (the choice) and the
test books' pairs (the report) twice: plain greedy and greedy under the no-repeat guard of three (how TALL's stage 3
reads a prefix), scored as the eval-translators stage scores (`demo_build.scoring`: chrF, BLEU, loop share). Every
model after the first is then compared with the first on each split and decoding: how many of its outputs differ,
a two-sided paired approximate randomization on corpus chrF (10,000 trials, seed 0; `paired_p`): "better"
needs p < 0.05; and the verses only the first / only this model loops on, with their exact McNemar p.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sacrebleu.metrics import CHRF
from transformers import MarianMTModel

from demo_build import data as dd
from demo_build.marian_tokenizer import load_marian_tokenizer
from demo_build.scoring import GEN_CANDIDATES, LENGTH_RATIO, in_loop, loop_fraction, score, translate
from evaluation.significance import mcnemar_exact

DECODINGS = ("greedy", "greedy_nrep3")
TRIALS, SEED = 10_000, 0


def held_out(data: Path, direction: str, dev_limit: int | None) -> dict[str, tuple[list[str], list[str]]]:
    """{split: (sources, references)} for dev (every pair, or the first dev_limit) and the test books' pairs that
    have English (Song of Songs has none)."""
    out = {}
    for split in ("dev", "test"):
        pairs = dd.scored_pairs(data, split)
        pairs = pairs[:dev_limit] if split == "dev" and dev_limit else pairs
        src, ref = ([p.he for p in pairs], [p.en for p in pairs]) if direction == "he-en" else (
            [p.en for p in pairs], [p.he for p in pairs])
        out[split] = (src, ref)
    return out


def outputs(folder: Path, direction: str, splits: dict) -> dict[tuple[str, str], list[str]]:
    """{(split, decoding): hypotheses} of one exported model (fp16 weights, fp32 compute, as the stage scores)."""
    tok = load_marian_tokenizer(folder)
    model = MarianMTModel.from_pretrained(str(folder), dtype=torch.float32)
    return {(split, name): translate(model, tok, src, GEN_CANDIDATES[name], LENGTH_RATIO[direction])
            for split, (src, _) in splits.items() for name in DECODINGS}


def paired_p(reference: list[str], base: list[str], other: list[str], trials: int = TRIALS, seed: int = SEED) -> float:
    """Two-sided approximate randomization on corpus chrF (Noreen 1989): the share of random per-verse swaps of the
    two outputs whose |chrF difference| is at least the real one, (count + 1) / (trials + 1). Not sacrebleu's
    PairedTest, which counts only strictly larger differences and so gives p ≈ 1e-4 to two systems that differ in
    one verse, or in none. Per-verse chrF statistics come from sacrebleu (the sums its corpus chrF is computed from)."""
    metric = CHRF()
    a = np.array(metric._extract_corpus_statistics(base, [reference]), dtype=np.float64)
    b = np.array(metric._extract_corpus_statistics(other, [reference]), dtype=np.float64)

    def chrf(stats: np.ndarray) -> float:
        return metric._compute_score_from_stats(list(stats)).score

    real = abs(chrf(a.sum(0)) - chrf(b.sum(0)))
    rng, count = np.random.default_rng(seed), 0
    for _ in range(trials):
        swap = rng.random(len(a)) < 0.5
        count += abs(chrf(np.where(swap[:, None], b, a).sum(0)) - chrf(np.where(swap[:, None], a, b).sum(0))) \
            >= real - 1e-9
    return (count + 1) / (trials + 1)


def compare(models: dict[str, Path], direction: str, splits: dict) -> list[dict]:
    hyps, rows = {}, []
    for name, folder in models.items():
        started = time.time()
        hyps[name] = outputs(folder, direction, splits)
        print(f"{name}: translated in {time.time() - started:.0f} s", flush=True)
    base = next(iter(models))
    for name in models:
        for (split, decoding), hyp in hyps[name].items():
            ref = splits[split][1]
            row = {"model": name, "split": split, "decoding": decoding, "n": len(hyp), **score(hyp, ref),
                   "loops": loop_fraction(hyp)}
            if name != base:
                theirs = hyps[base][(split, decoding)]
                row[f"p_vs_{base}"] = paired_p(ref, theirs, hyp)
                row[f"differ_from_{base}"] = sum(a != b for a, b in zip(theirs, hyp, strict=True))
                # verses only the base loops on / only this model loops on, and the exact McNemar p of that split
                row[f"loops_vs_{base}"] = list(mcnemar_exact([in_loop(h) for h in theirs], [in_loop(h) for h in hyp]))
            rows.append(row)
    return rows


def parse_model(text: str) -> tuple[str, Path]:
    name, sep, folder = text.partition("=")
    if not sep or not name or not (Path(folder) / "config.json").is_file():
        raise argparse.ArgumentTypeError(f"a model is NAME=FOLDER with an exported translator in FOLDER; got {text!r}")
    return name, Path(folder)


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", type=parse_model, help="NAME=FOLDER; the first is the base of the tests")
    ap.add_argument("--data", type=Path, required=True, help="the build's data folder (dev.jsonl, test.jsonl)")
    ap.add_argument("--direction", choices=tuple(LENGTH_RATIO), default="he-en")
    ap.add_argument("--dev-limit", type=int, default=None, help="only the first N dev pairs")
    ap.add_argument("--out", type=Path, default=None, help="also write the rows here (JSON)")
    args = ap.parse_args(argv)
    models = dict(args.models)
    if len(models) != len(args.models):
        ap.error("model names must differ")
    rows = compare(models, args.direction, held_out(args.data, args.direction, args.dev_limit))
    base = args.models[0][0]
    print(f"| model | split | decoding | n | chrF | BLEU | loops | outputs not {base}'s | chrF vs {base}, AR p | "
          f"loops only {base} / only this, McNemar p |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        p, differ, loops = r.get(f"p_vs_{base}"), r.get(f"differ_from_{base}", "—"), r.get(f"loops_vs_{base}")
        print(f"| {r['model']} | {r['split']} | {r['decoding']} | {r['n']} | {r['chrF']:.2f} | {r['BLEU']:.2f} | "
              f"{100 * r['loops']:.1f} % | {differ} | {'—' if p is None else f'{p:.4f}'} | "
              f"{'—' if loops is None else f'{loops[0]} / {loops[1]}, {loops[2]:.3g}'} |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return rows


if __name__ == "__main__":
    main()
