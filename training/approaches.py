"""The approach registry: TALL and the paper's four baselines behind one interface (`Approach`).

    tall         a TALL checkpoint (or model) via tall_model.predict
    direct       the frozen LLM continues the Hebrew prefix; its first whitespace word
    naive        translate-test: he→en, LLM's next English word, en→he, last Hebrew word
    soft-prompt  naive with a prompt-tuned LLM (PEFT prompt tuning; `train_baseline soft-prompt`)
    fine-tuned   direct with a LoRA-fine-tuned LLM (PEFT LoRA on Hebrew text; `train_baseline fine-tuned`)

`build_approach(name, resources)` raises ApproachUnavailable when this run lacks what the approach needs
(no checkpoint or adapter given), so evaluation can skip it with a note.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tall_model.predict import predict
from training.approach_base import (GREEDY, Approach, ApproachOutput, ApproachUnavailable, BaselineModels,
                                    Decoding)
from training.examples import word_core
from training.lm_words import LMSettings, WordLM
from training.peft_baselines import load_adapter
from training.tall_scoring import tall_gold_log_probs
from training.translate_test import TranslateTestApproach
from training.translation_cache import TranslationCache


class TallApproach(Approach):
    name = "tall"
    uses_translation = True
    can_score = True

    def __init__(self, model, source: str = "(in memory)") -> None:
        super().__init__()
        self.model, self.source = model.eval(), source

    @property
    def translator(self):
        return self.model

    def predict(self, prefixes: Sequence[str], translations: Sequence[str] | None = None,
                decoding: Decoding = GREEDY, num_candidates: int = 0) -> list[ApproachOutput]:
        preds = predict(self.model, list(prefixes), translations=None if translations is None else list(translations),
                        sample=decoding.sample, temperature=decoding.temperature, top_k=decoding.top_k,
                        top_p=decoding.top_p, seed=decoding.seed, num_candidates=num_candidates,
                        output_attentions=False)
        return [ApproachOutput(word_core(p.word), [w for c in p.candidates if (w := word_core(c.word))]
                               if num_candidates > 0 else None) for p in preds]

    def log_probs(self, prefixes, golds, translations=None) -> list[float]:
        if translations is None:
            from tall_model.translate import translate

            translations = translate(self.model, list(prefixes))
        return tall_gold_log_probs(self.model, prefixes, golds, translations)

    def describe(self) -> dict:
        cfg = self.model.config
        return {"name": self.name, "checkpoint": self.source, "lr_hr_translator": cfg.lr_hr_translator,
                "llm": cfg.llm, "hr_lr_translator": cfg.hr_lr_translator, "framing": cfg.framing,
                "translation_beams": cfg.translation_beams,
                "translation_max_new_tokens": cfg.translation_max_new_tokens}


class DirectApproach(Approach):
    """The LLM (frozen, or LoRA-merged for `fine-tuned`) continues the Hebrew prefix itself."""

    name = "direct"
    can_score = True

    def __init__(self, lm: WordLM, llm_id: str, name: str = "direct", adapter: str | None = None) -> None:
        super().__init__(name)
        self.lm, self.llm_id, self.adapter = lm, llm_id, adapter

    def predict(self, prefixes, translations=None, decoding: Decoding = GREEDY,
                num_candidates: int = 0) -> list[ApproachOutput]:
        words = self.lm.words(list(prefixes), decoding)
        ranked = self.lm.top_words(list(prefixes), num_candidates) if num_candidates > 0 else None
        return [ApproachOutput(w, None if ranked is None else ranked[i]) for i, w in enumerate(words)]

    def log_probs(self, prefixes, golds, translations=None) -> list[float]:
        return self.lm.log_probs(list(prefixes), list(golds))

    def describe(self) -> dict:
        return {"name": self.name, "llm": self.llm_id, "adapter": self.adapter,
                "max_new_tokens": self.lm.settings.max_new_tokens}


@dataclass
class ApproachResources:
    """What approaches are built from. `models` holds the preset's frozen backbones (shared by all)."""

    models: BaselineModels
    tall: str | Path | object | None = None  # checkpoint directory or a TallModel
    soft_prompt: str | Path | None = None
    fine_tuned: str | Path | None = None
    lm_settings: LMSettings = field(default_factory=LMSettings)
    back_cache: TranslationCache | None = None  # en→he translations of the translate-test baselines

    def word_lm(self, lm=None) -> WordLM:
        return WordLM(lm if lm is not None else self.models.llm, self.models.tokenizers.llm_tokenizer,
                      self.lm_settings)


def _build_tall(res: ApproachResources) -> Approach:
    if res.tall is None:
        raise ApproachUnavailable("no TALL checkpoint given (--tall DIR)")
    if not isinstance(res.tall, (str, Path)):
        return TallApproach(res.tall)
    from tall_model.checkpoint import from_pretrained, read_checkpoint_config

    cfg, own = read_checkpoint_config(res.tall)["config"], res.models.config
    same = all(_same_backbone(cfg[k], getattr(own, k)) for k in ("lr_hr_translator", "llm", "hr_lr_translator"))
    # Same backbones as the preset: reuse the loaded ones (from_pretrained still checks every dimension).
    model = from_pretrained(res.tall, backbones=res.models.backbones if same else None)
    return TallApproach(model, str(res.tall))


def _same_backbone(a: str, b: str) -> bool:
    """Checkpoints store repository paths relative to the repository: compare resolved directories."""
    from tall_model.backbones import resolve_local

    local_a, local_b = resolve_local(a), resolve_local(b)
    if local_a is not None and local_b is not None:
        return local_a.resolve() == local_b.resolve()
    return a == b


def _build_direct(res: ApproachResources) -> Approach:
    return DirectApproach(res.word_lm(), res.models.config.llm)


def _build_naive(res: ApproachResources) -> Approach:
    return TranslateTestApproach(res.models, res.word_lm(), "naive", res.back_cache)


def _build_soft_prompt(res: ApproachResources) -> Approach:
    if res.soft_prompt is None:
        raise ApproachUnavailable("no soft-prompt adapter given (--soft-prompt DIR; train one with "
                                  "`python -m training.train_baseline soft-prompt ...`)")
    lm = load_adapter("soft-prompt", res.soft_prompt, res.models.llm)
    return TranslateTestApproach(res.models, res.word_lm(lm), "soft-prompt", res.back_cache, str(res.soft_prompt))


def _build_fine_tuned(res: ApproachResources) -> Approach:
    if res.fine_tuned is None:
        raise ApproachUnavailable("no fine-tuned adapter given (--fine-tuned DIR; train one with "
                                  "`python -m training.train_baseline fine-tuned ...`)")
    lm = load_adapter("fine-tuned", res.fine_tuned, res.models.llm)
    return DirectApproach(res.word_lm(lm), res.models.config.llm, "fine-tuned", str(res.fine_tuned))


REGISTRY: dict[str, Callable[[ApproachResources], Approach]] = {
    "tall": _build_tall,
    "direct": _build_direct,
    "naive": _build_naive,
    "soft-prompt": _build_soft_prompt,
    "fine-tuned": _build_fine_tuned,
}
APPROACH_NAMES = tuple(REGISTRY)


def build_approach(name: str, resources: ApproachResources) -> Approach:
    if name not in REGISTRY:
        raise ValueError(f"unknown approach {name!r}; choose from {', '.join(APPROACH_NAMES)}")
    return REGISTRY[name](resources)

