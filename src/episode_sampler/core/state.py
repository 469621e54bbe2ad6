"""The state codec shared by the sampler and the node: build, validate, restore (see docs/state-format.md).

Version 2 (this release) adds to version 1 the two bits of a cursor's state machine that its position
alone does not say -- ``exhausted`` (the current pass has handed out its last item, its ``next()``
raises ``StopIteration`` until the next reset) and ``pulled`` (the current pass was pulled from since
its last reset, so a ``reset(None)`` starts the next epoch) -- and the identity field ``relabel``
(a fingerprint of the ``absolute_to_relative_idx`` table). ``epoch``/``start_index`` keep LeRobot's
meaning in every version: the next sample this rank yields is its ``start_index``-th of ``epoch``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from .validation import ArgumentTypeError, check_bool, check_int

STATE_VERSION = 2
READABLE_VERSIONS = (1, 2)
MAX_EPOCH = 2**62
# A state may name the epoch after the last one a sampler can run (the state written after it ended).
MAX_STATE_EPOCH = MAX_EPOCH + 1

# Fields that define the order: a state is refused when one of them differs.
IDENTITY_KEYS = (
    "fingerprint",
    "num_frames",
    "seed",
    "shuffle",
    "permutation",
    "order",
    "block_size",
    "relabel",
)
POSITION_KEYS = ("epoch", "start_index", "global_start", "world_size", "rank", "drop_last")
PASS_KEYS = ("exhausted", "pulled")
STATE_KEYS = ("version", *POSITION_KEYS, *PASS_KEYS, *IDENTITY_KEYS)
# Version 1 (episode-sampler 0.1.0): no pass bits, no relabel fingerprint.
V1_IDENTITY_KEYS = IDENTITY_KEYS[:-1]
V1_STATE_KEYS = ("version", *POSITION_KEYS, *V1_IDENTITY_KEYS)
LEROBOT_KEYS = frozenset({"epoch", "start_index"})
# version -> (its exact key set, the identity fields it carries)
_LAYOUTS = {
    1: (frozenset(V1_STATE_KEYS), V1_IDENTITY_KEYS),
    2: (frozenset(STATE_KEYS), IDENTITY_KEYS),
}


class Resume(NamedTuple):
    """Where a cursor resumes, read from a state.

    ``(epoch, start_index, global_start)`` is the position of the next sample (LeRobot's meaning, in
    the loading cursor's world size). ``exhausted``: the restored pass is already over -- it yields
    nothing, and the next pass starts at that position. ``pulled``: the restored pass counts as pulled
    from, so a ``reset(None)`` moves on to the next epoch (always true when ``exhausted``).
    """

    epoch: int
    start_index: int
    global_start: int
    exhausted: bool = False
    pulled: bool = False


def samples_per_rank(num_frames: int, global_start: int, world_size: int, drop_last: bool) -> int:
    """How many samples each rank yields from global position ``global_start`` to the epoch's end."""
    remaining = max(0, num_frames - global_start)
    if drop_last:
        return remaining // world_size
    return -(-remaining // world_size)


def state_keys(version: int) -> tuple[str, ...]:
    """The exact key set of a full state of ``version`` (1 or 2).

    Raises:
        ValueError: a version this library does not read.
    """
    if version == 1:
        return V1_STATE_KEYS
    if version == 2:
        return STATE_KEYS
    raise ValueError(f"state field 'version' is {version!r}; this library reads versions {READABLE_VERSIONS}")


def build_state(
    identity: Mapping[str, Any],
    *,
    epoch: int,
    start_index: int,
    global_start: int,
    world_size: int,
    rank: int,
    drop_last: bool,
    exhausted: bool = False,
    pulled: bool = False,
) -> dict[str, Any]:
    """A fresh JSON-serializable version-2 state dict (plain ints, strings, bools and None).

    With ``exhausted=True`` the position is the *next* pass's (``epoch`` = the finished epoch + 1,
    ``start_index`` 0): LeRobot's reading of the state after an epoch's last sample.
    """
    state: dict[str, Any] = {
        "version": STATE_VERSION,
        "epoch": int(epoch),
        "start_index": int(start_index),
        "global_start": int(global_start),
        "world_size": int(world_size),
        "rank": int(rank),
        "drop_last": bool(drop_last),
        "exhausted": bool(exhausted),
        "pulled": bool(exhausted or pulled),
    }
    for key in IDENTITY_KEYS:
        state[key] = identity[key]
    return state


def restore_state(
    state: Any,
    identity: Mapping[str, Any],
    *,
    world_size: int,
    drop_last: bool,
) -> Resume:
    """Validate ``state`` and return where (and in which pass state) to resume.

    ``start_index`` and ``global_start`` are in the *current* world size: a state saved under another
    world size resumes at the first global position no old rank had reached (elastic resume). A
    position at the end of its epoch (``start_index`` equal to the rank's sample count, as in a bare
    LeRobot state ``{"epoch": e, "start_index": len(sampler)}``) restores as an exhausted pass of
    epoch ``e``: one pass that yields nothing, then epoch ``e + 1``.

    Raises:
        TypeError: ``state`` is not a mapping, or a field has the wrong type.
        ValueError: missing or unknown keys, an unknown version, a field that differs from this
            sampler (named in the message), or a position out of range.
    """
    if type(state) is not dict and not isinstance(state, Mapping):
        raise ArgumentTypeError(f"state must be a dict, got {type(state).__name__}")
    keys = state.keys()
    num_frames = identity["num_frames"]
    exhausted = pulled = False
    if len(keys) == 2 and keys == LEROBOT_KEYS:  # a bare LeRobot state: same world, from the epoch's start
        epoch = check_int("state['epoch']", state["epoch"], minimum=0, maximum=MAX_STATE_EPOCH)
        start = check_int("state['start_index']", state["start_index"], minimum=0)
        saved_ws, saved_drop, global_start = world_size, drop_last, 0
    else:
        version = state.get("version")
        if isinstance(version, (bool, np.bool_)) or not isinstance(version, (int, np.integer)):
            if "version" not in keys:
                known = LEROBOT_KEYS.union(STATE_KEYS)
                unknown = sorted(str(k) for k in keys if k not in known)
                if unknown:  # e.g. a bare LeRobot state with an extra key: name it, not 'version'
                    raise ValueError(
                        f"state has unknown keys {unknown} (a bare LeRobot state has exactly 'epoch' "
                        f"and 'start_index'; a full state has {list(STATE_KEYS)})"
                    )
                raise ValueError(
                    f"state is missing keys ['version'] (a full state has {list(STATE_KEYS)}; "
                    "a bare LeRobot state has exactly 'epoch' and 'start_index')"
                )
            raise ValueError(
                f"state field 'version' is {version!r}; this library reads versions {READABLE_VERSIONS}"
            )
        if version not in _LAYOUTS:
            state_keys(int(version))  # raises: a version this library does not read
        expected_keys, identity_keys = _LAYOUTS[int(version)]
        if keys != expected_keys:
            expected = state_keys(int(version))
            missing = [k for k in expected if k not in keys]
            unknown = sorted(str(k) for k in keys - set(expected))
            if unknown:
                raise ValueError(f"state has unknown keys {unknown} for version {int(version)}")
            raise ValueError(f"state is missing keys {missing} for version {int(version)}")
        for key in identity_keys:
            saved, mine = state[key], identity[key]
            if type(saved) is type(mine) and saved == mine:  # the usual case: the very same value
                continue
            if not _same(saved, mine):
                raise ValueError(
                    f"state field {key!r} differs: the state has {saved!r}, "
                    f"this sampler has {mine!r}" + _IDENTITY_HINTS.get(key, "")
                )
        epoch = check_int("state['epoch']", state["epoch"], minimum=0, maximum=MAX_STATE_EPOCH)
        start = check_int("state['start_index']", state["start_index"], minimum=0)
        saved_ws = check_int("state['world_size']", state["world_size"], minimum=1, maximum=2**31)
        rank = check_int("state['rank']", state["rank"], minimum=0)
        if rank >= saved_ws:
            raise ValueError(f"state field 'rank' is {rank}, not below world_size {saved_ws}")
        saved_drop = check_bool("state['drop_last']", state["drop_last"])
        global_start = check_int(
            "state['global_start']", state["global_start"], minimum=0, maximum=num_frames
        )
        if version == 2:
            exhausted = check_bool("state['exhausted']", state["exhausted"])
            pulled = check_bool("state['pulled']", state["pulled"])
            if exhausted and (start != 0 or global_start != 0 or epoch == 0 or not pulled):
                raise ValueError(
                    "state field 'exhausted' is True, which needs epoch >= 1, start_index 0, "
                    f"global_start 0 and pulled True; got epoch {epoch}, start_index {start}, "
                    f"global_start {global_start}, pulled {pulled}"
                )
    if exhausted:  # the pass of epoch - 1 is over; the position is the next pass's start
        return Resume(epoch, 0, 0, exhausted=True, pulled=True)
    if epoch > MAX_EPOCH:
        raise ValueError(f"state field 'epoch' is {epoch}, beyond the last epoch {MAX_EPOCH}")
    per_rank = samples_per_rank(num_frames, global_start, saved_ws, saved_drop)
    if start > per_rank:
        raise ValueError(
            f"state field 'start_index' is {start}, beyond the {per_rank} samples of rank's epoch "
            f"(num_frames={num_frames}, world_size={saved_ws}, global_start={global_start})"
        )
    if start == per_rank:  # the epoch was finished: an exhausted pass, then the next epoch
        return Resume(epoch + 1, 0, 0, exhausted=True, pulled=True)
    if saved_ws == world_size:
        if start >= samples_per_rank(num_frames, global_start, world_size, drop_last):
            # e.g. saved with drop_last=False, loaded with True: nothing of the epoch is left here
            return Resume(epoch + 1, 0, 0, exhausted=True, pulled=True)
        return Resume(epoch, start, global_start, pulled=pulled)
    consumed = min(global_start + start * saved_ws, num_frames)
    if samples_per_rank(num_frames, consumed, world_size, drop_last) == 0:
        return Resume(epoch + 1, 0, 0, exhausted=True, pulled=True)
    return Resume(epoch, 0, consumed, pulled=pulled)


_IDENTITY_HINTS = {
    "fingerprint": " (a state from another dataset layout)",
    "relabel": " (a state taken with another absolute_to_relative_idx table, or with none)",
}


def _same(saved: Any, mine: Any) -> bool:
    """Equal value and kind (a bool never equals an int, an int may come back as a numpy int)."""
    if isinstance(mine, bool) or isinstance(saved, (bool, np.bool_)):
        return isinstance(saved, (bool, np.bool_)) and isinstance(mine, bool) and bool(saved) == mine
    if isinstance(mine, int):
        return isinstance(saved, (int, np.integer)) and int(saved) == mine
    return type(saved) is type(mine) and saved == mine
