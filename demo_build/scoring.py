"""Held-out scores of the demo translators (chrF/BLEU, a repetition-loop rate) and the decoding candidates the
eval-translators stage chooses from.

`translate` here is deliberately not tall_model.translate.generate_sorted: it passes each candidate's repetition
guards (no_repeat_ngram_size, repetition_penalty, beams) to generate, and caps a batch at
min(250, len_ratio × its padded source length + 10) new pieces with a per-direction ratio (2.2 he→en, 1.0 en→he),
batches of 48 sorted by characters. The shipped chrF/BLEU numbers (metrics.json, the model cards) were measured
this way; generate_sorted's per-row 2.5× + 8 cap and its greedy/beam-only arguments would change them."""

from __future__ import annotations

from collections import Counter

import sacrebleu
import torch

# what a candidate does not set is the library default, never the model's saved generation config: once the stage
# has saved its chosen guard there, "greedy" would otherwise be scored with that guard on a rerun
UNGUARDED = {"no_repeat_ngram_size": 0, "repetition_penalty": 1.0, "num_beams": 1, "early_stopping": False}
GENERATION_GUARDS = tuple(UNGUARDED)
GEN_CANDIDATES = {
    "greedy": dict(num_beams=1, do_sample=False),
    "greedy_nrep3": dict(num_beams=1, do_sample=False, no_repeat_ngram_size=3),
    "greedy_nrep3_rp1.2": dict(num_beams=1, do_sample=False, no_repeat_ngram_size=3, repetition_penalty=1.2),
    "beam4_nrep3": dict(num_beams=4, do_sample=False, no_repeat_ngram_size=3, early_stopping=True),
}
# new pieces per source piece allowed when scoring (English runs longer than Hebrew in pieces)
LENGTH_RATIO = {"he-en": 2.2, "en-he": 1.0}


@torch.no_grad()
def translate(model, tok, texts: list[str], gen: dict, len_ratio: float, batch_size: int = 48) -> list[str]:
    model.eval()
    out = [None] * len(texts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for s in range(0, len(order), batch_size):
        ids = order[s:s + batch_size]
        enc = tok([texts[i] for i in ids], return_tensors="pt", padding=True)
        max_new = min(250, int(len_ratio * enc["input_ids"].shape[1]) + 10)
        gen_ids = model.generate(**enc, max_new_tokens=max_new, **(UNGUARDED | gen))
        for i, t in zip(ids, tok.batch_decode(gen_ids, skip_special_tokens=True)):
            out[i] = t
    return out


def score(hyps, refs) -> dict:
    return dict(chrF=round(sacrebleu.corpus_chrf(hyps, [refs]).score, 2),
                BLEU=round(sacrebleu.corpus_bleu(hyps, [refs]).score, 2))


def in_loop(text: str, n: int = 3) -> bool:
    """Whether some word n-gram occurs >= 3 times in `text` (a crude loop detector)."""
    w = text.split()
    counts = Counter(tuple(w[i:i + n]) for i in range(len(w) - n + 1))
    return bool(counts) and max(counts.values()) >= 3


def loop_fraction(hyps, n: int = 3) -> float:
    """Share of outputs caught in a loop (`in_loop`)."""
    return round(sum(in_loop(h, n) for h in hyps) / max(1, len(hyps)), 3)
