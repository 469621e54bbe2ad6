"""Where each frame of an MP4 file lies: the ``moov`` sample tables, parsed in plain Python and numpy.

An MP4 (ISO BMFF) file keeps, per track, tables that place every sample (a compressed frame) in the
file: ``stts`` (decode durations), ``ctts`` (presentation offsets), ``stss`` (keyframes), ``stsz`` /
``stz2`` (sizes), ``stsc`` (samples per chunk), ``stco`` / ``co64`` (chunk offsets), with ``mdhd``'s
timescale and the edit list ``elst``. :func:`read_mp4_index` reads them from any byte-reading callable
``read(start, stop) -> bytes`` with a few reads (the top-level box headers, then the whole ``moov``),
so it serves a local file and a remote one alike.

:func:`video_ranges` turns wanted frame times into the byte ranges a decoder reads to produce them, as
:class:`~episode_sampler.lerobot.video_decode.PyAVFile` decodes: from the keyframe at or before each
frame through that frame, plus the file's header (the boxes before the media data and the ``moov``).
The times and offsets equal what PyAV's demuxer reports per packet (``pts * time_base``, ``pos``,
``size``, ``is_keyframe``; tests/lerobot/test_mp4_index.py checks it).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Mp4Index", "TrackIndex", "file_reader", "merge_ranges", "read_mp4_index", "video_ranges"]

Reader = Callable[[int, int], bytes]
"""``read(start, stop)``: the file's bytes ``[start, stop)`` (fewer only at the end of the file)."""

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}
_HEAD_BYTES = 64 << 10  # first read: the start of the file, where ftyp (and a fast-start moov) live


@dataclass(frozen=True)
class TrackIndex:
    """The samples of one track, in decode order.

    ``times``: presentation times in seconds (``pts * time_base``, edit list applied as FFmpeg does
    for a single shifting edit); ``pts``: the same in ``time_base`` ticks; ``offsets``/``sizes``:
    bytes in the file; ``keyframes``: sync samples.
    """

    track_id: int
    handler: str  # "vide", "soun", ...
    timescale: int  # ticks per second (time_base = 1 / timescale)
    pts: np.ndarray  # int64
    times: np.ndarray  # float64 seconds
    offsets: np.ndarray  # int64
    sizes: np.ndarray  # int64
    keyframes: np.ndarray  # bool

    def __len__(self) -> int:
        return int(self.sizes.size)


@dataclass(frozen=True)
class Mp4Index:
    """The tracks of one MP4 file and the byte ranges a demuxer reads to open it."""

    size: int
    header: tuple[tuple[int, int], ...]  # top-level boxes before the media data, and the moov
    tracks: tuple[TrackIndex, ...]

    def video(self) -> TrackIndex:
        """The first video track (the one PyAV's ``container.streams.video[0]`` decodes).

        Raises:
            ValueError: the file has no video track.
        """
        for t in self.tracks:
            if t.handler == "vide":
                return t
        raise ValueError("MP4 file has no video track")


# ------------------------------------------------------------------------------------------ reading
def file_reader(path: str | os.PathLike[str]) -> tuple[Reader, int]:
    """A reader over a local file and its size (the file is opened per read: nothing stays open)."""
    p = os.fspath(path)

    def read(start: int, stop: int) -> bytes:
        with open(p, "rb") as f:
            f.seek(start)
            return f.read(max(0, stop - start))

    return read, os.path.getsize(p)


def _header(buf: bytes, at: int, what: str) -> tuple[int, bytes, int]:
    """``(box size, type, header length)`` of the box at ``buf[at:]`` (size 0 -> -1: to the end)."""
    if len(buf) < at + 8:
        raise ValueError(f"truncated MP4 box header in {what}")
    size, kind = struct.unpack_from(">I4s", buf, at)
    if size == 1:
        if len(buf) < at + 16:
            raise ValueError(f"truncated MP4 box header in {what}")
        return struct.unpack_from(">Q", buf, at + 8)[0], kind, 16
    if size == 0:
        return -1, kind, 8
    if size < 8:
        raise ValueError(f"invalid MP4 box size {size} ({kind!r}) in {what}")
    return size, kind, 8


