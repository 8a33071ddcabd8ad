"""Shallow fusion with a word n-gram (`Decoding.ngram`, a departure from the paper): the n-gram's likeliest next
words join TALL's candidates, TALL scores each as it scores its own, and all are ranked by
    log P_TALL(word) − w · log P̄(first piece) + λ · log S_ngram(word | prefix) − μ · log P_train(word),
the prior term only with `Decoding.prior`, μ being `Decoding.ngram_discount`. The build chooses λ and μ on dev
(`demo_build.fusion_stage`, which re-ranks one pool per verse with `fused`); benchmarks/ngram_fusion.py sweeps the
prior's weight as well.
"""

from __future__ import annotations

import math

import torch

from .candidates import CandidateWord, scored_words
from .decoding import Decoding
from .text import normalize_word
from .word_list import WordTrie
from .word_ngram import WordNgram, cached_ngram


def fusion_ngram(settings: Decoding) -> tuple[WordNgram | None, float, float]:
    """The n-gram greedy decoding weighs candidates with, its λ and its μ (the decoding's, else the file's; μ 0 when
    neither names one); (None, 0, 0) for none."""
    if settings.sample or not settings.fuses_ngram:
        return None, 0.0, 0.0
    ngram = cached_ngram(settings.ngram)
    weight = settings.ngram_weight if settings.ngram_weight is not None else ngram.fusion_weight
    if weight is None:
        raise ValueError(f"the word n-gram {settings.ngram} carries no fusion weight: give one (ngram_weight, "
                         "--ngram-weight)")
    discount = settings.ngram_discount if settings.ngram_discount is not None else ngram.fusion_discount or 0.0
    return (ngram, weight, discount) if weight else (None, 0.0, 0.0)


def with_ngram_words(decoder, masks, candidates: list[CandidateWord], ngram: WordNgram, weight: float,
                     discount: float, prefix: str, settings: Decoding, tokenizer, trie: WordTrie | None,
                     bias) -> list[CandidateWord]:
    """TALL's candidates and the n-gram's `candidate_pool` best next words (scored by TALL), ranked by `fused`."""
    known = {normalize_word(c.word) for c in candidates}
    extra = [w for w in ngram.ranked(prefix, settings.candidate_pool) if w not in known]
    scored = scored_words(decoder, masks, extra, settings.max_word_pieces, tokenizer, trie)
    return fused(candidates + scored, ngram, prefix, weight, bias, discount)


def fused(candidates: list[CandidateWord], ngram: WordNgram, prefix: str, weight: float,
          bias: torch.Tensor | None, discount: float = 0.0) -> list[CandidateWord]:
    """The candidates best first by log P(word) − bias(its first piece) + weight · log S_ngram(word | prefix)
    − discount · log P_train(word)."""
    def score(c: CandidateWord) -> float:
        prior = float(bias[c.ids[0]]) if bias is not None and c.ids else 0.0
        frequent = discount * ngram.log_frequency(c.word) if discount else 0.0
        return math.log(max(c.prob, 1e-30)) - prior + weight * ngram.backoff_log_score(prefix, c.word) - frequent
    return sorted(candidates, key=score, reverse=True)
