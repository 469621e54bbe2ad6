"""Camera (video) features, mainly ``episode_sampler.lerobot.video_reader`` through ``LeRobotFrames``:
decoding equal to LeRobot's PyAV path, batched and cached decoding, windows, pickling. The writer's video
layout and the decoders (``video_decode``) are checked here too, on the same encoded dataset (encoding it
is the expensive part); the encoder's own settings are in test_video_encode.py.

The tiny datasets are encoded once per module (AV1 encode of ~50 small frames per camera). Expected
values come from two independent references:

- the pixels: every frame of the synthetic dataset shows its global index (``read_frame_index``);
- LeRobot 0.6.1's ``decode_video_frames_pyav`` and item logic, copied below: per item, per camera,
  open + seek + decode, with the episode table read by plain pyarrow.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import DataLoader

from episode_sampler.lerobot import LeRobotFrames, write_lerobot_dataset
from episode_sampler.lerobot.video_decode import (
    DecoderCache,
    DecodeStats,
    FrameTimestampError,
    PyAVFile,
    torchcodec_available,
)
from episode_sampler.lerobot.video_encode import camera_frame, read_frame_index
from tests.helpers.video_dataset import CAMERAS, FPS, SIDE, TOP


# ---------------------------------------------------------------------------------------------- reference
def lerobot_decode_video_frames_pyav(video_path, timestamps, tolerance_s, return_uint8=False):
    """LeRobot 0.6.1 ``video_utils.decode_video_frames_pyav`` (RGB path), verbatim in substance."""
    first_ts, last_ts = min(timestamps), max(timestamps)
    loaded_frames, loaded_ts = [], []
    with av.open(str(video_path)) as container:
        stream = container.streams.video[0]
        container.seek(round(first_ts / stream.time_base) - 1, backward=True, any_frame=False, stream=stream)
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            current_ts = float(frame.pts * stream.time_base)
            arr = frame.to_ndarray(format="rgb24")
            loaded_frames.append(torch.from_numpy(arr).permute(2, 0, 1).contiguous())
            loaded_ts.append(current_ts)
            if current_ts >= last_ts:
                break
    query_ts = torch.tensor(timestamps)
    loaded_ts_t = torch.tensor(loaded_ts)
    dist = torch.cdist(query_ts[:, None], loaded_ts_t[:, None], p=1)
    min_, argmin_ = dist.min(1)
    if not (min_ < tolerance_s).all():
        raise FrameTimestampError("tolerance")
    closest = torch.stack([loaded_frames[idx] for idx in argmin_])
    if return_uint8:
        return closest
    return closest.type(torch.float32) / 255


class Reference:
    """LeRobot's item logic for video keys (``dataset_reader.py``), from plain pyarrow reads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.info = json.loads((root / "meta" / "info.json").read_text())
        eps = pa.concat_tables(
            [pq.read_table(p) for p in sorted((root / "meta" / "episodes").glob("*/*.parquet"))]
        ).to_pylist()
        self.episodes = {e["episode_index"]: e for e in eps}
        rows = pa.concat_tables([pq.read_table(p) for p in sorted((root / "data").glob("*/*.parquet"))])
        self.rows = rows.to_pylist()

    def item(self, i: int, key: str, deltas=None, return_uint8=False):
        row = self.rows[i]
        ep = self.episodes[row["episode_index"]]
        lo, hi = ep["dataset_from_index"], ep["dataset_to_index"]
        if deltas is None:
            query, pad = [i], None
        else:
            query = [max(lo, min(hi - 1, i + d)) for d in deltas]
            pad = torch.BoolTensor([(i + d < lo) | (i + d >= hi) for d in deltas])
        ts = [float(np.float32(self.rows[q]["timestamp"])) for q in query]
        shifted = [ep[f"videos/{key}/from_timestamp"] + t for t in ts]
        path = self.root / self.info["video_path"].format(
            video_key=key,
            chunk_index=ep[f"videos/{key}/chunk_index"],
            file_index=ep[f"videos/{key}/file_index"],
        )
        frames = lerobot_decode_video_frames_pyav(path, shifted, 1e-4, return_uint8=return_uint8)
        return (frames.squeeze(0) if deltas is None else frames), pad


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("video") / "ds"
    write_lerobot_dataset(
        path,
        num_episodes=7,
        min_length=4,
        max_length=9,
        seed=3,
        episodes_per_file=3,
        episodes_per_video_file=2,
        files_per_chunk=2,
        fps=FPS,
        cameras=CAMERAS,
    )
    return path


