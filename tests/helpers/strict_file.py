"""A read-only file object that serves only planned byte ranges: a read starting outside them raises,
a read running past a range's end returns only the bytes up to it (a legal short read).

It proves that a byte-range plan covers every byte a reader (pyarrow, PyAV) needs."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence


class OutsidePlan(OSError):
    """A read started outside the planned ranges."""


class StrictFile(io.RawIOBase):
    def __init__(self, path: str | os.PathLike[str], ranges: Sequence[tuple[int, int]]) -> None:
        self._f = open(path, "rb")  # noqa: SIM115 (closed in close())
        self._size = os.path.getsize(path)
        self._ranges = sorted((int(a), int(b)) for a, b in ranges)
        self._pos = 0
        self.reads: list[tuple[int, int]] = []

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        elif whence == io.SEEK_END:
            self._pos = self._size + offset
        else:
            raise ValueError(f"bad whence {whence}")
        return self._pos

    def size(self) -> int:
        return self._size

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        n = len(buffer)
        pos = self._pos
        if n == 0 or pos >= self._size:
            return 0
        for a, b in self._ranges:
            if a <= pos < b:
                stop = min(pos + n, b, self._size)
                self._f.seek(pos)
                data = self._f.read(stop - pos)
                buffer[: len(data)] = data
                self._pos = pos + len(data)
                self.reads.append((pos, self._pos))
                return len(data)
        raise OutsidePlan(f"read of {n} bytes at offset {pos} lies outside the planned ranges {self._ranges}")

    def close(self) -> None:
        self._f.close()
        super().close()
