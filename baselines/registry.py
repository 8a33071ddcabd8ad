"""The approach registry: TALL and the paper's four baselines behind one interface (`Approach`).

    tall         a TALL checkpoint (or model) via tall_model.predict
    direct       the frozen LLM continues the Hebrew prefix; its first whitespace word
    naive        translate-test: he→en, LLM's next English word, en→he, last Hebrew word
    soft-prompt  naive with a prompt-tuned LLM (PEFT prompt tuning; `train_baseline soft-prompt`)
    fine-tuned   direct with a LoRA-fine-tuned LLM (PEFT LoRA on Hebrew text; `train_baseline fine-tuned`)
    word-ngram   not the paper's: word n-gram counts of the training Hebrew (--ngram-data), what the data alone gives

`build_approach(name, resources)` raises ApproachUnavailable when this run lacks what the approach needs
(no checkpoint or adapter given), so evaluation can skip it with a note.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from baselines.adapters import load_adapter
from baselines.approach import GREEDY, Approach, ApproachOutput, ApproachUnavailable, BaselineModels, Decoding
from baselines.naive import TranslateTestApproach, back_translator_id
from baselines.tall import tall_gold_log_probs
from baselines.word_lm import WORD_MAX_NEW_TOKENS, WordLM
from baselines.word_ngram import DEFAULT_ORDER, WordNgram, WordNgramApproach, load_ngram
from tall_data.corpus import read_corpus
from tall_data.examples import word_core
from tall_data.translation_cache import TranslationCache
from tall_model.load import load
from tall_model.predict import predict
from tall_model.translate import translate


class TallApproach(Approach):
    name = "tall"
    uses_translation = True
    can_score = True

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model.eval()

    @property
    def translator(self):
        return self.model

    def predict(self, prefixes: Sequence[str], translations: Sequence[str] | None = None,
                decoding: Decoding = GREEDY, num_candidates: int = 0) -> list[ApproachOutput]:
        preds = predict(self.model, list(prefixes), decoding=decoding, num_candidates=num_candidates,
                        translations=None if translations is None else list(translations), output_attentions=False)
        return [ApproachOutput(word_core(p.word), [w for c in p.candidates if (w := word_core(c.word))]
                               if num_candidates > 0 else None) for p in preds]

    def log_probs(self, prefixes, golds, translations=None) -> list[float]:
        if translations is None:
            translations = translate(self.model, list(prefixes))
        return tall_gold_log_probs(self.model, prefixes, golds, translations)

    def describe(self) -> dict:
        cfg = self.model.config
        return {"name": self.name, "source": getattr(self.model, "source", "(in memory)"),
                "backbones": self.model.backbones.fingerprints(), "framing": cfg.framing,
                "translation_beams": cfg.decoding.translation_beams,
                "translation_max_new_tokens": cfg.decoding.translation_max_new_tokens}


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
                "max_new_tokens": self.lm.max_new_tokens}


@dataclass
class ApproachResources:
    """What approaches are built from. `models` holds the frozen backbones (shared by all) and, in
    models.config.decoding, the translation settings every approach uses, so all read the same English.
    An adapter may be a list of candidate directories: the first that fits these backbones is used."""

    models: BaselineModels
    tall: str | Path | object | None = None  # checkpoint directory or a TallModel
    soft_prompt: str | Path | list | None = None
    fine_tuned: str | Path | list | None = None
    lm_max_new_tokens: int = WORD_MAX_NEW_TOKENS
    back_cache: TranslationCache | None = None  # en→he translations of the translate-test baselines
    ngram_data: str | Path | None = None  # the training Hebrew the word n-gram counts, or a saved n-gram (.json)
    ngram_order: int = DEFAULT_ORDER

    def word_lm(self, lm=None) -> WordLM:
        return WordLM(lm if lm is not None else self.models.llm, self.models.backbones.llm_tokenizer,
                      self.lm_max_new_tokens)


def _build_tall(res: ApproachResources) -> Approach:
    if res.tall is None:
        raise ApproachUnavailable("no TALL checkpoint given (--tall DIR)")
    if not isinstance(res.tall, (str, Path)):
        return TallApproach(res.tall)
    return TallApproach(load(res.tall, backbones=res.models.backbones_for, decoding=res.models.config.decoding))


def _build_direct(res: ApproachResources) -> Approach:
    return DirectApproach(res.word_lm(), res.models.config.llm)


def _build_naive(res: ApproachResources) -> Approach:
    return TranslateTestApproach(res.models, res.word_lm(), "naive", res.back_cache)


def _first_adapter(kind: str, given, res: ApproachResources):
    """(adapter directory, the LLM with it) for the first candidate that loads onto these backbones."""
    reasons = []
    for directory in given if isinstance(given, (list, tuple)) else [given]:
        try:
            return directory, load_adapter(kind, directory, res.models.llm)
        except (ValueError, OSError) as why:
            reasons.append(str(why))
    raise ApproachUnavailable("; ".join(reasons) or f"no {kind} adapter")


def _build_soft_prompt(res: ApproachResources) -> Approach:
    if not res.soft_prompt:
        raise ApproachUnavailable("no soft-prompt adapter given (--soft-prompt DIR; train one with "
                                  "`python -m baselines.train soft-prompt ...`)")
    directory, lm = _first_adapter("soft-prompt", res.soft_prompt, res)
    return TranslateTestApproach(res.models, res.word_lm(lm), "soft-prompt", res.back_cache, str(directory))


def _build_fine_tuned(res: ApproachResources) -> Approach:
    if not res.fine_tuned:
        raise ApproachUnavailable("no fine-tuned adapter given (--fine-tuned DIR; train one with "
                                  "`python -m baselines.train fine-tuned ...`)")
    directory, lm = _first_adapter("fine-tuned", res.fine_tuned, res)
    return DirectApproach(res.word_lm(lm), res.models.config.llm, "fine-tuned", str(directory))


def _build_word_ngram(res: ApproachResources) -> Approach:
    if not res.ngram_data:
        raise ApproachUnavailable("no corpus to count given (--ngram-data FILE: the training Hebrew)")
    if Path(res.ngram_data).suffix == ".json":  # a saved n-gram carries its own order
        return WordNgramApproach(load_ngram(res.ngram_data), str(res.ngram_data))
    corpus = read_corpus(res.ngram_data)
    return WordNgramApproach(WordNgram(corpus.sentences, res.ngram_order), str(res.ngram_data))


REGISTRY: dict[str, Callable[[ApproachResources], Approach]] = {
    "tall": _build_tall,
    "direct": _build_direct,
    "naive": _build_naive,
    "soft-prompt": _build_soft_prompt,
    "fine-tuned": _build_fine_tuned,
    "word-ngram": _build_word_ngram,
}
APPROACH_NAMES = tuple(REGISTRY)


def build_approach(name: str, resources: ApproachResources) -> Approach:
    if name not in REGISTRY:
        raise ValueError(f"unknown approach {name!r}; choose from {', '.join(APPROACH_NAMES)}")
    return REGISTRY[name](resources)


def build_approaches(names: Sequence[str], resources: ApproachResources,
                     back_cache_path: str | Path | None = None) -> tuple[dict[str, Approach], dict[str, str]]:
    """({name: Approach} in the order asked, {name: why it is unavailable}). `back_cache_path`: where the
    translate-test baselines cache their en→he translations (default: in memory)."""
    if resources.back_cache is None and back_cache_path is not None and {"naive", "soft-prompt"} & set(names):
        resources.back_cache = TranslationCache(back_cache_path, settings={},
                                                translator_id=back_translator_id(resources.models))
    built, unavailable = {}, {}
    for name in names:
        try:
            built[name] = build_approach(name, resources)
        except ApproachUnavailable as why:
            unavailable[name] = str(why)
    return built, unavailable
