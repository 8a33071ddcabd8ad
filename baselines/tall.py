"""The log-probability TALL gives a gold next word, batched: stages 1–6 once, stage 7 teacher-forced.

The event scored is the one `tall_model.predict` decodes: the word's pieces (the first one starts a word),
then a word boundary (any word-start piece or </s>). This matches `CandidateWord.prob`, so a candidate's
probability and the gold word's score are on the same scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tall_model.batching import decoder_limit, english_ids, pad, source_ids, target_pieces
from tall_model.predict import fit_prefix
from tall_model.sampling import piece_masks
from tall_model.text import validate_prefix


@torch.no_grad()
def tall_gold_log_probs(model, prefixes: Sequence[str], golds: Sequence[str],
                        translations: Sequence[str]) -> list[float]:
    """Natural-log P(next word = gold) for each prefix, at temperature 1 over the full vocabulary."""
    if not (len(prefixes) == len(golds) == len(translations)):
        raise ValueError("prefixes, golds and translations must have the same length")
    if not prefixes:
        return []
    model.eval()
    used = [fit_prefix(model, validate_prefix(p))[0] for p in prefixes]  # the same cut `predict` makes
    src_ids, src_mask = pad([source_ids(model, u)[0] for u in used], model.lr_hr.config.pad_token_id)
    en_ids, en_mask = pad([english_ids(model, t)[0] for t in translations],
                          model.backbones.llm_tokenizer.pad_token_id)
    dev = model.device
    encoding = model.encode_prefix(src_ids.to(dev), src_mask.to(dev), en_ids.to(dev), en_mask.to(dev))

    start, limit = model.hr_lr.config.decoder_start_token_id, decoder_limit(model)
    rows, spans = [], []
    for prefix, gold in zip(used, golds):
        word = target_pieces(model, gold)
        if not word:
            raise ValueError(f"the gold word {gold!r} has no pieces in the HR→LR vocabulary")
        context = target_pieces(model, prefix)
        keep = max(limit - 2 - len(word), 0)  # room for the start token and the boundary position
        context = context[len(context) - keep:] if keep else []
        rows.append([start] + context + word)
        spans.append((len(context), word))
    ids, _ = pad(rows, model.hr_lr.config.pad_token_id)  # right padding: causal attention never sees it
    logits, _, _ = model.decode(encoding, ids.to(dev))
    logp = logits.float().log_softmax(-1)
    _, end_of_word, _ = piece_masks(model.backbones.hr_lr_tokenizer, logp.shape[-1], dev)
    scores = []
    for i, (n, word) in enumerate(spans):
        # position n + j (0 = the start token) predicts word[j]; position n + len(word) predicts the boundary
        total = sum(float(logp[i, n + j, piece]) for j, piece in enumerate(word))
        total += float(logp[i, n + len(word), end_of_word].logsumexp(-1))
        scores.append(total)
    return scores
