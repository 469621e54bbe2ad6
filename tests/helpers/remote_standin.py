"""A stand-in remote source over a local directory, for testing :class:`RemoteStore` without a server.

It serves files only by byte range (like an HTTP server with Range support), counts every request,
and refuses listing unless asked (like plain HTTP). The cache is a pass-through and the file object a
minimal seekable reader: the real ones (remote_source, block_cache, remote_file) have their own tests.
"""

from __future__ import annotations

import io
import threading
from collections import Counter
from pathlib import Path

URL = "http://standin.invalid/ds"


class DirSource:
    """Files of ``root`` served as ``URL/<rel>``; ``listable`` makes :meth:`list` answer."""

    def __init__(self, root: Path, *, listable: bool = False) -> None:
        self.root = Path(root)
        self.url = URL
        self.identity = URL
        self.listable = listable
        self.reads: Counter[str] = Counter()  # range requests per file
        self.sizes: Counter[str] = Counter()  # size requests per file
        self._lock = threading.Lock()

    def name(self, rel: str) -> str:
        return f"{self.url}/{rel}"

    def size(self, rel: str) -> int:
        with self._lock:
            self.sizes[rel] += 1
        path = self.root / rel
        if not path.is_file():
            raise FileNotFoundError(f"{self.name(rel)!r}: 404 Not Found")
        return path.stat().st_size

    def read(self, rel: str, start: int, stop: int) -> bytes:
        with self._lock:
            self.reads[rel] += 1
        with open(self.root / rel, "rb") as fh:
            fh.seek(start)
            data = fh.read(stop - start)
        if len(data) != stop - start:
            raise OSError(f"{self.name(rel)!r}: short read")
        return data

    def list(self, rel_dir: str) -> list[str] | None:
        if not self.listable:
            return None
        base = self.root / rel_dir
        return sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


class PassCache:
    """No caching: every read goes to the source."""

    def read(self, source: DirSource, rel: str, start: int, stop: int) -> bytes:
        return source.read(rel, start, stop)

    def ensure(self, source: DirSource, rel: str, ranges) -> int:
        return sum(len(source.read(rel, a, b)) for a, b in ranges)


class SourceFile(io.RawIOBase):
    """A seekable read-only file over ``(source, rel)`` through ``cache``."""

    def __init__(self, source: DirSource, rel: str, cache: PassCache) -> None:
        super().__init__()
        self.source, self.rel, self.cache = source, rel, cache
        self.length = source.size(rel)
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.length}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer) -> int:
        stop = min(self.length, self.pos + len(buffer))
        if stop <= self.pos:
            return 0
        data = self.cache.read(self.source, self.rel, self.pos, stop)
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)
