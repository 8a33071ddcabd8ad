"""Training pairs for the soft prompt, built from Hebrew sentences and the frozen he→en translator alone.

At test time the prompt-tuned LLM reads the machine translation E(P_k) of a Hebrew prefix P_k = words[:k]
and must write the English word that, appended and translated back, ends in Hebrew word k. So we teach it
exactly that: translate P_k and P_{k+1} = words[:k+1] (for the last position, the full sentence) and take
as target the English that translating the one extra Hebrew word added:

1. "extends": E(P_{k+1}) starts with every word of E(P_k) → target = its first new word;
2. "diff": otherwise (the translator reworded the sentence) → the first word of E(P_{k+1}) that is not
   in E(P_k) (multiset difference, so reordering such as noun–adjective still finds the new word);
3. "none": nothing new (the extra word added no English) → the pair is dropped.

Words are compared by `word_core`, case-folded, so "created." and "created" match. Both prefixes go through
the translation cache, so every prefix is translated once and shared with evaluation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from baselines.naive import english_context
from tall_data.examples import make_examples, word_core
from tall_data.hebrew import split_words

RULES = ("extends", "diff", "none")


@dataclass(frozen=True)
class SoftPromptPair:
    context: str  # the English the LLM reads: E(P_k) prepared by `english_context`, as at test time
    target: str  # the next English word it should write


@dataclass
class SoftPromptData:
    pairs: list[SoftPromptPair]
    rules: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RULES, 0))
    examples: int = 0

    def as_dict(self) -> dict:
        return {"examples": self.examples, "pairs": len(self.pairs), "rules": dict(self.rules)}


def _key(word: str) -> str:
    return word_core(word).casefold()


def english_next_word(prefix_english: str, extended_english: str) -> tuple[str | None, str]:
    """(target English word or None, which rule produced it)."""
    old = [w for w in prefix_english.split() if _key(w)]
    new = [w for w in extended_english.split() if _key(w)]
    if len(new) > len(old) and all(_key(a) == _key(b) for a, b in zip(old, new)):
        return word_core(new[len(old)]), "extends"
    remaining = Counter(_key(w) for w in old)
    for word in new:
        if remaining[_key(word)] > 0:
            remaining[_key(word)] -= 1
        else:
            return word_core(word), "diff"
    return None, "none"


def build_soft_prompt_data(sentences: Iterable[str], translate: Callable[[list[str]], Sequence[str]],
                           positions: str | int = "last", seed: int = 0) -> SoftPromptData:
    """`translate` maps Hebrew prefixes to English (pass the cached translator). `positions` and `seed` are
    those of `make_examples` (random.Random(seed) picks positions when an int)."""
    examples = make_examples(list(sentences), framing="word", positions=positions, seed=seed)
    extended = [" ".join(split_words(ex.sentence)[:ex.position + 1]) for ex in examples]
    english = translate([ex.prefix for ex in examples] + extended)
    data = SoftPromptData([], examples=len(examples))
    for i in range(len(examples)):
        before, after = english[i], english[len(examples) + i]
        target, rule = english_next_word(before, after)
        data.rules[rule] += 1
        if target:
            data.pairs.append(SoftPromptPair(english_context(before), target))
    return data
