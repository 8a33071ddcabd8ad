"""How a prediction is decoded: one type for the CLI, the app, training's dev metric, evaluation and every baseline.

The defaults are written here once: greedy; when sampling, the paper's temperature 0.7, top-k 50 and top-p 0.95
with seed 0; at most 8 pieces a word; the prefix translated greedily with at most 128 new pieces.

A greedy word is chosen piece by piece (`word_choice="pieces"`, the paper's way: the likeliest first piece, then
the likeliest next one...), or as the likeliest whole word among the candidates (`"best_candidate"`: the top first
pieces, each completed greedily, ranked by P(first) · P(next pieces) · P(end of word)); a likely first piece can
lead to an unlikely word, which the second avoids. The candidate words are the top `candidate_pool` first pieces,
each completed greedily, ranked by that whole-word probability: the list shown (and scored as top-5) is their best
five, so a wider pool finds words whose first piece is not among the five likeliest. `candidate_search="beam"`
searches whole words instead (a beam of `candidate_pool` partial words), so words that share a first piece can all
be candidates (`tall_model.candidates`).

`word_list` (a file, one word per line; default none, as in the paper) restricts the predicted word and the
candidates to the listed words (`tall_model.word_list`). `prior` (a file from `python -m tall_model.prior`; default
none, as in the paper) chooses the first piece of the greedy word by log P(piece | prefix) − prior_weight · log P̄(piece),
P̄ being the model's mean first-piece distribution over training prefixes (`tall_model.prior`; prior_weight None:
the weight the prior file carries). `ngram` (a word n-gram file, `tall_model.word_ngram`; default none, as in the
paper) adds the n-gram's `candidate_pool` best next words to the candidates, scores each with TALL as the searches
do, and ranks them all by log P(word) + λ · log S_ngram(word) (shallow fusion: the candidate list and the best whole
word both follow that ranking; greedy with `word_choice="best_candidate"` only); λ is `ngram_weight`, None: the
weight the n-gram file carries (0: no fusion). `ngram_discount` μ > 0 also subtracts μ · log P_train(word), the word's
frequency in the counted Hebrew, so words frequent anywhere gain less from the n-gram (None: the file's own μ, 0
if it carries none; benchmarks/RESULTS.md).

A model with the paper's subword framing predicts one piece, and greedy takes the likeliest of all pieces, as the
paper does, though a piece that continues a word cannot start the next one (the prefix ends at a word boundary).
`subword_word_start` (default off, as in the paper) holds that piece to the pieces that start a word, as the word
framing's first piece always is (the ablation row `subword-framing-wordstart`). `subword_skip_bare_start` (default
off) never picks the bare word-start marker ▁ as that piece: alone it is the empty word, which is never right.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

WORD_CHOICES = ("pieces", "best_candidate")
CANDIDATE_SEARCHES = ("first_pieces", "beam")  # tall_model.candidates
MAX_NGRAM_WEIGHT = 16


@dataclass(frozen=True)
class Decoding:
    sample: bool = False  # False: greedy
    temperature: float = 0.7
    top_k: int = 50  # 0: no limit
    top_p: float = 0.95
    seed: int = 0  # seeds sampling (greedy ignores it)
    max_word_pieces: int = 8  # pieces of the predicted Hebrew word
    translation_beams: int = 1  # the he→en translation of the prefix (stage 3's queries)
    translation_max_new_tokens: int = 128
    word_choice: str = "pieces"  # greedy only: "pieces" or "best_candidate" (see the module docstring)
    candidate_pool: int = 10  # first pieces completed into candidate words; the top-5 and best_candidate rank these
    candidate_search: str = "first_pieces"  # or "beam": a beam of candidate_pool partial words (tall_model.candidates)
    word_list: str | None = None  # predict only these words (a departure from the paper; tall_model.word_list)
    prior: str | None = None  # divide the model's prior out of the first piece (a departure; tall_model.prior)
    prior_weight: float | None = None  # w with a prior (0: the paper's greedy); None: the prior file's own w
    ngram: str | None = None  # a word n-gram file to weigh the candidates with (a departure; tall_model.word_ngram)
    ngram_weight: float | None = None  # λ with an n-gram (0: no fusion); None: the n-gram file's own λ
    ngram_discount: float | None = None  # μ: fusion also subtracts μ · log P_train(word); None: the file's own μ
    subword_word_start: bool = False  # framing "subword": the predicted piece must start a word (a departure)
    subword_skip_bare_start: bool = False  # framing "subword": the predicted piece is never ▁ alone (a departure)

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 = no limit), got {self.top_k}")
        if min(self.max_word_pieces, self.translation_beams, self.translation_max_new_tokens,
               self.candidate_pool) < 1:
            raise ValueError("max_word_pieces, translation_beams, translation_max_new_tokens and candidate_pool must "
                             "be >= 1")
        if self.candidate_search not in CANDIDATE_SEARCHES:
            raise ValueError(f"candidate_search must be one of {', '.join(CANDIDATE_SEARCHES)}; "
                             f"got {self.candidate_search!r}")
        if self.word_choice not in WORD_CHOICES:
            raise ValueError(f"word_choice must be one of {', '.join(WORD_CHOICES)}; got {self.word_choice!r}")
        for name in ("word_list", "prior", "ngram"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, str) and value.strip()):
                raise ValueError(f"{name} must be a file name or None, got {value!r}")
        if self.prior_weight is not None and not (isinstance(self.prior_weight, (int, float))
                                                  and 0 <= self.prior_weight <= 4):
            raise ValueError(f"prior_weight must be a number from 0 to 4, got {self.prior_weight!r}")
        if self.ngram_weight is not None and (isinstance(self.ngram_weight, bool) or not (
                isinstance(self.ngram_weight, (int, float)) and 0 <= self.ngram_weight <= MAX_NGRAM_WEIGHT)):
            raise ValueError(f"ngram_weight must be a number from 0 to {MAX_NGRAM_WEIGHT}, got {self.ngram_weight!r}")
        if self.ngram_discount is not None and (isinstance(self.ngram_discount, bool) or not (
                isinstance(self.ngram_discount, (int, float)) and 0 <= self.ngram_discount <= MAX_NGRAM_WEIGHT)):
            raise ValueError(f"ngram_discount must be a number from 0 to {MAX_NGRAM_WEIGHT}, got "
                             f"{self.ngram_discount!r}")
        for name in ("subword_word_start", "subword_skip_bare_start"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if (self.ngram_weight or self.ngram_discount) and not self.ngram:
            raise ValueError("ngram_weight and ngram_discount weigh a word n-gram: name its file (ngram=...)")
        if self.fuses_ngram and self.word_choice != "best_candidate":
            raise ValueError("n-gram fusion ranks whole words: it needs word_choice='best_candidate'")

    @property
    def fuses_ngram(self) -> bool:
        """An n-gram is named and not weighed 0 (None: the file's own λ)."""
        return bool(self.ngram) and self.ngram_weight != 0

    def replace(self, **changes: Any) -> "Decoding":
        return dataclasses.replace(self, **changes)

    def sampled(self, seed: int) -> "Decoding":
        """The same settings, sampling with `seed`."""
        return self.replace(sample=True, seed=int(seed))

    def greedy(self) -> "Decoding":
        return self.replace(sample=False)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: "Decoding | None" = None) -> "Decoding":
        """`data` may name only some fields; the rest come from `base` (default: the defaults above)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown decoding field(s): {', '.join(unknown)}")
        return (base or cls()).replace(**data)

    def describe(self) -> str:
        if not self.sample:
            text = "greedy" if self.word_choice == "pieces" else "greedy (best candidate word)"
        else:
            text = f"sampled (T={self.temperature:g}, top-k {self.top_k}, top-p {self.top_p:g}, seed {self.seed})"
        weight = "" if self.prior_weight is None else f" (w={self.prior_weight:g})"
        prior = f", prior-corrected{weight}" if self.prior and self.prior_weight != 0 else ""
        settings = [f"λ={self.ngram_weight:g}"] if self.ngram_weight is not None else []
        settings += [f"μ={self.ngram_discount:g}"] if self.ngram_discount else []
        fusion = "" if self.sample or not self.fuses_ngram else (
            ", n-gram fusion" + (f" ({', '.join(settings)})" if settings else ""))
        return text + (", listed words only" if self.word_list else "") + prior + fusion


GREEDY = Decoding()
TRANSLATION_FIELDS = ("translation_beams", "translation_max_new_tokens")
