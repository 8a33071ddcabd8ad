"""Turning text into the tensors of the seven stages, with every length limit enforced in one place.

Long inputs are cut from the left: the end of a prefix is what predicts the next word.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class TallBatch:
    src_ids: torch.Tensor  # [B,S1] Hebrew prefix, he→en source tokens (ends with </s>)
    src_mask: torch.Tensor
    en_ids: torch.Tensor  # [B,S2] English translation, LLM tokens
    en_mask: torch.Tensor
    decoder_input_ids: torch.Tensor  # [B,T] decoder start + target[:-1]
    labels: torch.Tensor  # [B,T] Hebrew target pieces (-100 at padding)
    loss_mask: torch.Tensor  # [B,T] 1 where the loss is taken

    def to(self, device) -> "TallBatch":
        return TallBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def source_limit(model) -> int:
    limit = int(model.lr_hr.config.max_position_embeddings)
    if model.config.bridge_in_mode == "concat":  # Hebrew and English share bridge-in's positions
        limit = min(limit, _bridge_positions(model) // 2)
    elif model.config.bridge_in_mode == "hebrew_only":  # the Hebrew alone fills them
        limit = min(limit, _bridge_positions(model))
    return limit


def _bridge_positions(model) -> int:
    return min(model.config.bridge_in.max_positions, model.config.bridge_out.max_positions)


def english_limit(model) -> int:
    """English tokens that fit bridge-in's and bridge-out's position tables (concat also holds the Hebrew)."""
    limit = _bridge_positions(model)
    return limit - source_limit(model) if model.config.bridge_in_mode == "concat" else limit


def decoder_limit(model) -> int:
    return int(model.hr_lr.config.max_position_embeddings)


def source_ids(model, text: str) -> tuple[list[int], bool]:
    """he→en source tokens of a Hebrew text, cut from the left to fit; (ids, truncated)."""
    ids = model.backbones.lr_hr_tokenizer(text)["input_ids"]
    limit = source_limit(model)
    return (ids[-limit:], True) if len(ids) > limit else (ids, False)


def english_ids(model, text: str) -> tuple[list[int], bool]:
    tok = model.backbones.llm_tokenizer
    ids = tok(text)["input_ids"] or [tok.eos_token_id]  # an empty translation still needs one query
    limit = english_limit(model)
    return (ids[-limit:], True) if len(ids) > limit else (ids, False)


def target_pieces(model, text: str) -> list[int]:
    """en→he target-side pieces of a Hebrew text, without the closing </s>."""
    tok = model.backbones.hr_lr_tokenizer
    ids = tok(text_target=text)["input_ids"]
    return ids[:-1] if ids and ids[-1] == tok.eos_token_id else ids


def pad(rows: list[list[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), value, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


def _target_row(model, prefix: str, target: str, sentence: str | None) -> tuple[list[int], int]:
    """(target ids ending in </s>, number of pieces of the missing part)."""
    if model.config.framing == "subword":  # the paper's: the missing part is the sentence's last piece
        ids = target_pieces(model, sentence if sentence is not None else prefix + target)
        n_missing = 1
    else:
        word = target_pieces(model, target)
        if not word:
            raise ValueError(f"target word {target!r} has no pieces")
        ids, n_missing = target_pieces(model, prefix) + word, len(word)
    ids = ids + [model.backbones.hr_lr_tokenizer.eos_token_id]
    room = decoder_limit(model) - 1
    return (ids[-room:] if len(ids) > room else ids), n_missing


def make_training_batch(model, prefixes, translations, targets, sentences=None) -> TallBatch:
    """Teacher-forcing batch: the decoder reads the whole (prefix + missing part) Hebrew; the loss covers the
    missing part's pieces and its end (loss="word"), or only its last piece (loss="last", the paper's)."""
    if not (len(prefixes) == len(translations) == len(targets)):
        raise ValueError("prefixes, translations and targets must have the same length")
    sentences = sentences or [None] * len(prefixes)
    src_ids, src_mask = pad([source_ids(model, p)[0] for p in prefixes], model.lr_hr.config.pad_token_id)
    llm_pad = model.backbones.llm_tokenizer.pad_token_id
    en_ids, en_mask = pad([english_ids(model, t)[0] for t in translations], llm_pad)
    start = model.hr_lr.config.decoder_start_token_id
    rows, supervised = [], []
    for prefix, target, sentence in zip(prefixes, targets, sentences):
        ids, n_missing = _target_row(model, prefix, target, sentence)
        rows.append(ids)
        end = len(ids) - 1  # index of </s>
        span = range(end - n_missing, end + 1) if model.config.loss == "word" else range(end - 1, end)
        supervised.append([i for i in span if i >= 0])
    labels, label_mask = pad(rows, -100)
    decoder_input_ids = torch.full_like(labels, model.hr_lr.config.pad_token_id)
    decoder_input_ids[:, 0] = start
    decoder_input_ids[:, 1:] = labels[:, :-1].clamp_min(0)
    decoder_input_ids[:, 1:][label_mask[:, :-1] == 0] = model.hr_lr.config.pad_token_id
    loss_mask = torch.zeros_like(labels)
    for i, positions in enumerate(supervised):
        loss_mask[i, positions] = 1
    return TallBatch(src_ids, src_mask, en_ids, en_mask, decoder_input_ids, labels, loss_mask)
