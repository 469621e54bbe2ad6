"""Our equivalent of torchdata's ``run_test_save_load_state`` (test/nodes/utils.py in torchdata 0.11).

torchdata's utility restores into the *same* graph object; ours restores into a *freshly built* graph
(what a restarted process does), with ``Loader(restart_on_stop_iteration=...)`` either way, and
checks, for a state saved after ``midpoint`` items of epoch 0 and of epoch 1, at the end of epoch 0
and before iterating:

- the restored loader yields the rest of that epoch, then the next epoch, then the one after;
- the initial state restores epochs 0 and 1;
- the end-of-epoch-0 state gives ``[]`` then epoch 1 with ``restart_on_stop_iteration=False``
  (the interrupted loop ends) and epoch 1 directly with ``True``.

Expectations come from one uninterrupted run of the same graph (a materialized list per epoch).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from torchdata.nodes import BaseNode, Loader

from episode_sampler.mixture import state_from_json, state_to_json

Build = Callable[[], BaseNode]


def _roundtrip(state: Any) -> Any:
    """The state through a JSON checkpoint (MultiNodeWeightedSampler's RNG state tensor via state_to_json)."""
    return state_from_json(json.loads(json.dumps(state_to_json(state))))


def _norm(items: list[Any]) -> Any:
    return json.loads(json.dumps(items))


def reference_run(build: Build, midpoint: int, epochs: int = 4) -> dict[str, Any]:
    """One uninterrupted loader: epochs as lists, and the states saved along the way."""
    loader = Loader(build())
    initial = _roundtrip(loader.state_dict())
    out: dict[str, Any] = {"initial": initial, "epochs": [], "mid": [], "end": []}
    for _ in range(epochs):
        it = iter(loader)
        items = []
        for _ in range(midpoint):
            try:
                items.append(next(it))
            except StopIteration:
                break
        out["mid"].append(_roundtrip(loader.state_dict()))
        items.extend(it)
        out["end"].append(_roundtrip(loader.state_dict()))
        out["epochs"].append(_norm(items))
    return out


def expected_after_restore(epochs: list[list[Any]], e: int, k: int, restart: bool) -> list[list[Any]]:
    """What an uninterrupted loop sees after a save after ``k`` items of epoch ``e``: two loops."""
    rest = epochs[e][k:]
    if restart and not rest:  # Loader peeks, finds the restored pass over, and resets once more
        return [epochs[e + 1], epochs[e + 2]]
    return [rest, epochs[e + 1]]


def run_save_load(build: Build, midpoint: int, restart: bool) -> list[str]:
    """Run the protocol; return the failed checks (empty: exact). Never raises on a mismatch."""
    ref = reference_run(build, midpoint)
    epochs = ref["epochs"]
    k = min(midpoint, len(epochs[0]))
    k1 = min(midpoint, len(epochs[1]))
    cases = [
        ("mid epoch 0", ref["mid"][0], expected_after_restore(epochs, 0, k, restart)),
        ("mid epoch 1", ref["mid"][1], expected_after_restore(epochs, 1, k1, restart)),
        ("initial", ref["initial"], [epochs[0], epochs[1]]),
        ("end epoch 0", ref["end"][0], expected_after_restore(epochs, 0, len(epochs[0]), restart)),
    ]
    failures = []
    for name, state, want in cases:
        try:
            loader = Loader(build(), restart_on_stop_iteration=restart)
            loader.load_state_dict(state)
            got = [_norm(list(loader)), _norm(list(loader))]
        except Exception as exc:  # noqa: BLE001 - reported as a failed check
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        if got != want:
            failures.append(f"{name}: got {got!r}, want {want!r}")
    return failures


def midpoints(n: int) -> list[int]:
    """0, 1, 7, n/2, n-1, n (clamped to [0, n], deduplicated)."""
    return sorted({min(max(m, 0), n) for m in (0, 1, 7, n // 2, n - 1, n)})
