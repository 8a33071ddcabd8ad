"""Demo translators: one joint SentencePiece vocabulary and two small MarianMTModels (he->en, en->he) trained from
scratch on CPU under a wall-clock budget, with periodic checkpoints so an interrupted run resumes.

Size choices (whole checkpoints/demo/ must stay <= 40 MB, these backbones + tokenizers <= 31 MB):
  * one joint unigram SentencePiece model, 6,000 entries (incl. </s>, <unk>, <pad>) shared by both directions;
    unigram (not BPE) because it segments Hebrew prefixes (ו/ה/ב/ל...) more consistently, and 6k instead of 8k
    keeps each Hebrew piece frequent (en->he is the slow direction) and saves 0.5 MB per model;
  * d_model 256, 3+3 layers, 4 heads, FFN 768, encoder/decoder/output embeddings all tied:
    6.27 M parameters = 12.6 MB per translator in fp16 (sinusoidal positions are not saved).
"""

from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from tall_model.tiny import write_marian_tokenizer
from training.demo_data import VersePair

PAD, EOS, UNK = "<pad>", "</s>", "<unk>"
VOCAB_SIZE = 6000
MODEL_DIMS = dict(d_model=256, encoder_layers=3, decoder_layers=3, encoder_attention_heads=4,
                  decoder_attention_heads=4, encoder_ffn_dim=768, decoder_ffn_dim=768)
MAX_PIECES = 128  # training pairs longer than this on either side are skipped (< 1 %)


# ---------------------------------------------------------------- tokenizer ---------------------------------------

