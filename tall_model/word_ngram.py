"""A word n-gram counted on the training Hebrew: what the data alone gives, without any model. It is a reference row
of the evaluation (`baselines.word_ngram`, not one of the paper's baselines) and, weighed with TALL's own word scores,
an optional part of decoding (`Decoding.ngram`, a departure from the paper; `tall_model.predict`).

Every word position of every training sentence is counted after its 0 … order−1 preceding words, the words
normalised as exact match compares them. The next word of a prefix is ranked by the counts after its longest context
seen in training; where that context has fewer continuations than asked for, the next shorter context fills the
ranking ("stupid backoff" ranking: counts, never smoothed probabilities, so it has no log-probability of a gold word;
`backoff_log_score` gives a score to weigh words by, as benchmarks/ngram_fusion.py mixes it with TALL's). Sampling
draws from the longest context's counts with the same temperature / top-k / top-p as every other approach.

A saved n-gram (NGRAM_FILE, JSON: its order and the sentences it counts; the demo ships one beside its adapters) is
what the app's Compare tab counts from: `save_ngram` / `load_ngram`.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import torch

from .decoding import MAX_NGRAM_WEIGHT, Decoding
from .sampling import choose_piece
from .text import normalize_word

DEFAULT_ORDER = 3
MAX_ORDER = 8
BACKOFF = 0.4  # stupid backoff's factor per dropped context word (Brants et al. 2007)
NGRAM_FILE = "word_ngram.json"
FORMAT = "tall-word-ngram"


class NgramError(ValueError):
    """A word n-gram that cannot be built or read (bad order, nothing to count, not an n-gram file)."""


class WordNgram:
    """Counts of each word after its preceding 0 … order−1 words."""

    def __init__(self, sentences: Iterable[str], order: int = DEFAULT_ORDER) -> None:
        if isinstance(order, bool) or not isinstance(order, int) or not 1 <= order <= MAX_ORDER:
            raise NgramError(f"n-gram order must be an integer 1–{MAX_ORDER}, got {order!r}")
        self.order = order
        self.fusion_weight: float | None = None  # λ for decoding (a saved file's; save_ngram)
        self.fusion_discount: float | None = None  # μ for decoding (a saved file's; save_ngram)
        self.counts: list[dict[tuple[str, ...], Counter]] = [defaultdict(Counter) for _ in range(order)]
        self.sentences = 0
        for sentence in sentences:
            words = [w for w in map(normalize_word, sentence.split()) if w]
            for i, word in enumerate(words):
                for n in range(min(order, i + 1)):
                    self.counts[n][tuple(words[i - n:i])][word] += 1
            self.sentences += bool(words)
        if not self.sentences:
            raise NgramError("the n-gram's corpus has no words")
        # each context's total, counted once: fusion scores ~20 words a prediction, Counter.total() walks them all
        self.totals = [{context: counts.total() for context, counts in level.items()} for level in self.counts]

    def _contexts(self, prefix: str) -> list[Counter]:
        """The continuation counts of the prefix's contexts that occur in training, longest first."""
        words = [w for w in map(normalize_word, prefix.split()) if w]
        found = []
        for n in range(min(self.order - 1, len(words)), -1, -1):
            counts = self.counts[n].get(tuple(words[len(words) - n:]))
            if counts:
                found.append(counts)
        return found

    def ranked(self, prefix: str, k: int) -> list[str]:
        """The k best next words: by count after the longest seen context, then after shorter ones."""
        out: list[str] = []
        for counts in self._contexts(prefix):
            for word, _ in counts.most_common():
                if word not in out:
                    out.append(word)
                    if len(out) == k:
                        return out
        return out

    def backoff_log_score(self, prefix: str, word: str, alpha: float = BACKOFF) -> float:
        """log S(word | prefix) by stupid backoff (Brants et al. 2007): the word's relative count after the longest
        context it follows in training, times `alpha` for each word of context dropped to get there; a word never
        counted scores as one count in the whole corpus after dropping every context word. A score to rank and
        weigh words by, not a probability (the scores of all words do not sum to one)."""
        word = normalize_word(word)
        words = [w for w in map(normalize_word, prefix.split()) if w]
        longest = min(self.order - 1, len(words))
        for n in range(longest, -1, -1):
            context = tuple(words[len(words) - n:])
            counts = self.counts[n].get(context)
            if counts and counts[word]:
                return (longest - n) * math.log(alpha) + math.log(counts[word] / self.totals[n][context])
        return longest * math.log(alpha) - math.log(self.totals[0][()] + 1)

    def log_frequency(self, word: str) -> float:
        """log of the word's add-one relative frequency among all counted words (never −∞)."""
        return math.log((self.counts[0][()][normalize_word(word)] + 1) / (self.totals[0][()] + 1))

    def sample(self, prefix: str, decoding: Decoding, generator: torch.Generator) -> str:
        counts = self._contexts(prefix)[0]  # the unigram context always exists
        words = list(counts)
        log_counts = torch.tensor([counts[w] for w in words], dtype=torch.float64).log()
        index, _ = choose_piece(log_counts, torch.ones(len(words), dtype=torch.bool), decoding, generator)
        return words[index]


