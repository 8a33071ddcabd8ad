"""An optional closed vocabulary for the predicted word (`Decoding.word_list`): a departure from the paper.

The paper lets the en→he decoder spell any sequence of pieces, and a small decoder spells words that exist nowhere:
a quarter of the demo's greedy words never occur in its training Hebrew. With a word list, each word of the list
becomes a path of pieces in a trie (its en→he pieces as after a space, so the first one starts a word); while a word
is decoded only pieces that continue some listed word may follow, and the word may end only where a listed word
ends. Probabilities stay the model's own; only the choice is restricted. The file is UTF-8, one word per line, each
as it should be predicted (the demo build writes the training Hebrew's words without surrounding punctuation).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path

import torch

from .config import demo_dir, repo_file

TRAINING_WORDS = "training_words.txt"  # a training run's (and the demo build's) words, beside its checkpoints


class WordListError(ValueError):
    """The word list cannot be used (missing, not UTF-8, empty)."""


class TrieNode:
    __slots__ = ("children", "ends")

    def __init__(self) -> None:
        self.children: dict[int, TrieNode] = {}
        self.ends = False  # a listed word ends here

    def allowed(self, end_of_word: torch.Tensor) -> torch.Tensor:
        """Pieces that may come next: a continuation of some listed word, or (where one ends) the word's end.
        Built per call, not kept: a kept vocabulary-sized mask on every visited node would grow without bound in
        a long-running app."""
        mask = torch.zeros_like(end_of_word)
        if self.children:
            mask[list(self.children)] = True
        return mask | end_of_word if self.ends else mask


class WordTrie:
    """The listed words as paths of en→he piece ids."""

    def __init__(self, pieces_of_words: list[list[int]], max_pieces: int) -> None:
        self.root, self.words, self.too_long = TrieNode(), 0, 0
        self._first: dict[str, torch.Tensor] = {}
        for ids in pieces_of_words:
            if not ids:
                continue
            if len(ids) > max_pieces:  # could never be finished within max_word_pieces
                self.too_long += 1
                continue
            node = self.root
            for i in ids:
                node = node.children.setdefault(i, TrieNode())
            self.words += not node.ends
            node.ends = True

    def first_pieces(self, word_start: torch.Tensor) -> torch.Tensor:
        """The word-start pieces that begin a listed word (kept per device: every prediction asks for it)."""
        key = str(word_start.device)
        if key not in self._first:
            self._first[key] = self.root.allowed(torch.zeros_like(word_start)) & word_start
        return self._first[key]

    def lists(self, ids: list[int]) -> bool:
        """Whether the pieces `ids` spell a listed word."""
        node = self.root
        for i in ids:
            node = node.children.get(int(i))
            if node is None:
                return False
        return node.ends

    @staticmethod
    def step(node: TrieNode | None, token_id: int) -> TrieNode | None:
        """The node after `token_id`; None once the path leaves the trie (the word has ended)."""
        return None if node is None else node.children.get(int(token_id))


def read_word_list(path: str | Path) -> list[str]:
    """The distinct words of a one-word-per-line UTF-8 file, in file order."""
    file = resolve_word_list(path)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise WordListError(f"word list {file} is not UTF-8 text ({err.reason} at byte {err.start})") from err
    lines = (unicodedata.normalize("NFC", line.strip()) for line in text.splitlines())
    words = list(dict.fromkeys(w for w in lines if w))
    if not words:
        raise WordListError(f"word list {file} holds no words (one word per line expected)")
    return words


def demo_word_list() -> Path:
    """The shipped demo's training words (written by `python -m demo_build --stages word-list`)."""
    return demo_dir() / TRAINING_WORDS


def resolve_word_list(path: str | Path) -> Path:
    file = repo_file(path)
    if file is None:
        raise WordListError(f"word list {path} not found (a UTF-8 file, one word per line)")
    return file


def word_trie(model, path: str, max_pieces: int) -> WordTrie:
    """The trie of `path`'s words in the model's en→he pieces (built once per file, tokenizer and length)."""
    file = resolve_word_list(path).resolve()
    return _cached_trie(model.backbones.hr_lr_tokenizer, str(file), file.stat().st_mtime_ns, max_pieces)


@lru_cache(maxsize=4)
def _cached_trie(tokenizer, file: str, mtime_ns: int, max_pieces: int) -> WordTrie:
    words = read_word_list(file)
    eos = tokenizer.eos_token_id
    rows = tokenizer(text_target=words)["input_ids"]
    return WordTrie([r[:-1] if r and r[-1] == eos else r for r in rows], max_pieces)
