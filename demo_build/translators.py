"""Demo translators: two small MarianMTModels (he->en, en->he) trained from scratch on CPU to a fixed number of
optimizer steps (the same run on any machine; the minutes it took are logged), with checkpoints every few hundred
steps (safetensors + JSON, no pickle, with the RNG state) so an interrupted run resumes mid-stage.

Size choices (made when checkpoints/demo/ had to stay <= 40 MB, these backbones + tokenizers <= 31 MB; the budget
is now 60 MB, issue 13):
  * the joint 6,000-entry SentencePiece vocabulary of demo_build.marian_tokenizer;
  * d_model 256, 3+3 layers, 4 heads, FFN 768, encoder/decoder/output embeddings all tied:
    6.27 M parameters = 12.6 MB per translator in fp16 (sinusoidal positions are not saved; demo_build.export).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import MarianConfig, MarianMTModel

from demo_build.budget import ThreadTuner, read_steps_override
from demo_build.data import VersePair
from demo_build.stage_ckpt import load_stage_ckpt, save_stage_ckpt

MODEL_DIMS = dict(d_model=256, encoder_layers=3, decoder_layers=3, encoder_attention_heads=4,
                  decoder_attention_heads=4, encoder_ffn_dim=768, decoder_ffn_dim=768)
MAX_PIECES = 128  # training pairs longer than this on either side are skipped (< 1 %)
DIRECTIONS = ("he-en", "en-he")


# ---------------------------------------------------------------- model and data ----------------------------------

def new_marian(tok, seed: int, eager: bool = False, dims: dict | None = None) -> MarianMTModel:
    """A fresh translator of MODEL_DIMS (or `dims`: the same keys, e.g. for demo_build.translator_sizes)."""
    torch.manual_seed(seed)
    cfg = MarianConfig(
        vocab_size=len(tok), **(dims or MODEL_DIMS), max_position_embeddings=256, dropout=0.1, attention_dropout=0.1,
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
    src = _encode_once(lambda texts: tok(texts, add_special_tokens=True)["input_ids"], src_txt)
    tgt = _encode_once(lambda texts: tok(text_target=texts, add_special_tokens=True)["input_ids"], tgt_txt)
    return [(s, t) for s, t in zip(src, tgt) if len(s) <= MAX_PIECES and len(t) <= MAX_PIECES]


def _encode_once(encode, texts: list[str]) -> list[list[int]]:
    """encode(texts) with each distinct text encoded once: with the English versions every Hebrew verse is
    there ten times."""
    distinct = list(dict.fromkeys(texts))
    ids = dict(zip(distinct, encode(distinct)))
    return [ids[t] for t in texts]


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


def new_optimizer(model, lr: float) -> torch.optim.AdamW:
    return torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), eps=1e-9, weight_decay=0.01)


def optimizer_step(model, opt, batch, smoothing: float) -> torch.Tensor:
    """One training step on `batch` (clipped to norm 1); returns the loss."""
    loss = _loss(model, batch, smoothing)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss


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


# ---------------------------------------------------------------- training ----------------------------------------

@dataclass
class TranslatorRecipe:
    """Optimisation of one translator stage.

    Schedule: linear warmup over `warmup` steps, then linear decay to final_lr_frac*lr at the last step of the
    budget (budgeted training anneals to the end rather than using inverse-sqrt).

    mix: {"he-en": w1, "en-he": w2} trains ONE model on both directions (the target language is implied by the
    source script, so no tag is needed); each epoch takes a seeded random fraction w of each direction's pairs.
    Default {direction: 1.0}.  Caution: not validated; a bidirectional run with a too-short warmup collapsed (the
    encoder kept only a language-identity signal), so the build uses it only as an option."""

    lr: float = 1e-3
    warmup: int = 500
    max_tokens: int = 5000  # padded src+tgt tokens per batch
    mix: dict | None = None
    cont_dropout: float = 0.0  # dropout when continuing from init_from
    smoothing: float = 0.1
    final_lr_frac: float = 0.05
    ckpt_steps: int = 250  # checkpoint (and dev loss) every this many steps: the same steps on every machine
    dims: dict | None = None  # the model's size (MODEL_DIMS keys) when not MODEL_DIMS; a warm start keeps its own
    snapshot_steps: int = 0  # also keep the model of every this many steps in <stage_dir>/snapshots/step-N (0: none)


def train_translator(*, direction: str, tok, train_pairs, dev_pairs, stage_dir: Path, steps: int, seed: int,
                     init_from: Path | None = None, threads=(2, 1), log=print, extra_pairs: dict | None = None,
                     **recipe) -> dict:
    """Training of one direction to exactly `steps` optimizer steps (`recipe`: TranslatorRecipe fields).
    extra_pairs: {direction: more VersePairs} added to train_pairs for that direction only (e.g. the verified English
    versions for en->he).  Saves <stage_dir>/ckpt/ (safetensors + JSON) every ckpt_steps and resumes from it; final
    fp32 model in <stage_dir>/final; returns (and writes <stage_dir>/train_info.json) the run's summary."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    recipe = TranslatorRecipe(**recipe)
    if recipe.snapshot_steps % recipe.ckpt_steps:
        raise ValueError(f"snapshot_steps ({recipe.snapshot_steps}) must be a multiple of the checkpoint interval "
                         f"({recipe.ckpt_steps}): snapshots are taken at checkpoints")
    run = _TranslatorRun(direction, tok, stage_dir, steps, seed, recipe, log)
    run.prepare(train_pairs, dev_pairs, init_from, extra_pairs or {})
    run.train(threads)
    return run.finish(init_from)


