"""``episode_sampler.lerobot.mp4_index``: the moov sample tables against PyAV's demuxer (the reference),
and the byte ranges a decoder needs, checked by decoding from a file that refuses any other byte."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from episode_sampler.lerobot import write_lerobot_dataset
from episode_sampler.lerobot.mp4_index import file_reader, merge_ranges, read_mp4_index, video_ranges
from episode_sampler.lerobot.video_decode import PyAVFile
from tests.helpers.strict_file import OutsidePlan, StrictFile
from tests.helpers.video_dataset import CAMERAS


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("mp4") / "ds"
    write_lerobot_dataset(
        root, 4, 20, 30, seed=5, episodes_per_file=2, cameras=CAMERAS, episodes_per_video_file=2
    )
    files = sorted(root.glob("videos/*/*/*.mp4"))
    assert len(files) == 4
    return files


@pytest.fixture(scope="module")
def moov_at_end(tmp_path_factory) -> Path:
    """H.264 with B-frames (ctts, an edit list), moov after the media data (no faststart)."""
    path = tmp_path_factory.mktemp("h264") / "b.mp4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        s.options = {"bf": "2", "g": "5"}
        for i in range(40):
            img = np.full((64, 64, 3), (i * 6) % 256, dtype=np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def demuxed(path: Path) -> dict[str, np.ndarray]:
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        pk = [p for p in c.demux(st) if p.size]
        return {
            "offsets": np.array([p.pos for p in pk]),
            "sizes": np.array([p.size for p in pk]),
            "pts": np.array([p.pts for p in pk]),
            "times": np.array([float(p.pts * p.time_base) for p in pk]),
            "keyframes": np.array([p.is_keyframe for p in pk]),
            "time_base": st.time_base,
        }


class CountingReader:
    def __init__(self, path: Path) -> None:
        self.read, self.size = file_reader(path)
        self.calls: list[tuple[int, int]] = []

    def __call__(self, start: int, stop: int) -> bytes:
        self.calls.append((start, stop))
        return self.read(start, stop)


@pytest.mark.parametrize("which", ["writer", "moov_at_end"])
def test_tables_equal_pyav_demuxer(which, videos, moov_at_end):
    paths = videos if which == "writer" else [moov_at_end]
    for path in paths:
        read, size = file_reader(path)
        track = read_mp4_index(read, size, str(path)).video()
        ref = demuxed(path)
        assert track.timescale == 1 / ref["time_base"] or Fraction(1, track.timescale) == ref["time_base"]
        for field in ("offsets", "sizes", "pts", "keyframes"):
            np.testing.assert_array_equal(getattr(track, field), ref[field], err_msg=f"{path}: {field}")
        np.testing.assert_allclose(track.times, ref["times"], rtol=0, atol=1e-12)
    if which == "moov_at_end":  # the case the reference exercises: B-frames reorder presentation
        assert not np.all(np.diff(track.pts) > 0)


def test_few_reads_and_never_the_media_data(videos, moov_at_end):
    for path in [*videos, moov_at_end]:
        reader = CountingReader(path)
        index = read_mp4_index(reader, reader.size, str(path))
        track = index.video()
        assert len(reader.calls) <= 3
        first_sample = int(track.offsets[0])
        # beyond the first 64 KiB, only box headers and the moov are read, no sample's bytes
        for a, b in reader.calls[1:]:
            inside = (track.offsets < b) & (track.offsets + track.sizes > a)
            assert not inside.any(), (path, a, b, first_sample)


def _decode_all(path: Path, times: np.ndarray) -> list[np.ndarray]:
    f = PyAVFile(str(path))
    try:
        return f.read(times, 1e-4)
    finally:
        f.close()


@pytest.mark.parametrize("seed", range(3))
def test_planned_ranges_serve_the_decoder(videos, seed):
    rng = np.random.default_rng(seed)
    for path in videos:
        read, size = file_reader(path)
        index = read_mp4_index(read, size, str(path))
        times_all = index.video().times
        for _ in range(8):
            times = np.sort(rng.choice(times_all, size=int(rng.integers(1, 6)), replace=False))
            plan = video_ranges(index, times)
            assert plan == merge_ranges(plan) and all(0 <= a < b <= size for a, b in plan)
            strict = StrictFile(path, plan)
            f = PyAVFile(strict)  # type: ignore[arg-type]
            try:
                got = f.read(times, 1e-4)
            finally:
                f.close()
            want = _decode_all(path, times)
            assert all(np.array_equal(g, w) for g, w in zip(got, want))
            assert sum(b - a for a, b in plan) < size or size < 200_000


def test_strict_file_refuses_unplanned_bytes(videos):
    """The check above has teeth: a plan without the frames' samples fails to decode them."""
    path = videos[0]
    read, size = file_reader(path)
    index = read_mp4_index(read, size, str(path))
    times = index.video().times[-3:]
    header_only = video_ranges(index, [], gap=0, read_ahead=0)
    f = PyAVFile(StrictFile(path, header_only))  # type: ignore[arg-type]
    with pytest.raises((OutsidePlan, ValueError)):
        try:
            f.read(times, 1e-4)
        finally:
            f.close()


def test_ranges_from_keyframe_through_frame(videos):
    """Independent reference: the samples of [last keyframe <= frame, frame + 1] are all covered."""
    path = videos[1]
    read, size = file_reader(path)
    index = read_mp4_index(read, size, str(path))
    tr = index.video()
    for s in range(len(tr)):
        plan = video_ranges(index, [tr.times[s]], gap=0, read_ahead=0)
        k = max(i for i in range(s + 1) if tr.keyframes[i])
        for i in range(k, min(s + 2, len(tr))):
            a, b = int(tr.offsets[i]), int(tr.offsets[i] + tr.sizes[i])
            assert any(x <= a and b <= y for x, y in plan), (s, i)
        # and nothing before the keyframe except the header and the first sample
        before = [(x, y) for x, y in plan if y <= tr.offsets[k]]
        assert all(y <= tr.offsets[0] + tr.sizes[0] for _, y in before)


def test_merge_ranges():
    assert merge_ranges([(5, 7), (0, 2), (2, 3), (9, 9), (6, 8)]) == [(0, 3), (5, 8)]
    assert merge_ranges([(0, 2), (4, 5)], gap=2) == [(0, 5)]
    assert merge_ranges([(0, 2), (5, 6)], gap=2) == [(0, 2), (5, 6)]


def test_errors_name_the_file(tmp_path, videos):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x10abcd" + b"x" * 100)
    read, size = file_reader(junk)
    with pytest.raises(ValueError, match="junk.mp4"):
        read_mp4_index(read, size, str(junk))
    data = videos[0].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:900])  # inside the moov
    read, size = file_reader(cut)
    with pytest.raises(ValueError, match="cut.mp4"):
        read_mp4_index(read, size, str(cut))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    read, size = file_reader(empty)
    with pytest.raises(ValueError, match="empty.mp4"):
        read_mp4_index(read, size, str(empty))
