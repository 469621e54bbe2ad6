"""Benchmark suite of episode-sampler: speed, latency and memory against the usual baselines.

Run it from the repository root as ``python -m benchmarks [--quick] [--out DIR] [--docs]``; it lives
in the checkout, not in the installed package, and measures whichever ``episode_sampler`` imports
(the installed one, else ``src/``). Every figure of one run is measured in the same process as its
baselines, repeated, and reported as a median; methods compared with each other are timed in
round-robin order (one repetition of each in turn), so a burst of load on a noisy machine hits all
of them alike. Results go to ``DIR/bench.json`` (``bench-quick.json`` with ``--quick``) plus PNG
plots; ``--docs`` also rewrites the checkout's ``docs/performance.md`` and ``docs/img/perf_*.png``.

Modules:

* ``config``: sizes and repetitions of a run; ``timing``: round-robin timing and medians;
  ``layouts``: synthetic layouts and samplers;
* ``cases/``: one module per section (``fullepoch``, ``iteration``, ``restore``,
  ``restore_peers``, ``memory``, ``quality``, ``e2e``, ``state``, ``video``);
* ``peers/``: the other samplers measured side by side (torch, torchdata, LeRobot's loop);
* ``targets``: PASS/FAIL targets and informational ratios; ``tables``, ``plots``, ``docs_page``:
  the report; ``machine``: versions; ``main``: the command line.
"""

from __future__ import annotations

from .config import SECTIONS, Config, make_config
from .layouts import make_layout
from .main import build_parser, main
from .targets import evaluate_targets, format_info, format_target, informational_ratios

__all__ = [
    "SECTIONS",
    "Config",
    "build_parser",
    "evaluate_targets",
    "format_info",
    "format_target",
    "informational_ratios",
    "main",
    "make_config",
    "make_layout",
]
