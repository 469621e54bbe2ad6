"""Small sources for the remote-read tests: files held in memory, and a wrapper that records every range
a source is asked for (what a cache or a reader really downloads)."""

from __future__ import annotations

import threading

from episode_sampler.lerobot.remote_source import FileStat, RemoteSource


class MemorySource(RemoteSource):
    """Files in a dict; ``versions[rel]`` (default ``"v1"``) is the version a cache keys on. Records reads."""

    def __init__(self, files: dict[str, bytes], name: str = "mem") -> None:
        super().__init__(f"memory://{name}", f"memory://{name}/")
        self.files = dict(files)
        self.versions: dict[str, str] = {}
        self.reads: list[tuple[str, int, int]] = []
        self._log_lock = threading.Lock()

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        del state["_log_lock"]
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._log_lock = threading.Lock()

    def replace(self, rel: str, data: bytes, version: str) -> None:
        """Change a file on the "server" (a new process would see the new size and version)."""
        self.files[rel] = data
        self.versions[rel] = version
        self.forget()

    def forget(self) -> None:
        """Drop remembered sizes (as a new process would)."""
        self.__dict__["_stats"] = {}

    def _stat(self, rel: str) -> FileStat:
        if rel not in self.files:
            raise FileNotFoundError(f"{self.name(rel)}: not found")
        return FileStat(len(self.files[rel]), self.versions.get(rel, "v1"))

    def _read(self, rel: str, start: int, stop: int) -> bytes:
        with self._log_lock:
            self.reads.append((rel, start, stop))
        return self.files[rel][start:stop]


class CountingSource(RemoteSource):
    """Another source, with every range read recorded in ``reads``."""

    def __init__(self, inner: RemoteSource) -> None:
        super().__init__(inner.url, inner.identity)
        self.inner = inner
        self.reads: list[tuple[str, int, int]] = []

    def name(self, rel: str) -> str:
        return self.inner.name(rel)

    def _stat(self, rel: str) -> FileStat:
        return self.inner.stat(rel)

    def _read(self, rel: str, start: int, stop: int) -> bytes:
        self.reads.append((rel, start, stop))
        return self.inner.read(rel, start, stop)
