"""A bounded on-disk cache of remote file blocks, shared by the processes of one node.

Files are cut into fixed-size blocks (the last one shorter). A block lives in one file
``blocks/<xx>/<key>-<index>`` whose key hashes the source's identity, the relative path, the file's size
and version (ETag / Last-Modified / mtime) and the block size, so a changed remote file is never served
stale. Each entry starts with a 16-byte header (magic, length, CRC-32 of the data) and is checked on every
read; an entry that fails the check is dropped and downloaded again.

Crash safety: an entry is written to ``tmp/`` and moved into place with ``os.replace``, so a process killed
mid-download leaves at worst a temporary file (removed once its process is gone), never a short entry.
The shared byte count (file ``usage``) grows before an entry is moved in and shrinks after entries are
removed, so a kill can only leave it too high; opening a cache reads it without scanning the directory.

Sharing: DataLoader workers and the ranks of a node may use one directory. POSIX record locks on the file
``lock`` serialize the index (byte 0: the byte count in ``usage``, eviction) and each block (one of
:data:`STRIPES` bytes chosen by the block's hash, so a block wanted by several threads or processes at once
is downloaded once). Threads of one process take a matching in-process lock first (POSIX locks belong to
processes). Least recently used: a hit stamps the entry's mtime; when a new entry would take the total above
``max_bytes``, the oldest entries are removed until it is under :data:`LOW_WATER` of it, so the cost of
scanning the directory is spread over a tenth of the cache.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import os
import struct
import threading
import time
import warnings
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .remote_source import RemoteSource

DEFAULT_BLOCK_SIZE = 1 << 20
STRIPES = 4096
#: after an eviction, the entries (plus the new one) fill at most this fraction of ``max_bytes``
LOW_WATER = 0.9
#: a run of missing neighbouring blocks is fetched with one request of at most this many blocks
MAX_RUN_BLOCKS = 8
MAGIC = b"ESB1"
HEADER = struct.Struct("<4sQI")  # magic, data length, crc32
USAGE_WIDTH = 20
_STAT_NAMES = ("hits", "misses", "bytes_downloaded", "evictions", "corrupt", "store_errors")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "episode-sampler"


@dataclass(frozen=True)
class Entry:
    """One cached block on disk: its file, its mtime (last use) and size in bytes (header included)."""

    path: Path
    mtime_ns: int
    nbytes: int


class _Locks:
    """A process's locks on one cache directory (shared by every BlockCache of that directory in the
    process: closing any descriptor of a file drops all of the process's POSIX locks on it)."""

    def __init__(self, lock_file: Path) -> None:
        self.fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666)
        self.usage_fd = os.open(lock_file.parent / "usage", os.O_RDWR | os.O_CREAT, 0o666)
        self.index = threading.Lock()
        self.stripes = [threading.Lock() for _ in range(STRIPES)]
        self.stamp = 0
        self.stamp_lock = threading.Lock()


_LOCKS: dict[tuple[int, str], _Locks] = {}
_LOCKS_GUARD = threading.Lock()


def _after_fork_in_child() -> None:
    global _LOCKS_GUARD
    _LOCKS_GUARD = threading.Lock()  # another thread may have held it at the fork


os.register_at_fork(after_in_child=_after_fork_in_child)


def _locks_for(directory: Path) -> _Locks:
    key = (os.getpid(), str(directory))
    with _LOCKS_GUARD:
        found = _LOCKS.get(key)
        if found is None:
            found = _LOCKS[key] = _Locks(directory / "lock")
        return found


