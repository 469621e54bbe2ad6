"""``restore_state``: a state without ``version`` that has a key no state has is refused by naming that
key (issue 20: a bare LeRobot state with an extra key was refused as "missing keys ['version']")."""

from __future__ import annotations

import pytest

from episode_sampler.core.state import STATE_KEYS, restore_state

IDENTITY = {"num_frames": 100}


def restore(state: dict) -> None:
    restore_state(state, IDENTITY, world_size=1, drop_last=False)


def test_bare_lerobot_state_with_an_unknown_key_names_that_key() -> None:
    with pytest.raises(ValueError) as info:
        restore({"epoch": 0, "start_index": 3, "foo": 1})
    assert str(info.value) == (
        "state has unknown keys ['foo'] (a bare LeRobot state has exactly 'epoch' and 'start_index'; "
        f"a full state has {list(STATE_KEYS)})"
    )


def test_several_unknown_keys_are_named_sorted() -> None:
    with pytest.raises(ValueError, match=r"^state has unknown keys \['bar', 'foo'\] "):
        restore({"epoch": 0, "foo": 1, "bar": 2})


@pytest.mark.parametrize(
    "state", [{"epoch": 1}, {"epoch": 0, "start_index": 3, "seed": 0}], ids=["epoch only", "known keys"]
)
def test_known_keys_without_version_still_report_the_missing_version(state: dict) -> None:
    with pytest.raises(ValueError, match=r"^state is missing keys \['version'\] \(a full state has "):
        restore(state)


def test_bare_lerobot_state_is_still_read() -> None:
    resume = restore_state({"epoch": 2, "start_index": 3}, IDENTITY, world_size=1, drop_last=False)
    assert (resume.epoch, resume.start_index) == (2, 3)
