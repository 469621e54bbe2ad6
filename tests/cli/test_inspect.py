"""``episode-sampler inspect``: every kind of saved state (expected wording computed here from first
principles), errors on bad files, and a dataset directory described in words."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torchdata.nodes import Loader
from torchdata.stateful_dataloader import StatefulDataLoader
from torchdata.stateful_dataloader.sampler import BatchSampler

from episode_sampler import EpisodeAwareSampler, EpisodeIndex, compute_sampler_state, save_state
from episode_sampler.cli import main
from episode_sampler.lerobot import write_lerobot_dataset
from episode_sampler.lerobot.describe import describe_dataset
from episode_sampler.node import EpisodeSamplerNode
from tests.helpers.cli import field, run

LENGTHS = [30, 7, 52, 18, 41, 25, 9, 60]


INDEX = EpisodeIndex.from_lengths(LENGTHS)


N = sum(LENGTHS)  # 242


def sampler(**kw) -> EpisodeAwareSampler:
    kw = {"shuffle": True, "seed": 5, "permutation": "feistel", **kw}
    return EpisodeAwareSampler(INDEX.starts, INDEX.ends, **kw)


def consume(s: EpisodeAwareSampler, k: int) -> EpisodeAwareSampler:
    it = iter(s)
    for _ in range(k):
        next(it)
    return s


# ---------------------------------------------------------------------------------------------- inspect
def test_inspect_sampler_state(tmp_path: Path, capsys) -> None:
    s = consume(sampler(), 60)
    path = tmp_path / "state.json"
    save_state(path, s.state_dict())
    code, out, err = run(["inspect", str(path)], capsys)
    assert code == 0, err
    assert field(out, "epoch") == "0"
    assert f"#60 of {N}" in field(out, "position")
    assert f"({100 * 60 / N:.1f}% of the rank's epoch done)" in field(out, "position")
    assert field(out, "all ranks").startswith(f"60 of {N} frames")
    assert s.fingerprint in field(out, "dataset") and str(N) in field(out, "dataset")
    assert field(out, "order") == "shuffled frames, permutation feistel, seed 5"
    assert field(out, "world size").startswith("1 ")


def test_inspect_sharded_and_elastic_states(tmp_path: Path, capsys) -> None:
    # rank 2 of 4 after 13 samples: all ranks together consumed 4 * 13 global positions
    s = consume(sampler(rank=2, world_size=4, order="blocks", block_size=5, seed=9), 13)
    path = tmp_path / "rank2.json"
    save_state(path, s.state_dict())
    _, out, _ = run(["inspect", str(path)], capsys)
    per_rank = -(-N // 4)
    assert f"rank 2 of 4: next sample is its #13 of {per_rank}" in field(out, "position")
    assert field(out, "all ranks").startswith(f"{4 * 13} of {N} frames")
    assert field(out, "order") == "shuffled blocks of 5 frames, permutation feistel, seed 9"

    # that state resumed by 3 ranks: the new world starts at global position 52; rank 1 takes 7 more
    r = sampler(rank=1, world_size=3, order="blocks", block_size=5, seed=9)
    r.load_state_dict(s.state_dict())
    consume(r, 7)
    save_state(path, r.state_dict())
    _, out, _ = run(["inspect", str(path)], capsys)
    assert f"this world started at global position {4 * 13}" in field(out, "all ranks")
    assert field(out, "all ranks").startswith(f"{4 * 13 + 3 * 7} of {N} frames")
    assert f"#7 of {-(-(N - 52) // 3)}" in field(out, "position")


def test_inspect_finished_epoch_and_drop_last(tmp_path: Path, capsys) -> None:
    s = sampler(drop_last=True, world_size=3)
    list(iter(s))
    path = tmp_path / "s.json"
    save_state(path, s.state_dict())
    _, out, _ = run(["inspect", str(path)], capsys)
    assert field(out, "epoch") == "1"  # after an epoch's last sample the state is (epoch + 1, 0)
    assert "dropped" in field(out, "epoch tail")


def test_inspect_finds_the_state_inside_a_loader_state_dict(tmp_path: Path, capsys) -> None:
    node = EpisodeSamplerNode(
        INDEX.starts, INDEX.ends, shuffle=True, seed=3, batch_size=10, rank=0, world_size=1
    )
    loader = Loader(node)
    it = iter(loader)
    for _ in range(4):
        next(it)
    path = tmp_path / "loader.json"
    save_state(path, {"step": 4, "loader": loader.state_dict()})
    code, out, _ = run(["inspect", str(path)], capsys)
    assert code == 0
    assert '["loader"]["root"]' in out.splitlines()[0]
    assert f"#40 of {N}" in field(out, "position")
    assert field(out, "order") == "shuffled frames, permutation randperm, seed 3"


def test_inspect_stateful_dataloader_state_saved_with_torch(tmp_path: Path, capsys) -> None:
    s = sampler()
    dl = StatefulDataLoader(list(range(N)), batch_sampler=BatchSampler(s, 8, drop_last=False))
    it = iter(dl)
    for _ in range(5):
        next(it)
    path = tmp_path / "dl.pt"
    torch.save({"dataloader": dl.state_dict(), "weights": torch.zeros(3)}, path)
    code, out, err = run(["inspect", str(path)], capsys)
    assert code == 0, err
    assert f"#40 of {N}" in field(out, "position")


def test_inspect_bare_lerobot_state(tmp_path: Path, capsys) -> None:
    state = compute_sampler_state(step=1000, num_frames=N, batch_size=8, num_processes=2)
    path = tmp_path / "lerobot.json"
    path.write_text(json.dumps(state))
    code, out, _ = run(["inspect", str(path)], capsys)
    assert code == 0
    assert "LeRobot" in field(out, "kind")
    assert field(out, "epoch") == str(state["epoch"])
    assert f"#{state['start_index']} of epoch {state['epoch']}" in field(out, "position")


def test_inspect_shows_identical_nested_states_once(tmp_path: Path, capsys) -> None:
    state = consume(sampler(), 3).state_dict()
    path = tmp_path / "twice.json"
    save_state(path, {"a": state, "b": [state]})
    _, out, _ = run(["inspect", str(path)], capsys)
    assert out.count("position") == 1 and "also at" in out


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    good = consume(sampler(), 3).state_dict()
    text = json.dumps(good)
    cases = {
        "missing": tmp_path / "missing.json",
        "truncated": tmp_path / "truncated.json",
        "empty": tmp_path / "empty.json",
        "directory": tmp_path,
        "no state": tmp_path / "nostate.json",
        "list": tmp_path / "list.json",
        "wrong type": tmp_path / "wrongtype.json",
        "missing keys": tmp_path / "missingkeys.json",
        "version 2": tmp_path / "v2.json",
        "beyond epoch": tmp_path / "beyond.json",
        "bad lerobot": tmp_path / "badlerobot.json",
        "binary": tmp_path / "binary.bin",
        "bad torch file": tmp_path / "bad.pt",
    }
    cases["truncated"].write_text(text[: len(text) // 2])
    cases["empty"].write_text("")
    cases["no state"].write_text('{"model": {"w": [1, 2]}, "step": 3}')
    cases["list"].write_text("[1, 2, 3]")
    cases["wrong type"].write_text(json.dumps({**good, "epoch": "3"}))
    cases["missing keys"].write_text(json.dumps({k: v for k, v in good.items() if k != "seed"}))
    cases["version 2"].write_text(json.dumps({**good, "version": 3}))
    cases["beyond epoch"].write_text(json.dumps({**good, "start_index": N + 1}))
    cases["bad lerobot"].write_text('{"epoch": -1, "start_index": 0}')
    cases["binary"].write_bytes(bytes(range(256)))
    cases["bad torch file"].write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    return cases


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "truncated",
        "empty",
        "directory",
        "no state",
        "list",
        "wrong type",
        "missing keys",
        "version 2",
        "beyond epoch",
        "bad lerobot",
        "binary",
        "bad torch file",
    ],
)
def test_inspect_errors_are_clean(case: str, tmp_path: Path, capsys) -> None:
    path = _bad_files(tmp_path)[case]
    code, out, err = run(["inspect", str(path)], capsys)
    assert code == 2
    assert err.startswith("episode-sampler inspect: error: ")
    assert "Traceback" not in out + err
    assert out == ""


def test_inspect_error_names_the_field(tmp_path: Path, capsys) -> None:
    files = _bad_files(tmp_path)
    assert "'epoch'" in run(["inspect", str(files["wrong type"])], capsys)[2]
    assert "seed" in run(["inspect", str(files["missing keys"])], capsys)[2]
    assert "truncated" in run(["inspect", str(files["truncated"])], capsys)[2]


def test_inspect_via_console_script_error_exit_code(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"epoch": 1, "start_ind')
    proc = subprocess.run(
        [sys.executable, "-m", "episode_sampler.cli", "inspect", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "error:" in proc.stderr


def test_inspect_cli_on_a_dataset(tmp_path, capsys):
    write_lerobot_dataset(tmp_path / "ds", 2, 3, 3, seed=0)
    assert main(["inspect", str(tmp_path / "ds")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == str(tmp_path / "ds")
    assert [line[2:] for line in out[1:]] == describe_dataset(tmp_path / "ds")
    (tmp_path / "ds" / "meta" / "info.json").write_text('{"codebase_version": "v3.0", "total_frames": 1}')
    assert main(["inspect", str(tmp_path / "ds")]) == 2
    assert "total_frames=1" in capsys.readouterr().err


def test_inspect_cli_on_a_dataset_served_over_http(nginx, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the default block cache
    write_lerobot_dataset(tmp_path / "ds", 5, 3, 3, seed=0, episodes_per_file=2)
    url = nginx.serve(tmp_path / "ds", "inspect-ds")
    assert main(["inspect", url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == url
    assert [line[2:] for line in out[1:]] == describe_dataset(tmp_path / "ds")
    assert main(["inspect", url + "-missing"]) == 2
    assert f"{url}-missing/meta/info.json" in capsys.readouterr().err