class BlockCache:
    """On-disk LRU cache of remote blocks, bounded by ``max_bytes`` (entry files' sizes, headers included).

    ``directory`` ``None`` means ``$XDG_CACHE_HOME/episode-sampler`` (or ``~/.cache/episode-sampler``).
    Thread-safe and process-safe; picklable (a worker re-opens its locks). :meth:`stats` counts this
    process's hits, misses, bytes downloaded, evictions and corrupt entries found.
    """

    def __init__(
        self, directory: str | os.PathLike[str] | None, max_bytes: int, block_size: int = DEFAULT_BLOCK_SIZE
    ) -> None:
        for name, v in (("max_bytes", max_bytes), ("block_size", block_size)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{name} must be an int (bytes), got {type(v).__name__}")
        if block_size <= 0:
            raise ValueError(f"block_size must be > 0, got {block_size}")
        if max_bytes < block_size + HEADER.size:
            raise ValueError(
                f"max_bytes must hold at least one block (block_size + {HEADER.size} = "
                f"{block_size + HEADER.size} bytes), got {max_bytes}"
            )
        if directory is not None and not isinstance(directory, (str, os.PathLike)):
            raise TypeError(f"directory must be a path or None, got {type(directory).__name__}")
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.max_bytes = max_bytes
        self.block_size = block_size
        for sub in ("blocks", "tmp"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        self._pid = -1
        self._counts: dict[str, int] = {}
        self._counts_lock = threading.Lock()
        self._runtime()
        with self._index_lock():
            self._clean_tmp()
            usage = self._read_usage()
            if usage is None:  # a new directory (or a lost counter): count once
                self._write_usage(sum(e.nbytes for e in self.entries()))
            elif usage > self.max_bytes:  # opened with a smaller bound than before
                self._write_usage(self._evict(int(self.max_bytes * LOW_WATER)))

    # pickling, per-process state -----------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {"directory": self.directory, "max_bytes": self.max_bytes, "block_size": self.block_size}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._pid = -1
        self._counts, self._counts_lock = {}, threading.Lock()

    def _runtime(self) -> _Locks:
        locks = _locks_for(self.directory)
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._counts_lock = threading.Lock()
            self._counts = dict.fromkeys(_STAT_NAMES, 0)
        return locks

    def _count(self, name: str, n: int = 1) -> None:
        with self._counts_lock:
            self._counts[name] += n

    def stats(self) -> dict[str, int]:
        """This process's counters: hits, misses (blocks downloaded), bytes_downloaded, evictions, corrupt
        entries found, store_errors (blocks the disk refused)."""
        self._runtime()
        with self._counts_lock:
            return dict(self._counts)

    def __repr__(self) -> str:
        return (
            f"BlockCache({str(self.directory)!r}, max_bytes={self.max_bytes}, block_size={self.block_size})"
        )

    # locks ---------------------------------------------------------------------------------------------
    class _Held:
        def __init__(self, fd: int, tlock: threading.Lock, offset: int) -> None:
            self.fd, self.tlock, self.offset = fd, tlock, offset

        def __enter__(self) -> None:
            self.tlock.acquire()
            try:
                _lock_byte(self.fd, self.offset)
            except BaseException:
                self.tlock.release()
                raise

        def __exit__(self, *exc: object) -> None:
            try:
                fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, self.offset)
            finally:
                self.tlock.release()

    def _index_lock(self) -> BlockCache._Held:
        locks = self._runtime()
        return BlockCache._Held(locks.fd, locks.index, 0)

    def _block_lock(self, stripe: int) -> BlockCache._Held:
        locks = self._runtime()
        return BlockCache._Held(locks.fd, locks.stripes[stripe], 1 + stripe)

    # layout --------------------------------------------------------------------------------------------
    def file_key(self, source: RemoteSource, rel: str) -> str:
        """The hash naming a file's blocks: source identity, path, size, version, block size."""
        st = source.stat(rel)
        text = "\0".join([source.identity, rel, str(st.size), st.version, str(self.block_size)])
        return hashlib.sha256(text.encode()).hexdigest()[:40]

    def _path(self, key: str, index: int) -> Path:
        return self.directory / "blocks" / key[:2] / f"{key}-{index}"

    @staticmethod
    def _stripe(key: str, index: int) -> int:
        return zlib.crc32(f"{key}-{index}".encode()) % STRIPES

    def entries(self) -> list[Entry]:
        """Every entry on disk now (a scan of the directory)."""
        out = []
        for sub in _scandir(self.directory / "blocks"):
            if not sub.is_dir():
                continue
            for e in _scandir(Path(sub.path)):
                try:
                    st = e.stat()
                except FileNotFoundError:
                    continue
                out.append(Entry(Path(e.path), st.st_mtime_ns, st.st_size))
        return out

    def usage(self) -> int:
        """Bytes the entries take now, as the shared counter says (headers included)."""
        with self._index_lock():
            return self._read_usage() or 0

    def _read_usage(self) -> int | None:
        """The shared byte count (``None`` when there is none yet). It never counts less than the
        entries on disk: it grows before an entry is moved in and shrinks after entries are removed, so
        a killed process can only leave it too high (healed by the next eviction's recount)."""
        raw = os.pread(self._runtime().usage_fd, USAGE_WIDTH, 0)
        return int(raw) if raw.strip().isdigit() else None

    def _write_usage(self, n: int) -> None:
        """One ``pwrite`` of a fixed-width number, in place (a rename over the old file would make ext4
        flush on every store); a killed process leaves the old or the new number, and a restart recounts."""
        os.pwrite(self._runtime().usage_fd, str(max(0, n)).rjust(USAGE_WIDTH).encode(), 0)

    def _clean_tmp(self) -> None:
        """Remove temporary files whose process is gone (a download killed mid-way)."""
        for e in _scandir(self.directory / "tmp"):
            pid = e.name.split(".")[1] if e.name.count(".") >= 2 else ""
            if pid.isdigit() and not _alive(int(pid)):
                _unlink(Path(e.path))

    # reading -------------------------------------------------------------------------------------------
    def _block_span(self, size: int, index: int) -> tuple[int, int]:
        start = index * self.block_size
        return start, min(size, start + self.block_size)

    def _length(self, size: int, index: int) -> int:
        start, stop = self._block_span(size, index)
        return stop - start

    def _load(self, key: str, index: int, length: int, *, note: bool = False) -> bytes | None:
        """The block's data if its entry is present and checks out (the entry is marked used); ``note``
        counts a corrupt entry (once: when checked under the block's lock)."""
        path = self._path(key, index)
        try:
            with open(path, "rb") as f:
                data = read_entry(f, length)
        except FileNotFoundError:
            return None
        if data is None:
            if note:
                self._count("corrupt")
            return None
        self._touch(path)
        return data

    def _present(self, key: str, index: int, length: int) -> bool:
        path = self._path(key, index)
        try:
            ok = path.stat().st_size == HEADER.size + length
        except FileNotFoundError:
            return False
        if ok:
            self._touch(path)
        return ok

    def _touch(self, path: Path) -> None:
        locks = self._runtime()
        with locks.stamp_lock:
            locks.stamp = max(time.time_ns(), locks.stamp + 1)
            t = locks.stamp
        try:
            os.utime(path, ns=(t, t))
        except FileNotFoundError:
            pass

    def read(self, source: RemoteSource, rel: str, start: int, stop: int) -> bytes:
        """Bytes ``[start, stop)`` of a remote file (``stop`` at most its size), through the cache."""
        size = source.size(rel)
        _check_range(start, stop, size, source.name(rel))
        if start == stop:
            return b""
        first, last = start // self.block_size, (stop - 1) // self.block_size
        blocks, _ = self._blocks(source, rel, range(first, last + 1), keep=True)
        data = b"".join(blocks[i] for i in range(first, last + 1))
        offset = start - first * self.block_size
        return data[offset : offset + stop - start]

    def block(self, source: RemoteSource, rel: str, index: int) -> bytes:
        """Block ``index`` of a remote file (the last block is shorter)."""
        n = -(-source.size(rel) // self.block_size)
        if not isinstance(index, int) or not 0 <= index < max(n, 1):
            raise ValueError(f"index must be in [0, {n}) for {source.name(rel)}, got {index!r}")
        if n == 0:
            return b""
        return self._blocks(source, rel, [index], keep=True)[0][index]

    def ensure(self, source: RemoteSource, rel: str, ranges: Sequence[tuple[int, int]]) -> int:
        """Make every block covering ``ranges`` (``(start, stop)`` pairs) present; returns the bytes
        downloaded. Safe to call from many threads and processes at once."""
        size = source.size(rel)
        wanted: set[int] = set()
        for start, stop in ranges:
            _check_range(start, stop, size, source.name(rel))
            if stop > start:
                wanted.update(range(start // self.block_size, (stop - 1) // self.block_size + 1))
        return self._blocks(source, rel, sorted(wanted), keep=False)[1]

    def _have(self, key: str, index: int, length: int, *, keep: bool, note: bool = False) -> bytes | None:
        """A present block's data (``keep``; ``b""`` otherwise: presence only), ``None`` if missing."""
        if keep:
            return self._load(key, index, length, note=note)
        return b"" if self._present(key, index, length) else None

    def _blocks(
        self, source: RemoteSource, rel: str, indices: Sequence[int], *, keep: bool
    ) -> tuple[dict[int, bytes], int]:
        """The blocks' data (``keep``) or just their presence, and the bytes this call downloaded."""
        size = source.size(rel)
        key = self.file_key(source, rel)
        out: dict[int, bytes] = {}
        missing = []
        for i in indices:
            data = self._have(key, i, self._length(size, i), keep=keep)
            if data is None:
                missing.append(i)
            else:
                out[i] = data
                self._count("hits")
        downloaded = 0
        for run in _runs(missing, MAX_RUN_BLOCKS):
            downloaded += self._fetch_run(source, rel, key, size, run, keep, out)
        return out, downloaded

    def _fetch_run(
        self,
        source: RemoteSource,
        rel: str,
        key: str,
        size: int,
        run: list[int],
        keep: bool,
        out: dict[int, bytes],
    ) -> int:
        """Download consecutive blocks into ``out`` under their locks (taken in stripe order: no deadlock),
        skipping the ones another thread or process stored meanwhile; returns the bytes downloaded."""
        stripes = sorted({self._stripe(key, i) for i in run})
        downloaded = 0
        with contextlib.ExitStack() as stack:
            for s in stripes:
                stack.enter_context(self._block_lock(s))
            todo = []
            for i in run:
                data = self._have(key, i, self._length(size, i), keep=keep, note=True)
                if data is None:
                    todo.append(i)
                else:
                    out[i] = data
                    self._count("hits")
            for sub in _runs(todo, MAX_RUN_BLOCKS):
                got = self._download(source, rel, key, size, sub)
                downloaded += sum(len(d) for d in got.values())
                out.update(got)
        return downloaded

    def _download(
        self, source: RemoteSource, rel: str, key: str, size: int, run: list[int]
    ) -> dict[int, bytes]:
        start = self._block_span(size, run[0])[0]
        stop = self._block_span(size, run[-1])[1]
        data = source.read(rel, start, stop)
        self._count("misses", len(run))
        self._count("bytes_downloaded", len(data))
        out = {}
        for i in run:
            a, b = self._block_span(size, i)
            out[i] = data[a - start : b - start]
            self._store_or_warn(key, i, out[i])
        return out

    def _store_or_warn(self, key: str, index: int, data: bytes) -> None:
        """Store a block; a disk that refuses (full, read-only) costs a warning, not the read."""
        try:
            self._store(key, index, data)
        except OSError as e:
            self._count("store_errors")
            _unlink(self._tmp_path(key, index))
            warnings.warn(
                f"episode-sampler cache {self.directory}: could not store a block ({e}); reading on uncached",
                RuntimeWarning,
                stacklevel=2,
            )

    # writing -------------------------------------------------------------------------------------------
    def _tmp_path(self, key: str, index: int) -> Path:
        return self.directory / "tmp" / f"{key}-{index}.{os.getpid()}.{threading.get_ident()}"

    def _store(self, key: str, index: int, data: bytes) -> None:
        path = self._path(key, index)
        path.parent.mkdir(exist_ok=True)
        tmp = self._tmp_path(key, index)
        with open(tmp, "wb") as f:
            f.write(HEADER.pack(MAGIC, len(data), zlib.crc32(data)))
            f.write(data)
        nbytes = HEADER.size + len(data)
        with self._index_lock():
            usage = self._read_usage() or 0
            if _unlink(path):  # a corrupt entry (it was counted at its nominal size)
                usage -= nbytes
                self._write_usage(usage)
            if usage + nbytes > self.max_bytes:
                usage = self._evict(int(self.max_bytes * LOW_WATER) - nbytes)
            self._write_usage(usage + nbytes)  # count first: a kill before the move leaves it high
            os.replace(tmp, path)
            self._touch(path)

    def _evict(self, target: int) -> int:
        """Remove least recently used entries until the rest take at most ``target`` bytes (under the
        index lock); returns the bytes left. Recounts from the directory, healing a counter a killed
        process left behind."""
        self._clean_tmp()
        entries = sorted(self.entries(), key=lambda e: (e.mtime_ns, e.path.name))
        total = sum(e.nbytes for e in entries)
        for e in entries:
            if total <= target:
                break
            if _unlink(e.path):
                self._count("evictions")
            total -= e.nbytes
        self._write_usage(total)
        return total


def _lock_byte(fd: int, offset: int) -> None:
    """An exclusive POSIX lock on one byte, waiting for it. Linux's deadlock detection sees processes,
    not threads, so it can refuse a wait that is no deadlock (a thread of A waits for B while another
    thread of B waits for A, and neither holds what the other waits on): that refusal is retried."""
    delay = 0.0005
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX, 1, offset)
            return
        except OSError as e:
            if e.errno != errno.EDEADLK:
                raise
        time.sleep(delay)
        delay = min(0.05, delay * 2)


def check_entry(raw: bytes, length: int) -> bytes | None:
    """An entry's data if its header says ``length`` bytes with a matching CRC-32, else ``None``."""
    return read_entry(io.BytesIO(raw), length)


def read_entry(f: BinaryIO, length: int) -> bytes | None:
    """:func:`check_entry` on an open entry file (the data is read once, not copied)."""
    header = f.read(HEADER.size)
    if len(header) != HEADER.size:
        return None
    magic, n, crc = HEADER.unpack(header)
    if magic != MAGIC or n != length:
        return None
    data = f.read(length + 1)
    if len(data) != length or zlib.crc32(data) != crc:
        return None
    return data


def _runs(indices: Sequence[int], longest: int) -> Iterator[list[int]]:
    """Consecutive integers grouped into runs of at most ``longest``."""
    run: list[int] = []
    for i in indices:
        if run and (i != run[-1] + 1 or len(run) >= longest):
            yield run
            run = []
        run.append(i)
    if run:
        yield run


def _check_range(start: int, stop: int, size: int, name: str) -> None:
    for label, v in (("start", start), ("stop", stop)):
        if not isinstance(v, int) or isinstance(v, bool):
            raise TypeError(f"{label} must be an int, got {type(v).__name__}")
    if not 0 <= start <= stop <= size:
        raise ValueError(f"need 0 <= start <= stop <= size ({size} bytes of {name}), got [{start}, {stop})")


def _scandir(path: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except FileNotFoundError:
        return []


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