@pytest.fixture(scope="module")
def ref(root) -> Reference:
    return Reference(root)


def _episode_table(root: Path) -> list[dict]:
    files = sorted((root / "meta" / "episodes").glob("*/*.parquet"))
    return sorted(
        pa.concat_tables([pq.read_table(p) for p in files]).to_pylist(), key=lambda e: e["episode_index"]
    )


# ---------------------------------------------------------------------------------------------- writer
def test_writer_layout_matches_lerobot(root):
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    for key, (h, w) in CAMERAS.items():
        ft = info["features"][key]
        assert ft["dtype"] == "video" and ft["shape"] == [h, w, 3]
        assert ft["names"] == ["height", "width", "channels"]
        assert ft["info"]["video.codec"] == "av1" and ft["info"]["video.pix_fmt"] == "yuv420p"
        assert ft["info"]["video.g"] == 2 and ft["info"]["video.crf"] == 30
        assert (ft["info"]["video.height"], ft["info"]["video.width"]) == (h, w)
        assert ft["info"]["video.fps"] == FPS and ft["info"]["is_depth_map"] is False
    eps = _episode_table(root)
    for key in CAMERAS:
        # 7 episodes, 2 per file, 2 files per chunk: files (0,0) (0,1) (1,0) (1,1)
        got = [(e[f"videos/{key}/chunk_index"], e[f"videos/{key}/file_index"]) for e in eps]
        assert got == [(0, 0), (0, 0), (0, 1), (0, 1), (1, 0), (1, 0), (1, 1)]
        for j, e in enumerate(eps):
            start, end = e[f"videos/{key}/from_timestamp"], e[f"videos/{key}/to_timestamp"]
            assert end - start == pytest.approx(e["length"] / FPS, abs=1e-9)
            same_file = j % 2 == 1
            assert start == (pytest.approx(eps[j - 1][f"videos/{key}/to_timestamp"]) if same_file else 0.0)
        for chunk, file in sorted(set(got)):
            path = root / info["video_path"].format(video_key=key, chunk_index=chunk, file_index=file)
            members = [
                e
                for e in eps
                if (e[f"videos/{key}/chunk_index"], e[f"videos/{key}/file_index"]) == (chunk, file)
            ]
            with av.open(str(path)) as c:
                frames = list(c.decode(video=0))
                tb = c.streams.video[0].time_base
            # the file holds its episodes' frames in order; each episode starts on a keyframe
            want = [i for e in members for i in range(e["dataset_from_index"], e["dataset_to_index"])]
            assert [read_frame_index(f.to_ndarray(format="rgb24")) for f in frames] == want
            firsts = {round(e[f"videos/{key}/from_timestamp"] * FPS) for e in members}
            for f in frames:
                if round(float(f.pts * tb) * FPS) in firsts:
                    assert f.key_frame


def test_writer_camera_stats_are_per_channel_over_the_frames(root):
    stats = json.loads((root / "meta" / "stats.json").read_text())
    n = json.loads((root / "meta" / "info.json").read_text())["total_frames"]
    for key, (h, w) in CAMERAS.items():
        frames = np.stack([camera_frame(i, h, w) for i in range(n)]).astype(np.float64) / 255  # n < 100
        st = stats[key]
        assert np.asarray(st["mean"]).shape == (3, 1, 1)
        np.testing.assert_allclose(np.asarray(st["mean"]).reshape(3), frames.mean(axis=(0, 1, 2)), rtol=1e-6)
        np.testing.assert_allclose(np.asarray(st["min"]).reshape(3), frames.min(axis=(0, 1, 2)), rtol=1e-6)
        np.testing.assert_allclose(np.asarray(st["max"]).reshape(3), frames.max(axis=(0, 1, 2)), rtol=1e-6)