def read_mp4_index(read: Reader, size: int, name: str = "MP4 file") -> Mp4Index:
    """Parse the ``moov`` of a file of ``size`` bytes read through ``read``.

    Reads the file's first 64 KiB, one 16-byte header per further top-level box until both the
    ``moov`` and the media data's header were seen (media data is skipped, never read), and the
    ``moov`` whole if it was not in the first read.

    Raises:
        ValueError: not an MP4 file, no ``moov``, truncated or inconsistent tables (naming ``name``).
    """
    head = read(0, min(size, _HEAD_BYTES))
    header: list[tuple[int, int]] = []
    off = 0
    moov: bytes | None = None
    seen_mdat = False
    while off < size:
        if off + 8 <= len(head):
            buf, base = head, 0
        else:
            buf, base = read(off, min(size, off + 16)), off
        box, kind, hl = _header(buf, off - base, name)
        if box < 0:
            box = size - off
        if off + box > size:
            what = kind.decode("latin-1")
            raise ValueError(f"{name} is truncated: box {what!r} at {off} needs {box} bytes")
        if kind == b"mdat":
            header.append((off, off + hl))  # a demuxer reads the media data's header, then skips it
            seen_mdat = True
        else:
            header.append((off, off + box))
        if kind == b"moov":
            moov = head[off : off + box] if off + box <= len(head) else read(off, off + box)
            if len(moov) != box:
                raise ValueError(f"{name} is truncated inside its moov box")
        if moov is not None and seen_mdat:
            break
        off += box
    if moov is None:
        raise ValueError(f"{name} has no moov box (not an MP4 file, or a fragmented one)")
    if not header or header[0][0] != 0:
        raise ValueError(f"{name} is not an MP4 file")
    tracks = tuple(_track(trak, name) for trak in _children(moov, 8, len(moov), b"trak", name))
    return Mp4Index(size, tuple(_merge(sorted(header), 0)), tracks)


def _boxes(buf: bytes, start: int, stop: int, name: str) -> Iterator[tuple[bytes, int, int]]:
    """``(type, payload start, box end)`` of the boxes in ``buf[start:stop]``."""
    off = start
    while off + 8 <= stop:
        size, kind, hl = _header(buf, off, name)
        end = stop if size < 0 else off + size
        if end > stop:
            raise ValueError(f"{name}: box {kind.decode('latin-1')!r} overruns its parent")
        yield kind, off + hl, end
        off = end


def _children(buf: bytes, start: int, stop: int, kind: bytes, name: str) -> Iterator[bytes]:
    for k, a, b in _boxes(buf, start, stop, name):
        if k == kind:
            yield buf[a:b]


def _find(buf: bytes, path: Sequence[bytes], name: str) -> bytes | None:
    """Payload of the first box along ``path`` inside the payload ``buf``."""
    for kind in path:
        got = next(_children(buf, 0, len(buf), kind, name), None)
        if got is None:
            return None
        buf = got
    return buf


def _table(payload: bytes, fmt: str, name: str, box: str) -> np.ndarray:
    """A full box's entries (version/flags, entry count, then entries of numpy dtype ``fmt``)."""
    if len(payload) < 8:
        raise ValueError(f"{name}: truncated {box} box")
    (count,) = struct.unpack_from(">I", payload, 4)
    dtype = np.dtype(fmt)
    if 8 + count * dtype.itemsize > len(payload):
        raise ValueError(f"{name}: {box} box lists {count} entries but holds fewer")
    return np.frombuffer(payload, dtype=dtype, count=count, offset=8)


