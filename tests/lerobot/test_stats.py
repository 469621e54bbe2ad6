"""Normalization stats: equal to LeRobot 0.6.1's own code (tests/helpers/reference_lerobot_stats.py) and close
to a brute-force numpy computation; written by write_lerobot_dataset where LeRobot puts them."""

from __future__ import annotations

import json
from functools import reduce
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from episode_sampler.lerobot import LeRobotFrames, read_stats, write_lerobot_dataset
from episode_sampler.lerobot.stats import (
    QUANTILES,
    dataset_stats,
    episode_stats,
    stats_columns,
    write_stats,
)
from tests.helpers import reference_lerobot_stats as ref

STAT_KEYS = ["min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"]


def assert_stats_identical(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for feat in want:
        assert set(got[feat]) == set(want[feat]), feat
        for k, w in want[feat].items():
            g = got[feat][k]
            assert isinstance(g, np.ndarray), (feat, k)
            assert g.shape == w.shape and g.dtype == w.dtype, (feat, k, g.shape, w.shape, g.dtype, w.dtype)
            np.testing.assert_array_equal(g, w, err_msg=f"{feat}/{k}")


def lerobot_dataset_stats(per_episode: list[dict]) -> dict:
    """LeRobotDatasetMetadata.save_episode: stats = aggregate_stats([stats, ep_stats]) per episode."""
    return reduce(lambda total, ep: ref.aggregate_stats([total, ep]), per_episode[1:], per_episode[0])


FEATURES = {
    "f32": {"dtype": "float32", "shape": [5]},
    "f64": {"dtype": "float64", "shape": [1]},
    "i64": {"dtype": "int64", "shape": [1]},
    "i32v": {"dtype": "int32", "shape": [3]},
    "const": {"dtype": "float32", "shape": [2]},
    "mixed": {"dtype": "float32", "shape": [3]},
    "cam": {"dtype": "video", "shape": [3, 64, 80]},
    "big": {"dtype": "image", "shape": [3, 310, 330]},
    "depth": {"dtype": "video", "shape": [1, 64, 64], "info": {"is_depth_map": True}},
    "note": {"dtype": "string", "shape": [1]},
}


def random_episode(rng: np.random.Generator, n: int) -> dict:
    return {
        "f32": (rng.normal(size=(n, 5)) * 10.0 ** rng.integers(-3, 4, 5)).astype(np.float32),
        "f64": rng.exponential(size=n) * 1e3,
        "i64": rng.integers(-(10**6), 10**6, size=n),
        "i32v": rng.integers(0, 7, size=(n, 3)).astype(np.int32),  # few distinct values: ties
        "const": np.full((n, 2), 0.25, np.float32),
        # a constant column next to others, and a range far below float32 resolution of the edges
        "mixed": np.stack(
            [np.full(n, -3.0), rng.normal(size=n), 1e4 + rng.integers(0, 3, size=n) * 1e-3], axis=1
        ).astype(np.float32),
        "cam": rng.integers(0, 256, size=(n, 3, 64, 80), dtype=np.uint8),
        "big": rng.integers(0, 256, size=(min(n, 3), 3, 310, 330), dtype=np.uint8),
        "depth": rng.integers(0, 4000, size=(n, 1, 64, 64)).astype(np.uint16),
        "note": ["x"] * n,
    }


@pytest.mark.parametrize("n", [1, 2, 3, 17, 150, 700])
def test_episode_stats_equal_lerobot(n):
    rng = np.random.default_rng(n)
    data = random_episode(rng, n)
    got = episode_stats(data, FEATURES)
    want = ref.compute_episode_stats(dict(data), FEATURES)
    assert "note" not in got
    assert_stats_identical(got, want)
    assert got["cam"]["mean"].shape == (3, 1, 1) and got["f64"]["mean"].shape == (1,)
    assert got["f32"]["count"].tolist() == [n]
    # images: LeRobot samples 100 frames (all of them when fewer), then n**0.75
    assert got["cam"]["count"].tolist() == [min(n, max(100, int(n**0.75)))]


def test_episode_stats_near_brute_force():
    rng = np.random.default_rng(7)
    n = 900
    values = rng.normal(size=(n, 4)) * [1, 100, 0.01, 5] + [0, -50, 3, 1e4]
    got = episode_stats({"x": values}, {"x": {"dtype": "float64", "shape": [4]}})["x"]
    np.testing.assert_allclose(got["mean"], values.mean(axis=0), rtol=1e-12)
    # LeRobot's std is sqrt(E[x^2] - E[x]^2): cancellation where |mean| >> std (column 3)
    np.testing.assert_allclose(got["std"], values.std(axis=0), rtol=1e-8)
    np.testing.assert_array_equal(got["min"], values.min(axis=0))
    np.testing.assert_array_equal(got["max"], values.max(axis=0))
    width = (values.max(axis=0) - values.min(axis=0)) / 5000
    for q in QUANTILES:
        exact = np.quantile(values, q, axis=0, method="inverted_cdf")  # the ceil(q n)-th smallest
        got_q = got[f"q{int(q * 100):02d}"]
        assert (np.abs(got_q - exact) <= width * 1.0001).all(), q


def test_image_stats_near_brute_force():
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, size=(40, 3, 64, 64), dtype=np.uint8)
    frames[:, 1] //= 2
    got = episode_stats({"cam": frames}, {"cam": {"dtype": "video", "shape": [3, 64, 64]}})["cam"]
    per_channel = frames.transpose(1, 0, 2, 3).reshape(3, -1) / 255.0
    np.testing.assert_allclose(got["mean"][:, 0, 0], per_channel.mean(axis=1), rtol=1e-5)
    # float32 E[x^2] - E[x]^2 over 160k pixels, as LeRobot computes it
    np.testing.assert_allclose(got["std"][:, 0, 0], per_channel.std(axis=1), rtol=1e-3)
    np.testing.assert_allclose(got["max"][:, 0, 0], per_channel.max(axis=1), rtol=1e-6)
    assert got["count"].tolist() == [40]


