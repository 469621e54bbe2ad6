"""episode-sampler: episode-aware, deterministic, resumable shuffling for torchdata pipelines."""

from .episodes import EpisodeIndex

__version__ = "0.1.0"

__all__ = ["EpisodeIndex", "__version__"]
