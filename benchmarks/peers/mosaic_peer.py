"""MosaicML Streaming's epoch shuffles (``streaming.base.shuffle.get_shuffle``: py1e, py1s, ...).

``StreamingDataset`` shuffles shards of samples: ``get_shuffle(algo, shard_sizes,
num_canonical_nodes, seed, epoch, block_size)`` returns the whole epoch's sample order (O(N)), and a
resume (``sample_in_epoch``) recomputes it and skips the consumed prefix. We call that function
itself, with StreamingDataset's single-node defaults: ``py1e``, 64 canonical nodes,
``shuffle_block_size = max(4_000_000 // 64, 2**18)``, shards of ``SHARD_SAMPLES`` samples.

``import streaming`` pulls in transformers, torchvision and cloud SDKs, whose pinned versions
conflict with this project's torch/numpy; when the package imports without them failing, its shuffle
modules (numpy only) are loaded directly from the installed distribution instead.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

import numpy as np

SHARD_SAMPLES = 8192
CANONICAL_NODES = 64
BLOCK_SIZE = max(4_000_000 // CANONICAL_NODES, 1 << 18)
_cache: dict[str, Any] = {}


def _get_shuffle() -> Any:
    if "fn" in _cache:
        return _cache["fn"]
    try:
        from streaming.base.shuffle import get_shuffle
    except Exception:
        spec = importlib.util.find_spec("streaming")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("mosaicml-streaming is not installed") from None
        for name in [m for m in sys.modules if m == "streaming" or m.startswith("streaming.")]:
            del sys.modules[name]  # a half-imported package from the failed attempt
        root = list(spec.submodule_search_locations)[0]
        stubs = {"streaming": root, "streaming.base": f"{root}/base"}
        for name, path in stubs.items():  # empty parent packages: their __init__ is not run
            mod = types.ModuleType(name)
            mod.__path__ = [path]
            sys.modules[name] = mod
        try:
            get_shuffle = importlib.import_module("streaming.base.shuffle").get_shuffle
        finally:
            for name in [m for m in sys.modules if m == "streaming" or m.startswith("streaming.")]:
                del sys.modules[name]  # keep no stub around for other code to trip on
    _cache["fn"] = get_shuffle
    return get_shuffle


def available() -> str | None:
    try:
        _get_shuffle()
    except Exception as exc:
        return f"mosaicml-streaming not importable ({type(exc).__name__}: {exc})"
    return None


def shard_sizes(n: int) -> np.ndarray:
    sizes = np.full(-(-n // SHARD_SAMPLES), SHARD_SAMPLES, dtype=np.int64)
    sizes[-1] = n - SHARD_SAMPLES * (sizes.size - 1)
    return sizes


def epoch_order(n: int, seed: int, epoch: int, algo: str = "py1e") -> np.ndarray:
    """The epoch's sample order as StreamingDataset computes it (before splitting across workers)."""
    return np.asarray(_get_shuffle()(algo, shard_sizes(n), CANONICAL_NODES, seed, epoch, BLOCK_SIZE))


def restore_first(n: int, seed: int, epoch: int, position: int, algo: str = "py1e") -> int:
    """A resume's first sample: the epoch's order is recomputed, then indexed (a lower bound of its cost)."""
    return int(epoch_order(n, seed, epoch, algo)[position])
