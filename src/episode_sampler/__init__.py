"""episode-sampler: episode-aware, deterministic, resumable shuffling for torchdata pipelines.

The public names below are imported on first use (PEP 562 module ``__getattr__``): ``import
episode_sampler`` and ``episode_sampler.__version__`` import neither torch nor pyarrow nor PyAV, so a
command line or a tool that only needs a little of the package starts at once.
``from episode_sampler import EpisodeAwareSampler`` works as always and imports what that name needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the submodule that defines it (imported when the name is first used).
_LAZY: dict[str, str] = {
    "EpisodeAwareSampler": ".sampler",
    "EpisodeIndex": ".episodes",
    "EpisodeSamplerNode": ".nodes",
    "EpochOrder": ".order",
    "FeistelPermutation": ".permutation",
    "LeRobotFrames": ".lerobot",
    "ORDERS": ".order",
    "PERMUTATIONS": ".permutation",
    "RandpermPermutation": ".permutation",
    "STATE_VERSION": ".state",
    "check_exactness": ".pipeline_check",
    "compute_sampler_state": ".sampler",
    "load_state": ".checkpoint",
    "make_permutation": ".permutation",
    "read_episode_index": ".lerobot",
    "sample_seed": ".seeding",
    "save_state": ".checkpoint",
    "write_lerobot_dataset": ".lerobot",
}

__all__ = [
    "EpisodeAwareSampler",
    "EpisodeIndex",
    "EpisodeSamplerNode",
    "EpochOrder",
    "FeistelPermutation",
    "LeRobotFrames",
    "ORDERS",
    "PERMUTATIONS",
    "RandpermPermutation",
    "STATE_VERSION",
    "check_exactness",
    "compute_sampler_state",
    "load_state",
    "make_permutation",
    "read_episode_index",
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
    from .checkpoint import load_state, save_state
    from .episodes import EpisodeIndex
    from .lerobot import LeRobotFrames, read_episode_index, write_lerobot_dataset
    from .nodes import EpisodeSamplerNode
    from .order import ORDERS, EpochOrder
    from .permutation import PERMUTATIONS, FeistelPermutation, RandpermPermutation, make_permutation
    from .pipeline_check import check_exactness
    from .sampler import EpisodeAwareSampler, compute_sampler_state
    from .seeding import sample_seed
    from .state import STATE_VERSION