def save_ngram(path: str | Path, sentences: Sequence[str], order: int, source: str,
               fusion_weight: float | None = None, fusion_discount: float | None = None) -> Path:
    """Write the sentences an n-gram counts and its order (the counts are rebuilt on load: smaller, and plain text);
    `fusion_weight` / `fusion_discount`: the λ and μ that decoding weighs it with by default (`Decoding.ngram`;
    chosen on dev by the build)."""
    WordNgram(sentences, order)  # refuses a bad order or an empty corpus before anything is written
    _check_weight(fusion_weight)
    _check_weight(fusion_discount)
    if fusion_discount is not None and fusion_weight is None:
        raise NgramError("a fusion discount (μ) only goes with a fusion weight (λ)")
    path = Path(path)
    payload = {"format": FORMAT, "order": order, "source": source, "sentences": list(sentences)}
    for key, value in (("fusion_weight", fusion_weight), ("fusion_discount", fusion_discount)):
        if value is not None:
            payload[key] = value
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    return path


def load_ngram(path: str | Path) -> WordNgram:
    """A saved n-gram; NgramError naming the file when it is not one."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as why:
        raise NgramError(f"{path} is not a readable word n-gram file ({why})") from None
    sentences = payload.get("sentences") if isinstance(payload, dict) else None
    if (not isinstance(payload, dict) or payload.get("format") != FORMAT or not isinstance(sentences, list)
            or not all(isinstance(s, str) for s in sentences)):
        raise NgramError(f"{path} is not a word n-gram file (written by baselines.word_ngram.save_ngram)")
    try:
        ngram = WordNgram(sentences, payload.get("order"))
        ngram.fusion_weight = _check_weight(payload.get("fusion_weight"))
        ngram.fusion_discount = _check_weight(payload.get("fusion_discount"))
    except NgramError as why:
        raise NgramError(f"{path}: {why}") from None
    return ngram


def _check_weight(weight) -> float | None:
    if weight is not None and (isinstance(weight, bool) or not isinstance(weight, (int, float))
                               or not 0 <= weight <= MAX_NGRAM_WEIGHT):
        raise NgramError(f"a fusion weight or discount must be a number from 0 to {MAX_NGRAM_WEIGHT}, got {weight!r}")
    return weight


def cached_ngram(path: str | Path) -> WordNgram:
    """`load_ngram`, counted once per file and modification time (decoding asks for it on every prediction)."""
    file = Path(path).resolve()
    try:
        mtime = file.stat().st_mtime_ns
    except OSError as why:
        raise NgramError(f"{path} is not a readable word n-gram file ({why})") from None
    return _cached(str(file), mtime)


@lru_cache(maxsize=4)
def _cached(file: str, mtime_ns: int) -> WordNgram:
    return load_ngram(file)