def _track(trak: bytes, name: str) -> TrackIndex:
    tkhd = _find(trak, [b"tkhd"], name)
    mdhd = _find(trak, [b"mdia", b"mdhd"], name)
    hdlr = _find(trak, [b"mdia", b"hdlr"], name)
    stbl = _find(trak, [b"mdia", b"minf", b"stbl"], name)
    if tkhd is None or mdhd is None or hdlr is None or stbl is None:
        raise ValueError(f"{name}: a track lacks tkhd, mdhd, hdlr or stbl")
    track_id = struct.unpack_from(">I", tkhd, 20 if tkhd[0] == 1 else 12)[0]
    timescale = struct.unpack_from(">I", mdhd, 20 if mdhd[0] == 1 else 12)[0]
    if timescale <= 0:
        raise ValueError(f"{name}: track {track_id} has timescale 0")
    handler = hdlr[8:12].decode("latin-1")

    def box(kind: bytes) -> bytes | None:
        return next(_children(stbl, 0, len(stbl), kind, name), None)

    # sizes
    stsz, stz2 = box(b"stsz"), box(b"stz2")
    if stsz is not None:
        if len(stsz) < 12:
            raise ValueError(f"{name}: truncated stsz box")
        uniform, count = struct.unpack_from(">II", stsz, 4)
        if uniform:
            sizes = np.full(count, uniform, dtype=np.int64)
        else:
            if 12 + 4 * count > len(stsz):
                raise ValueError(f"{name}: stsz box lists {count} sizes but holds fewer")
            sizes = np.frombuffer(stsz, ">u4", count, 12).astype(np.int64)
    elif stz2 is not None:
        field_bits = stz2[7]
        (count,) = struct.unpack_from(">I", stz2, 8)
        if field_bits == 16:
            sizes = np.frombuffer(stz2, ">u2", count, 12).astype(np.int64)
        elif field_bits == 8:
            sizes = np.frombuffer(stz2, "u1", count, 12).astype(np.int64)
        elif field_bits == 4:
            packed = np.frombuffer(stz2, "u1", (count + 1) // 2, 12)
            sizes = np.stack([packed >> 4, packed & 15], axis=1).reshape(-1)[:count].astype(np.int64)
        else:
            raise ValueError(f"{name}: stz2 field size {field_bits} is invalid")
    else:
        raise ValueError(f"{name}: track {track_id} has no sample size table (stsz/stz2)")
    n = sizes.size
    # decode times
    stts = box(b"stts")
    if stts is None:
        raise ValueError(f"{name}: track {track_id} has no stts box")
    tt = _table(stts, ">u4,>u4", name, "stts")
    deltas = np.repeat(tt["f1"].astype(np.int64), tt["f0"].astype(np.int64))
    if deltas.size < n:
        raise ValueError(f"{name}: stts covers {deltas.size} of {n} samples")
    dts = np.concatenate([[0], np.cumsum(deltas[: n - 1])]).astype(np.int64) if n else deltas[:0]
    pts = dts.copy()
    ctts = box(b"ctts")
    if ctts is not None:
        ct = _table(ctts, ">u4,>i4" if ctts[0] == 1 else ">u4,>u4", name, "ctts")
        shift = np.repeat(ct["f1"].astype(np.int64), ct["f0"].astype(np.int64))
        if shift.size < n:
            raise ValueError(f"{name}: ctts covers {shift.size} of {n} samples")
        pts = pts + shift[:n]
    # edit list: FFmpeg shifts timestamps so that the first edit's media_time plays at its start
    elst = _find(trak, [b"edts", b"elst"], name)
    if elst is not None and n:
        version = elst[0]
        et = _table(elst, ">u8,>i8,>i4" if version == 1 else ">u4,>i4,>i4", name, "elst")
        media = [int(m) for m in et["f1"]]
        real = [m for m in media if m >= 0]
        if real:
            pts = pts - real[0]
    # keyframes
    stss = box(b"stss")
    if stss is None:
        keyframes = np.ones(n, dtype=bool)
    else:
        sync = _table(stss, ">u4", name, "stss").astype(np.int64) - 1
        keyframes = np.zeros(n, dtype=bool)
        keyframes[sync[(sync >= 0) & (sync < n)]] = True
    # offsets: chunks (stco/co64) of samples_per_chunk samples (stsc runs)
    stco, co64 = box(b"stco"), box(b"co64")
    if stco is not None:
        chunk_offsets = _table(stco, ">u4", name, "stco").astype(np.int64)
    elif co64 is not None:
        chunk_offsets = _table(co64, ">u8", name, "co64").astype(np.int64)
    else:
        raise ValueError(f"{name}: track {track_id} has no chunk offset table (stco/co64)")
    stsc = box(b"stsc")
    if stsc is None:
        raise ValueError(f"{name}: track {track_id} has no stsc box")
    sc = _table(stsc, ">u4,>u4,>u4", name, "stsc")
    firsts = sc["f0"].astype(np.int64) - 1
    nchunks = chunk_offsets.size
    runs = np.diff(np.concatenate([firsts, [nchunks]]))
    if (runs < 0).any() or (firsts.size and firsts[0] != 0):
        raise ValueError(f"{name}: stsc box of track {track_id} is not in chunk order")
    per_chunk = np.repeat(sc["f1"].astype(np.int64), runs)
    if int(per_chunk.sum()) < n:
        raise ValueError(f"{name}: chunks of track {track_id} hold {int(per_chunk.sum())} of {n} samples")
    chunk_of = np.repeat(np.arange(nchunks, dtype=np.int64), per_chunk)[:n]
    chunk_first = np.concatenate([[0], np.cumsum(per_chunk)])[:-1]
    cum = np.concatenate([[0], np.cumsum(sizes)])
    offsets = chunk_offsets[chunk_of] + cum[:-1] - cum[chunk_first[chunk_of]]
    return TrackIndex(
        track_id=int(track_id),
        handler=handler,
        timescale=int(timescale),
        pts=pts,
        times=pts / float(timescale),
        offsets=offsets.astype(np.int64),
        sizes=sizes,
        keyframes=keyframes,
    )


# ------------------------------------------------------------------------------------------ ranges
def _merge(ranges: Sequence[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if b <= a:
            continue
        if out and a <= out[-1][1] + gap:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def merge_ranges(ranges: Sequence[tuple[int, int]], gap: int = 0) -> list[tuple[int, int]]:
    """Sorted, disjoint ``(start, stop)`` ranges covering ``ranges``; ranges at most ``gap`` bytes
    apart are joined (empty ranges dropped)."""
    return _merge(ranges, gap)


# FFmpeg's I/O layer (AVIOContext) reads its buffer's worth (PyAV: 32 KiB) at a time and serves a
# forward seek within its buffer plus ``short_seek_threshold`` (32 KiB) by reading through the gap
# instead of seeking: the bytes it reads are a superset of the packets it demuxes.
AVIO_BUFFER = 32 << 10
AVIO_GAP = 64 << 10


def video_ranges(
    index: Mp4Index,
    times: Sequence[float] | np.ndarray,
    tolerance_s: float = 1e-4,
    *,
    decoder_delay: int = 1,
    gap: int = AVIO_GAP,
    read_ahead: int = AVIO_BUFFER,
) -> list[tuple[int, int]]:
    """The byte ranges of ``index``'s file that PyAV reads to decode the frames shown at ``times``.

    As :class:`~episode_sampler.lerobot.video_decode.PyAVFile` decodes: the header
    (:attr:`Mp4Index.header`) and the first sample (opening the file reads them), and for each time the
    samples from the keyframe at or before its frame through that frame and ``decoder_delay`` samples
    more (a decoder returns a frame after it was fed the next packet). A time with no frame within
    ``tolerance_s`` plans the first frame after it. Ranges at most ``gap`` bytes apart are joined (FFmpeg
    reads through short forward seeks) and each range is extended by ``read_ahead`` bytes (FFmpeg reads
    whole buffers); the result is sorted, disjoint and within the file.
    """
    track = index.video()
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    ranges: list[tuple[int, int]] = list(index.header)
    n = len(track)
    if n:
        ranges.append((int(track.offsets[0]), int(track.offsets[0] + track.sizes[0])))
    if t.size and n:
        # samples in presentation order (equal to decode order for AV1/H.264 without B-frames)
        order = np.argsort(track.times, kind="stable")
        j = np.clip(np.searchsorted(track.times[order], t - tolerance_s, side="left"), 0, n - 1)
        wanted = order[j]  # the first frame at or after t - tolerance (or the last one)
        keys = np.flatnonzero(track.keyframes)
        if keys.size == 0:
            keys = np.zeros(1, dtype=np.int64)
        k = keys[np.clip(np.searchsorted(keys, wanted, side="right") - 1, 0, None)]
        ends = track.offsets + track.sizes
        pairs = np.unique(np.stack([np.minimum(k, wanted), np.maximum(k, wanted)], axis=1), axis=0)
        for first, last in pairs.tolist():
            last = min(last + decoder_delay, n - 1)
            lo = track.offsets[first : last + 1]
            hi = ends[first : last + 1]
            ranges.extend(zip(lo.tolist(), hi.tolist()))
    merged = _merge(ranges, gap)
    return _merge([(a, min(b + read_ahead, index.size)) for a, b in merged], 0)
