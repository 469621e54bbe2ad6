"""A remote file as a seekable, read-only binary file object, read block by block through a cache.

``pq.ParquetFile(RemoteFile(...))`` reads the footer and then only the column chunks it needs;
``av.open(RemoteFile(...))`` demuxes and decodes an MP4 reading only the parts it seeks to. Both read in
small pieces, so the file keeps the last few blocks it used in memory (:data:`MEMO_BLOCKS`); everything
else comes from the :class:`~.block_cache.BlockCache` (and from the source when the cache misses).
"""

from __future__ import annotations

import io
import os
from collections import OrderedDict
from typing import Any

from .block_cache import BlockCache
from .remote_source import RemoteSource

#: blocks a file keeps in memory (PyAV and pyarrow read a block in many small pieces)
MEMO_BLOCKS = 2


class RemoteFile(io.RawIOBase):
    """``rel`` of ``source`` as a read-only binary file (``name`` is its URL); picklable when closed or open
    (a copy starts at the same position with an empty memo)."""

    def __init__(self, source: RemoteSource, rel: str, cache: BlockCache) -> None:
        super().__init__()
        if not isinstance(source, RemoteSource):
            raise TypeError(f"source must be a RemoteSource, got {type(source).__name__}")
        if not isinstance(cache, BlockCache):
            raise TypeError(f"cache must be a BlockCache, got {type(cache).__name__}")
        self.source = source
        self.rel = rel
        self.cache = cache
        self.size = source.size(rel)
        self._pos = 0
        self._memo: OrderedDict[int, bytes] = OrderedDict()

    @property
    def name(self) -> str:
        return self.source.name(self.rel)

    def __repr__(self) -> str:
        return f"RemoteFile({self.name!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rel": self.rel,
            "cache": self.cache,
            "size": self.size,
            "pos": self._pos,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["source"], state["rel"], state["cache"])  # type: ignore[misc]
        self._pos = state["pos"]

    # io.RawIOBase --------------------------------------------------------------------------------------
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        self._check_open()
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._check_open()
        if whence == os.SEEK_SET:
            if offset < 0:
                raise ValueError(f"negative seek position {offset} in {self.name}")
            pos = offset
        elif whence == os.SEEK_CUR:
            pos = max(0, self._pos + offset)  # as io.BytesIO: a relative seek stops at 0
        elif whence == os.SEEK_END:
            pos = max(0, self.size + offset)
        else:
            raise ValueError(f"whence must be 0, 1 or 2, got {whence}")
        self._pos = pos
        return pos

    def readinto(self, buffer: Any) -> int:
        self._check_open()
        view = memoryview(buffer).cast("B")
        n = max(0, min(len(view), self.size - self._pos))
        bs = self.cache.block_size
        if n > 2 * bs:  # a large read: one call, so missing neighbouring blocks come in one request
            view[:n] = self.cache.read(self.source, self.rel, self._pos, self._pos + n)
            self._pos += n
            return n
        done = 0
        while done < n:
            pos = self._pos + done
            block = self._block(pos // bs)
            offset = pos % bs
            take = min(n - done, len(block) - offset)
            view[done : done + take] = block[offset : offset + take]
            done += take
        self._pos += n
        return n

    def readall(self) -> bytes:
        self._check_open()
        start, self._pos = self._pos, max(self._pos, self.size)
        return self.cache.read(self.source, self.rel, min(start, self.size), self.size)

    def _block(self, index: int) -> bytes:
        found = self._memo.get(index)
        if found is not None:
            self._memo.move_to_end(index)
            return found
        data = self.cache.block(self.source, self.rel, index)
        self._memo[index] = data
        while len(self._memo) > MEMO_BLOCKS:
            self._memo.popitem(last=False)
        return data

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(f"I/O operation on closed file {self.name}")

    def close(self) -> None:
        self._memo.clear()
        super().close()
