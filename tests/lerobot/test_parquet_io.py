"""An empty (0-byte) or corrupt Parquet file of a dataset is reported with its path (issue 20: pyarrow's
"Parquet file size is 0 bytes" did not say which of a dataset's files it was)."""

from __future__ import annotations

from pathlib import Path

import pytest

from episode_sampler import LeRobotFrames, write_lerobot_dataset
from episode_sampler.cli import main
from episode_sampler.lerobot import read_episode_index, read_tasks

EMPTY = "Parquet file size is 0 bytes"


def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    write_lerobot_dataset(root, num_episodes=6, episodes_per_file=2)  # 3 data files, 2 episode files
    return root


def message(path: Path, why: str = EMPTY) -> str:
    return f"cannot read Parquet file {str(path)!r}: {why}"


@pytest.mark.parametrize("which", [0, 2], ids=["first data file", "last data file"])
def test_empty_data_file_is_named(tmp_path: Path, which: int) -> None:
    root = dataset(tmp_path)
    path = sorted((root / "data").glob("chunk-*/file-*.parquet"))[which]
    path.write_bytes(b"")
    if which == 0:  # the first file's schema is read when the dataset is opened
        with pytest.raises(ValueError) as info:
            LeRobotFrames(root)
    else:  # the others are only named by the episode table then, and checked when first read
        frames = LeRobotFrames(root)
        frames.get_batch([0])
        with pytest.raises(ValueError) as info:
            frames.get_batch([len(frames) - 1])
    assert str(info.value) == message(path)


def test_data_file_emptied_after_opening_is_named_when_read(tmp_path: Path) -> None:
    root = dataset(tmp_path)
    frames = LeRobotFrames(root)
    path = sorted((root / "data").glob("chunk-*/file-*.parquet"))[0]
    path.write_bytes(b"")
    with pytest.raises(ValueError) as info:
        frames.get_batch([0, 1])
    assert str(info.value) == message(path)


def test_empty_episode_file_is_named(tmp_path: Path) -> None:
    root = dataset(tmp_path)
    path = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))[1]
    path.write_bytes(b"")
    with pytest.raises(ValueError) as info:
        read_episode_index(root)
    assert str(info.value) == message(path)


def test_not_a_parquet_tasks_file_is_named(tmp_path: Path) -> None:
    root = dataset(tmp_path)
    path = root / "meta" / "tasks.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(ValueError) as info:
        read_tasks(root)
    assert str(info.value).startswith(f"cannot read Parquet file {str(path)!r}: ")


def test_inspect_names_the_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = dataset(tmp_path)
    path = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))[0]
    path.write_bytes(b"")
    assert main(["inspect", str(root)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"episode-sampler inspect: error: {str(root)!r}: {message(path)}\n"
