import json
import os

import pytest

from episode_sampler import EpisodeAwareSampler
from episode_sampler.core.checkpoint import load_state, save_state


def test_roundtrip_and_atomic_replace(tmp_path):
    s = EpisodeAwareSampler([0, 10], [10, 30], shuffle=True, permutation="feistel")
    it = iter(s)
    [next(it) for _ in range(7)]
    path = tmp_path / "ckpt" / "state.json"
    n = save_state(path, s.state_dict())
    assert n == path.stat().st_size
    assert load_state(path) == s.state_dict()
    save_state(path, {"epoch": 1, "start_index": 2})
    assert load_state(path) == {"epoch": 1, "start_index": 2}
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]  # no temp files left


def test_failed_write_keeps_previous_file(tmp_path):
    path = tmp_path / "state.json"
    save_state(path, {"epoch": 0, "start_index": 1})
    with pytest.raises(TypeError, match="JSON-serializable"):
        save_state(path, {"epoch": object()})
    assert load_state(path) == {"epoch": 0, "start_index": 1}
    assert os.listdir(tmp_path) == ["state.json"]


def test_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / "state.json"
    text = json.dumps({"epoch": 0, "start_index": 1})
    path.write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match="state.json.*not valid JSON"):
        load_state(path)
    with pytest.raises(FileNotFoundError):
        load_state(tmp_path / "missing.json")
