"""Timing primitives: round-robin repetitions, medians, extrapolated estimates, a C-speed consumer."""

from __future__ import annotations

import gc
import itertools
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


# ============================================================================================ helpers
class Log:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.t0 = time.perf_counter()

    def __call__(self, msg: str) -> None:
        if not self.quiet:
            print(f"[{time.perf_counter() - self.t0:6.1f}s] {msg}", flush=True)


@dataclass
class Estimate:
    """A duration computed from a timed prefix instead of measured end to end."""

    seconds: float


def time_round_robin(
    fns: dict[str, Callable[[int], Any]], reps: int, collect: bool = True
) -> dict[str, list[float]]:
    """Run every function ``reps`` times, one repetition of each in turn; wall seconds per call.

    A function gets the repetition number (to vary seed/epoch so nothing is cached) and may return
    an :class:`Estimate` to report an extrapolated duration instead of its own wall time. With
    ``collect`` (the default) a garbage collection runs before every call, outside the timing.
    """
    times: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(reps):
        for name, fn in fns.items():
            if collect:
                gc.collect()
            t0 = time.perf_counter()
            out = fn(r)
            dt = time.perf_counter() - t0
            times[name].append(out.seconds if isinstance(out, Estimate) else dt)
            del out
    return times


def med(xs: list[float]) -> float:
    return float(statistics.median(xs))


def consume(it: Iterator[Any], limit: int | None = None) -> int:
    """Exhaust (or take ``limit`` items of) an iterator at C speed; returns the count."""
    if limit is not None:
        it = itertools.islice(it, limit)
    count = 0
    for count, _ in enumerate(it, 1):  # noqa: B007
        pass
    return count
