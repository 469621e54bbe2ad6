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
from .overhead import bench_overhead
from .quality import bench_quality
from .restore import bench_restore
from .restore_peers import bench_restore_peers
from .startup import bench_startup
from .state import bench_state
from .video import bench_video

BENCHES: dict[str, Callable[[Config, Log], dict[str, Any]]] = {
    "fullepoch": bench_fullepoch,
    "iteration": bench_iteration,
    "restore": bench_restore,
    "peers_restore": bench_restore_peers,
    "memory": bench_memory,
    "quality": bench_quality,
    "e2e": bench_e2e,
    "state": bench_state,
    "video": bench_video,
    "startup": bench_startup,
    "overhead": bench_overhead,
}
