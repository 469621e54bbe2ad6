"""The state codec shared by the sampler and the node: build, validate, restore (see docs/state-format.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ._validate import ArgumentTypeError, check_bool, check_int

STATE_VERSION = 1
MAX_EPOCH = 2**62

# Fields that define the order: a state is refused when one of them differs.
IDENTITY_KEYS = ("fingerprint", "num_frames", "seed", "shuffle", "permutation", "order", "block_size")
POSITION_KEYS = ("epoch", "start_index", "global_start", "world_size", "rank", "drop_last")
STATE_KEYS = ("version", *POSITION_KEYS, *IDENTITY_KEYS)
LEROBOT_KEYS = frozenset({"epoch", "start_index"})


def samples_per_rank(num_frames: int, global_start: int, world_size: int, drop_last: bool) -> int:
    """How many samples each rank yields from global position ``global_start`` to the epoch's end."""
    remaining = max(0, num_frames - global_start)
    if drop_last:
        return remaining // world_size
    return -(-remaining // world_size)


def build_state(
    identity: Mapping[str, Any],
    *,
    epoch: int,
    start_index: int,
    global_start: int,
    world_size: int,
    rank: int,
    drop_last: bool,
) -> dict[str, Any]:
    """A fresh JSON-serializable state dict (plain ints, strings, bools and None)."""
    state: dict[str, Any] = {
        "version": STATE_VERSION,
        "epoch": int(epoch),
        "start_index": int(start_index),
        "global_start": int(global_start),
        "world_size": int(world_size),
        "rank": int(rank),
        "drop_last": bool(drop_last),
    }
    for key in IDENTITY_KEYS:
        state[key] = identity[key]
    return state


def restore_position(
    state: Any,
    identity: Mapping[str, Any],
    *,
    world_size: int,
    drop_last: bool,
) -> tuple[int, int, int]:
    """Validate ``state`` and return where to resume: ``(epoch, start_index, global_start)``.

    ``start_index`` and ``global_start`` are in the *current* world size: a state saved under another
    world size resumes at the first global position no old rank had reached (elastic resume).

    Raises:
        TypeError: ``state`` is not a mapping, or a field has the wrong type.
        ValueError: missing or unknown keys, an unknown version, a field that differs from this
            sampler (named in the message), or a position out of range.
    """
    if not isinstance(state, Mapping):
        raise ArgumentTypeError(f"state must be a dict, got {type(state).__name__}")
    keys = set(state)
    num_frames = identity["num_frames"]
    if keys == LEROBOT_KEYS:  # a bare LeRobot state: same world, from the epoch's start
        epoch = check_int("state['epoch']", state["epoch"], minimum=0, maximum=MAX_EPOCH)
        start = check_int("state['start_index']", state["start_index"], minimum=0)
        saved_ws, saved_drop, global_start = world_size, drop_last, 0
    else:
        missing = [k for k in STATE_KEYS if k not in keys]
        unknown = sorted(str(k) for k in keys - set(STATE_KEYS))
        if unknown:
            raise ValueError(f"state has unknown keys {unknown}")
        if missing:
            raise ValueError(f"state is missing keys {missing}")
        version = state["version"]
        if isinstance(version, bool) or not isinstance(version, int) or version != STATE_VERSION:
            raise ValueError(
                f"state field 'version' is {version!r}; this library reads version {STATE_VERSION}"
            )
        for key in IDENTITY_KEYS:
            if not _same(state[key], identity[key]):
                raise ValueError(
                    f"state field {key!r} differs: the state has {state[key]!r}, "
                    f"this sampler has {identity[key]!r}"
                    + (" (a state from another dataset layout)" if key == "fingerprint" else "")
                )
        epoch = check_int("state['epoch']", state["epoch"], minimum=0, maximum=MAX_EPOCH)
        start = check_int("state['start_index']", state["start_index"], minimum=0)
        saved_ws = check_int("state['world_size']", state["world_size"], minimum=1, maximum=2**31)
        rank = check_int("state['rank']", state["rank"], minimum=0)
        if rank >= saved_ws:
            raise ValueError(f"state field 'rank' is {rank}, not below world_size {saved_ws}")
        saved_drop = check_bool("state['drop_last']", state["drop_last"])
        global_start = check_int(
            "state['global_start']", state["global_start"], minimum=0, maximum=num_frames
        )
    per_rank = samples_per_rank(num_frames, global_start, saved_ws, saved_drop)
    if start > per_rank:
        raise ValueError(
            f"state field 'start_index' is {start}, beyond the {per_rank} samples of rank's epoch "
            f"(num_frames={num_frames}, world_size={saved_ws}, global_start={global_start})"
        )
    if start == per_rank:  # the epoch was finished: resume at the next one
        return epoch + 1, 0, 0
    if saved_ws == world_size:
        if start >= samples_per_rank(num_frames, global_start, world_size, drop_last):
            return epoch + 1, 0, 0  # e.g. saved with drop_last=False, loaded with True: epoch is over
        return epoch, start, global_start
    consumed = min(global_start + start * saved_ws, num_frames)
    if samples_per_rank(num_frames, consumed, world_size, drop_last) == 0:
        return epoch + 1, 0, 0
    return epoch, 0, consumed


def _same(saved: Any, mine: Any) -> bool:
    """Equal value and kind (a bool never equals an int, an int may come back as a numpy int)."""
    if isinstance(mine, bool) or isinstance(saved, (bool, np.bool_)):
        return isinstance(saved, (bool, np.bool_)) and isinstance(mine, bool) and bool(saved) == mine
    if isinstance(mine, int):
        return isinstance(saved, (int, np.integer)) and int(saved) == mine
    return type(saved) is type(mine) and saved == mine
