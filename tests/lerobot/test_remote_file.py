"""RemoteFile: a seekable file over the cache that behaves like a local file (against io.BytesIO), lets
pyarrow fetch only the row groups and columns it reads, and lets PyAV decode the same frames as from disk."""

from __future__ import annotations

import io
import pickle
import random

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from episode_sampler.lerobot.block_cache import BlockCache
from episode_sampler.lerobot.remote_file import RemoteFile
from episode_sampler.lerobot.remote_source import open_source
from episode_sampler.lerobot.video_encode import camera_frame, encode_frames
from tests.helpers.remote import CountingSource, MemorySource

DATA = bytes(random.Random(7).randrange(256) for _ in range(3000))

ops = st.lists(
    st.one_of(
        st.tuples(st.just("read"), st.integers(-1, 700)),
        st.tuples(st.just("seek"), st.integers(0, 3200), st.sampled_from([0, 1, 2])),
        st.tuples(st.just("readinto"), st.integers(0, 500)),
        st.tuples(st.just("tell")),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops)
def test_behaves_like_a_local_file(tmp_path_factory, script):
    f = RemoteFile(MemorySource({"a": DATA}), "a", BlockCache(tmp_path_factory.mktemp("c"), 10_000, 64))
    ref = io.BytesIO(DATA)
    for op in script:
        if op[0] == "read":
            assert f.read(op[1]) == ref.read(op[1])
        elif op[0] == "seek":
            offset = op[1] if op[2] == 0 else op[1] - 1600
            try:
                expected: object = ref.seek(offset, op[2])
            except ValueError:
                expected = ValueError
            try:
                got: object = f.seek(offset, op[2])
            except ValueError:
                got = ValueError
            assert got == expected
        elif op[0] == "readinto":
            a, b = bytearray(op[1]), bytearray(op[1])
            assert f.readinto(a) == ref.readinto(b)
            assert a == b
        assert f.tell() == ref.tell()


def test_file_basics(tmp_path):
    source = MemorySource({"a": DATA})
    f = RemoteFile(source, "a", BlockCache(tmp_path, 10_000, 64))
    assert f.name == "memory://mem/a" and f.seekable() and f.readable() and not f.writable()
    f.seek(100)
    copy = pickle.loads(pickle.dumps(f))
    assert copy.read(10) == DATA[100:110]
    assert f.read() == DATA[100:]
    with pytest.raises(ValueError, match="negative seek"):
        f.seek(-1)
    f.close()
    with pytest.raises(ValueError, match="closed file memory://mem/a"):
        f.read(1)
    with pytest.raises(TypeError, match="source"):
        RemoteFile("x", "a", BlockCache(tmp_path, 10_000, 64))  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="memory://mem/b"):
        RemoteFile(source, "b", BlockCache(tmp_path, 10_000, 64))


def test_buffered_reads_fetch_each_block_once(tmp_path):
    source = MemorySource({"a": DATA})
    f = io.BufferedReader(RemoteFile(source, "a", BlockCache(tmp_path, 100_000, 64)), buffer_size=16)
    assert b"".join(iter(lambda: f.read(7), b"")) == DATA
    assert len(source.reads) == -(-len(DATA) // 64)


# ------------------------------------------------------------------------------------------ Parquet


def parquet_bytes() -> tuple[bytes, pa.Table]:
    rng = np.random.default_rng(0)
    n = 40_000
    table = pa.table({c: rng.standard_normal(n) for c in ("x", "y", "z")} | {"i": np.arange(n)})
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=5000, use_dictionary=False, compression="none")
    return sink.getvalue(), table


def test_parquet_fetches_only_the_row_group_and_column_it_reads(tmp_path):
    raw, table = parquet_bytes()
    source = MemorySource({"d.parquet": raw})
    bs = 4096
    f = RemoteFile(source, "d.parquet", BlockCache(tmp_path, 10_000_000, bs))
    got = pq.ParquetFile(f).read_row_group(3, columns=["y"])
    assert got.column("y").equals(table.column("y").slice(15_000, 5000))
    # the reference: the footer (what pyarrow reads speculatively from the end) and that one column chunk
    meta = pq.ParquetFile(io.BytesIO(raw)).metadata
    col = meta.row_group(3).column(1)
    start = col.dictionary_page_offset or col.data_page_offset
    allowed = {
        ("d.parquet", a) for a in range(start // bs, (start + col.total_compressed_size - 1) // bs + 1)
    }
    footer_from = max(0, len(raw) - 64 * 1024)
    allowed |= {("d.parquet", a) for a in range(footer_from // bs, (len(raw) - 1) // bs + 1)}
    fetched = {(rel, a // bs) for rel, a, b in source.reads for a in range(a, b, bs)}
    assert fetched <= allowed
    assert sum(b - a for _, a, b in source.reads) < len(raw) / 8


@pytest.mark.slow
def test_parquet_over_nginx_equals_the_local_file(nginx, tmp_path):
    raw, table = parquet_bytes()
    (tmp_path / "d.parquet").write_bytes(raw)
    source = CountingSource(open_source(nginx.serve(tmp_path, "remote-file-parquet")))
    f = RemoteFile(source, "d.parquet", BlockCache(tmp_path / "cache", 10_000_000, 1 << 16))
    assert pq.read_table(f).equals(table)


# ------------------------------------------------------------------------------------------ video


def decode(src) -> list[tuple[int, np.ndarray]]:
    with av.open(src) as container:
        return [(frame.pts, frame.to_ndarray(format="rgb24")) for frame in container.decode(video=0)]


def seek_and_decode(src, seconds: float) -> tuple[int, np.ndarray]:
    with av.open(src) as container:
        stream = container.streams.video[0]
        container.seek(int(seconds / stream.time_base), stream=stream)
        frame = next(container.decode(stream))
        return frame.pts, frame.to_ndarray(format="rgb24")


@pytest.fixture(scope="module")
def mp4(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "cam.mp4"
    encode_frames(path, np.stack([camera_frame(i, 64, 64) for i in range(90)]), 30)
    return path


def test_pyav_decodes_the_same_frames_as_from_disk(mp4, tmp_path):
    source = MemorySource({"cam.mp4": mp4.read_bytes()})
    cache = BlockCache(tmp_path, 10_000_000, 2048)
    local = decode(str(mp4))
    remote = decode(RemoteFile(source, "cam.mp4", cache))
    assert len(remote) == len(local) == 90
    for (p1, a), (p2, b) in zip(local, remote):
        assert p1 == p2 and np.array_equal(a, b)
    before = len(source.reads)
    assert decode(RemoteFile(source, "cam.mp4", cache))[-1][0] == local[-1][0]
    assert len(source.reads) == before  # the second pass comes from the cache
    p, frame = seek_and_decode(RemoteFile(source, "cam.mp4", cache), 2.0)
    q, expected = seek_and_decode(str(mp4), 2.0)
    assert p == q and np.array_equal(frame, expected)


def test_a_large_read_fetches_its_missing_blocks_in_one_request(tmp_path):
    source = MemorySource({"a": DATA})
    f = RemoteFile(source, "a", BlockCache(tmp_path, 100_000, 64))
    f.seek(10)
    assert f.read(64 * 6) == DATA[10 : 10 + 64 * 6]
    assert source.reads == [("a", 0, 64 * 7)]
