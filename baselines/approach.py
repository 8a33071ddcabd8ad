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

from tall_model.backbones import config_fingerprints, load_backbones
from tall_model.config import TallConfig
from tall_model.decoding import GREEDY, Decoding


class ApproachUnavailable(RuntimeError):
    """An approach cannot be built in this run (e.g. no adapter directory given); evaluation skips it."""


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
    (lr_hr, backbones, config, device), so baselines reuse the same translator code as TALL; config.decoding
    holds the translation settings."""

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
    def device(self) -> torch.device:
        return next(self.backbones.llm.parameters()).device

    def backbones_for(self, config: TallConfig):
        """These backbones when `config` names the same ones (by content), else the config's own, loaded."""
        if config_fingerprints(config) == self.backbones.fingerprints():
            return self.backbones
        return load_backbones(config)
