"""Is one approach really better than another on the same examples? Paired tests on greedy exact-match hits.

- Exact McNemar test: only the examples where the two disagree count; under "no difference" each such example is
  a fair coin, so the two-sided p-value is a binomial test (scipy.stats.binomtest) on the discordant pairs.
- Paired bootstrap: a 95 % percentile interval of the accuracy difference, resampling examples (both approaches'
  hits together), with a fixed seed (scipy.stats.bootstrap).
- Pooled over training seeds (`pooled_over_seeds`): each example's hits averaged over the seeds, one paired
  sign-flip permutation test over examples (scipy.stats.permutation_test) and the bootstrap interval of the same
  averages. With one seed it is the McNemar test again (up to Monte Carlo noise).
- `holm`: the Holm step-down adjustment of several p-values from one family (a row tested on several measures).

    python -m evaluation.significance RUN/predictions.jsonl [--reference tall] [--resamples 10000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.stats import binomtest, bootstrap, permutation_test

from evaluation.metrics import exact_match
from evaluation.report import read_predictions

RESAMPLES, SEED, CONFIDENCE = 10_000, 0, 0.95


@dataclass
class PairedComparison:
    """`reference` (TALL) against one other approach on the same examples."""

    dataset: str
    reference: str
    approach: str
    n: int
    reference_accuracy: float
    approach_accuracy: float
    only_reference: int  # examples the reference gets right and the approach wrong
    only_approach: int
    mcnemar_p: float  # exact, two-sided
    difference: float  # accuracy(reference) − accuracy(approach)
    ci_low: float
    ci_high: float
    confidence: float
    resamples: int
    seed: int

    def as_dict(self) -> dict:
        return asdict(self)


def mcnemar_exact(hits_a: Sequence[bool], hits_b: Sequence[bool]) -> tuple[int, int, float]:
    """(a right & b wrong, a wrong & b right, exact two-sided p-value)."""
    if len(hits_a) != len(hits_b):
        raise ValueError(f"paired tests need the same examples: {len(hits_a)} vs {len(hits_b)} hits")
    only_a = sum(1 for a, b in zip(hits_a, hits_b) if a and not b)
    only_b = sum(1 for a, b in zip(hits_a, hits_b) if b and not a)
    if only_a + only_b == 0:
        return 0, 0, 1.0
    return only_a, only_b, float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def paired_bootstrap(hits_a: Sequence[bool], hits_b: Sequence[bool], resamples: int = RESAMPLES, seed: int = SEED,
                     confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(accuracy difference a − b, low, high): a percentile interval over resampled examples (hits, or hits
    averaged over seeds)."""
    a, b = np.asarray(hits_a, dtype=float), np.asarray(hits_b, dtype=float)
    if len(a) != len(b) or len(a) == 0:
        raise ValueError(f"paired tests need the same, non-empty examples: {len(a)} vs {len(b)} hits")
    difference = float(a.mean() - b.mean())
    if np.all(a == b):  # no disagreement: every resample gives the same difference
        return difference, difference, difference
    result = bootstrap((a, b), lambda x, y, axis=-1: x.mean(axis=axis) - y.mean(axis=axis), paired=True,
                       vectorized=True, n_resamples=resamples, confidence_level=confidence, method="percentile",
                       rng=np.random.default_rng(seed))
    return difference, float(result.confidence_interval.low), float(result.confidence_interval.high)


@dataclass
class PooledComparison:
    """a against b over several training seeds on the same examples: hits averaged over seeds per example."""

    n: int
    seeds: int
    a_accuracy: float  # mean over seeds
    b_accuracy: float
    a_better: int  # examples a gets right in more seeds than b
    b_better: int
    permutation_p: float  # two-sided, sign flips of the per-example differences
    difference: float  # accuracy(a) − accuracy(b), averaged over seeds
    ci_low: float
    ci_high: float
    confidence: float
    resamples: int
    seed: int

    def as_dict(self) -> dict:
        return asdict(self)


def _mean_difference(x, y, axis=-1):
    return np.mean(x - y, axis=axis)


