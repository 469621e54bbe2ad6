"""``episode_sampler.lerobot.episode_table``: the episode table (and ``meta/info.json``) of a LeRobot v3
dataset read as an EpisodeIndex, checked against plain pyarrow reads; bad metadata is refused."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from episode_sampler.core.layout import EpisodeIndex
from episode_sampler.lerobot import LeRobotFrames, read_episode_index
from tests.helpers.lerobot_handmade import (
    LENGTHS,
    reference_bounds,
    reference_rows,
    rewrite_table,
    write_handmade,
)


# ---------------------------------------------------------------------------------------------- episode table
def test_read_episode_index_handmade(handmade):
    eps = read_episode_index(handmade)
    bounds = reference_bounds(handmade)
    assert eps.episode_ids.tolist() == [b[0] for b in bounds] == [0, 1, 2, 3, 4]
    assert eps.starts.tolist() == [b[1] for b in bounds]
    assert eps.ends.tolist() == [b[2] for b in bounds]
    assert eps.lengths.tolist() == LENGTHS
    assert read_episode_index(handmade) == eps


def test_read_episode_index_sorts_by_episode_index(tmp_path):
    # metadata files list episodes out of order; data groups likewise
    root = write_handmade(tmp_path, meta_groups=[[3, 0], [4, 2, 1]])
    eps = read_episode_index(root)
    assert eps.episode_ids.tolist() == [0, 1, 2, 3, 4]
    assert eps.lengths.tolist() == LENGTHS


def test_read_episode_index_falls_back_to_lengths(tmp_path):
    root = write_handmade(tmp_path, bounds=False)
    names = pq.read_schema(next((root / "meta" / "episodes").glob("*/*.parquet"))).names
    assert "dataset_from_index" not in names
    eps = read_episode_index(root)
    assert eps == EpisodeIndex.from_lengths(LENGTHS)
    ds = LeRobotFrames(root, columns=["index", "episode_index"], delta_indices={"action": [-1, 0, 1]})
    rows = reference_rows(root)
    batch = ds.get_batch(range(len(ds)))
    assert batch["index"].tolist() == sorted(rows)
    assert batch["episode_index"].tolist() == [rows[i]["episode_index"] for i in sorted(rows)]


def test_read_episode_index_keeps_ids_and_gaps(tmp_path):
    root = write_handmade(
        tmp_path, lengths=[2, 3], data_groups=[[0, 1]], meta_groups=[[0, 1]], starts=[4, 10]
    )
    eps = read_episode_index(root)
    assert eps.starts.tolist() == [4, 10] and eps.ends.tolist() == [6, 13]


def test_read_synthetic(synthetic):
    bounds = reference_bounds(synthetic)
    eps = read_episode_index(synthetic)
    assert [(int(i), int(s), int(e)) for i, s, e in zip(eps.episode_ids, eps.starts, eps.ends)] == bounds
    assert len(list((synthetic / "meta" / "episodes").glob("*/*.parquet"))) > 1


def test_missing_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        read_episode_index(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="info.json"):
        read_episode_index(tmp_path)
    root = write_handmade(tmp_path / "a")
    for path in (root / "meta" / "episodes").glob("*/*.parquet"):
        path.unlink()
    with pytest.raises(FileNotFoundError, match=r"episodes.*chunk-\*/file-\*\.parquet"):
        read_episode_index(root)
    root = write_handmade(tmp_path / "b")
    for path in (root / "data").glob("*/*.parquet"):
        path.unlink()
    with pytest.raises(FileNotFoundError, match="data"):
        LeRobotFrames(root)


def test_bad_info_json(tmp_path):
    root = write_handmade(tmp_path / "a")
    (root / "meta" / "info.json").write_text("{not json")
    with pytest.raises(ValueError, match="info.json.*not valid JSON"):
        read_episode_index(root)
    (root / "meta" / "info.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        read_episode_index(root)
    root = write_handmade(tmp_path / "b", info_overrides={"codebase_version": "v2.1"})
    with pytest.raises(ValueError, match="v2.1.*convert"):
        read_episode_index(root)
    root = write_handmade(tmp_path / "c", info_overrides={"codebase_version": "v9"})
    with pytest.warns(UserWarning, match="'v9'"):
        read_episode_index(root)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"total_frames": 21}, "total_frames=21 but meta/episodes lists 20"),
        ({"total_episodes": 4}, "total_episodes=4 but meta/episodes lists 5"),
    ],
)
def test_info_totals_disagree(tmp_path, override, match):
    root = write_handmade(tmp_path, info_overrides=override)
    with pytest.raises(ValueError, match=match):
        read_episode_index(root)


def test_bad_episode_tables(tmp_path):
    meta1 = "meta/episodes/chunk-001/file-000.parquet"
    root = write_handmade(tmp_path / "a")
    rewrite_table(root / meta1, lambda t: t.drop_columns(["episode_index"]))
    with pytest.raises(ValueError, match=r"chunk-001/file-000.parquet.*no column 'episode_index'"):
        read_episode_index(root)
    root = write_handmade(tmp_path / "b")
    rewrite_table(root / meta1, lambda t: t.drop_columns(["dataset_to_index"]))
    with pytest.raises(ValueError, match="no column 'dataset_to_index'"):
        read_episode_index(root)
    root = write_handmade(tmp_path / "c")
    rewrite_table(root / meta1, lambda t: t.drop_columns(["dataset_to_index", "dataset_from_index"]))
    with pytest.raises(ValueError, match="lacks 'dataset_from_index'"):
        read_episode_index(root)
    root = write_handmade(tmp_path / "d", bounds=False)
    rewrite_table(root / meta1, lambda t: t.drop_columns(["length"]))
    with pytest.raises(ValueError, match="no column 'length'"):
        read_episode_index(root)
    root = write_handmade(tmp_path / "e")
    rewrite_table(root / meta1, lambda t: t.set_column(2, "length", pa.array([4, 7], pa.int64())))
    with pytest.raises(ValueError, match="episode 4: length 7 disagrees"):
        read_episode_index(root)
    root = write_handmade(tmp_path / "f", meta_groups=[[0, 1, 2], [3, 2]])
    with pytest.raises(ValueError, match="episode_index 2 appears twice"):
        read_episode_index(root)
    root = write_handmade(
        tmp_path / "g", lengths=[3, 3], data_groups=[[0, 1]], meta_groups=[[0, 1]], starts=[0, 2]
    )
    with pytest.raises(ValueError, match="overlap"):
        read_episode_index(root)
    root = write_handmade(tmp_path / "h")
    rewrite_table(root / meta1, lambda t: t.set_column(2, "length", pa.array([4.0, 6.0])))
    with pytest.raises(ValueError, match="'length'.*integers"):
        read_episode_index(root)