def train_marian_tokenizer(train: list[VersePair], workdir: Path, out_dir: Path, seed: int,
                           vocab_size: int = VOCAB_SIZE) -> Path:
    """Joint he+en unigram SentencePiece -> MarianTokenizer directory (source.spm == target.spm, vocab.json)."""
    import sentencepiece as spm

    spm.set_random_generator_seed(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    text = workdir / "spm_train.txt"
    rnd = random.Random(seed)
    lines = [p.he for p in train] + [p.en for p in train]
    rnd.shuffle(lines)
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    prefix = workdir / "joint"
    spm.SentencePieceTrainer.train(
        input=str(text), model_prefix=str(prefix), vocab_size=vocab_size - 2, model_type="unigram",
        character_coverage=1.0, normalization_rule_name="identity", unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1, unk_piece=UNK,
        input_sentence_size=0, shuffle_input_sentence=False, seed_sentencepiece_size=200000,
        num_threads=2, minloglevel=2,
    )
    vocab = write_marian_tokenizer(Path(f"{prefix}.model"), out_dir, "he", "en", 256)
    assert len(vocab) == vocab_size, len(vocab)
    return out_dir


def load_marian_tokenizer(path):
    from transformers import MarianTokenizer
    return MarianTokenizer.from_pretrained(str(path))


def word_start_fraction(tok, texts: list[str]) -> float:
    """Fraction of whitespace-separated words whose first piece starts with '▁' (should be 1.0)."""
    words = starts = 0
    for t in texts:
        pieces = tok.tokenize(t)
        n_words = len(t.split())
        words += n_words
        starts += sum(1 for pc in pieces if pc.startswith("▁"))
    return starts / max(1, words)


class ThreadTuner:
    """The build machine is shared: with other processes on the 2 cores, 2 OpenMP threads can be ~2x *slower* than
    1 (threads wait for each other at every barrier).  Alternate: exploit the best thread count for `exploit_s`,
    then probe the other count for `probe_s`; keep whichever had the higher recent throughput."""

    def __init__(self, options=(2, 1), exploit_s: float = 90.0, probe_s: float = 20.0):
        self.options = tuple(dict.fromkeys(options))
        self.rate = {o: None for o in self.options}
        self.best = self.options[0]
        self.exploit_s, self.probe_s = exploit_s, probe_s
        self.cur = self.best
        self.phase_t = self.phase_n = 0.0
        self.switches = []
        torch.set_num_threads(self.cur)

    def update(self, seconds: float, units: float) -> None:
        if len(self.options) < 2:
            return
        self.phase_t += seconds
        self.phase_n += units
        limit = self.exploit_s if self.cur == self.best else self.probe_s
        if self.phase_t < limit:
            return
        self.rate[self.cur] = self.phase_n / max(1e-6, self.phase_t)
        if self.cur == self.best:
            nxt = next(o for o in self.options if o != self.best)  # probe the other
        else:
            known = {o: r for o, r in self.rate.items() if r is not None}
            new_best = max(known, key=known.get)
            if new_best != self.best:
                self.switches.append((self.best, new_best, {o: round(r) for o, r in known.items()}))
            self.best = nxt = new_best
        self.cur = nxt
        self.phase_t = self.phase_n = 0.0
        torch.set_num_threads(self.cur)


# ---------------------------------------------------------------- model -------------------------------------------

def new_marian(tok, seed: int, eager: bool = False):
    from transformers import MarianConfig, MarianMTModel
    torch.manual_seed(seed)
    cfg = MarianConfig(
        vocab_size=len(tok), **MODEL_DIMS, max_position_embeddings=256, dropout=0.1, attention_dropout=0.1,
        activation_dropout=0.0, activation_function="swish", scale_embedding=True,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id,
        forced_eos_token_id=tok.eos_token_id, share_encoder_decoder_embeddings=True, tie_word_embeddings=True,
    )
    model = MarianMTModel(cfg)
    if eager:
        model.config._attn_implementation = "eager"
    return model


def encode_pairs(tok, pairs: list[VersePair], direction: str):
    """-> list of (src_ids, tgt_ids) with </s> appended; direction 'he-en' or 'en-he'."""
    src_txt = [p.he if direction == "he-en" else p.en for p in pairs]
    tgt_txt = [p.en if direction == "he-en" else p.he for p in pairs]
    src = tok(src_txt, add_special_tokens=True)["input_ids"]
    tgt = tok(text_target=tgt_txt, add_special_tokens=True)["input_ids"]
    return [(s, t) for s, t in zip(src, tgt) if len(s) <= MAX_PIECES and len(t) <= MAX_PIECES]


def make_batches(data, max_tokens: int, rnd: random.Random):
    """Length-bucketed batches, each <= max_tokens padded (src+tgt) tokens; order shuffled with rnd."""
    idx = sorted(range(len(data)), key=lambda i: (len(data[i][0]) + len(data[i][1]), rnd.random()))
    batches, cur, cur_max = [], [], 0
    for i in idx:
        ln = len(data[i][0]) + len(data[i][1])
        m = max(cur_max, ln)
        if cur and m * (len(cur) + 1) > max_tokens:
            batches.append(cur)
            cur, m = [], ln
        cur.append(i)
        cur_max = m
    if cur:
        batches.append(cur)
    rnd.shuffle(batches)
    return batches


def collate(data, ids, pad_id: int, dec_start: int):
    src = [data[i][0] for i in ids]
    tgt = [data[i][1] for i in ids]
    ms, mt = max(map(len, src)), max(map(len, tgt))
    inp = torch.full((len(ids), ms), pad_id, dtype=torch.long)
    att = torch.zeros((len(ids), ms), dtype=torch.long)
    lab = torch.full((len(ids), mt), -100, dtype=torch.long)
    dec = torch.full((len(ids), mt), pad_id, dtype=torch.long)
    for k, (s, t) in enumerate(zip(src, tgt)):
        inp[k, :len(s)] = torch.tensor(s)
        att[k, :len(s)] = 1
        lab[k, :len(t)] = torch.tensor(t)
        dec[k, 0] = dec_start
        dec[k, 1:len(t)] = torch.tensor(t[:-1])
    return inp, att, dec, lab


def _loss(model, batch, smoothing: float):
    inp, att, dec, lab = batch
    out = model(input_ids=inp, attention_mask=att, decoder_input_ids=dec)
    logits = out.logits.float()
    return F.cross_entropy(logits.view(-1, logits.size(-1)), lab.view(-1), ignore_index=-100,
                           label_smoothing=smoothing)


@torch.no_grad()
def dev_loss(model, data, pad_id, dec_start, max_tokens=6000):
    model.eval()
    tot, n = 0.0, 0
    for ids in make_batches(data, max_tokens, random.Random(0)):
        b = collate(data, ids, pad_id, dec_start)
        ntok = int((b[3] != -100).sum())
        tot += float(_loss(model, b, 0.0)) * ntok
        n += ntok
    model.train()
    return tot / max(1, n)


def train_translator(*, direction: str, tok, train_pairs, dev_pairs, stage_dir: Path, minutes: float, seed: int,
                     init_from: Path | None = None, lr: float = 1e-3, warmup: int = 500, max_tokens: int = 5000,
                     mix: dict | None = None, cont_dropout: float = 0.0,
                     smoothing: float = 0.1, final_lr_frac: float = 0.05, ckpt_minutes: float = 5.0,
                     threads=(2, 1), log=print) -> dict:
    """Time-budgeted training.  Schedule: linear warmup over `warmup` steps, then linear decay (in *elapsed time*) to final_lr_frac*lr at the budget end (budgeted training anneals to the
    deadline rather than using inverse-sqrt).

    mix: {"he-en": w1, "en-he": w2} trains ONE model on both directions (the target language is implied by the
    source script, so no tag is needed); each epoch takes a seeded random fraction w of each direction's pairs.
    Default {direction: 1.0}.  Caution: not validated; a bidirectional run with a too-short warmup collapsed (the
    encoder kept only a language-identity signal), so the build uses it only as an option.  Saves <stage_dir>/ckpt/ (safetensors + JSON) every ckpt_minutes and resumes from it; final fp32 model in
    <stage_dir>/final."""
    from tqdm import tqdm
    from transformers import MarianMTModel

    stage_dir.mkdir(parents=True, exist_ok=True)
    budget = minutes * 60.0
    ckpt_dir = stage_dir / "ckpt"
    eager = direction == "en-he"
    if init_from is not None and (init_from / "config.json").exists():
        # dropout off when continuing: the whole build sees each pair only ~1-2 times (under-fitted regime)
        model = MarianMTModel.from_pretrained(str(init_from), dtype=torch.float32, dropout=cont_dropout,
                                              attention_dropout=cont_dropout)
        log(f"[{direction}] warm start from {init_from} (dropout {cont_dropout})")
    else:
        model = new_marian(tok, seed, eager=eager)
    if eager:
        model.config._attn_implementation = "eager"
        model.config.attn_implementation = "eager"
    pad_id, dec_start = tok.pad_token_id, model.config.decoder_start_token_id
    mix = mix or {direction: 1.0}
    data_by = {d: encode_pairs(tok, train_pairs, d) for d in mix}
    dev_by = {d: encode_pairs(tok, dev_pairs, d)[:300] for d in ("he-en", "en-he")}

    def epoch_data(epoch):
        r = random.Random(seed * 7919 + epoch)
        out = []
        for d, w in mix.items():
            items = data_by[d]
            out += items if w >= 1.0 else r.sample(items, int(len(items) * w))
        return out

    data = epoch_data(0)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), eps=1e-9, weight_decay=0.01)
    state = dict(step=0, elapsed=0.0, epoch=0, pos=0, history=[])
    if (ckpt_dir / "state.json").exists():
        state = load_translator_ckpt(ckpt_dir, model, opt)
        log(f"[{direction}] resumed at step {state['step']}, {state['elapsed'] / 60:.1f} min")

    def lr_at(step, elapsed):
        # warmup is counted in STEPS only: a post-LN Marian warmed up in ~45 steps (an earlier time-based warmup on
        # the slow shared machine) collapsed its encoder to a constant output (decoder = unconditional LM).
        if step + 1 < warmup:
            return lr * (step + 1) / warmup
        t_w = state.setdefault("warmup_end_elapsed", elapsed)  # decay runs from the end of warmup to the deadline
        frac = min(1.0, max(0.0, elapsed - t_w) / max(1.0, budget - t_w))
        return lr * (1.0 - (1.0 - final_lr_frac) * frac)

    def save_ckpt():
        save_translator_ckpt(ckpt_dir, model, opt, state)

    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    log(f"[{direction}] {n_params:,} params, {len(data)} train pairs, budget {minutes} min")
    bar = tqdm(total=int(budget), initial=int(state["elapsed"]), unit="s", desc=direction, mininterval=20)
    last_ckpt = state["elapsed"]
    tuner = ThreadTuner(threads)
    t_mark = time.time()
    ema = None
    override = stage_dir / "minutes_override"  # write a number here to change the budget of a running stage
    last_check = 0.0
    while state["elapsed"] < budget:
        data = epoch_data(state["epoch"])
        batches = make_batches(data, max_tokens, random.Random(seed * 1000 + state["epoch"]))
        while state["pos"] < len(batches) and state["elapsed"] < budget:
            b = collate(data, batches[state["pos"]], pad_id, dec_start)
            for g in opt.param_groups:
                g["lr"] = lr_at(state["step"], state["elapsed"])
            loss = _loss(model, b, smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            state["step"] += 1
            state["pos"] += 1
            now = time.time()
            state["elapsed"] += now - t_mark
            tuner.update(now - t_mark, int((b[3] != -100).sum()))
            t_mark = now
            ema = float(loss.detach()) if ema is None else 0.98 * ema + 0.02 * float(loss.detach())
            if state["elapsed"] - last_check > 15:
                last_check = state["elapsed"]
                new = _read_override(override, budget)
                if new != budget:
                    log(f"[{direction}] budget {budget / 60:.1f} -> {new / 60:.1f} min ({override})")
                    budget = new
                    bar.total = int(budget)
            bar.n = min(int(budget), int(state["elapsed"]))
            bar.set_postfix(step=state["step"], loss=f"{ema:.3f}", ep=state["epoch"], th=tuner.cur, refresh=False)
            bar.update(0)
            if state["elapsed"] - last_ckpt >= ckpt_minutes * 60:
                dls = {d: round(dev_loss(model, dv, pad_id, dec_start), 4) for d, dv in dev_by.items()}
                state["history"].append(dict(step=state["step"], minutes=round(state["elapsed"] / 60, 2),
                                             train_loss=round(ema, 4), dev_loss=dls))
                log(f"[{direction}] step {state['step']} {state['elapsed'] / 60:.1f} min th={tuner.cur} "
                    f"train {ema:.3f} dev {dls}")
                save_ckpt()
                last_ckpt = state["elapsed"]
                t_mark = time.time()  # do not bill eval/ckpt time to training
        if state["pos"] >= len(batches):
            state["epoch"] += 1
            state["pos"] = 0
    bar.close()
    dls = {d: round(dev_loss(model, dv, pad_id, dec_start), 4) for d, dv in dev_by.items()}
    dl = dls[direction]
    state["history"].append(dict(step=state["step"], minutes=round(state["elapsed"] / 60, 2),
                                 train_loss=round(ema or 0.0, 4), dev_loss=dls))
    save_ckpt()
    final = stage_dir / "final"
    model.save_pretrained(str(final))
    tok.save_pretrained(str(final))
    info = dict(direction=direction, params=n_params, steps=state["step"], epochs=state["epoch"] + state["pos"] / max(1, len(batches)),
                train_minutes=round(state["elapsed"] / 60, 2), dev_loss=round(dl, 4), history=state["history"],
                dev_loss_by_direction=dls, mix=mix,
                lr=lr, warmup=warmup, max_tokens=max_tokens, label_smoothing=smoothing,
                init_from=str(init_from) if init_from else None, seed=seed, thread_switches=tuner.switches,
                thread_rates={k: (round(v) if v else None) for k, v in tuner.rate.items()})
    (stage_dir / "train_info.json").write_text(json.dumps(info, indent=2))
    return info


def save_translator_ckpt(directory: Path, model, opt, state: dict) -> None:
    """Mid-stage checkpoint without pickle: weights and AdamW tensors in safetensors, the rest JSON; written beside
    and swapped in, so a crash mid-save keeps the previous one."""
    from safetensors.torch import save_file, save_model

    from training.train_state import optimizer_state, replace_dir, write_json

    tmp = directory.with_name(directory.name + ".tmp")
    if tmp.exists():  # left over by a crash during an earlier save
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / "model.safetensors"))  # save_model handles the tied embedding matrices
    tensors, info = optimizer_state(opt)
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    write_json(tmp / "state.json", {"state": state, "optimizer": info})
    replace_dir(tmp, directory)


