"""The suite's sections, one module each; ``BENCHES`` maps a section name to its runner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..config import Config
from ..timing import Log
from .e2e import bench_e2e
from .fullepoch import bench_fullepoch
from .iteration import bench_iteration
from .memory import bench_memory
from .restore import bench_restore
from .state import bench_state
from .video import bench_video

BENCHES: dict[str, Callable[[Config, Log], dict[str, Any]]] = {
    "fullepoch": bench_fullepoch,
    "iteration": bench_iteration,
    "restore": bench_restore,
    "memory": bench_memory,
    "e2e": bench_e2e,
    "state": bench_state,
    "video": bench_video,
}
