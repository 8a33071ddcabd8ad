"""Small Hebrew text helpers shared by corpus ingestion and example building.

They are kept free of any model or UI dependency so that the CLI, the Gradio app and
the tests all normalise text in exactly the same way (a prefix normalised differently
would miss the translation cache and break exact-match scoring).
"""

from __future__ import annotations

import re
import unicodedata

HEBREW_LETTERS = re.compile("[\u05d0-\u05ea]")

# Invisible characters that change nothing a reader sees but break exact matching:
# zero-width space/joiners, word joiner, BOM, soft hyphen and the bidi controls.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\u061c\ufeff\u00ad]")
# Any other control character (tabs and newlines are whitespace and handled by split).
_CONTROL = re.compile("[\u0000-\u0008\u000e-\u001f\u007f-\u009f]")

MAQAF = "\u05be"
PASEQ = "\u05c0"
SOF_PASUQ = "\u05c3"
NUN_HAFUKHA = "\u05c6"
# Niqqud and cantillation: every combining mark in U+0591..U+05C7. The four
# punctuation characters in that block are not marks and are handled explicitly.
_MARKS = re.compile("[\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7]")


def has_hebrew(text: str) -> bool:
    """True if the text holds at least one Hebrew letter (U+05D0..U+05EA)."""
    return HEBREW_LETTERS.search(text) is not None


def strip_marks(text: str) -> str:
    """Remove niqqud and cantillation, as in the unpointed text of news and Wikipedia.

    The maqaf (־) joins words in pointed Bible text, where modern unpointed text
    writes a space ("כל־העם" → "כל העם"), so it becomes a space and the joined words
    count as separate words. Paseq (׀) and nun hafukha are editorial signs and are
    dropped. Sof pasuq (׃) is kept: it ends a verse, like a full stop, and the sentence
    splitter uses it.
    """
    text = _MARKS.sub("", unicodedata.normalize("NFD", text))
    text = text.replace(MAQAF, " ").replace(PASEQ, " ").replace(NUN_HAFUKHA, "")
    return unicodedata.normalize("NFC", text)


def normalize_space(text: str) -> str:
    """Drop invisible/bidi/control characters and collapse all whitespace (NBSP too) to one space."""
    text = _INVISIBLE.sub("", text)
    text = _CONTROL.sub(" ", text)
    return " ".join(text.split())


def normalize(text: str, *, marks: bool = True) -> str:
    """NFC + whitespace normalisation; with ``marks=False`` niqqud and cantillation are stripped too.

    NFC first so that the same pointed word typed in two mark orders compares equal.
    """
    text = unicodedata.normalize("NFC", text)
    if not marks:
        text = strip_marks(text)
    return normalize_space(text)


def split_words(text: str) -> list[str]:
    """Whitespace words, the unit of the word-level task (punctuation stays attached)."""
    return text.split()


_SENTENCE_END = re.compile(
    "(?<=[.?!:\u05c3])\\s+"  # terminator, then whitespace
    "|(?<=[.?!:\u05c3][\"'\u201d\u2019\u00bb)])\\s+"  # terminator + closing quote/bracket
)


def split_sentences(text: str) -> list[str]:
    """Split a line or paragraph after ., ?, !, : or sof pasuq (׃) followed by whitespace.

    A closing quote or bracket right after the terminator stays with its sentence.
    "3.5" and "ד\"ר" are not split because no whitespace follows the dot.
    """
    return [part for part in _SENTENCE_END.split(text) if part.strip()]
