"""The one timing helper the benchmarks share."""

from __future__ import annotations

import statistics
import time


def median_seconds(fn, repeats: int, digits: int | None = None) -> float:
    """Median wall-clock seconds of `repeats` calls of `fn()` (rounded to `digits` when given)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return median if digits is None else round(median, digits)
