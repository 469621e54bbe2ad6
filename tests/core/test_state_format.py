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


# ------------------------------------------------------------------------------ docs/state-format.md
def test_a_state_with_every_field_at_its_largest_is_at_most_512_bytes() -> None:
    """docs/state-format.md's size claim (issue 20: it said "under 600 bytes", the benchmark <= 512)."""
    import json

    from episode_sampler import EpisodeSamplerNode
    from episode_sampler.core.state import MAX_STATE_EPOCH

    frames = 10**12
    node = EpisodeSamplerNode(
        [0, frames // 2],
        [frames // 2, frames],
        shuffle=True,
        seed=2**64 - 1,
        permutation="feistel",
        order="blocks",
        block_size=2**31,
        rank=65535,
        world_size=65536,
    )
    node.reset(None)
    node.next()
    state = node.get_state()
    assert len(json.dumps(state)) == 370  # the number the page shows
    largest = dict(
        state,
        epoch=MAX_STATE_EPOCH,
        start_index=frames,
        global_start=frames,
        world_size=2**31,
        rank=2**31 - 1,
        block_size=frames,
        relabel="f" * 32,  # a BLAKE2b-128 hex digest
        permutation="randperm",  # the longest names
        order="episodes",
    )
    assert len(json.dumps(largest)) == 458 <= 512


def test_state_format_page_promises_what_this_release_does() -> None:
    from pathlib import Path

    from episode_sampler import __version__
    from episode_sampler.core.state import READABLE_VERSIONS, STATE_VERSION

    page = Path(__file__).resolve().parents[2] / "docs" / "state-format.md"
    text = " ".join(page.read_text(encoding="utf-8").split())
    assert __version__.startswith("0.")
    assert "1.x" not in text and "600 bytes" not in text
    assert READABLE_VERSIONS == (1, 2) and STATE_VERSION == 2
    assert f"This release ({__version__}) reads state versions 1 and 2 and writes version 2." in text
    assert "is at most 512 bytes" in text and "it is 458 bytes" in text
