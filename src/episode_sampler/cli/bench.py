"""``episode-sampler bench``: pass the arguments to the benchmark suite (``episode_sampler.bench``)."""

from __future__ import annotations

import importlib
import sys

from .parser import PROG

BENCH_MODULE = "episode_sampler.bench"


def run(argv: list[str]) -> int:
    """Run ``episode_sampler.bench.main(argv)``; a clean error (exit 2) when it cannot be imported."""
    try:
        bench = importlib.import_module(BENCH_MODULE)
    except ImportError as exc:
        if getattr(exc, "name", None) != BENCH_MODULE:
            sys.stderr.write(f"{PROG} bench: error: the benchmark suite failed to import: {exc}\n")
            return 2
        if any(a in ("-h", "--help") for a in argv):
            print(f"usage: {PROG} bench [--quick] [...]\n\nRuns {BENCH_MODULE}.main(argv).")
            print(f"\nThe benchmark module {BENCH_MODULE} is not installed in this build.")
            return 0
        sys.stderr.write(
            f"{PROG} bench: error: the benchmark suite (module {BENCH_MODULE}) is not available "
            "in this installation\n"
        )
        return 2
    code = bench.main(argv)
    return int(code) if code is not None else 0