def load_translator_ckpt(directory: Path, model, opt) -> dict:
    from safetensors.torch import load_file, load_model

    from training.train_state import load_optimizer_state

    load_model(model, str(directory / "model.safetensors"))
    meta = json.loads((directory / "state.json").read_text())
    load_optimizer_state(opt, load_file(str(directory / "optimizer.safetensors")), meta["optimizer"])
    return meta["state"]


def _read_override(path: Path, budget: float) -> float:
    try:
        return float(path.read_text().strip()) * 60.0 if path.exists() else budget
    except ValueError:
        return budget


def export_fp16(src_dir: Path, out_dir: Path, eager: bool = False, gen_overrides: dict | None = None):
    """save_pretrained in fp16 (+ tokenizer) into out_dir."""
    from transformers import MarianMTModel
    model = MarianMTModel.from_pretrained(str(src_dir), dtype=torch.float32)
    model = model.half()
    if eager:
        model.config._attn_implementation = "eager"
        model.config.attn_implementation = "eager"
    gc = model.generation_config
    gc.max_length = 256
    gc.num_beams = 1
    gc.bad_words_ids = [[model.config.pad_token_id]]
    for k, v in (gen_overrides or {}).items():
        setattr(gc, k, v)
    if out_dir.exists():
        for f in out_dir.iterdir():
            if f.name != "README.md":
                f.unlink() if f.is_file() else shutil.rmtree(f)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    load_marian_tokenizer(src_dir).save_pretrained(str(out_dir))
    if eager:  # make sure the saved config says eager, whatever the transformers version does on save
        cfg_p = out_dir / "config.json"
        cfg = json.loads(cfg_p.read_text())
        cfg["attn_implementation"] = "eager"
        cfg["_attn_implementation"] = "eager"
        cfg_p.write_text(json.dumps(cfg, indent=2) + "\n")