def pooled_over_seeds(hits_a: Sequence[Sequence[bool]], hits_b: Sequence[Sequence[bool]], resamples: int = RESAMPLES,
                      seed: int = SEED, confidence: float = CONFIDENCE) -> PooledComparison:
    """hits_a[k], hits_b[k]: seed k's hits of a and b on the same examples (a and b trained at the same seed k).

    Why pool this way: the examples are what is sampled from the world, so they are the test's unit; a seed is a
    repeat measurement of each. Averaging each example over seeds keeps one value per example, so verses that every
    seed gets right are not counted as independent evidence three times (a McNemar test on the seeds' hits
    concatenated would be)."""
    a, b = np.asarray(hits_a, dtype=float), np.asarray(hits_b, dtype=float)
    if a.ndim != 2 or a.shape != b.shape or a.size == 0:
        raise ValueError(f"pooled tests need seeds × examples hits of the same shape: {a.shape} vs {b.shape}")
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    difference, low, high = paired_bootstrap(mean_a, mean_b, resamples, seed, confidence)
    p = 1.0
    if not np.all(mean_a == mean_b):
        p = float(permutation_test((mean_a, mean_b), _mean_difference, permutation_type="samples", vectorized=True,
                                   n_resamples=resamples, alternative="two-sided",
                                   rng=np.random.default_rng(seed)).pvalue)
    return PooledComparison(a.shape[1], a.shape[0], float(mean_a.mean()), float(mean_b.mean()),
                            int(np.sum(mean_a > mean_b)), int(np.sum(mean_b > mean_a)), p, difference, low,
                            high, confidence, resamples, seed)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment, in the given order: the k-th smallest p times (m − k + 1), never below an
    adjusted p before it, capped at 1. Why: a row tested on four measures gets four chances at p < 0.05; an
    adjusted p under 0.05 keeps the family's chance of any false "differs" at 5 %."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [1.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def compare(records: Sequence[dict], reference: str = "tall", resamples: int = RESAMPLES,
            seed: int = SEED) -> list[PairedComparison]:
    """`reference` against every other approach on each dataset, from evaluation records (predictions.jsonl rows:
    dataset, approach, prefix, gold, greedy). Examples are paired by their position within a dataset."""
    hits: dict[tuple[str, str], list[bool]] = {}
    golds: dict[tuple[str, str], list[str]] = {}
    for r in records:
        key = (r["dataset"], r["approach"])
        hits.setdefault(key, []).append(exact_match(r["greedy"], r["gold"]))
        golds.setdefault(key, []).append(r["gold"])
    out = []
    for (dataset, approach), theirs in hits.items():
        key = (dataset, reference)
        if approach == reference or key not in hits:
            continue
        if golds[(dataset, approach)] != golds[key]:
            raise ValueError(f"{dataset}: {approach} and {reference} were scored on different examples")
        ours = hits[key]
        only_ours, only_theirs, p = mcnemar_exact(ours, theirs)
        diff, low, high = paired_bootstrap(ours, theirs, resamples, seed)
        out.append(PairedComparison(dataset, reference, approach, len(ours), float(np.mean(ours)),
                                    float(np.mean(theirs)), only_ours, only_theirs, p, diff, low, high,
                                    CONFIDENCE, resamples, seed))
    return out


def format_markdown(rows: Sequence[PairedComparison]) -> str:
    lines = ["| dataset | reference vs approach | n | greedy % (ref / approach) | right only by ref / approach | "
             "exact McNemar p | difference, points (95 % paired bootstrap CI) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.dataset} | {r.reference} vs {r.approach} | {r.n} | {100 * r.reference_accuracy:.2f} / "
                     f"{100 * r.approach_accuracy:.2f} | {r.only_reference} / {r.only_approach} | {r.mcnemar_p:.3g} | "
                     f"{100 * r.difference:+.2f} ({100 * r.ci_low:+.2f} … {100 * r.ci_high:+.2f}) |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.significance", description=__doc__.split("\n\n")[0])
    ap.add_argument("predictions", type=Path, help="predictions.jsonl written by python -m evaluation.evaluate")
    ap.add_argument("--reference", default="tall")
    ap.add_argument("--resamples", type=int, default=RESAMPLES)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    args = ap.parse_args(argv)
    try:
        records = read_predictions(args.predictions)
        rows = compare(records, args.reference, args.resamples, args.seed)
    except (OSError, ValueError, KeyError) as err:
        print(f"error: {args.predictions}: {err}", file=sys.stderr)
        return 2
    print(json.dumps([r.as_dict() for r in rows], indent=2) if args.json else format_markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
