"""Samplers built from a LeRobot dataset on disk read the frames they sample."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from episode_sampler import EpisodeAwareSampler, EpisodeSamplerNode, LeRobotFrames, write_lerobot_dataset


def test_from_lerobot_matches_bounds(tmp_path):
    index = write_lerobot_dataset(tmp_path / "ds", num_episodes=6, min_length=5, max_length=9, seed=1)
    s = EpisodeAwareSampler.from_lerobot(tmp_path / "ds", shuffle=True, seed=3, drop_n_first_frames=1)
    ref = EpisodeAwareSampler(index.starts, index.ends, shuffle=True, seed=3, drop_n_first_frames=1)
    assert list(iter(s)) == list(iter(ref))
    node = EpisodeSamplerNode.from_lerobot(tmp_path / "ds", shuffle=True, seed=3, drop_n_first_frames=1)
    node.reset()
    assert [node.next() for _ in range(len(ref))] == ref.frame_indices(0).tolist()


def _write_gapped(root):
    """Two episodes whose global `index` values leave a gap: [0, 4) and [10, 13)."""
    import json

    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    (root / "data" / "chunk-000").mkdir(parents=True)
    index = [0, 1, 2, 3, 10, 11, 12]
    eps = [0, 0, 0, 0, 1, 1, 1]
    table = pa.table(
        {
            "index": pa.array(index, pa.int64()),
            "episode_index": pa.array(eps, pa.int64()),
            "frame_index": pa.array([0, 1, 2, 3, 0, 1, 2], pa.int64()),
            "timestamp": pa.array([0.0] * 7, pa.float32()),
            "observation.state": pa.array([[float(i)] for i in index], pa.list_(pa.float32(), 1)),
        }
    )
    pq.write_table(table, root / "data" / "chunk-000" / "file-000.parquet")
    meta = pa.table(
        {
            "episode_index": pa.array([0, 1], pa.int64()),
            "length": pa.array([4, 3], pa.int64()),
            "dataset_from_index": pa.array([0, 10], pa.int64()),
            "dataset_to_index": pa.array([4, 13], pa.int64()),
            "data/chunk_index": pa.array([0, 0], pa.int64()),
            "data/file_index": pa.array([0, 0], pa.int64()),
        }
    )
    pq.write_table(meta, root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    info = {
        "codebase_version": "v3.0",
        "total_episodes": 2,
        "total_frames": 7,
        "fps": 30,
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "features": {"observation.state": {"dtype": "float32", "shape": [1]}},
    }
    (root / "meta" / "info.json").write_text(json.dumps(info))


def test_from_lerobot_with_gaps_reads_the_sampled_frames(tmp_path):
    _write_gapped(tmp_path)
    ds = LeRobotFrames(tmp_path)
    s = EpisodeAwareSampler.from_lerobot(tmp_path, shuffle=True, seed=0, permutation="feistel")
    items = list(iter(s))
    assert sorted(items) == list(range(7))
    states = sorted(float(ds[i]["observation.state"][0]) for i in items)
    assert states == [0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0]
    trimmed = EpisodeAwareSampler.from_lerobot(tmp_path, drop_n_first_frames=1)
    got = [float(ds[i]["observation.state"][0]) for i in iter(trimmed)]
    assert got == [1.0, 2.0, 3.0, 11.0, 12.0]
    np.testing.assert_array_equal(ds.get_batch(list(iter(trimmed)))["observation.state"][:, 0].numpy(), got)


def test_from_lerobot_accepts_the_dataset_and_reads_no_file_again(tmp_path, monkeypatch):
    index = write_lerobot_dataset(tmp_path / "ds", num_episodes=6, min_length=5, max_length=9, seed=1)
    ds = LeRobotFrames(tmp_path / "ds")
    import episode_sampler.lerobot.episode_table as table

    def no_read(*args, **kwargs):
        raise AssertionError("the episode table was read again")

    monkeypatch.setattr(table, "read_episode_index", no_read)
    s = EpisodeAwareSampler.from_lerobot(ds, shuffle=True, seed=3, drop_n_first_frames=1)
    ref = EpisodeAwareSampler(index.starts, index.ends, shuffle=True, seed=3, drop_n_first_frames=1)
    assert list(iter(s)) == list(iter(ref))
    assert s.state_dict() == ref.state_dict()  # same fingerprint: a state moves between the two
    node = EpisodeSamplerNode.from_lerobot(ds, shuffle=True, seed=3, drop_n_first_frames=1)
    node.reset()
    assert [node.next() for _ in range(len(ref))] == ref.frame_indices(0).tolist()


def test_from_lerobot_with_gaps_accepts_the_dataset(tmp_path):
    _write_gapped(tmp_path)
    ds = LeRobotFrames(tmp_path)
    by_root = EpisodeAwareSampler.from_lerobot(tmp_path, shuffle=True, seed=0)
    by_dataset = EpisodeAwareSampler.from_lerobot(ds, shuffle=True, seed=0)
    got = list(iter(by_dataset))
    assert sorted(got) == list(range(7))  # item numbers, not the gapped frame indices
    assert got == list(iter(by_root))
    nodes = [EpisodeSamplerNode.from_lerobot(src, shuffle=True, seed=0) for src in (ds, tmp_path)]
    for node in nodes:
        node.reset()
    got = [[node.next() for _ in range(7)] for node in nodes]
    assert sorted(got[0]) == list(range(7))
    assert got[0] == got[1]