# ---------------------------------------------------------------- evaluation --------------------------------------

@torch.no_grad()
def translate(model, tok, texts: list[str], gen: dict, len_ratio: float, batch_size: int = 48) -> list[str]:
    model.eval()
    out = [None] * len(texts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for s in range(0, len(order), batch_size):
        ids = order[s:s + batch_size]
        enc = tok([texts[i] for i in ids], return_tensors="pt", padding=True)
        max_new = min(250, int(len_ratio * enc["input_ids"].shape[1]) + 10)
        gen_ids = model.generate(**enc, max_new_tokens=max_new, **gen)
        for i, t in zip(ids, tok.batch_decode(gen_ids, skip_special_tokens=True)):
            out[i] = t
    return out


def score(hyps, refs) -> dict:
    import sacrebleu
    return dict(chrF=round(sacrebleu.corpus_chrf(hyps, [refs]).score, 2),
                BLEU=round(sacrebleu.corpus_bleu(hyps, [refs]).score, 2))


def loop_fraction(hyps, n: int = 3) -> float:
    """Share of outputs in which some word n-gram repeats >= 3 times in a row-ish (a crude loop detector)."""
    bad = 0
    for h in hyps:
        w = h.split()
        grams = [tuple(w[i:i + n]) for i in range(len(w) - n + 1)]
        from collections import Counter
        c = Counter(grams)
        if c and max(c.values()) >= 3:
            bad += 1
    return round(bad / max(1, len(hyps)), 3)


GEN_CANDIDATES = {
    "greedy": dict(num_beams=1, do_sample=False),
    "greedy_nrep3": dict(num_beams=1, do_sample=False, no_repeat_ngram_size=3),
    "greedy_nrep3_rp1.2": dict(num_beams=1, do_sample=False, no_repeat_ngram_size=3, repetition_penalty=1.2),
    "beam4_nrep3": dict(num_beams=4, do_sample=False, no_repeat_ngram_size=3, early_stopping=True),
}