def test_dataset_stats_equal_lerobot_running_aggregate():
    rng = np.random.default_rng(11)
    per_episode = []
    for n in [1, 5, 40, 2, 33, 100]:
        data = random_episode(rng, n)
        data.pop("note")
        per_episode.append(episode_stats(data, FEATURES))
    got = dataset_stats(per_episode)
    want = lerobot_dataset_stats(per_episode)
    assert_stats_identical(got, want)
    # and the one-shot aggregate over several stats dicts
    from episode_sampler.lerobot.stats import aggregate_stats

    assert_stats_identical(aggregate_stats(per_episode), ref.aggregate_stats(per_episode))


def test_dataset_stats_near_brute_force():
    rng = np.random.default_rng(5)
    episodes = [rng.normal(size=(n, 3)) * 7 + 2 for n in (4, 50, 9, 300)]
    feats = {"x": {"dtype": "float64", "shape": [3]}}
    got = dataset_stats([episode_stats({"x": e}, feats) for e in episodes])["x"]
    every = np.concatenate(episodes)
    np.testing.assert_allclose(got["mean"], every.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(got["std"], every.std(axis=0), rtol=1e-9)
    np.testing.assert_array_equal(got["min"], every.min(axis=0))
    assert got["count"].tolist() == [len(every)]


# ---------------------------------------------------------------------------------------------- files
def reference_dataset_stats(root: Path) -> tuple[list[dict], dict]:
    """Per-episode and dataset stats recomputed with LeRobot's code from the data files (pyarrow)."""
    info = json.loads((root / "meta" / "info.json").read_text())
    files = sorted((root / "data").rglob("*.parquet"))
    table = pa.concat_tables(pq.read_table(f) for f in files)
    episodes = np.asarray(table.column("episode_index"))
    per_episode = []
    for e in np.unique(episodes):
        rows = table.filter(pa.array(episodes == e))
        buffer = {}
        for key in info["features"]:
            col = rows.column(key)
            if pa.types.is_fixed_size_list(col.type):
                buffer[key] = np.stack(col.to_numpy(zero_copy_only=False))
            elif key == "timestamp":  # LeRobot's add_frame: frame_index / fps as a Python float
                buffer[key] = np.asarray(rows.column("frame_index")) / info["fps"]
            else:
                buffer[key] = np.asarray(col)
        per_episode.append(ref.compute_episode_stats(buffer, info["features"]))
    return per_episode, lerobot_dataset_stats(per_episode)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stats")
    write_lerobot_dataset(root, 9, 1, 30, seed=4, episodes_per_file=2)
    return root


def test_writer_stats_json_as_lerobot(written):
    per_episode, want = reference_dataset_stats(written)
    loaded = ref.load_stats(written)
    assert (
        set(loaded)
        == set(want)
        == {
            "observation.state",
            "action",
            "timestamp",
            "frame_index",
            "episode_index",
            "index",
            "task_index",
        }
    )
    for feat in want:
        assert list(loaded[feat]) == STAT_KEYS
        for k in STAT_KEYS:  # JSON round trip: float32 values widen to float64 exactly
            np.testing.assert_array_equal(
                loaded[feat][k], np.atleast_1d(want[feat][k]), err_msg=f"{feat}/{k}"
            )
    ours = read_stats(written)
    assert_stats_identical(ours, loaded)
    assert_stats_identical(LeRobotFrames(written).stats, loaded)


def test_writer_episode_stats_columns_as_lerobot(written):
    per_episode, _ = reference_dataset_stats(written)
    files = sorted((written / "meta" / "episodes").rglob("*.parquet"))
    table = pa.concat_tables(pq.read_table(f) for f in files)
    names = table.column_names
    stat_cols = [c for c in names if c.startswith("stats/")]
    assert len(stat_cols) == 7 * len(STAT_KEYS)
    # LeRobot's column order: ..., dataset_to_index, stats/..., meta/episodes/...
    assert names.index("dataset_to_index") < names.index(stat_cols[0])
    assert names.index(stat_cols[-1]) < names.index("meta/episodes/chunk_index")
    # the types pa.Table.from_pydict gives LeRobot's array.tolist() values
    want_cols = pa.Table.from_pydict(
        {
            f"stats/{feat}/{k}": [np.asarray(ep[feat][k]).tolist() for ep in per_episode]
            for feat in per_episode[0]
            for k in per_episode[0][feat]
        }
    )
    assert table.select(stat_cols).equals(want_cols.select(stat_cols))
    assert table.schema.field("stats/action/mean").type == pa.list_(pa.float64())
    assert table.schema.field("stats/action/count").type == pa.list_(pa.int64())


def test_stats_columns_image_nesting():
    frames = np.zeros((4, 3, 64, 64), np.uint8)
    cols = stats_columns([episode_stats({"cam": frames}, {"cam": {"dtype": "video"}})])
    assert cols["stats/cam/mean"].type == pa.list_(pa.list_(pa.list_(pa.float64())))
    assert cols["stats/cam/mean"].to_pylist() == [[[[0.0]], [[0.0]], [[0.0]]]]


def test_read_stats_missing_and_bad(tmp_path):
    assert read_stats(tmp_path) is None
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "stats.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_stats(tmp_path)
    (tmp_path / "meta" / "stats.json").write_text("[1]")
    with pytest.raises(ValueError, match="JSON object"):
        read_stats(tmp_path)
    (tmp_path / "meta" / "stats.json").write_text('{"action": 3}')
    with pytest.raises(ValueError, match="feature 'action'"):
        read_stats(tmp_path)
    write_stats(tmp_path, {"a": {"mean": np.float32([0.5, 1.5]), "count": np.array([3])}})
    assert_stats_identical(read_stats(tmp_path), ref.load_stats(tmp_path))


def test_writer_camera_stats_as_lerobot(tmp_path):
    """Camera stats: LeRobot's compute_episode_stats over the source frames (its PNGs), per channel."""
    from episode_sampler.lerobot.video_encode import camera_frame

    cam, (h, w) = "observation.images.top", (64, 72)
    write_lerobot_dataset(tmp_path, 3, 4, 7, seed=2, cameras={cam: (h, w)})
    info = json.loads((tmp_path / "meta" / "info.json").read_text())
    files = sorted((tmp_path / "meta" / "episodes").rglob("*.parquet"))
    table = pa.concat_tables(pq.read_table(f) for f in files)
    per_episode = []
    for lo, hi in zip(
        table.column("dataset_from_index").to_pylist(), table.column("dataset_to_index").to_pylist()
    ):
        frames = [camera_frame(i, h, w).transpose(2, 0, 1) for i in range(lo, hi)]  # CHW uint8
        per_episode.append(ref.compute_episode_stats({cam: frames}, info["features"]))
    want = lerobot_dataset_stats(per_episode)[cam]
    got = ref.load_stats(tmp_path)[cam]
    for k in STAT_KEYS:
        np.testing.assert_array_equal(got[k], np.asarray(want[k], dtype=got[k].dtype), err_msg=k)
    for e, ep in enumerate(per_episode):
        for k in STAT_KEYS:
            np.testing.assert_array_equal(
                np.asarray(table.column(f"stats/{cam}/{k}")[e].as_py()), np.asarray(ep[cam][k]), err_msg=k
            )
