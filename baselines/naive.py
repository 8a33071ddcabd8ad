"""The translate-test baselines: naive (frozen LLM) and soft-prompt (prompt-tuned LLM).

he→en translate the prefix, let the LLM write the next English word, translate the extended English
sentence en→he with the HR→LR model, and take the last word of the Hebrew. Only the English word is
sampled; both translations are deterministic (the config's beams), as in the paper.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from baselines.approach import GREEDY, Approach, ApproachOutput, BaselineModels, Decoding
from baselines.word_lm import WordLM
from tall_data.examples import word_core
from tall_data.translation_cache import TranslationCache
from tall_model import translate as tall_translate
from tall_model.translate import decoding_id, generate_sorted

# A prefix's machine translation often ends like a finished sentence ("… and the earth."): the LLM is asked
# to *continue* it, so a final full stop / colon / semicolon / comma is dropped first (naive and the
# soft prompt's training data alike), which gives the baseline its fair chance.
_FINAL_PUNCT = re.compile(r"[\s.:;,!?\u05c3]+$")


def english_context(translation: str) -> str:
    return _FINAL_PUNCT.sub("", translation.strip())


def extend(english: str, word: str) -> str:
    return f"{english} {word}".strip()


def last_word(text: str) -> str:
    """The last whitespace word that is not only punctuation, without its punctuation ("" if none)."""
    for token in reversed(text.split()):
        core = word_core(token)
        if core:
            return core
    return ""


def back_translator_id(models: BaselineModels) -> str:
    """The en→he translator (by content) with its decoding settings: the back-translation cache key."""
    return decoding_id(models.backbones.fingerprints()["hr_lr_translator"], models.config.decoding)


def translate_to_hebrew(models: BaselineModels, texts: list[str], batch_size: int = 16) -> list[str]:
    """en→he with the full HR→LR model. Long English is cut from the left: the new word is at its end."""
    tok, decoding, hr_lr = models.backbones.hr_lr_tokenizer, models.config.decoding, models.hr_lr
    limit = int(hr_lr.config.max_position_embeddings)
    rows = [tok(t)["input_ids"][-limit:] for t in texts]
    generated = generate_sorted(hr_lr, rows, hr_lr.config.pad_token_id, batch_size=batch_size,
                                num_beams=decoding.translation_beams,
                                max_new_tokens=decoding.translation_max_new_tokens)
    return [tok.decode(g, skip_special_tokens=True).strip() for g in generated]


class TranslateTestApproach(Approach):
    """`naive` with the frozen LLM; `soft-prompt` with the same pipeline around a prompt-tuned LLM."""

    name = "naive"
    uses_translation = True
    can_score = False  # the Hebrew word comes out of a discrete en→he translation: no likelihood to read

    def __init__(self, models: BaselineModels, lm: WordLM, name: str = "naive",
                 back_cache: TranslationCache | None = None, adapter: str | None = None) -> None:
        super().__init__(name)
        self.models, self.lm, self.adapter = models, lm, adapter
        # en→he translations of extended sentences recur across seeds and greedy/top-k: translate each once
        self.back_cache = back_cache or TranslationCache(":memory:", translator_id=back_translator_id(models),
                                                         settings={})

    @property
    def translator(self):
        return self.models

    def _hebrew(self, english: list[str]) -> list[str]:
        return self.back_cache.translate(english, lambda batch: translate_to_hebrew(self.models, batch),
                                         tqdm=False)

    def predict(self, prefixes: Sequence[str], translations: Sequence[str] | None = None,
                decoding: Decoding = GREEDY, num_candidates: int = 0) -> list[ApproachOutput]:
        if translations is None:
            translations = tall_translate.translate(self.models, list(prefixes))
        english = [english_context(t) for t in translations]
        words = self.lm.words(english, decoding)
        hebrew = self._hebrew([extend(e, w) for e, w in zip(english, words)])
        outputs = [ApproachOutput(last_word(h)) for h in hebrew]
        if num_candidates > 0:
            ranked = self.lm.top_words(english, num_candidates)
            flat = [extend(e, w) for e, ws in zip(english, ranked) for w in ws]
            back = iter(self._hebrew(flat))
            for output, ws in zip(outputs, ranked):
                hebrew_words = [last_word(next(back)) for _ in ws]
                output.candidates = [w for w in dict.fromkeys(hebrew_words) if w][:num_candidates]
        return outputs

    def describe(self) -> dict:
        cfg = self.models.config
        return {"name": self.name, "backbones": self.models.backbones.fingerprints(), "llm": cfg.llm,
                "translation_beams": cfg.decoding.translation_beams,
                "translation_max_new_tokens": cfg.decoding.translation_max_new_tokens, "adapter": self.adapter}
