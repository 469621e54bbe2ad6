"""``episode-sampler inspect``: find the sampler states nested in a saved file and describe them in words."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..core.order import ORDERS
from ..core.permutation import PERMUTATIONS
from ..core.state import READABLE_VERSIONS, state_keys
from .parser import UsageError


def find_states(obj: Any, path: str = "") -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """Every sampler state nested in ``obj``: ``(path, kind, state)``, kind ``"full"`` or ``"lerobot"``.

    A *full* candidate is a dict with ``version``, ``epoch``, ``start_index`` and ``fingerprint``; a
    *LeRobot* state is a dict with exactly the keys ``epoch`` and ``start_index``. Dicts and lists are
    searched depth-first, in order; a found state is not searched further.
    """
    if isinstance(obj, Mapping):
        keys = set(obj)
        if keys == {"epoch", "start_index"}:
            yield path, "lerobot", obj
            return
        if {"version", "epoch", "start_index", "fingerprint"} <= keys:
            yield path, "full", obj
            return
        for key, value in obj.items():
            yield from find_states(value, f"{path}[{json.dumps(key) if isinstance(key, str) else key}]")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from find_states(value, f"{path}[{i}]")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_full(state: Mapping[str, Any]) -> None:
    """Validate a full state's keys and types (the loader's rules); raise UsageError naming the field."""
    keys = set(state)
    if not _is_int(state["version"]) or state["version"] not in READABLE_VERSIONS:
        raise UsageError(
            f"unsupported state version {state['version']!r} "
            f"(this release reads versions {READABLE_VERSIONS})"
        )
    expected = state_keys(state["version"])
    missing = [k for k in expected if k not in keys]
    unknown = sorted(str(k) for k in keys - set(expected))
    if missing:
        raise UsageError(f"not a valid episode-sampler state: missing keys {missing}")
    if unknown:
        raise UsageError(f"not a valid episode-sampler state: unknown keys {unknown}")
    rules: dict[str, tuple[Any, str]] = {
        "epoch": (lambda v: _is_int(v) and v >= 0, "an int >= 0"),
        "start_index": (lambda v: _is_int(v) and v >= 0, "an int >= 0"),
        "global_start": (lambda v: _is_int(v) and v >= 0, "an int >= 0"),
        "world_size": (lambda v: _is_int(v) and v >= 1, "an int >= 1"),
        "rank": (
            lambda v: _is_int(v) and 0 <= v < max(1, int(state["world_size"] or 1)),
            "an int in [0, world_size)",
        ),
        "drop_last": (lambda v: isinstance(v, bool), "a bool"),
        "fingerprint": (lambda v: isinstance(v, str), "a string"),
        "num_frames": (lambda v: _is_int(v) and v >= 1, "an int >= 1"),
        "seed": (lambda v: _is_int(v) and 0 <= v < 2**64, "an int in [0, 2**64)"),
        "shuffle": (lambda v: isinstance(v, bool), "a bool"),
        "permutation": (lambda v: v in PERMUTATIONS, f"one of {list(PERMUTATIONS)}"),
        "order": (lambda v: v in ORDERS, f"one of {list(ORDERS)}"),
        "block_size": (lambda v: v is None or (_is_int(v) and v >= 1), "null or an int >= 1"),
    }
    for key in ("world_size", *[k for k in rules if k != "world_size"]):
        check, what = rules[key]
        if not check(state[key]):
            raise UsageError(f"invalid state field {key!r}: {state[key]!r} (expected {what})")
    if state["version"] >= 2:
        v2_rules: dict[str, tuple[Any, str]] = {
            "exhausted": (lambda v: isinstance(v, bool), "a bool"),
            "pulled": (lambda v: isinstance(v, bool), "a bool"),
            "relabel": (lambda v: v is None or isinstance(v, str), "null or a string"),
        }
        for key, (check, what) in v2_rules.items():
            if not check(state[key]):
                raise UsageError(f"invalid state field {key!r}: {state[key]!r} (expected {what})")
    if state["global_start"] > state["num_frames"]:
        raise UsageError(
            f"invalid state field 'global_start': {state['global_start']} > num_frames {state['num_frames']}"
        )
    if state["start_index"] > _per_rank(state):
        raise UsageError(
            f"invalid state field 'start_index': {state['start_index']} is beyond the {_per_rank(state)} "
            "samples of the rank's epoch"
        )


def _per_rank(state: Mapping[str, Any]) -> int:
    remaining = max(0, state["num_frames"] - state["global_start"])
    ws = state["world_size"]
    return remaining // ws if state["drop_last"] else -(-remaining // ws)


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "n/a"


def describe_state(state: Mapping[str, Any], kind: str) -> list[str]:
    """Lines describing one state in words."""
    if kind == "lerobot":
        e, k = state["epoch"], state["start_index"]
        bad = [f for f in ("epoch", "start_index") if not (_is_int(state[f]) and state[f] >= 0)]
        if bad:
            raise UsageError(
                f"invalid LeRobot state field {bad[0]!r}: {state[bad[0]]!r} (expected an int >= 0)"
            )
        return [
            "kind          bare LeRobot sampler state {'epoch', 'start_index'}",
            f"epoch         {e}",
            f"position      the next sample is this rank's #{k} of epoch {e} (counting from 0)",
            "progress      unknown: the state holds no dataset size",
            "layout        not recorded (no fingerprint): loads into any sampler, which takes it as",
            "              its own position with its own seed, permutation and world size",
        ]
    _check_full(state)
    n, ws, rank = state["num_frames"], state["world_size"], state["rank"]
    e, k, c = state["epoch"], state["start_index"], state["global_start"]
    per_rank = _per_rank(state)
    consumed = min(c + k * ws, n)
    order = state["order"] + (f" of {state['block_size']} frames" if state["order"] == "blocks" else "")
    lines = [
        f"kind          episode-sampler state, version {state['version']}",
        f"epoch         {e}",
        f"position      rank {rank} of {ws}: next sample is its #{k} of {per_rank} in this epoch "
        f"({_pct(k, per_rank)} of the rank's epoch done)",
        f"all ranks     {consumed} of {n} frames of the epoch consumed ({_pct(consumed, n)}); "
        + (
            "ranks started the epoch at its beginning"
            if c == 0
            else f"this world started at global position {c}"
        ),
        f"dataset       {n} valid frames, layout fingerprint {state['fingerprint']}",
        f"order         {'shuffled' if state['shuffle'] else 'unshuffled'} {order}, "
        f"permutation {state['permutation']}, seed {state['seed']}",
        f"world size    {ws} (any rank's state restores a run of any size)",
        "epoch tail    "
        + (
            "dropped (drop_last=True)"
            if state["drop_last"]
            else "padded by wrapping to the epoch's start (drop_last=False)"
        ),
    ]
    if state["version"] >= 2:
        if state["exhausted"]:
            lines.append(
                f"pass          over: epoch {e - 1} was finished (a restored node raises StopIteration "
                f"first, then starts epoch {e})"
            )
        else:
            lines.append(
                "pass          "
                + ("pulled from since its reset" if state["pulled"] else "not pulled from yet")
            )
        relabel = state["relabel"]
        lines.append(
            "relabel       "
            + ("none" if relabel is None else f"absolute_to_relative_idx table, fingerprint {relabel}")
        )
    if k == per_rank:
        lines.append(f"note          the rank's epoch is finished: a restore starts epoch {e + 1}")
    return lines


def _load_any(path: Path) -> Any:
    if not path.exists():
        raise UsageError(f"{str(path)!r}: no such file")
    if path.is_dir():
        raise UsageError(f"{str(path)!r} is a directory, not a state file (nor a dataset: no meta/info.json)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    if data[:4] == b"PK\x03\x04":  # a torch.save zip archive
        try:
            import torch

            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is bad input
            raise UsageError(f"{str(path)!r} is not a readable torch.save file: {exc}") from None
    if not data.strip():
        raise UsageError(f"{str(path)!r} is empty")
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{str(path)!r} is not valid JSON ({exc}); is it truncated?") from None


def run(args: argparse.Namespace) -> int:
    """``episode-sampler inspect STATE_OR_DATASET``: print the states found in the file, in words."""
    path = Path(args.state_file)
    url = "://" in args.state_file and not args.state_file.startswith("file://")  # a remote dataset
    if url or (path.is_dir() and (path / "meta" / "info.json").is_file()):  # a LeRobot dataset
        from ..lerobot.describe import describe_dataset

        where = args.state_file if url else str(path)
        try:
            lines = describe_dataset(where if url else path)
        except (OSError, ValueError, ImportError) as exc:
            raise UsageError(f"{where!r}: {exc}") from None
        print("\n".join([where, *("  " + line for line in lines)]))
        return 0
    obj = _load_any(path)
    found = list(find_states(obj))
    if not found:
        raise UsageError(
            f"{str(path)!r} holds no episode-sampler or LeRobot sampler state "
            "(looked for a dict with 'epoch' and 'start_index' at any depth)"
        )
    groups: dict[str, tuple[str, Mapping[str, Any], list[str]]] = {}  # equal states are shown once
    for where, kind, state in found:
        key = kind + json.dumps(state, sort_keys=True, default=repr)
        groups.setdefault(key, (kind, state, []))[2].append(where)
    out: list[str] = []
    for i, (kind, state, places) in enumerate(groups.values()):
        lines = describe_state(state, kind)
        if i:
            out.append("")
        header = str(path)
        if places[0]:
            header += f", at {places[0]}" + "".join(f" (also at {p})" for p in places[1:])
        if len(groups) > 1:
            header += f" (state {i + 1} of {len(groups)})"
        out += [header, *("  " + line for line in lines)]
    print("\n".join(out))
    return 0
