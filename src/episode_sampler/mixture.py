"""Dataset mixtures: one :class:`EpisodeSamplerNode` per LeRobot dataset under torchdata's
``MultiNodeWeightedSampler``, with batched reads per dataset, and JSON-safe mixture states.

A mixture restores exactly (same world size): every child node is restored exactly (the restore
contract, see docs/torchdata.md) and ``MultiNodeWeightedSampler`` keeps its own RNG state. Its state
holds torch tensors (the RNG state), so :func:`state_to_json` / :func:`state_from_json` convert it
for ``json`` / :func:`episode_sampler.save_state` checkpoints.

An *elastic* restore of a mixture (another world size) cannot be exact: every rank draws the
datasets from its own RNG stream, so the ranks consume different numbers of samples of each dataset,
and the samples consumed from one dataset by all ranks together are no longer a prefix of its order.
:func:`episode_sampler.check_exactness` with ``elastic=True`` warns about it.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torchdata.nodes import BaseNode, Mapper, MultiNodeWeightedSampler, StopCriteria

from .core.validation import ArgumentTypeError
from .lerobot import LeRobotFrames
from .node import EpisodeSamplerNode

__all__ = ["lerobot_mixture", "mixture", "state_from_json", "state_to_json"]

STOP_CRITERIA = (
    StopCriteria.ALL_DATASETS_EXHAUSTED,
    StopCriteria.FIRST_DATASET_EXHAUSTED,
    StopCriteria.CYCLE_UNTIL_ALL_DATASETS_EXHAUSTED,
    StopCriteria.CYCLE_FOREVER,
)
_TENSOR_KEY = "__tensor__"


def _check_weights(names: Sequence[str], weights: Any) -> dict[str, float]:
    if not isinstance(weights, Mapping):
        raise ArgumentTypeError(
            f"weights must be a dict of dataset name -> weight, got {type(weights).__name__}"
        )
    if set(weights) != set(names):
        raise ValueError(f"weights must have one entry per dataset {sorted(names)}, got {sorted(weights)}")
    out = {}
    for name in names:
        w = weights[name]
        if isinstance(w, bool) or not isinstance(w, (int, float, np.integer, np.floating)):
            raise ArgumentTypeError(f"weights[{name!r}] must be a number, got {type(w).__name__}")
        if not np.isfinite(w) or w <= 0:
            raise ValueError(f"weights[{name!r}] must be a finite number > 0, got {w!r}")
        out[name] = float(w)
    return out


def mixture(
    sources: Mapping[str, BaseNode],
    weights: Mapping[str, float],
    *,
    stop_criteria: str = StopCriteria.CYCLE_UNTIL_ALL_DATASETS_EXHAUSTED,
    seed: int = 0,
    rank: int | None = None,
    world_size: int | None = None,
) -> MultiNodeWeightedSampler:
    """``MultiNodeWeightedSampler`` over ``sources`` with validated weights (ints are fine).

    Each ``iter(loader)`` is one pass of the mixture as ``stop_criteria`` defines it (torchdata's
    default, ``CYCLE_UNTIL_ALL_DATASETS_EXHAUSTED``: a dataset that runs out starts its next epoch
    until every dataset ran out once, so the batch counts follow the weights;
    ``ALL_DATASETS_EXHAUSTED`` reads every dataset exactly once per pass, the weights then only
    shape the interleaving). The mixing RNG is seeded from ``seed``, the rank and the pass number
    (torchdata's rule).

    Raises:
        TypeError, ValueError: no sources, weights that do not match the sources or are not > 0, an
            unknown ``stop_criteria``.
    """
    if not isinstance(sources, Mapping) or not sources:
        raise ValueError("sources must be a non-empty dict of dataset name -> node")
    for name, node in sources.items():
        if not isinstance(node, BaseNode):
            raise ArgumentTypeError(
                f"sources[{name!r}] must be a torchdata BaseNode, got {type(node).__name__}"
            )
    w = _check_weights(list(sources), weights)
    if stop_criteria not in STOP_CRITERIA:
        raise ValueError(f"stop_criteria must be one of {list(STOP_CRITERIA)}, got {stop_criteria!r}")
    return MultiNodeWeightedSampler(
        dict(sources), w, stop_criteria=stop_criteria, rank=rank, world_size=world_size, seed=seed
    )


def lerobot_mixture(
    roots: Mapping[str, str | os.PathLike[str]],
    weights: Mapping[str, float],
    *,
    batch_size: int,
    columns: Sequence[str] | None = None,
    tag: str | None = "dataset",
    stop_criteria: str = StopCriteria.CYCLE_UNTIL_ALL_DATASETS_EXHAUSTED,
    seed: int = 0,
    mix_seed: int | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    drop_last_batch: bool = False,
    **sampler_kwargs: Any,
) -> MultiNodeWeightedSampler:
    """A weighted mixture of LeRobot v3 datasets, one batch of one dataset per item.

    Per dataset: ``EpisodeSamplerNode.from_lerobot(root, batch_size=..., seed=seed, **sampler_kwargs)``
    -> ``Mapper(LeRobotFrames(root, columns).get_batch)`` (one batched read per batch); then
    :func:`mixture` over them. Every batch is a dict of one dataset's columns; with ``tag`` set it
    also holds ``batch[tag] = name``.

    Args:
        roots: dataset name -> dataset directory.
        weights: dataset name -> sampling weight (> 0; relative).
        batch_size, drop_last_batch: batch size of every dataset's reads.
        columns: columns to read (``None``: every readable column of each dataset).
        tag: key under which each batch carries its dataset name (``None``: no tag).
        stop_criteria: torchdata's ``StopCriteria`` for one pass of the mixture.
        seed: the shuffle seed of every dataset's sampler.
        mix_seed: the mixing RNG's seed (default: ``seed``).
        rank, world_size: this process's shard (default: the torch.distributed group, else 0 / 1);
            each dataset is sharded, and the mixing RNG is seeded per rank.
        **sampler_kwargs: further sampler arguments (``shuffle``, ``permutation``, ``order``, ...).

    Raises:
        TypeError, ValueError: invalid arguments, naming them; FileNotFoundError: missing metadata.
    """
    if not isinstance(roots, Mapping) or not roots:
        raise ValueError("roots must be a non-empty dict of dataset name -> dataset directory")
    _check_weights(list(roots), weights)
    if tag is not None and not isinstance(tag, str):
        raise ArgumentTypeError(f"tag must be a str or None, got {type(tag).__name__}")
    sources: dict[str, BaseNode] = {}
    nodes: list[EpisodeSamplerNode] = []
    for name, root in roots.items():
        node = EpisodeSamplerNode.from_lerobot(
            root,
            batch_size=batch_size,
            drop_last_batch=drop_last_batch,
            seed=seed,
            rank=rank,
            world_size=world_size,
            **sampler_kwargs,
        )
        frames = LeRobotFrames(root, columns=list(columns) if columns is not None else None)
        sources[name] = Mapper(node, _reader(frames, name, tag))
        nodes.append(node)
    if rank is None or world_size is None:
        rank, world_size = nodes[0].rank, nodes[0].world_size
    return mixture(
        sources,
        weights,
        stop_criteria=stop_criteria,
        seed=seed if mix_seed is None else mix_seed,
        rank=rank,
        world_size=world_size,
    )


class _reader:  # noqa: N801 - a picklable closure (process workers)
    def __init__(self, frames: LeRobotFrames, name: str, tag: str | None) -> None:
        self.frames, self.name, self.tag = frames, name, tag

    def __call__(self, indices: list[int]) -> dict[str, Any]:
        batch = self.frames.get_batch(indices)
        if self.tag is not None:
            batch[self.tag] = self.name
        return batch


def state_to_json(state: Any) -> Any:
    """A copy of ``state`` with every torch tensor replaced by a JSON-safe dict (see :func:`state_from_json`).

    ``MultiNodeWeightedSampler``'s state holds its RNG state as a ``torch.uint8`` tensor; everything
    else in a torchdata state is plain data.
    """
    if isinstance(state, torch.Tensor):
        arr = state.detach().cpu().contiguous().numpy()
        return {
            _TENSOR_KEY: {
                "dtype": str(arr.dtype),
                "shape": list(arr.shape),
                "data": base64.b64encode(arr.tobytes()).decode("ascii"),
            }
        }
    if isinstance(state, Mapping):
        return {k: state_to_json(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return [state_to_json(v) for v in state]
    return state


def state_from_json(obj: Any) -> Any:
    """Inverse of :func:`state_to_json`: tensors come back with their dtype and shape.

    Raises:
        ValueError: a malformed tensor entry.
    """
    if isinstance(obj, Mapping):
        if set(obj) == {_TENSOR_KEY}:
            spec = obj[_TENSOR_KEY]
            try:
                arr = np.frombuffer(base64.b64decode(spec["data"]), dtype=np.dtype(spec["dtype"]))
                return torch.from_numpy(arr.reshape(spec["shape"]).copy())
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"malformed tensor entry in a mixture state: {exc}") from None
        return {k: state_from_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [state_from_json(v) for v in obj]
    return obj
