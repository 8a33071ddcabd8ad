"""Training examples: a Hebrew prefix and the missing part that follows it.

The default framing is the word (flaw 1 of the authors' code: they trained on the last
*subword* but evaluated on the last *word*). The paper's subword framing stays available
for reproduction.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from tall_data.hebrew import split_words
from tall_model.text import normalize_word, word_core  # noqa: F401 (re-exported: exact match's words)

SPIECE_MARK = "\u2581"  # "▁", SentencePiece's word-start marker


class PieceTokenizer(Protocol):
    """The two methods the subword framing needs (a SentencePiece MarianTokenizer has them)."""

    def tokenize(self, text: str) -> list[str]: ...

    def convert_tokens_to_string(self, tokens: list[str]) -> str: ...


@dataclass(frozen=True)
class Example:
    """One prediction task. ``position`` is the target's word index (piece index for subword)."""

    prefix: str
    target: str
    sentence: str
    position: int


def distinct_words(sentences: Iterable[str]) -> list[str]:
    """The distinct words of `sentences`, normalised as exact match normalises them, sorted (a word list for
    `Decoding.word_list`)."""
    return sorted({normalize_word(w) for sentence in sentences for w in sentence.split()} - {""})


def make_examples(
    sentences: Iterable[str],
    *,
    framing: Literal["word", "subword"] = "word",
    positions: Literal["last", "all"] | int = "last",
    min_prefix_words: int = 1,
    seed: int = 0,
    piece_tokenizer: PieceTokenizer | None = None,
) -> list[Example]:
    """Build examples from already-normalised sentences (see tall_data.corpus).

    word framing: prefix = the first k whitespace words joined by single spaces, target =
    word k without surrounding punctuation; positions whose word is punctuation only are
    skipped. ``positions``: "last" (one per sentence), "all" (every k >= min_prefix_words)
    or an int n (up to n positions per sentence, sampled with random.Random(seed)).
    subword framing (the paper's): target = the sentence's last SentencePiece piece
    (without "▁"), prefix = the decoded pieces before it; "last" only.
    Sentences that yield no valid position are skipped.
    """
    if min_prefix_words < 1:
        raise ValueError(f"min_prefix_words must be >= 1, got {min_prefix_words}")
    _check_positions(positions)
    if framing == "word":
        rng = random.Random(seed)
        return [ex for s in sentences for ex in _word_examples(s, positions, min_prefix_words, rng)]
    if framing == "subword":
        if piece_tokenizer is None:
            raise ValueError("framing='subword' needs piece_tokenizer (e.g. the he→en MarianTokenizer)")
        if positions != "last":
            raise ValueError(f"framing='subword' supports only positions='last' (the paper's task), got {positions!r}")
        return [ex for s in sentences if (ex := _subword_example(s, min_prefix_words, piece_tokenizer))]
    raise ValueError(f"framing must be 'word' or 'subword', got {framing!r}")


def _check_positions(positions: object) -> None:
    if positions in ("last", "all"):
        return
    if isinstance(positions, bool) or not isinstance(positions, int) or positions < 1:
        raise ValueError(f"positions must be 'last', 'all' or a positive int, got {positions!r}")


def _word_examples(
    sentence: str, positions: Literal["last", "all"] | int, min_prefix_words: int, rng: random.Random
) -> list[Example]:
    words = split_words(sentence)
    valid = [k for k in range(min_prefix_words, len(words)) if word_core(words[k])]
    if positions == "last":
        chosen = valid[-1:]
    elif positions == "all":
        chosen = valid
    else:
        chosen = sorted(rng.sample(valid, min(positions, len(valid))))
    return [Example(" ".join(words[:k]), word_core(words[k]), sentence, k) for k in chosen]


def _subword_example(sentence: str, min_prefix_words: int, tokenizer: PieceTokenizer) -> Example | None:
    pieces = tokenizer.tokenize(sentence)
    if len(pieces) < 2:
        return None
    target = pieces[-1].replace(SPIECE_MARK, "")
    prefix = tokenizer.convert_tokens_to_string(pieces[:-1]).strip()
    if not target or len(split_words(prefix)) < min_prefix_words:
        return None
    return Example(prefix, target, sentence, len(pieces) - 1)


def split_examples(
    examples: Sequence[Example], dev_fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Split into (train, dev) by sentence, so no sentence feeds both (no leakage across positions).

    round(n_sentences * dev_fraction) sentences go to dev, at least one when
    dev_fraction > 0 and there are two or more sentences. Input order is kept in both.
    """
    if not 0.0 <= dev_fraction < 1.0:
        raise ValueError(f"dev_fraction must be in [0, 1), got {dev_fraction}")
    distinct = list(dict.fromkeys(ex.sentence for ex in examples))
    n_dev = round(len(distinct) * dev_fraction)
    if dev_fraction > 0 and len(distinct) >= 2:
        n_dev = min(max(n_dev, 1), len(distinct) - 1)
    random.Random(seed).shuffle(distinct)
    dev_sentences = set(distinct[:n_dev])
    train = [ex for ex in examples if ex.sentence not in dev_sentences]
    dev = [ex for ex in examples if ex.sentence in dev_sentences]
    return train, dev


def target_pieces(word: str, tokenizer: PieceTokenizer) -> int:
    """How many pieces the subword framing cuts `word` into: SentencePiece splits each whitespace word on its own."""
    return len(tokenizer.tokenize(word))


def short_target_sentences(sentences: Iterable[str], tokenizer: PieceTokenizer, most: int) -> list[str]:
    """The sentences whose last-word example (word framing) has a target of at most `most` pieces: the verses a
    TALL run with `max_target_pieces` trains on, so that a baseline can be given the same ones."""
    return [ex.sentence for ex in make_examples(sentences, positions="last")
            if target_pieces(ex.target, tokenizer) <= most]
