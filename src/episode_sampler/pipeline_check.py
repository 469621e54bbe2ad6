"""Static check of a torchdata graph for configurations whose resume cannot be exact."""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

from torchdata.nodes import BaseNode, Loader, MultiNodeWeightedSampler, ParallelMapper, PinMemory, Prefetcher

from .node import EpisodeSamplerNode

_SNAPSHOTTING = (ParallelMapper, Prefetcher, PinMemory)
_MAX_CONTAINER_LEN = 1024
_MAX_CONTAINER_DEPTH = 3  # dicts/lists of nodes inside an attribute (MultiNodeWeightedSampler.source_nodes)


def _children(node: BaseNode, path: str) -> Iterator[tuple[BaseNode, str]]:
    """Every ``BaseNode`` held by ``node``'s attributes, directly or in dicts/lists/tuples."""
    for attr, value in getattr(node, "__dict__", {}).items():
        yield from _nodes_in(value, f"{path}.{attr}", 0)


def _nodes_in(value: Any, path: str, depth: int) -> Iterator[tuple[BaseNode, str]]:
    if isinstance(value, BaseNode):
        yield value, path
    elif depth >= _MAX_CONTAINER_DEPTH or _too_big(value):
        return
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _nodes_in(item, f"{path}[{key!r}]", depth + 1)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _nodes_in(item, f"{path}[{i}]", depth + 1)


def _too_big(value: Any) -> bool:
    """Large containers (data tables, not lists of child nodes) are not searched."""
    return isinstance(value, (Mapping, list, tuple)) and len(value) > _MAX_CONTAINER_LEN


def walk(pipeline: Loader | BaseNode) -> Iterator[tuple[BaseNode, str]]:
    """Every node of the graph once (breadth first), with the attribute path that reaches it.

    Follows every ``BaseNode`` attribute (``.source``, ``MultiNodeWeightedSampler.source_nodes``,
    a custom node's children, internal iterators), inside dicts, lists and tuples too; a node reached
    twice (shared, or a cycle) is visited once.

    Raises:
        TypeError: ``pipeline`` is neither a ``Loader`` nor a ``BaseNode``.
    """
    root: Any = pipeline.root if isinstance(pipeline, Loader) else pipeline
    if not isinstance(root, BaseNode):
        raise TypeError(f"pipeline must be a torchdata Loader or BaseNode, got {type(pipeline).__name__}")
    seen = {id(root)}
    queue = deque([(root, "root")])
    while queue:
        node, path = queue.popleft()
        yield node, path
        for child, child_path in _children(node, path):
            if id(child) not in seen:
                seen.add(id(child))
                queue.append((child, child_path))


def check_exactness(pipeline: Loader | BaseNode, *, elastic: bool = False, warn: bool = True) -> list[str]:
    """Walk a ``Loader``/node graph (every node, see :func:`walk`) and list what prevents an exact resume.

    Reported, anywhere in the graph:

    - ``ParallelMapper(in_order=False)``: its snapshot can skip items still in flight.
    - with ``elastic=True``, ``snapshot_frequency != 1`` on a ``ParallelMapper``, ``Prefetcher`` or
      ``PinMemory``: restoring a full ``Loader`` state replays items from the snapshot in the *old*
      world's shard.
    - with ``elastic=True``, a ``MultiNodeWeightedSampler``: every rank draws the datasets from its own
      RNG stream, so ranks consume different numbers of samples of each dataset and an elastic
      restore of a mixture cannot be exact (restore it with the same world size).
    - a graph without an :class:`EpisodeSamplerNode`.

    Each problem is also issued as a ``UserWarning`` unless ``warn=False``.

    Args:
        pipeline: a ``torchdata.nodes.Loader`` or the root ``BaseNode`` of a graph.
        elastic: whether the run may resume with a different world size.
        warn: issue each problem as a ``UserWarning`` too.

    Returns:
        One message per problem (naming the node's class and its attribute path from the root);
        empty when the graph resumes exactly.

    Raises:
        TypeError: ``pipeline`` is neither a ``Loader`` nor a ``BaseNode``.
    """
    problems: list[str] = []
    found = False
    for node, path in walk(pipeline):
        name = type(node).__name__
        if isinstance(node, EpisodeSamplerNode):
            found = True
        if isinstance(node, ParallelMapper) and not node.in_order:
            problems.append(
                f"{name}(in_order=False) at {path} is not exactly resumable: its state can skip items "
                "still in flight; use in_order=True"
            )
        freq = getattr(node, "snapshot_frequency", 1)
        if elastic and isinstance(node, _SNAPSHOTTING) and freq != 1:
            problems.append(
                f"{name}(snapshot_frequency={freq}) at {path} replays items of the old world's shard after "
                "an elastic restore of the whole Loader state; use snapshot_frequency=1"
            )
        if elastic and isinstance(node, MultiNodeWeightedSampler):
            problems.append(
                f"{name} at {path}: an elastic restore of a mixture cannot be exact: each rank draws the "
                "datasets from its own RNG stream, so the ranks consume different numbers of samples of "
                "each dataset and no single state says which samples all ranks consumed; resume a "
                "mixture with the same world size"
            )
    if not found:
        problems.append("no EpisodeSamplerNode found in the graph")
    if warn:
        for message in problems:
            warnings.warn(message, UserWarning, stacklevel=2)
    return problems
