"""The machine and library versions a report was measured on."""

from __future__ import annotations

import os
import platform
from typing import Any

import numpy as np


def load_average() -> list[float] | None:
    """The system's load average over 1, 5 and 15 minutes (``None`` where the OS has none).

    Recorded at the start and the end of a run: a load near or above the core count means other
    processes competed for the CPU while the benchmarks ran.
    """
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine_info() -> dict[str, Any]:
    import torch
    import torchdata

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torchdata": getattr(torchdata, "__version__", "?"),
        "numpy": np.__version__,
    }
    try:
        import pyarrow

        info["pyarrow"] = pyarrow.__version__
    except ImportError:
        pass
    try:
        from episode_sampler import __version__

        info["episode_sampler"] = __version__
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as f:
            info["memory_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return info