def _initial_model(direction: str, tok, seed: int, init_from: Path | None, cont_dropout: float, log,
                   dims: dict | None = None):
    eager = direction == "en-he"
    if init_from is not None and (init_from / "config.json").exists():
        # dropout off when continuing: the whole build sees each pair only ~1-2 times (under-fitted regime)
        model = MarianMTModel.from_pretrained(str(init_from), dtype=torch.float32, dropout=cont_dropout,
                                              attention_dropout=cont_dropout)
        log(f"[{direction}] warm start from {init_from} (dropout {cont_dropout})")
    else:
        model = new_marian(tok, seed, eager=eager, dims=dims)
    if eager:
        model.config._attn_implementation = "eager"
        model.config.attn_implementation = "eager"
    return model


class _TranslatorRun:
    """The state of one translator stage: model, optimizer, the resumable `state` dict (step, data position,
    minutes spent) and the step budget."""

    def __init__(self, direction: str, tok, stage_dir: Path, steps: int, seed: int, recipe: TranslatorRecipe,
                 log) -> None:
        self.direction, self.tok, self.stage_dir, self.seed, self.recipe, self.log = (
            direction, tok, stage_dir, seed, recipe, log)
        self.steps = steps
        self.ckpt_dir = stage_dir / "ckpt"
        self.override = stage_dir / "steps_override"  # write a number here to change a running stage's budget
        self.mix = recipe.mix or {direction: 1.0}
        self.state = dict(step=0, elapsed=0.0, epoch=0, pos=0, history=[])
        self.ema = None
        self.n_batches = 0

    def prepare(self, train_pairs, dev_pairs, init_from: Path | None, extra_pairs: dict) -> None:
        self.stage_dir.mkdir(parents=True, exist_ok=True)
        self.model = _initial_model(self.direction, self.tok, self.seed, init_from, self.recipe.cont_dropout,
                                    self.log, self.recipe.dims)
        self.pad_id, self.dec_start = self.tok.pad_token_id, self.model.config.decoder_start_token_id
        self.data_by = {d: encode_pairs(self.tok, list(train_pairs) + list(extra_pairs.get(d, [])), d)
                        for d in self.mix}
        self.dev_by = {d: encode_pairs(self.tok, dev_pairs, d)[:300] for d in DIRECTIONS}
        self.data_size = sum(len(v) for v in self.data_by.values())
        self.state["data_size"] = self.data_size
        self.opt = new_optimizer(self.model, self.recipe.lr)
        if (self.ckpt_dir / "state.json").exists():
            self.state = load_stage_ckpt(self.ckpt_dir, self.model, self.opt, self.data_size)
            self.ema = self.state.get("ema")  # the logged train loss continues as if never interrupted
            self.log(f"[{self.direction}] resumed at step {self.state['step']}, "
                     f"{self.state['elapsed'] / 60:.1f} min")

    def epoch_data(self, epoch: int):
        r = random.Random(self.seed * 7919 + epoch)
        out = []
        for d, w in self.mix.items():
            items = self.data_by[d]
            out += items if w >= 1.0 else r.sample(items, int(len(items) * w))
        return out

    def lr_at(self, step: int) -> float:
        # a post-LN Marian warmed up in ~45 steps collapsed its encoder to a constant output (decoder = unconditional
        # LM): keep warmup in the hundreds of steps
        lr, warmup = self.recipe.lr, self.recipe.warmup
        if step + 1 < warmup:
            return lr * (step + 1) / warmup
        frac = min(1.0, max(0.0, step + 1 - warmup) / max(1, self.steps - warmup))
        return lr * (1.0 - (1.0 - self.recipe.final_lr_frac) * frac)

    def dev_losses(self) -> dict:
        return {d: round(dev_loss(self.model, dv, self.pad_id, self.dec_start), 4) for d, dv in self.dev_by.items()}

    def train(self, threads) -> None:
        self.model.train()
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self.log(f"[{self.direction}] {self.n_params:,} params, {len(self.epoch_data(0))} train pairs, "
                 f"budget {self.steps} steps")
        bar = tqdm(total=self.steps, initial=self.state["step"], unit="step", desc=self.direction, mininterval=20)
        self.tuner = ThreadTuner(threads)
        self.t_mark = time.time()
        while self.state["step"] < self.steps:
            data = self.epoch_data(self.state["epoch"])
            batches = make_batches(data, self.recipe.max_tokens, random.Random(self.seed * 1000 + self.state["epoch"]))
            self.n_batches = len(batches)
            self._run_epoch(data, batches, bar)
            if self.state["pos"] >= len(batches):
                self.state["epoch"] += 1
                self.state["pos"] = 0
        bar.close()

    def _run_epoch(self, data, batches, bar) -> None:
        state = self.state
        while state["pos"] < len(batches) and state["step"] < self.steps:
            self._step(collate(data, batches[state["pos"]], self.pad_id, self.dec_start))
            if state["step"] % 20 == 0:
                self._check_budget_override(bar)
            bar.set_postfix(min=f"{state['elapsed'] / 60:.1f}", loss=f"{self.ema:.3f}", ep=state["epoch"],
                            th=self.tuner.cur, refresh=False)
            bar.update(1)
            if state["step"] % self.recipe.ckpt_steps == 0 and state["step"] < self.steps:
                self._checkpoint()

    def _step(self, batch) -> None:
        state = self.state
        for g in self.opt.param_groups:
            g["lr"] = self.lr_at(state["step"])
        loss = optimizer_step(self.model, self.opt, batch, self.recipe.smoothing)
        state["step"] += 1
        state["pos"] += 1
        now = time.time()
        state["elapsed"] += now - self.t_mark
        self.tuner.update(now - self.t_mark, int((batch[3] != -100).sum()))
        self.t_mark = now
        value = float(loss.detach())
        self.ema = value if self.ema is None else 0.98 * self.ema + 0.02 * value

    def _check_budget_override(self, bar) -> None:
        new = read_steps_override(self.override, self.steps)
        if new != self.steps:
            self.log(f"[{self.direction}] budget {self.steps} -> {new} steps ({self.override})")
            self.steps = new
            bar.total = new

    def _checkpoint(self) -> None:
        state = self.state
        dls = self.dev_losses()
        state["history"].append(dict(step=state["step"], minutes=round(state["elapsed"] / 60, 2),
                                     train_loss=round(self.ema, 4), dev_loss=dls))
        state["ema"] = self.ema
        self.log(f"[{self.direction}] step {state['step']} {state['elapsed'] / 60:.1f} min th={self.tuner.cur} "
                 f"train {self.ema:.3f} dev {dls}")
        save_stage_ckpt(self.ckpt_dir, self.model, self.opt, state)
        every = self.recipe.snapshot_steps
        if every and state["step"] % every == 0:  # to score a step's model after the run (checkpoints overwrite)
            snapshot = self.stage_dir / "snapshots" / f"step-{state['step']}"
            self.model.save_pretrained(str(snapshot))
            self.tok.save_pretrained(str(snapshot))
        self.t_mark = time.time()  # do not bill eval/ckpt time to training

    def finish(self, init_from: Path | None) -> dict:
        state, recipe = self.state, self.recipe
        dls = self.dev_losses()
        state["history"].append(dict(step=state["step"], minutes=round(state["elapsed"] / 60, 2),
                                     train_loss=round(self.ema or 0.0, 4), dev_loss=dls))
        save_stage_ckpt(self.ckpt_dir, self.model, self.opt, state)
        final = self.stage_dir / "final"
        self.model.save_pretrained(str(final))
        self.tok.save_pretrained(str(final))
        info = dict(direction=self.direction, params=self.n_params, steps=state["step"], step_budget=self.steps,
                    train_pairs={d: len(v) for d, v in self.data_by.items()},
                    epochs=state["epoch"] + state["pos"] / max(1, self.n_batches),
                    train_minutes=round(state["elapsed"] / 60, 2), dev_loss=round(dls[self.direction], 4),
                    history=state["history"], dev_loss_by_direction=dls, mix=self.mix, lr=recipe.lr,
                    warmup=recipe.warmup, max_tokens=recipe.max_tokens, label_smoothing=recipe.smoothing,
                    dropout=self.model.config.dropout, init_from=str(init_from) if init_from else None, seed=self.seed,
                    thread_switches=self.tuner.switches,
                    thread_rates={k: (round(v) if v else None) for k, v in self.tuner.rate.items()})
        (self.stage_dir / "train_info.json").write_text(json.dumps(info, indent=2))
        return info
