"""The one interface every approach (TALL and the paper's baselines) implements, and what they share.

An approach turns Hebrew prefixes (plus, optionally, their cached English translations) into predicted next
words; where it can, it also ranks candidate words and scores a gold word's log-probability. Evaluation only
talks to this interface, so adding an approach never touches the metric code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch

from tall_model import translate as tall_translate
from tall_model.config import REPO_ROOT, TallConfig
from training.translation_cache import TranslationCache

# The paper's inference sampling (TALL-SPEC.md, "Training"): every sampled run uses these.
PAPER_TEMPERATURE, PAPER_TOP_K, PAPER_TOP_P = 0.7, 50, 0.95


class ApproachUnavailable(RuntimeError):
    """An approach cannot be built in this run (e.g. no adapter directory given); evaluation skips it."""


@dataclass(frozen=True)
class Decoding:
    """Greedy, or seeded sampling (temperature, top-k, top-p). `seed` is required when sampling."""

    sample: bool = False
    temperature: float = PAPER_TEMPERATURE
    top_k: int = PAPER_TOP_K
    top_p: float = PAPER_TOP_P
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.sample and self.seed is None:
            raise ValueError("sampled decoding needs a seed (results must be reproducible)")
        if self.temperature <= 0 or not 0 < self.top_p <= 1 or self.top_k < 0:
            raise ValueError("temperature must be > 0, top_p in (0, 1] and top_k >= 0")

    @classmethod
    def sampled(cls, seed: int) -> "Decoding":
        return cls(sample=True, seed=seed)


GREEDY = Decoding()


@dataclass
class ApproachOutput:
    """One prefix's prediction. `word` is already stripped of surrounding punctuation ("" = no word);
    `candidates` is the approach's own ranking (best first), or None where it cannot rank."""

    word: str
    candidates: list[str] | None = None


class Approach(ABC):
    """Predict the next Hebrew word of each prefix.

    `translations[i]`, when given, is the he→en translation of `prefixes[i]` by `translator` (evaluation
    passes cached ones, so no prefix is translated twice); approaches that need it translate themselves
    when it is not given."""

    name: ClassVar[str] = "approach"
    uses_translation: ClassVar[bool] = False  # reads the he→en translation of the prefix
    can_rank: ClassVar[bool] = True  # returns candidates when asked
    can_score: ClassVar[bool] = False  # log_probs() returns numbers

    def __init__(self, name: str | None = None) -> None:
        if name is not None:
            self.name = name  # one class can serve two registry names (direct / fine-tuned)

    @property
    def translator(self):
        """The object `tall_model.translate.translate` translates prefixes with (None: no translation)."""
        return None

    @abstractmethod
    def predict(self, prefixes: Sequence[str], translations: Sequence[str] | None = None,
                decoding: Decoding = GREEDY, num_candidates: int = 0) -> list[ApproachOutput]:
        """One output per prefix; candidates only when num_candidates > 0 and the approach can rank."""

    def log_probs(self, prefixes: Sequence[str], golds: Sequence[str],
                  translations: Sequence[str] | None = None) -> list[float] | None:
        """Natural-log probability that the approach's next word is each gold word; None if it cannot say."""
        return None

    def describe(self) -> dict:
        """Model ids and settings for the results file."""
        return {"name": self.name}


@dataclass
class BaselineModels:
    """The frozen backbones seen through the attribute names `tall_model.translate` expects of a model
    (lr_hr, tokenizers, config, device), so baselines reuse the same translator code as TALL."""

    config: TallConfig
    backbones: object  # tall_model.backbones.Backbones

    @property
    def lr_hr(self):
        return self.backbones.lr_hr

    @property
    def llm(self):
        return self.backbones.llm

    @property
    def hr_lr(self):
        return self.backbones.hr_lr

    @property
    def tokenizers(self):
        return self.backbones

    @property
    def device(self) -> torch.device:
        return next(self.backbones.llm.parameters()).device


# --------------------------------------------------------------------------- cached prefix translation

DEFAULT_TRANSLATION_CACHE = REPO_ROOT / ".cache" / "translations.sqlite"


def open_prefix_cache(translator, path=DEFAULT_TRANSLATION_CACHE) -> TranslationCache:
    """The he→en cache for one translator with its decoding settings (shared by training and evaluation)."""
    cfg = translator.config
    return TranslationCache(path, translator_id=tall_translate.translator_id(translator),
                            settings={"beams": cfg.translation_beams, "max_new_tokens": cfg.translation_max_new_tokens})


def translate_prefixes(translator, cache: TranslationCache, texts: Sequence[str], progress: bool | None = None,
                       batch_size: int = 16) -> list[str]:
    """Translations of Hebrew prefixes; only distinct, uncached ones reach the translator."""
    return cache.translate(list(texts), lambda batch: tall_translate.translate(translator, batch),
                           batch_size=batch_size, tqdm=progress, desc="he→en")
