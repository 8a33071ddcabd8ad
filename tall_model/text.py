"""Checking and trimming Hebrew input."""

from __future__ import annotations

import re
import unicodedata
from typing import Callable

HEBREW_LETTER = re.compile(r"[\u05d0-\u05ea\ufb1d-\ufb4f]")
# A trailing apostrophe/geresh is part of a Hebrew word ("פרופ'", "צ׳"), not punctuation.
_KEEP_TRAILING = "'\u05f3"


def has_hebrew(text: str) -> bool:
    return bool(HEBREW_LETTER.search(text))


def validate_prefix(text) -> str:
    """The prefix with whitespace normalised; a clear ValueError for what cannot be a Hebrew prefix."""
    if not isinstance(text, str):
        raise ValueError(f"The prefix must be text, got {type(text).__name__}.")
    cleaned = " ".join(text.split())
    if not cleaned:
        raise ValueError("The prefix is empty: type the beginning of a Hebrew sentence.")
    if not has_hebrew(cleaned):
        raise ValueError(f"The prefix has no Hebrew letter: {cleaned[:40]!r}. TALL predicts the next Hebrew "
                         "word, so the prefix must be Hebrew text.")
    return cleaned


def truncate_words(text: str, fits: Callable[[str], bool]) -> tuple[str, bool]:
    """Drop whole words from the left until `fits(text)`; (text, whether anything was dropped)."""
    words = text.split(" ")
    if fits(text):
        return text, False
    lo, hi = 1, len(words) - 1  # binary search for the fewest dropped words that fit
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(" ".join(words[mid:])):
            hi = mid
        else:
            lo = mid + 1
    kept = " ".join(words[lo:])
    if not fits(kept) or not has_hebrew(kept):
        raise ValueError("Even the last word of the prefix is too long for the model's limits.")
    return kept, True


def word_core(word: str) -> str:
    """The word without surrounding punctuation: 'הביתה.' → 'הביתה', '"שלום",' → 'שלום'.

    Word targets are scored by exact match, so a sentence-final full stop or a closing
    quote must not be part of what the model has to guess.
    """
    start, end = 0, len(word)
    while start < end and unicodedata.category(word[start]).startswith("P"):
        start += 1
    while end > start and unicodedata.category(word[end - 1]).startswith("P") and word[end - 1] not in _KEEP_TRAILING:
        end -= 1
    return word[start:end]


def normalize_word(word: str) -> str:
    """A word as exact match compares it: no surrounding punctuation, NFC."""
    return unicodedata.normalize("NFC", word_core(word.strip()))
