"""The word n-gram as an evaluation approach (a reference row, not one of the paper's baselines): the counting, the
ranking and the saved file are tall_model.word_ngram's."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from baselines.approach import Approach, ApproachOutput
from tall_model.decoding import GREEDY, Decoding
from tall_model.word_ngram import (  # noqa: F401 (re-exported: the build, the app and evaluation name them here)
    DEFAULT_ORDER,
    MAX_ORDER,
    NGRAM_FILE,
    NgramError,
    WordNgram,
    load_ngram,
    save_ngram,
)


class WordNgramApproach(Approach):
    name = "word-ngram"

    def __init__(self, ngram: WordNgram, corpus: str) -> None:
        super().__init__()
        self.ngram, self.corpus = ngram, corpus

    def predict(self, prefixes: Sequence[str], translations: Sequence[str] | None = None,
                decoding: Decoding = GREEDY, num_candidates: int = 0) -> list[ApproachOutput]:
        generator = torch.Generator().manual_seed(decoding.seed)  # one stream per call, as the batches come
        out = []
        for prefix in prefixes:
            ranked = self.ngram.ranked(prefix, max(1, num_candidates))
            word = self.ngram.sample(prefix, decoding, generator) if decoding.sample else ranked[0]
            out.append(ApproachOutput(word, ranked if num_candidates > 0 else None))
        return out

    def describe(self) -> dict:
        return {"name": self.name, "order": self.ngram.order, "corpus": self.corpus,
                "sentences": self.ngram.sentences}
