"""Timing shared by the bench scripts (imported from beside them, like served.py)."""

from __future__ import annotations

import statistics
import time


def median_seconds(work, repeats: int) -> float:
    """Median wall time of `work()` over `repeats` calls, after one warm-up call.

    The warm-up pays for kernel selection and first allocations, which no later call repeats.
    """
    work()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)
