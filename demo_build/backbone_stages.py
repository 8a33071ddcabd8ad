"""Build stages of the demo backbones (see demo_build.build for the order):

  data              demo_build.data_stage: verse pairs, splits, the verified English versions, LM text
  tokenizers        the translators' joint SentencePiece vocabulary and the LM's byte-level BPE
  lm                the BLOOM-architecture English LM → checkpoints/demo/lm (fp16)
  he-en, en-he      the Marian translators → checkpoints/demo/{he-en,en-he} (fp16)
  eval-translators  chrF/BLEU on the held-out books; the repetition guard chosen on dev goes into each translator's
                    generation_config.json
"""

from __future__ import annotations

import json
import random
import time

import torch
from transformers import AutoTokenizer, BloomForCausalLM, GenerationConfig, MarianMTModel

from demo_build import data as dd
from demo_build.context import BuildContext, seed_everything
from demo_build.data_stage import chapters, read_version_pairs
from demo_build.export import export_fp16
from demo_build.lm import perplexity, sample, train_lm, train_lm_tokenizer
from demo_build.marian_tokenizer import load_marian_tokenizer, train_marian_tokenizer, word_start_fraction
from demo_build.scoring import GEN_CANDIDATES, GENERATION_GUARDS, LENGTH_RATIO, loop_fraction, score, translate
from demo_build.translators import train_translator


def _pairs(ctx: BuildContext, split: str) -> list[dd.VersePair]:
    return dd.read_jsonl(ctx.data_dir / f"{split}.jsonl")


