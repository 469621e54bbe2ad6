"""``torch.distributed`` helpers: this process's rank/world size, and a cross-rank consistency check.

Both work without an initialized process group (single-process runs, tests): the rank is then 0 of 1
and :func:`check_consistent` does nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .core.state import IDENTITY_KEYS

__all__ = ["CONSISTENCY_FIELDS", "check_consistent", "consistency_record", "get_rank_and_world_size"]

# Fields every rank must agree on, in the order a disagreement is reported.
# The identity fields come from the state codec, so a field added there (e.g. ``relabel``) is checked too.
CONSISTENCY_FIELDS: tuple[str, ...] = (*IDENTITY_KEYS, "drop_last", "world_size", "epoch", "consumed")


def _dist() -> Any:
    """``torch.distributed`` when it is available and initialized, else ``None``."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist
    return None


def get_rank_and_world_size() -> tuple[int, int]:
    """``(rank, world_size)`` of the default ``torch.distributed`` group, or ``(0, 1)`` without one.

    Environment variables (``RANK``, ``WORLD_SIZE``) are deliberately not read: before
    ``init_process_group`` the process is not part of a group yet.
    """
    dist = _dist()
    if dist is None:
        return 0, 1
    return int(dist.get_rank()), int(dist.get_world_size())


def _state_of(sampler_or_node: Any) -> Mapping[str, Any]:
    """The current state of an :class:`EpisodeAwareSampler` or an :class:`EpisodeSamplerNode`."""
    get_state = getattr(sampler_or_node, "get_state", None)  # a node: no reset side effect
    if callable(get_state):
        state = get_state()
    else:
        state_dict = getattr(sampler_or_node, "state_dict", None)
        if not callable(state_dict):
            raise TypeError(
                "check_consistent expects an EpisodeAwareSampler or an EpisodeSamplerNode, "
                f"got {type(sampler_or_node).__name__}"
            )
        state = state_dict()
    if not isinstance(state, Mapping) or "global_start" not in state:
        raise TypeError(
            f"{type(sampler_or_node).__name__}'s state is not an episode-sampler state (no 'global_start')"
        )
    return state


def consistency_record(sampler_or_node: Any) -> dict[str, Any]:
    """What :func:`check_consistent` compares across ranks, for this process (plain Python values).

    ``consumed`` is the global position all ranks together have reached in epoch ``epoch``:
    ``min(global_start + start_index * world_size, num_frames)``; ranks in lockstep agree on it.
    ``rank`` is the sampler's own rank (checked against the process group, not across ranks).

    Raises:
        TypeError: not a sampler or node of this library.
    """
    state = _state_of(sampler_or_node)
    record = {key: state[key] for key in CONSISTENCY_FIELDS if key != "consumed"}
    consumed = int(state["global_start"]) + int(state["start_index"]) * int(state["world_size"])
    record["consumed"] = min(consumed, int(state["num_frames"]))
    record["rank"] = int(state["rank"])
    return record


def _describe(values: list[Any]) -> str:
    """``value on ranks [..]; value on ranks [..]`` for one field, most common value first."""
    groups: dict[str, list[int]] = {}
    for rank, value in enumerate(values):
        groups.setdefault(repr(value), []).append(rank)
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[1][0]))
    return "; ".join(f"{value} on rank{'s' if len(ranks) > 1 else ''} {ranks}" for value, ranks in ordered)


def check_consistent(sampler_or_node: Any, group: Any = None) -> None:
    """Check that every rank of the process group iterates the same order from the same position.

    All-gathers (``torch.distributed.all_gather_object``) each rank's layout fingerprint, seed,
    shuffle, permutation, order (+ block size), ``drop_last``, world size, epoch and global consumed
    position (see :func:`consistency_record`), and each rank's sampler rank. It is a collective: call
    it on every rank. Does nothing when ``torch.distributed`` is not initialized.

    Args:
        sampler_or_node: an :class:`~episode_sampler.EpisodeAwareSampler` or an
            :class:`~episode_sampler.node.EpisodeSamplerNode`.
        group: the process group (default: the default group).

    Raises:
        ValueError: on every rank alike, when ranks disagree; the message names each disagreeing
            field with the ranks holding each value, and ranks whose sampler rank or world size
            does not match the process group.
        TypeError: not a sampler or node of this library.
    """
    record = consistency_record(sampler_or_node)
    dist = _dist()
    if dist is None:
        return
    world = int(dist.get_world_size(group))
    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, record, group=group)
    problems: list[str] = []
    for key in CONSISTENCY_FIELDS:
        values = [rec[key] for rec in gathered]
        if any(v != values[0] or type(v) is not type(values[0]) for v in values[1:]):
            problems.append(f"field {key!r} differs across ranks: {_describe(values)}")
    wrong_rank = [r for r, rec in enumerate(gathered) if rec["rank"] != r]
    if wrong_rank:
        detail = ", ".join(f"rank {r} has sampler rank {gathered[r]['rank']}" for r in wrong_rank)
        problems.append(f"field 'rank' does not match the process group on ranks {wrong_rank}: {detail}")
    wrong_world = [r for r, rec in enumerate(gathered) if rec["world_size"] != world]
    if wrong_world:
        problems.append(
            f"field 'world_size' does not match the process group's {world} on ranks {wrong_world}"
        )
    if problems:
        raise ValueError("check_consistent: " + "; ".join(problems))