def test_writer_rejects_bad_cameras(tmp_path):
    with pytest.raises(ValueError, match="height"):
        write_lerobot_dataset(tmp_path / "a", 2, cameras={TOP: (32, 64)})
    with pytest.raises(ValueError, match="height, width"):
        write_lerobot_dataset(tmp_path / "b", 2, cameras={TOP: 64})
    with pytest.raises(TypeError, match="cameras"):
        write_lerobot_dataset(tmp_path / "c", 2, cameras=[TOP])


# ---------------------------------------------------------------------------------------------- reading
def test_every_frame_shows_its_index_and_equals_lerobot_decode(root, ref):
    ds = LeRobotFrames(root, video_backend="pyav")
    assert ds.video_keys == (TOP, SIDE)
    batch = ds.get_batch(np.arange(len(ds)))
    for key, (h, w) in CAMERAS.items():
        frames = batch[key]
        assert frames.shape == (len(ds), 3, h, w) and frames.dtype == torch.float32
        assert frames.is_contiguous() and 0 <= float(frames.min()) and float(frames.max()) <= 1
        assert [read_frame_index(f) for f in frames] == list(range(len(ds)))
        for i in range(len(ds)):
            expected, _ = ref.item(i, key)
            assert torch.equal(frames[i], expected), (key, i)


def test_windows_and_padding_equal_lerobot(root, ref):
    deltas = [-3, -1, 0, 2, 5]
    ds = LeRobotFrames(
        root, columns=["index"], delta_indices={SIDE: deltas}, return_uint8=True, video_backend="pyav"
    )
    order = np.random.default_rng(0).permutation(len(ds))
    batch = ds.get_batch(order)
    assert batch[SIDE].shape == (len(ds), len(deltas), 3, 64, 96) and batch[SIDE].dtype == torch.uint8
    assert set(batch) == {"index", SIDE, f"{SIDE}_is_pad"}
    for j, i in enumerate(order.tolist()):
        expected, pad = ref.item(i, SIDE, deltas, return_uint8=True)
        assert torch.equal(batch[SIDE][j], expected), i
        assert torch.equal(batch[f"{SIDE}_is_pad"][j], pad), i


def test_uint8_is_the_float_frames_times_255(root):
    idx = [0, 7, 8, 20, 3]
    f = LeRobotFrames(root, columns=[TOP]).get_batch(idx)[TOP]
    u = LeRobotFrames(root, columns=[TOP], return_uint8=True).get_batch(idx)[TOP]
    assert u.dtype == torch.uint8 and torch.equal(u.float() / 255, f)


def test_items_batches_duplicates_and_threads_agree(root):
    one = LeRobotFrames(root, video_threads=1)
    many = LeRobotFrames(root, video_threads=4, video_cache_size=1)
    idx = [5, 5, 0, len(one) - 1, 12, 11, 12, 30, 2]
    batch = many.get_batch(idx)
    items = one.__getitems__(idx)
    for j, i in enumerate(idx):
        single = one[i]
        for key in CAMERAS:
            assert torch.equal(batch[key][j], single[key]) and torch.equal(items[j][key], single[key])
            assert read_frame_index(single[key]) == i
    assert len(many._video.cache) <= 1  # bounded LRU
    empty = one.get_batch([])
    assert empty[TOP].shape[0] == 0


def test_runs_decode_with_one_seek_and_continue_across_batches(root):
    ds = LeRobotFrames(root, columns=[TOP], video_threads=1, video_backend="pyav")
    eps = _episode_table(root)
    e = eps[1]  # second episode of file (0, 0)
    frames = list(range(e["dataset_from_index"], e["dataset_to_index"]))
    ds.get_batch(frames[:3])
    s1 = ds.video_stats
    assert s1["opens"] == 1 and s1["seeks"] == 1
    # LeRobot seeks to the keyframe before t - 1 tick: at most g = 2 frames before the first wanted
    assert s1["frames_converted"] == 3 and s1["frames_decoded"] <= 3 + 2
    ds.get_batch(frames[3:])  # continues forward: no new seek, each frame decoded once
    s2 = ds.video_stats
    assert s2["seeks"] == 1 and s2["opens"] == 1
    assert s2["frames_decoded"] - s1["frames_decoded"] == len(frames) - 3
    assert s2["packet_bytes"] >= s1["packet_bytes"] > 0
    ds.get_batch([frames[0]])  # going back seeks
    assert ds.video_stats["seeks"] == 2


