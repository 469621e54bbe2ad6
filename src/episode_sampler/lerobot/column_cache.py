"""A per-process, size-bounded LRU cache of decoded Parquet columns, one entry per data file."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.validation import check_int

__all__ = ["DEFAULT_COLUMN_CACHE_BYTES", "ColumnCache", "check_cache_bytes"]

#: Default bound of the column cache, per process (each DataLoader worker holds its own).
DEFAULT_COLUMN_CACHE_BYTES = 512 * 2**20


def check_cache_bytes(value: Any) -> int | None:
    """``None`` (unbounded) or an int >= 0; TypeError/ValueError naming ``column_cache_bytes``."""
    if value is None:
        return None
    return check_int("column_cache_bytes", value, minimum=0)


def columns_nbytes(cols: dict[str, np.ndarray]) -> int:
    """Memory held by one file's decoded columns (string columns: pointers plus characters)."""
    total = 0
    for arr in cols.values():
        total += arr.nbytes
        if arr.dtype == object:
            total += sum(len(s) + 49 for s in arr.tolist())  # CPython str header + ASCII payload
    return total


class ColumnCache:
    """LRU by file, bounded by ``max_bytes`` (``None``: unbounded).

    The most recently loaded file is always kept, even when it alone exceeds the bound (a request
    needs it); older files are evicted least recently used first. Safe to share between threads; a
    file may be decoded twice when two threads miss it at once (the second result is dropped).
    Not pickled: a copy starts empty.
    """

    def __init__(self, max_bytes: int | None = DEFAULT_COLUMN_CACHE_BYTES) -> None:
        self.max_bytes = check_cache_bytes(max_bytes)
        self._init()

    def _init(self) -> None:
        self._entries: OrderedDict[int, tuple[dict[str, np.ndarray], int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = self.evictions = 0

    def __getstate__(self) -> dict[str, Any]:
        return {"max_bytes": self.max_bytes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.max_bytes = state["max_bytes"]
        self._init()

    def get(self, key: int, load: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """The entry for ``key``, loaded with ``load()`` on a miss (outside the lock)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry[0]
            self.misses += 1
        cols = load()
        size = columns_nbytes(cols)
        with self._lock:
            if key in self._entries:  # another thread loaded it meanwhile
                self._entries.move_to_end(key)
                return self._entries[key][0]
            self._entries[key] = (cols, size)
            self._bytes += size
            if self.max_bytes is not None:
                while self._bytes > self.max_bytes and len(self._entries) > 1:
                    _, (_, dropped) = self._entries.popitem(last=False)
                    self._bytes -= dropped
                    self.evictions += 1
        return cols

    def holds(self, key: int) -> bool:
        """Whether ``key`` is cached (no effect on the LRU order or the counters)."""
        with self._lock:
            return key in self._entries

    def info(self) -> dict[str, Any]:
        """``files`` (cached keys, least recently used first), ``bytes``, ``max_bytes``, ``hits``,
        ``misses``, ``evictions`` (counted since this process's copy was made)."""
        with self._lock:
            return {
                "files": list(self._entries),
                "bytes": self._bytes,
                "max_bytes": self.max_bytes,
                "hits": self.hits,
                "misses": self.misses,
                "evictions": self.evictions,
            }

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
