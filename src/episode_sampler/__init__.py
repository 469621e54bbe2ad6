"""episode-sampler: episode-aware, deterministic, resumable shuffling for torchdata pipelines."""

from .episodes import EpisodeIndex
from .order import ORDERS, EpochOrder
from .permutation import PERMUTATIONS, FeistelPermutation, RandpermPermutation, make_permutation
from .sampler import EpisodeAwareSampler, compute_sampler_state
from .state import STATE_VERSION

__version__ = "0.1.0"

__all__ = [
    "ORDERS",
    "PERMUTATIONS",
    "STATE_VERSION",
    "EpisodeAwareSampler",
    "EpisodeIndex",
    "EpochOrder",
    "FeistelPermutation",
    "RandpermPermutation",
    "compute_sampler_state",
    "make_permutation",
    "__version__",
]
