"""Choosing one Hebrew piece: greedy, or seeded sampling with temperature, top-k and top-p."""

from __future__ import annotations

from functools import lru_cache

import torch

from .decoding import Decoding

WORD_START = "\u2581"  # SentencePiece's word-start marker


def piece_masks(tokenizer, vocab_size: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Boolean masks over the decoder vocabulary: (word-start pieces, pieces that end the current word,
    pieces never to emit). A word ends at the next word-start piece or at </s>. Computed once per tokenizer
    (a pass over a 65k vocabulary is not free)."""
    return _piece_masks(tokenizer, vocab_size, str(device))


@lru_cache(maxsize=16)
def _piece_masks(tokenizer, vocab_size: int, device: str):
    tokens = tokenizer.convert_ids_to_tokens(list(range(vocab_size)))
    special = set(tokenizer.all_special_ids)
    word_start = torch.tensor([bool(t) and t.startswith(WORD_START) and i not in special
                               for i, t in enumerate(tokens)], device=device)
    never = torch.zeros(vocab_size, dtype=torch.bool, device=device)
    never[[i for i in special if i < vocab_size and i != tokenizer.eos_token_id]] = True
    end_of_word = word_start.clone()
    end_of_word[tokenizer.eos_token_id] = True
    return word_start, end_of_word, never


@lru_cache(maxsize=16)
def bare_word_starts(tokenizer, vocab_size: int, device) -> torch.Tensor:
    """A mask of the pieces that are the word-start marker alone: they start a word but spell nothing, so one
    predicted alone (the subword framing's single piece) is the empty word."""
    tokens = tokenizer.convert_ids_to_tokens(list(range(vocab_size)))
    return torch.tensor([t == WORD_START for t in tokens], device=device)


def choose_piece(logits: torch.Tensor, allowed: torch.Tensor, settings: Decoding,
                 generator: torch.Generator | None, bias: torch.Tensor | None = None) -> tuple[int, float]:
    """Pick a piece among `allowed` (by its log-probability minus `bias`, when given); returns (id, the model's own
    probability of it)."""
    logits = logits.reshape(-1).float()
    model_probs = logits.softmax(-1)
    if bias is not None:
        logits = logits.log_softmax(-1) - bias
    masked = logits.masked_fill(~allowed, float("-inf"))
    if not settings.sample:
        token = int(masked.argmax())
        return token, float(model_probs[token])
    scores = masked / settings.temperature
    if settings.top_k:
        kth = scores.topk(min(settings.top_k, int(allowed.sum()))).values[-1]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if settings.top_p < 1.0:
        sorted_scores, order = scores.sort(descending=True)
        cumulative = sorted_scores.softmax(-1).cumsum(-1)
        drop = cumulative - sorted_scores.softmax(-1) >= settings.top_p  # keep the piece that crosses top_p
        scores = scores.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    token = int(torch.multinomial(scores.softmax(-1), 1, generator=generator))
    return token, float(model_probs[token])
