"""Demo English LM: BloomForCausalLM (hidden 160, 4 layers, 4 heads, ALiBi, tied embeddings) with a 4,096-entry
byte-level BPE tokenizer, trained to a step budget on English that shares no text with the test books: JPS 1917
of the TRAIN books + the KJV of the same books, or (--versions-for lm) + every verified English version's TRAIN
books and New Testament (demo_build.versions).  ~1.9 M parameters, ~3.8 MB in fp16."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from tqdm import tqdm
from transformers import BloomConfig, BloomForCausalLM, PreTrainedTokenizerFast

from demo_build.budget import ThreadTuner
from demo_build.stage_ckpt import load_stage_ckpt, save_stage_ckpt

LM_VOCAB = 4096
LM_DIMS = dict(hidden_size=160, n_layer=4, n_head=4)
BLOCK = 128
BOS, EOS, PAD = "<s>", "</s>", "<pad>"


def train_lm_tokenizer(texts: list[str], out_dir: Path, vocab_size: int = LM_VOCAB):
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, BOS, EOS], min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tk.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                   unk_token=None, model_max_length=1024)
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out_dir))
    return fast


def docs_to_blocks(tok, docs: list[str], block: int = BLOCK) -> torch.Tensor:
    """Each doc (a chapter) -> <s> text </s>; all concatenated and cut into non-overlapping blocks."""
    ids = []
    for d in docs:
        ids.append(tok.bos_token_id)
        ids.extend(tok(d, add_special_tokens=False)["input_ids"])
        ids.append(tok.eos_token_id)
    return torch.tensor(ids)


def _stream_blocks(stream: torch.Tensor, block: int):
    n = (len(stream) - 1) // block
    x = stream[: n * block].view(n, block)
    y = stream[1: n * block + 1].view(n, block)
    return x, y


@torch.no_grad()
def perplexity(model, tok, docs: list[str], block: int = BLOCK) -> dict:
    """Token-level perplexity over non-overlapping blocks (each block is scored from scratch), plus the same total
    NLL per whitespace word (tokenizer-independent)."""
    model.eval()
    stream = docs_to_blocks(tok, docs, block)
    x, y = _stream_blocks(stream, block)
    tot, n = 0.0, 0
    for i in range(0, len(x), 32):
        logits = model(input_ids=x[i:i + 32]).logits.float()
        tot += float(F.cross_entropy(logits.reshape(-1, logits.size(-1)), y[i:i + 32].reshape(-1), reduction="sum"))
        n += y[i:i + 32].numel()
    words = sum(len(d.split()) for d in docs)
    model.train()
    return dict(token_ppl=round(math.exp(tot / n), 2), word_ppl=round(math.exp(tot / max(1, words)), 2),
                tokens=n, words=words)


def new_lm(tok, seed: int) -> BloomForCausalLM:
    torch.manual_seed(seed)
    cfg = BloomConfig(vocab_size=len(tok), **LM_DIMS, hidden_dropout=0.1, attention_dropout=0.1,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      tie_word_embeddings=True)
    return BloomForCausalLM(cfg)


def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The block order of one epoch: a function of (seed, epoch) only, so a resumed run sees the same batches."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1000 + epoch))


def train_lm(*, tok, train_docs, dev_docs, stage_dir: Path, steps: int, seed: int, lr: float = 2e-3,
             warmup: int = 200, batch_size: int = 32, eval_steps: int = 50, threads=(2, 1), log=print) -> dict:
    """Train to exactly `steps` optimizer steps: linear warmup, linear decay to 5 % at the last step; dev perplexity
    every `eval_steps` and at the end, the best model in <stage_dir>/best; a checkpoint (<stage_dir>/ckpt) at every
    evaluation, from which an interrupted run resumes."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    stage_dir.mkdir(parents=True, exist_ok=True)
    model = new_lm(tok, seed)
    n_params = sum(p.numel() for p in model.parameters())
    x, y = _stream_blocks(docs_to_blocks(tok, train_docs), BLOCK)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.1)
    st = dict(step=0, epoch=0, pos=0, elapsed=0.0, best=float("inf"), history=[], data_size=len(x))
    if (stage_dir / "ckpt" / "state.json").exists():
        st = load_stage_ckpt(stage_dir / "ckpt", model, opt, len(x))
        log(f"[lm] resumed at step {st['step']}, {st['elapsed'] / 60:.1f} min")
    log(f"[lm] {n_params:,} params, {len(x)} blocks of {BLOCK} ({len(x) * BLOCK:,} tokens), budget {steps} steps")
    bar = tqdm(total=steps, initial=st["step"], unit="step", desc="lm", mininterval=20)
    tuner = ThreadTuner(threads)
    t_mark = time.time()
    model.train()
    while st["step"] < steps:
        order = _epoch_order(len(x), seed, st["epoch"])
        while st["pos"] < len(order) and st["step"] < steps:
            idx = order[st["pos"]:st["pos"] + batch_size]
            frac = min(1.0, max(0, st["step"] + 1 - warmup) / max(1, steps - warmup))
            for g in opt.param_groups:
                g["lr"] = lr * min(1.0, (st["step"] + 1) / warmup) * (1.0 - 0.95 * frac)
            logits = model(input_ids=x[idx]).logits
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y[idx].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            st["step"] += 1
            st["pos"] += batch_size
            now = time.time()
            st["elapsed"] += now - t_mark
            tuner.update(now - t_mark, idx.numel() * BLOCK)
            bar.set_postfix(min=f"{st['elapsed'] / 60:.1f}", loss=f"{float(loss.detach()):.3f}", ep=st["epoch"],
                            th=tuner.cur, refresh=False)
            bar.update(1)
            if st["step"] % eval_steps == 0 or st["step"] == steps:
                _evaluate(model, tok, dev_docs, st, float(loss.detach()), stage_dir, opt, log)
            t_mark = time.time()  # do not bill evaluation to training
        if st["pos"] >= len(order):
            st["epoch"] += 1
            st["pos"] = 0
    bar.close()
    info = dict(params=n_params, steps=st["step"], step_budget=steps, epochs=round(st["epoch"] + st["pos"] / len(x), 3),
                train_minutes=round(st["elapsed"] / 60, 2), best_dev_token_ppl=st["best"], history=st["history"],
                lr=lr, warmup=warmup, block=BLOCK, batch_size=batch_size, seed=seed, train_tokens=int(len(x) * BLOCK),
                train_docs=len(train_docs), thread_switches=tuner.switches)
    (stage_dir / "train_info.json").write_text(json.dumps(info, indent=2))
    return info


def _evaluate(model, tok, dev_docs, st: dict, loss: float, stage_dir: Path, opt, log) -> None:
    """Dev perplexity; keep the best model; checkpoint the run (resume point)."""
    ppl = perplexity(model, tok, dev_docs)["token_ppl"]
    st["history"].append(dict(step=st["step"], minutes=round(st["elapsed"] / 60, 2), train_loss=round(loss, 4),
                              dev_token_ppl=ppl))
    log(f"[lm] step {st['step']} {st['elapsed'] / 60:.1f} min loss {loss:.3f} dev ppl {ppl}")
    if ppl < st["best"]:
        st["best"] = ppl
        model.save_pretrained(str(stage_dir / "best"))
    save_stage_ckpt(stage_dir / "ckpt", model, opt, st)


@torch.no_grad()
def sample(model, tok, prompts: list[str], max_new_tokens: int = 30) -> list[str]:
    model.eval()
    out = []
    for p in prompts:
        enc = tok(tok.bos_token + p, return_tensors="pt", add_special_tokens=False)
        g = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, no_repeat_ngram_size=3,
                           pad_token_id=tok.pad_token_id)
        out.append(tok.decode(g[0], skip_special_tokens=True))
    return out
