"""episode-sampler: episode-aware, deterministic, resumable shuffling for torchdata pipelines."""

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

__version__ = "0.1.0"

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
