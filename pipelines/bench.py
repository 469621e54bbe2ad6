#!/usr/bin/env python
"""Benchmark suite runner: ``python pipelines/bench.py [--quick] [--out DIR] [--docs]``.

A thin wrapper around :func:`episode_sampler.bench.main` (the implementation ships in the package,
so ``episode-sampler bench`` works without this checkout). Run from a checkout, ``--docs`` rewrites
this repository's ``docs/performance.md`` and ``docs/img/perf_*.png`` whatever the working directory.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        from episode_sampler.bench import main as bench_main
    except ImportError:  # not installed: use the checkout's sources
        sys.path.insert(0, str(ROOT / "src"))
        from episode_sampler.bench import main as bench_main
    if "--docs" in argv and not any(a == "--docs-dir" or a.startswith("--docs-dir=") for a in argv):
        argv += ["--docs-dir", str(ROOT / "docs")]
    return bench_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
