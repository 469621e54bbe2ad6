"""A fake remote dataset for look-ahead tests: items live in "blocks" of "files" behind a slow source
that counts requests, with an in-memory cache shared by the foreground reads and the prefetches.

Item ``i`` is block ``i // per_block`` of file ``f"file-{i // per_file}"``. ``byte_ranges`` plans an
item's block; ``store.prefetch`` fetches missing blocks (slowly) into the cache; a foreground read
(``__getitems__``) of a block that is not cached fetches it itself and counts a *miss*.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

BLOCK = 100  # bytes per block


class SlowStore:
    def __init__(self, delay_s: float, fail: bool = False, stall: threading.Event | None = None) -> None:
        self.delay_s = delay_s
        self.fail = fail
        self.stall = stall  # when set: prefetches block until the event is set
        self.cache: set[tuple[str, int]] = set()
        self.lock = threading.Lock()
        self.prefetch_requests = 0
        self.foreground_requests = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def _download(self, key: tuple[str, int], foreground: bool) -> int:
        with self.lock:
            if key in self.cache:
                return 0
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if foreground:
                self.foreground_requests += 1
            else:
                self.prefetch_requests += 1
        try:
            if not foreground and self.stall is not None:
                self.stall.wait()
            if not foreground and self.fail:
                raise ConnectionError(f"fake server refused {key}")
            time.sleep(self.delay_s)
            with self.lock:
                self.cache.add(key)
            return BLOCK
        finally:
            with self.lock:
                self.in_flight -= 1

    def prefetch(self, ranges: Sequence[tuple[str, int, int]]) -> int:
        return sum(self._download((rel, a // BLOCK), False) for rel, a, _ in ranges)


class FakeRemote(Dataset):
    def __init__(self, n: int, store: SlowStore, per_block: int = 4, per_file: int = 64) -> None:
        self.n = n
        self.store = store
        self.per_block = per_block
        self.per_file = per_file
        self.planned: list[int] = []  # every index planned, in order
        self.plan_lock = threading.Lock()

    def __len__(self) -> int:
        return self.n

    def _key(self, i: int) -> tuple[str, int]:
        return f"file-{i // self.per_file}", i // self.per_block

    def byte_ranges(self, indices) -> list[tuple[str, int, int]]:  # type: ignore[no-untyped-def]
        idx = np.asarray(indices, dtype=np.int64).tolist()
        with self.plan_lock:
            self.planned.extend(idx)
        keys = sorted({self._key(i) for i in idx})
        return [(rel, b * BLOCK, (b + 1) * BLOCK) for rel, b in keys]

    def __getitems__(self, indices: Sequence[int]) -> list[torch.Tensor]:
        for key in sorted({self._key(int(i)) for i in indices}):
            self.store._download(key, True)
        return [torch.tensor(int(i)) for i in indices]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.__getitems__([i])[0]
