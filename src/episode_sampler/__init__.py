"""episode-sampler: episode-aware, deterministic, resumable shuffling for torchdata pipelines.

The public names below are imported on first use (PEP 562 module ``__getattr__``): ``import
episode_sampler`` and ``episode_sampler.__version__`` import neither torch nor pyarrow nor PyAV, so a
command line or a tool that only needs a little of the package starts at once.
``from episode_sampler import EpisodeAwareSampler`` works as always and imports what that name needs.

The package, in the order data flows (each layer imports only the ones before it):

- ``episode_sampler.core``: the pure order -- layout, permutation, order, the shard/pass cursor,
  the state codec, seeds. Imports nothing else of the package.
- ``episode_sampler.lerobot``: LeRobot v3 datasets (Parquet, video, tasks, stats); uses ``core``.
- ``episode_sampler.sampler`` / ``.node`` / ``.mixture`` / ``.distributed`` / ``.pipeline_check``:
  the torch ``Sampler``, the torchdata node, mixtures and checks, built from ``core``.
- ``episode_sampler.integrations``: accelerate; ``episode_sampler.cli``: the command line.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

#: Public name -> the submodule that defines it (imported when the name is first used).
_LAZY: dict[str, str] = {
    "EpisodeAwareSampler": ".sampler",
    "EpisodeIndex": ".core.layout",
    "EpisodeSamplerNode": ".node",
    "LeRobotFrames": ".lerobot",
    "check_consistent": ".distributed",
    "check_exactness": ".pipeline_check",
    "compute_sampler_state": ".core.steps",
    "lerobot_mixture": ".mixture",
    "load_state": ".core.checkpoint",
    "resume_dataloader": ".integrations.accelerate",
    "sample_seed": ".core.seeding",
    "save_state": ".core.checkpoint",
    "write_lerobot_dataset": ".lerobot",
}

__all__ = [
    "EpisodeAwareSampler",
    "EpisodeIndex",
    "EpisodeSamplerNode",
    "LeRobotFrames",
    "check_consistent",
    "check_exactness",
    "compute_sampler_state",
    "lerobot_mixture",
    "load_state",
    "resume_dataloader",
    "sample_seed",
    "save_state",
    "write_lerobot_dataset",
    "__version__",
]


def __getattr__(name: str) -> Any:
    """Import a public name's submodule on first use and cache the name in this module."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # type checkers and the API docs (griffe) see the names statically
    from .core.checkpoint import load_state, save_state
    from .core.layout import EpisodeIndex
    from .core.seeding import sample_seed
    from .core.steps import compute_sampler_state
    from .distributed import check_consistent
    from .integrations.accelerate import resume_dataloader
    from .lerobot import LeRobotFrames, write_lerobot_dataset
    from .mixture import lerobot_mixture
    from .node import EpisodeSamplerNode
    from .pipeline_check import check_exactness
    from .sampler import EpisodeAwareSampler