def test_pickling_drops_decoders_and_dataloader_workers_agree(root):
    ds = LeRobotFrames(root, columns=["index", TOP], return_uint8=True)
    ds.get_batch([0, 1, 2])
    assert ds._video._cache is not None
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._video._cache is None and clone._video._pool is None
    assert torch.equal(clone.get_batch([4, 1])[TOP], ds.get_batch([4, 1])[TOP])


@pytest.mark.slow
def test_dataloader_with_workers(root):
    ds = LeRobotFrames(root, columns=["index", TOP, SIDE], return_uint8=True)
    loader = DataLoader(ds, batch_size=5, num_workers=2, shuffle=False)
    seen = []
    for batch in loader:
        for key in CAMERAS:
            assert [read_frame_index(f) for f in batch[key]] == batch["index"].tolist()
        seen += batch["index"].tolist()
    assert seen == list(range(len(ds)))


@pytest.mark.slow
def test_forked_workers_do_not_touch_the_parents_open_decoders(root):
    # decoders opened (with codec threads) in the parent must not be used or freed in forked workers:
    # that used to hang or crash the workers
    ds = LeRobotFrames(root, columns=["index", TOP], return_uint8=True)
    ds.get_batch([0, 1, 2, 30])
    assert len(ds._video.cache) > 0
    loader = DataLoader(ds, batch_size=4, num_workers=2, multiprocessing_context="fork", timeout=120)
    for batch in loader:
        assert [read_frame_index(f) for f in batch[TOP]] == batch["index"].tolist()
    assert torch.equal(
        ds.get_batch([5])[TOP], LeRobotFrames(root, columns=[TOP], return_uint8=True)[5][TOP][None]
    )


def test_columns_select_cameras_and_errors(root):
    ds = LeRobotFrames(root, columns=[SIDE])
    assert ds.video_keys == (SIDE,) and set(ds[3]) == {SIDE}
    assert LeRobotFrames(root, columns=["index"]).video_keys == ()
    with pytest.raises(ValueError, match="video_backend"):
        LeRobotFrames(root, video_backend="ffmpeg")
    with pytest.raises(ValueError, match="tolerance_s"):
        LeRobotFrames(root, tolerance_s=0)
    with pytest.raises(ValueError, match="video_cache_size"):
        LeRobotFrames(root, video_cache_size=0)
    with pytest.raises(ValueError, match="video_threads"):
        LeRobotFrames(root, video_threads=0)
    with pytest.raises(TypeError, match="return_uint8"):
        LeRobotFrames(root, return_uint8=1)
    if not torchcodec_available():
        with pytest.raises(ValueError, match="torchcodec"):
            LeRobotFrames(root, video_backend="torchcodec").get_batch([0])


def _rewrite_episode_table(root: Path, fn) -> None:
    for path in sorted((root / "meta" / "episodes").glob("*/*.parquet")):
        table = pq.read_table(path)
        pq.write_table(fn(table), path)


