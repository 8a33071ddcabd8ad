"""Checking and trimming Hebrew input."""

from __future__ import annotations

import re
from typing import Callable

HEBREW_LETTER = re.compile(r"[\u05d0-\u05ea\ufb1d-\ufb4f]")


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
