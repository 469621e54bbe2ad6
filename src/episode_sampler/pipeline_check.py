"""Static check of a torchdata graph for configurations whose resume cannot be exact."""

from __future__ import annotations

import warnings
from typing import Any

from torchdata.nodes import BaseNode, Loader, ParallelMapper, Prefetcher

from .nodes import EpisodeSamplerNode


def check_exactness(pipeline: Loader | BaseNode, *, elastic: bool = False, warn: bool = True) -> list[str]:
    """Walk a ``Loader``/node graph (through ``.source``) and list what prevents an exact resume.

    Reported: ``ParallelMapper(in_order=False)`` (its snapshot can skip items in flight), and with
    ``elastic=True`` any ``snapshot_frequency > 1`` (restoring a full ``Loader`` state replays items
    from the snapshot in the *old* world's shard). Also reported: a graph without an
    :class:`EpisodeSamplerNode`. Each problem is also issued as a ``UserWarning`` unless ``warn=False``.

    Args:
        pipeline: a ``torchdata.nodes.Loader`` or the root ``BaseNode`` of a graph.
        elastic: whether the run may resume with a different world size.
        warn: issue each problem as a ``UserWarning`` too.

    Returns:
        One message per problem; empty when the graph resumes exactly.

    Raises:
        TypeError: ``pipeline`` is neither a ``Loader`` nor a ``BaseNode``.
    """
    node: Any = pipeline.root if isinstance(pipeline, Loader) else pipeline
    if not isinstance(node, BaseNode):
        raise TypeError(f"pipeline must be a torchdata Loader or BaseNode, got {type(pipeline).__name__}")
    problems: list[str] = []
    found = False
    seen: set[int] = set()
    while isinstance(node, BaseNode) and id(node) not in seen:
        seen.add(id(node))
        name = type(node).__name__
        if isinstance(node, EpisodeSamplerNode):
            found = True
        if isinstance(node, ParallelMapper) and not node.in_order:
            problems.append(
                f"{name}(in_order=False) is not exactly resumable: its state can skip items still in "
                "flight; use in_order=True"
            )
        freq = getattr(node, "snapshot_frequency", 1)
        if elastic and isinstance(node, (ParallelMapper, Prefetcher)) and freq != 1:
            problems.append(
                f"{name}(snapshot_frequency={freq}) replays items of the old world's shard after an "
                "elastic restore of the whole Loader state; use snapshot_frequency=1"
            )
        node = getattr(node, "source", None)
    if not found:
        problems.append("no EpisodeSamplerNode found along the graph's .source chain")
    if warn:
        for message in problems:
            warnings.warn(message, UserWarning, stacklevel=2)
    return problems
