"""Where a dataset's files are: one :class:`Store` through which every file access of the data layer goes.

A local dataset is a :class:`LocalStore`: names resolve to paths once, Parquet is memory-mapped and
video opened by path, exactly as without a store (no per-read overhead). A remote dataset
(``http(s)://``, ``s3://``, ``hf://`` or a ``filesystem=`` object) is a :class:`RemoteStore`: reads go
through a remote source (:mod:`.remote_source`) and the on-disk block cache (:mod:`.block_cache`),
and pyarrow/PyAV read seekable file objects (:mod:`.remote_file`) that fetch byte ranges.

Files are named by their path relative to the dataset root (``"meta/info.json"``,
``"data/chunk-000/file-000.parquet"``); :meth:`Store.name` gives the full path or URL for messages.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_REMOTE_CACHE_BYTES",
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT_S",
    "LocalStore",
    "RemoteStore",
    "Store",
    "as_store",
    "open_store",
]

DEFAULT_REMOTE_CACHE_BYTES = 10 * 2**30  # on-disk block cache of a remote dataset
DEFAULT_TIMEOUT_S = 30.0  # per request
DEFAULT_RETRIES = 3  # per request, on transient errors

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class Store:
    """The files of one dataset root (abstract). See :class:`LocalStore` and :class:`RemoteStore`."""

    #: the root as the user gave it, for messages
    root_name: str
    #: True when files are local paths (memory-mapped reads, no cache)
    local: bool = False

    def name(self, rel: str) -> str:
        """Path or URL of the file ``rel``, for messages."""
        raise NotImplementedError

    def exists(self, rel: str) -> bool:
        """Whether the file ``rel`` exists."""
        raise NotImplementedError

    def size(self, rel: str) -> int:
        """Bytes of the file ``rel``.

        Raises:
            FileNotFoundError: naming the file.
        """
        raise NotImplementedError

    def read_bytes(self, rel: str) -> bytes:
        """The whole file ``rel``.

        Raises:
            FileNotFoundError: naming the file.
        """
        raise NotImplementedError

    def list(self, rel_dir: str, pattern: str) -> list[str] | None:
        """Sorted relative names of the files under ``rel_dir`` matching ``pattern`` (relative to
        ``rel_dir``, e.g. ``"chunk-*/file-*.parquet"``); ``None`` when the store cannot list (plain HTTP)."""
        raise NotImplementedError

    def parquet_source(self, rel: str) -> Any:
        """What pyarrow reads for ``rel``: a path string (local) or a seekable file object."""
        raise NotImplementedError

    def video_source(self, rel: str) -> Any:
        """What PyAV opens for ``rel``: a path string (local) or a seekable file object."""
        raise NotImplementedError

    def prefetch(self, ranges: Sequence[tuple[str, int, int]]) -> int:
        """Make the byte ranges ``(rel, start, stop)`` local ahead of need; returns bytes downloaded."""
        raise NotImplementedError


class LocalStore(Store):
    """A dataset directory on a local (or mounted) file system."""

    local = True

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root_name = str(self.root)

    def path(self, rel: str) -> Path:
        """The file's path."""
        return self.root / rel

    def name(self, rel: str) -> str:
        return str(self.root / rel)

    def exists(self, rel: str) -> bool:
        return (self.root / rel).is_file()

    def size(self, rel: str) -> int:
        return (self.root / rel).stat().st_size

    def is_dir(self, rel: str = "") -> bool:
        """Whether ``rel`` (the root for ``""``) is a directory."""
        return (self.root / rel).is_dir() if rel else self.root.is_dir()

    def read_bytes(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()

    def list(self, rel_dir: str, pattern: str) -> list[str]:
        base = self.root / rel_dir
        return sorted(f"{rel_dir}/{p.relative_to(base).as_posix()}" for p in base.glob(pattern))

    def parquet_source(self, rel: str) -> str:
        return str(self.root / rel)

    def video_source(self, rel: str) -> str:
        return str(self.root / rel)

    def prefetch(self, ranges: Sequence[tuple[str, int, int]]) -> int:
        return 0

    def __repr__(self) -> str:
        return f"LocalStore({self.root_name!r})"


class RemoteStore(Store):
    """A dataset read through a remote ``source`` (a :class:`~.remote_source.RemoteSource`: ``name``,
    ``size``, ``read``, ``list``) and a block ``cache`` (a :class:`~.block_cache.BlockCache`: ``read``,
    ``ensure``). ``file_type(source, rel, cache)`` makes the seekable file objects pyarrow and PyAV
    read (default :class:`~.remote_file.RemoteFile`). Picklable when the source and cache are."""

    local = False

    def __init__(
        self, source: Any, cache: Any, *, file_type: Callable[[Any, str, Any], Any] | None = None
    ) -> None:
        self.source = source
        self.cache = cache
        self.root_name = str(getattr(source, "url", source))
        self._file_type = file_type
        share = getattr(source, "share_stats", None)
        directory = getattr(cache, "directory", None)
        if callable(share) and directory is not None:  # workers reuse the sizes this process learns
            share(Path(directory) / "sizes")

    def _file(self, rel: str) -> Any:
        make = self._file_type
        if make is None:
            from .remote_file import RemoteFile

            make = RemoteFile
        return make(self.source, rel, self.cache)

    def size(self, rel: str) -> int:
        return int(self.source.size(rel))  # the source remembers it (asked once per process)

    def name(self, rel: str) -> str:
        return str(self.source.name(rel))

    def exists(self, rel: str) -> bool:
        try:
            self.size(rel)
        except FileNotFoundError:
            return False
        return True

    def read_bytes(self, rel: str) -> bytes:
        size = self.size(rel)
        return bytes(self.cache.read(self.source, rel, 0, size)) if size else b""

    def list(self, rel_dir: str, pattern: str) -> list[str] | None:
        names = self.source.list(rel_dir)
        if names is None:
            return None
        prefix = rel_dir.rstrip("/") + "/"
        out = set()
        for n in names:
            n = str(n).lstrip("/")
            if n.startswith(prefix):
                n = n[len(prefix) :]
            if fnmatch.fnmatchcase(n, pattern):
                out.add(prefix + n)
        return sorted(out)

    def parquet_source(self, rel: str) -> Any:
        return self._file(rel)

    def video_source(self, rel: str) -> Any:
        return self._file(rel)

    def prefetch(self, ranges: Sequence[tuple[str, int, int]]) -> int:
        per_file: dict[str, list[tuple[int, int]]] = {}
        for rel, start, stop in ranges:
            if stop > start:
                per_file.setdefault(rel, []).append((int(start), int(stop)))
        return sum(int(self.cache.ensure(self.source, rel, spans)) for rel, spans in per_file.items())

    def __repr__(self) -> str:
        return f"RemoteStore({self.root_name!r})"


def open_store(
    root: str | os.PathLike[str] | Store,
    *,
    filesystem: Any = None,
    cache_dir: str | os.PathLike[str] | None = None,
    cache_bytes: int = DEFAULT_REMOTE_CACHE_BYTES,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    retries: int = DEFAULT_RETRIES,
) -> Store:
    """The :class:`Store` of the dataset at ``root``: a local directory (or ``file://`` URL), a URL
    (``http(s)://``, ``s3://``, ``hf://datasets/<org>/<name>``), a path inside ``filesystem`` (an
    fsspec or pyarrow file system), or a store already opened (returned as is).

    ``cache_dir``, ``cache_bytes``, ``timeout_s`` and ``retries`` apply to remote roots: the on-disk
    block cache (directory, bound in bytes) and each request's timeout and retries.

    Raises:
        TypeError, ValueError: a bad argument (named in the message).
        ImportError: a root whose scheme needs a package that is not installed (``hf://`` needs
            huggingface_hub; other schemes fsspec and their backend).
    """
    if isinstance(root, Store):
        return root
    if isinstance(root, bool) or not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path, a URL or a Store, got {type(root).__name__} {root!r}")
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise TypeError(f"cache_dir must be a path or None, got {type(cache_dir).__name__} {cache_dir!r}")
    if isinstance(cache_bytes, bool) or not isinstance(cache_bytes, int):
        raise TypeError(f"cache_bytes must be an int, got {type(cache_bytes).__name__} {cache_bytes!r}")
    if cache_bytes < 1:
        raise ValueError(f"cache_bytes must be >= 1, got {cache_bytes}")
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)):
        raise TypeError(
            f"timeout_s must be a number of seconds, got {type(timeout_s).__name__} {timeout_s!r}"
        )
    if not timeout_s > 0 or timeout_s == float("inf"):
        raise ValueError(f"timeout_s must be a positive, finite number of seconds, got {timeout_s!r}")
    if isinstance(retries, bool) or not isinstance(retries, int):
        raise TypeError(f"retries must be an int, got {type(retries).__name__} {retries!r}")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    text = os.fspath(root)
    if filesystem is None and not (isinstance(text, str) and _SCHEME.match(text)):
        return LocalStore(text)  # a plain path: the remote modules are not even imported
    from .block_cache import BlockCache
    from .remote_source import local_path, open_source

    source = open_source(root, filesystem=filesystem, timeout_s=float(timeout_s), retries=retries)
    if source is None:  # file://
        return LocalStore(local_path(root))
    return RemoteStore(source, BlockCache(cache_dir, cache_bytes))


def as_store(root: str | os.PathLike[str] | Store) -> Store:
    """``root`` as a :class:`Store` (default options for a URL)."""
    return root if isinstance(root, Store) else open_store(root)