def test_timestamp_outside_tolerance_raises_like_lerobot(root, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(root, bad)
    name = f"videos/{TOP}/from_timestamp"

    def shift(table):  # half a frame off: no frame within tolerance
        col = table.column(name).to_numpy() + 0.5 / FPS
        return table.set_column(table.schema.get_field_index(name), name, pa.array(col))

    _rewrite_episode_table(bad, shift)
    ds = LeRobotFrames(bad, columns=[TOP])
    with pytest.raises(FrameTimestampError, match="tolerance"):
        ds[0]
    with pytest.raises(FrameTimestampError):
        Reference(bad).item(0, TOP)
    # a looser tolerance accepts it (the nearest frame is the same one LeRobot would pick)
    ok = LeRobotFrames(bad, columns=[TOP], tolerance_s=0.6 / FPS)
    assert read_frame_index(ok[0][TOP]) in (0, 1)


def test_depth_videos_are_refused_not_misread(root, tmp_path):
    depth = tmp_path / "depth"
    shutil.copytree(root, depth)
    info = json.loads((depth / "meta" / "info.json").read_text())
    info["features"][SIDE]["info"]["is_depth_map"] = True
    (depth / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.warns(UserWarning, match="depth"):
        ds = LeRobotFrames(depth)
    assert ds.video_keys == (TOP,)
    with pytest.raises(ValueError, match="unsupported"):
        LeRobotFrames(depth, columns=[SIDE])


def test_missing_video_file_or_column_is_named(root, tmp_path):
    gone = tmp_path / "gone"
    shutil.copytree(root, gone)
    (gone / "videos" / SIDE / "chunk-000" / "file-001.mp4").unlink()
    with pytest.raises(FileNotFoundError, match="file-001.mp4"):
        LeRobotFrames(gone)
    assert LeRobotFrames(gone, columns=[TOP]).video_keys == (TOP,)
    nocol = tmp_path / "nocol"
    shutil.copytree(root, nocol)
    _rewrite_episode_table(nocol, lambda t: t.drop_columns([f"videos/{TOP}/from_timestamp"]))
    with pytest.raises(ValueError, match="from_timestamp"):
        LeRobotFrames(nocol)


def test_missing_timestamp_column_is_named(root, tmp_path):
    # cameras in the plain columns read the frame's timestamp: its absence is a ValueError, not a KeyError
    nots = tmp_path / "nots"
    shutil.copytree(root, nots)
    for path in (nots / "data").glob("chunk-*/file-*.parquet"):
        pq.write_table(pq.read_table(path).drop_columns(["timestamp"]), path)
    with pytest.raises(ValueError, match="no 'timestamp' column"):
        LeRobotFrames(nots)
    with pytest.raises(ValueError, match="no 'timestamp' column"):
        LeRobotFrames(nots, columns=["action"], delta_indices={TOP: [0]})


def test_decoder_cache_lru(root):
    cache = DecoderCache("pyav", max_open=2)
    paths = sorted(str(p) for p in (root / "videos" / TOP).glob("*/*.mp4"))
    first = cache.get(paths[0])
    cache.get(paths[1])
    assert cache.get(paths[0]) is first  # hit, now most recent
    cache.get(paths[2])  # evicts paths[1]
    assert len(cache) == 2 and cache.get(paths[0]) is first
    assert cache.stats.as_dict()["opens"] == 3
    cache.clear()
    assert len(cache) == 0 and first.closed
    with pytest.raises(ValueError, match="max_open"):
        DecoderCache("pyav", max_open=0)


def test_pyav_file_reads_unsorted_requests_via_sorted_api(root):
    path = sorted((root / "videos" / SIDE).glob("*/*.mp4"))[0]
    f = PyAVFile(str(path))
    times = np.array([0, 2, 3, 9]) / FPS
    got = f.read(times, 1e-4)
    assert [read_frame_index(x) for x in got] == [0, 2, 3, 9]
    f.close()


@pytest.mark.skipif(not torchcodec_available(), reason="torchcodec not installed or FFmpeg libraries missing")
def test_torchcodec_backend_shows_the_same_frames(root):
    ds = LeRobotFrames(root, columns=["index", TOP], video_backend="torchcodec", return_uint8=True)
    batch = ds.get_batch(np.arange(len(ds)))
    assert [read_frame_index(f) for f in batch[TOP]] == batch["index"].tolist()


def test_float_conversion_is_lerobots_division_for_every_byte_value():
    from episode_sampler.lerobot.video_reader import _put

    # an HWC frame holding every uint8 value, non-contiguous like the decoder's views
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    hwc = np.stack([values, values[::-1], values.T], axis=2)[:, ::2]
    chw8 = torch.from_numpy(np.ascontiguousarray(hwc)).permute(2, 0, 1)
    expected = chw8.type(torch.float32) / 255
    out = np.full((3, 3, 16, 8), -1, dtype=np.float32)
    _put(out, np.array([2, 0]), hwc)  # one frame wanted by rows 2 and 0
    assert torch.equal(torch.from_numpy(out[2]), expected) and torch.equal(torch.from_numpy(out[0]), expected)
    assert (out[1] == -1).all()  # rows not asked for are left alone
    out8 = np.zeros((1, 3, 16, 8), dtype=np.uint8)
    _put(out8, np.array([0]), hwc)
    assert torch.equal(torch.from_numpy(out8[0]), chw8)


def test_frames_reach_the_sink_as_soon_as_decoded(root):
    path = sorted((root / "videos" / SIDE).glob("*/*.mp4"))[0]
    stats = DecodeStats()
    f = PyAVFile(str(path), stats)
    seen = []
    f.read_into(
        np.array([1, 2, 6]) / FPS,
        1e-4,
        lambda i, fr: seen.append((i, read_frame_index(fr), stats.frames_decoded)),
    )
    # frame 1 handed over after decoding 0 and 1, frame 2 right after it, frame 6 after a seek to 6
    assert seen == [(0, 1, 2), (1, 2, 3), (2, 6, 4)]
    f.close()


def test_collate_returns_the_batch_getitems_built_without_copying(root):
    from torch.utils.data import default_collate

    ds = LeRobotFrames(root, delta_indices={SIDE: [-1, 0]})
    idx = [4, 0, 4, 17, 9]
    items = ds.__getitems__(idx)
    batch = LeRobotFrames.collate(items)
    restacked = default_collate(list(items))  # a plain list: re-stacked by default_collate
    assert LeRobotFrames.collate(list(items)).keys() == restacked.keys() == batch.keys()
    for key, value in restacked.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(batch[key], value), key
            assert batch[key].data_ptr() == items[0][key].data_ptr()  # the items are views of it
        else:
            assert batch[key] == value, key
    assert [read_frame_index(f) for f in batch[TOP]] == idx


@pytest.mark.slow
def test_collate_in_a_dataloader_with_and_without_workers(root):
    ds = LeRobotFrames(root, columns=["index", TOP, SIDE], return_uint8=True)
    for workers in (0, 2):
        plain = DataLoader(ds, batch_size=6, num_workers=workers)
        fast = DataLoader(ds, batch_size=6, num_workers=workers, collate_fn=LeRobotFrames.collate)
        for a, b in zip(plain, fast, strict=True):
            assert a.keys() == b.keys()
            assert all(torch.equal(a[k], b[k]) for k in a)
            assert [read_frame_index(f) for f in b[TOP]] == b["index"].tolist()


def test_frame_times_are_lerobots_float_of_pts_times_time_base(root):
    from episode_sampler.lerobot.video_decode import _decode

    for path in sorted((root / "videos").glob("*/*/*.mp4")):
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            expected = [float(f.pts * stream.time_base) for f in container.decode(stream)]
        with av.open(str(path)) as container:
            stats = DecodeStats()
            got = [t for _, t in _decode(container, container.streams.video[0], stats)]
        assert got == expected and stats.frames_decoded == len(expected) and stats.packets >= len(expected)


def test_a_frame_two_ahead_is_decoded_to_and_three_ahead_is_sought(root):
    # g=2: a seek decodes one or two frames, so decoding forward pays up to two frames ahead
    path = sorted((root / "videos" / SIDE).glob("*/*.mp4"))[0]
    stats = DecodeStats()
    f = PyAVFile(str(path), stats)
    f.read(np.array([0.0]), 1e-4)
    assert (stats.seeks, stats.frames_decoded) == (1, 1)
    f.read(np.array([2 / FPS]), 1e-4)  # two ahead: frames 1 and 2 decoded, no seek
    assert (stats.seeks, stats.frames_decoded) == (1, 3)
    got = f.read(np.array([5 / FPS]), 1e-4)  # three ahead: a seek to keyframe 4, then frame 5
    assert (stats.seeks, stats.frames_decoded) == (2, 5) and read_frame_index(got[0]) == 5
    f.close()