def stage_tokenizers(ctx: BuildContext):
    train_marian_tokenizer(_pairs(ctx, "train"), ctx.workdir / "tok", ctx.marian_tok_dir, ctx.seed)
    tok = load_marian_tokenizer(ctx.marian_tok_dir)
    dev = _pairs(ctx, "dev")[:300]
    he_ws = word_start_fraction(tok, [p.he for p in dev])
    en_ws = word_start_fraction(tok, [p.en for p in dev])
    he_len = sorted(len(tok(p.he)["input_ids"]) for p in dev)
    en_len = sorted(len(tok(p.en)["input_ids"]) for p in dev)
    lm_texts = (ctx.data_dir / "lm_train.txt").read_text(encoding="utf-8").splitlines()
    train_lm_tokenizer(lm_texts, ctx.lm_tok_dir)
    return dict(marian_vocab=len(tok), he_word_start_fraction=round(he_ws, 4), en_word_start_fraction=round(en_ws, 4),
                median_pieces_he=he_len[len(he_len) // 2], median_pieces_en=en_len[len(en_len) // 2])


def versions_for(ctx: BuildContext) -> set[str]:
    """Which stages take the verified English versions (--versions-for: he-en, en-he, lm; 'none')."""
    wanted = {x.strip() for x in ctx.args.versions_for.split(",") if x.strip()} - {"none"}
    unknown = wanted - {"he-en", "en-he", "lm"}
    if unknown:
        raise ValueError(f"--versions-for: unknown {sorted(unknown)} (choose from he-en, en-he, lm, none)")
    return wanted


def _train_translator(ctx: BuildContext, direction: str, steps: int, init_from=None, mix=None, **recipe):
    recipe = {k: v for k, v in recipe.items() if v is not None}
    seed_everything(ctx.seed)
    tok = load_marian_tokenizer(ctx.marian_tok_dir)
    directions = mix or {direction: 1.0}
    extra = {}
    if set(directions) & versions_for(ctx):
        more = read_version_pairs(ctx)
        extra = {d: more for d in directions if d in versions_for(ctx)}
        ctx.log(f"[{direction}] + {len(more):,} pairs of the English versions for {sorted(extra)}")
    info = train_translator(direction=direction, tok=tok, train_pairs=_pairs(ctx, "train"),
                            dev_pairs=_pairs(ctx, "dev"), stage_dir=ctx.workdir / direction, steps=steps,
                            seed=ctx.seed, init_from=init_from, log=ctx.log, threads=ctx.thread_options(),
                            extra_pairs=extra, mix=mix, snapshot_steps=ctx.args.snapshot_steps, **recipe)
    info["english_versions_for"] = sorted(extra)
    export_fp16(ctx.workdir / direction / "final", ctx.out / direction, eager=(direction == "en-he"))
    return info


def stage_he_en(ctx: BuildContext):
    # he->en pairs only (the calibrated recipe); --bidir trains one model on both directions (experimental).
    mix = {"he-en": 1.0, "en-he": 1.0} if ctx.args.bidir else None
    return _train_translator(ctx, "he-en", ctx.args.steps_he_en, mix=mix, max_tokens=ctx.args.max_tokens,
                             lr=ctx.args.he_en_lr)


def stage_en_he(ctx: BuildContext):
    # Warm start from the he->en stage (bidirectional model): shared embeddings of both languages and all layers are
    # already trained, so en->he (the slow direction) does not start from noise.  --en-he-init scratch disables it.
    # With --bidir and --en-he-mix-he-en > 0 it keeps training on both directions and, if the result is also better
    # at he->en (dev loss), exports it as the he-en model too.  Default: en->he pairs only.
    a = ctx.args
    init = ctx.workdir / "he-en" / "final" if a.en_he_init == "he-en" else None
    mix = {"en-he": 1.0, "he-en": a.en_he_mix_he_en} if a.bidir and a.en_he_mix_he_en > 0 else None
    info = _train_translator(ctx, "en-he", a.steps_en_he, init_from=init, warmup=a.en_he_warmup, lr=a.en_he_lr,
                             mix=mix, max_tokens=a.max_tokens, cont_dropout=a.en_he_dropout)
    he_info_path = ctx.workdir / "he-en" / "train_info.json"
    if mix and he_info_path.exists():
        he_dev = json.loads(he_info_path.read_text())["dev_loss_by_direction"]["he-en"]
        new_dev = info["dev_loss_by_direction"]["he-en"]
        info["he_en_dev_loss_before_after"] = [he_dev, new_dev]
        if new_dev < he_dev:
            export_fp16(ctx.workdir / "en-he" / "final", ctx.out / "he-en", eager=False)
            info["he_en_reexported_from_en_he_stage"] = True
            ctx.log(f"[en-he] he->en dev loss {he_dev} -> {new_dev}: re-exported as checkpoints he-en")
    return info


def stage_lm(ctx: BuildContext):
    seed_everything(ctx.seed)
    tok = AutoTokenizer.from_pretrained(str(ctx.lm_tok_dir))

    def read(name):
        return [line for line in (ctx.data_dir / name).read_text(encoding="utf-8").splitlines() if line.strip()]

    if "lm" in versions_for(ctx):  # JPS of the TRAIN books + every verified version (no second, unverified KJV)
        docs = chapters(_pairs(ctx, "train")) + read("lm_train_versions.txt")
        random.Random(ctx.seed).shuffle(docs)
    else:
        docs = read("lm_train.txt")
    info = train_lm(tok=tok, train_docs=docs, dev_docs=read("lm_dev.txt"), stage_dir=ctx.workdir / "lm",
                    steps=ctx.args.steps_lm, seed=ctx.seed, log=ctx.log, threads=ctx.thread_options())
    info["english_versions"] = "lm" in versions_for(ctx)
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


def stage_eval_translators(ctx: BuildContext):
    seed_everything(ctx.seed)
    dev_pairs = dd.scored_pairs(ctx.data_dir, "dev")[::12][:90]  # every 12th dev verse: enough to choose the decoding, cheap on CPU
    _eval_threads(ctx)
    test_pairs = dd.scored_pairs(ctx.data_dir, "test")
    if ctx.args.eval_limit:  # smoke runs only
        dev_pairs, test_pairs = dev_pairs[:ctx.args.eval_limit], test_pairs[:ctx.args.eval_limit]
    (ctx.workdir / "eval").mkdir(parents=True, exist_ok=True)
    res = {}
    for direction in ("he-en", "en-he"):
        if not (ctx.out / direction / "config.json").exists():
            ctx.log(f"[eval] {direction}: no model, skipped")
            continue
        res[direction] = _score_translator(ctx, direction, dev_pairs, test_pairs)
    ctx.add_metrics({"translators": res})
    return {k: {"chosen": v["chosen_generation"], "test": v["test"]} for k, v in res.items()}


def _score_translator(ctx: BuildContext, direction: str, dev_pairs, test_pairs) -> dict:
    """Every decoding candidate on dev, the best (chrF) and greedy on test; the best is saved as the shipped
    translator's generation config."""
    d, ratio = ctx.out / direction, LENGTH_RATIO[direction]
    tok = load_marian_tokenizer(d)
    model16 = MarianMTModel.from_pretrained(str(d), dtype=torch.float32)  # fp16 weights, fp32 compute

    def src(ps):
        return [p.he if direction == "he-en" else p.en for p in ps]

    def ref(ps):
        return [p.en if direction == "he-en" else p.he for p in ps]

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
    elif before := ctx.metrics().get("translators", {}).get(direction, {}).get("dev_greedy_fp32_before_cast"):
        r["dev_greedy_fp32_before_cast"] = before  # the fp32 weights are gone from this work folder: keep the figure
    best = max(r["dev_candidates"], key=lambda k: r["dev_candidates"][k]["chrF"])
    r["chosen_generation"] = best
    for name in dict.fromkeys(["greedy", best]):
        hyp = translate(model16, tok, src(test_pairs), GEN_CANDIDATES[name], ratio)
        r[f"test_{name}"] = dict(**score(hyp, ref(test_pairs)), loops=loop_fraction(hyp), n=len(test_pairs))
        (ctx.workdir / "eval" / f"{direction}.test.{name}.txt").write_text("\n".join(hyp) + "\n", encoding="utf-8")
        ctx.log(f"[eval] {direction} TEST {name}: {r[f'test_{name}']}")
    r["test"] = r[f"test_{best}"]
    # one beam with the chosen guard: how TALL's stage 3 translates a prefix (translation_beams=1 under the shipped
    # generation config), so the greedy figure that matters to TALL
    guarded = {k: v for k, v in GEN_CANDIDATES[best].items() if k != "early_stopping"} | {"num_beams": 1}
    hyp = translate(model16, tok, src(test_pairs), guarded, ratio)
    r["test_greedy_guarded"] = dict(**score(hyp, ref(test_pairs)), loops=loop_fraction(hyp), n=len(test_pairs))
    ctx.log(f"[eval] {direction} TEST greedy with the chosen guard: {r['test_greedy_guarded']}")
    gc = GenerationConfig.from_pretrained(str(d))  # the chosen repetition guard, into generation_config.json
    for key in GENERATION_GUARDS:
        setattr(gc, key, getattr(GenerationConfig(), key))
    for key, value in GEN_CANDIDATES[best].items():
        setattr(gc, key, value)
    gc.save_pretrained(str(d))
    return r


def _eval_threads(ctx: BuildContext) -> None:
    """Decode with the thread count that trained fastest in the last translator stage (shared machine)."""
    for d in ("en-he", "he-en"):
        p = ctx.workdir / d / "train_info.json"
        if ctx.args.adaptive_threads and p.exists():
            rates = {int(k): v for k, v in json.loads(p.read_text()).get("thread_rates", {}).items() if v}
            if rates:
                torch.set_num_threads(max(rates, key=rates.get))
                ctx.log(f"[eval] {torch.get_num_threads()} thread(s) (training rates {rates})")
            return
