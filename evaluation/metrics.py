"""Metric math as small pure functions (no models), so each can be checked on a hand-made case.

Words are compared after `word_core` (surrounding punctuation off) and Unicode NFC on both sides; an empty
gold word never matches. Sampled accuracy is summarised over seeds with a Student-t interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from scipy.stats import t as student_t

from tall_data.examples import normalize_word  # defined with the examples it scores; callers import it from here


def exact_match(predicted: str, gold: str) -> bool:
    target = normalize_word(gold)
    return bool(target) and normalize_word(predicted) == target


def _check_lengths(a: Sequence, b: Sequence) -> None:
    if len(a) != len(b):
        raise ValueError(f"got {len(a)} predictions for {len(b)} gold words")
    if not b:
        raise ValueError("no examples to score")


def accuracy(predictions: Sequence[str], golds: Sequence[str]) -> float:
    """Share of exact matches."""
    _check_lengths(predictions, golds)
    return sum(exact_match(p, g) for p, g in zip(predictions, golds)) / len(golds)


def top_k_accuracy(candidates: Sequence[Sequence[str]], golds: Sequence[str], k: int = 5) -> float:
    """Share of examples whose gold word is among the first k candidates (the approach's own ranking)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    _check_lengths(candidates, golds)
    return sum(any(exact_match(c, g) for c in cands[:k]) for cands, g in zip(candidates, golds)) / len(golds)


def empty_rate(predictions: Sequence[str]) -> float:
    """Share of predictions with no word at all (a model that never finished a word)."""
    if not predictions:
        raise ValueError("no predictions")
    return sum(not normalize_word(p) for p in predictions) / len(predictions)


def mean_log_prob(log_probs: Sequence[float]) -> float:
    """Mean natural-log probability of the gold words."""
    if not log_probs:
        raise ValueError("no log-probabilities")
    return math.fsum(log_probs) / len(log_probs)


def t_critical(confidence: float, df: int) -> float:
    """The two-sided Student-t critical value: t with P(|T| < t) = confidence (2.776 for 95 %, df 4)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    return float(student_t.ppf((1 + confidence) / 2, df))


@dataclass
class Interval:
    """mean ± half_width over n values; the bounds are None when n = 1 (no spread to estimate)."""

    mean: float
    low: float | None
    high: float | None
    half_width: float | None
    n: int
    confidence: float

    def as_dict(self) -> dict:
        return asdict(self)


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean with a Student-t confidence interval (n − 1 degrees of freedom, sample standard deviation):
    the seeds are a small sample, so the normal 1.96 would be too narrow."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = math.fsum(values) / n
    if n == 1:
        return Interval(mean, None, None, None, 1, confidence)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_critical(confidence, n - 1) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, half, n, confidence)
