"""Where a remote dataset's bytes come from: one root (HTTP(S), S3, the Hugging Face Hub, any filesystem).

:func:`open_source` turns a root into a :class:`RemoteSource` (``None`` for a local path, which keeps its
memory-mapped code path). A source answers three questions about a file named relative to the root: its
size (and a version string: ETag, Last-Modified or mtime, so a cache never serves a changed file), a byte
range of it, and, when the server can list, which files a directory holds.

Sources are picklable (they are sent to DataLoader workers); connections and filesystem clients are made
lazily in each process (HTTP: one keep-alive connection per thread and host). Errors name the URL:
HTTP 404 -> :class:`FileNotFoundError`, 401/403 -> :class:`PermissionError`, a timeout ->
:class:`TimeoutError`, a short body -> :class:`~.remote_errors.TruncatedError`. Transient failures (reset,
timeout, 5xx, 429) are retried ``retries`` times with exponential backoff (:mod:`.remote_errors`).
"""

from __future__ import annotations

import abc
import base64
import contextlib
import hashlib
import http.client
import importlib
import os
import re
import ssl
import threading
import time
import urllib.parse
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .remote_errors import (
    RangeNotSupportedError,
    RemoteReadError,
    TransientError,
    TruncatedError,
    with_retries,
)

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_RETRIES = 3
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")
_MAX_REDIRECTS = 5
_OPEN_FILES = 16
_CHUNK = 1 << 20
#: the slowest body a read waits for beyond ``timeout_s`` (bytes per second)
MIN_BYTES_PER_S = 64 * 1024


@dataclass(frozen=True)
class FileStat:
    """A remote file's size and version (ETag, Last-Modified or mtime; ``""`` when the server gives none)."""

    size: int
    version: str


class RemoteSource(abc.ABC):
    """One dataset root somewhere else. ``url`` is the root as given, ``identity`` a stable string for cache
    keys (scheme, host and path, no credentials)."""

    url: str
    identity: str
    #: whether reads notice a file that changed since its stat (then copies may share stats)
    checks_reads = False

    def __init__(self, url: str, identity: str) -> None:
        self.url = url
        self.identity = identity
        self._stats: dict[str, FileStat] = {}
        # stats shared with this source's pickled/forked copies (DataLoader workers) through small files:
        # a record is trusted only when it carries this run's token, so another run never reuses it
        self._shared_dir: Path | None = None
        self._run = os.urandom(12).hex()

    def share_stats(self, directory: str | os.PathLike[str]) -> None:
        """Record each file's (size, version) under ``directory`` when first asked, and reuse the records
        of the copies of this source (workers it was pickled or forked into) instead of asking the server
        again. A record made by another run (another :func:`open_source`) is never used: a run reads the
        version its first process saw, and a read that finds another version on the server raises."""
        if not self.checks_reads:  # a copy must ask itself, or a change could go unnoticed
            return
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self._shared_dir = path

    def name(self, rel: str) -> str:
        """The full URL of a file, for messages."""
        return self.url.rstrip("/") + "/" + check_rel(rel)

    def stat(self, rel: str) -> FileStat:
        """Size and version of a file (asked once per process, then remembered)."""
        found = self._stats.get(rel)
        if found is None:
            found = self._recorded(check_rel(rel))
            if found is None:
                found = self._stat(rel)
                self._record(rel, found)
            self._stats[rel] = found
        return found

    def _record_path(self, rel: str) -> Path | None:
        if self._shared_dir is None:
            return None
        key = hashlib.sha256(f"{self.identity}\0{rel}".encode()).hexdigest()[:40]
        return self._shared_dir / key

    def _recorded(self, rel: str) -> FileStat | None:
        """This run's record of the file, if a copy of this source made one."""
        path = self._record_path(rel)
        if path is None:
            return None
        try:
            run, identity, name, size, version = path.read_text(encoding="utf-8").split("\n")
        except (OSError, ValueError, UnicodeDecodeError):
            return None  # none yet, or another format
        if run != self._run or identity != self.identity or name != rel or not size.isdigit():
            return None
        return FileStat(int(size), version)

    def _record(self, rel: str, st: FileStat) -> None:
        """Write the record atomically (a reader sees the old one or the new one, never half)."""
        path = self._record_path(rel)
        if path is None or "\n" in st.version or "\n" in rel:
            return
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            tmp.write_text("\n".join([self._run, self.identity, rel, str(st.size), st.version]), "utf-8")
            os.replace(tmp, path)
        except OSError:  # a read-only or full disk only costs the workers a request each
            with contextlib.suppress(OSError):
                tmp.unlink()

    def size(self, rel: str) -> int:
        """The file's size in bytes (:class:`FileNotFoundError` naming the URL when it is missing)."""
        return self.stat(rel).size

    def read(self, rel: str, start: int, stop: int) -> bytes:
        """Exactly the bytes ``[start, stop)`` of a file (one range request)."""
        check_span(start, stop)
        if start == stop:
            return b""
        data = self._read(check_rel(rel), start, stop)
        if len(data) != stop - start:
            raise TruncatedError(
                f"{self.name(rel)}: asked for bytes [{start}, {stop}), got {len(data)} bytes "
                "(truncated file?)"
            )
        return data

    def list(self, rel_dir: str) -> list[str] | None:
        """Every file under ``rel_dir`` (recursively), as sorted paths relative to the root, ``[]`` for a
        missing directory; ``None`` when the server cannot list (plain HTTP)."""
        return None

    @abc.abstractmethod
    def _stat(self, rel: str) -> FileStat: ...

    @abc.abstractmethod
    def _read(self, rel: str, start: int, stop: int) -> bytes: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


def check_rel(rel: str) -> str:
    """A path relative to the root, with ``/`` separators, no ``..`` and no leading ``/``."""
    if not isinstance(rel, str):
        raise TypeError(f"rel must be a str (a path relative to the dataset root), got {type(rel).__name__}")
    if rel.startswith("/") or ".." in rel.split("/") or "\\" in rel:
        raise ValueError(f"rel must be a relative path inside the dataset root, got {rel!r}")
    return rel


def check_span(start: int, stop: int) -> None:
    for name, v in (("start", start), ("stop", stop)):
        if not isinstance(v, int) or isinstance(v, bool):
            raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    if not 0 <= start <= stop:
        raise ValueError(f"need 0 <= start <= stop, got start={start}, stop={stop}")


# --------------------------------------------------------------------------------------------- HTTP(S)


class HttpSource(RemoteSource):
    """A root served over HTTP(S) with byte ranges (nginx, S3 website endpoints, a CDN, ...), read with the
    standard library: one keep-alive connection per thread and host, redirects followed. Each range
    answer's ETag / Last-Modified and total size are checked against the file's stat."""

    checks_reads = True

    def __init__(self, url: str, *, timeout_s: float, retries: int) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"root must be an http(s):// URL with a host, got {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = parts.path.rstrip("/") + "/"
        self._auth: str | None = None
        if parts.username is not None:
            token = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            self._auth = "Basic " + base64.b64encode(token.encode()).decode()
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        netloc = host if parts.port is None else f"{host}:{parts.port}"
        shown = f"{parts.scheme}://{netloc}{path}"  # as given, without credentials
        super().__init__(shown.rstrip("/"), f"{parts.scheme}://{host}:{port}{path}")
        self._base = shown
        self.timeout_s = timeout_s
        self.retries = retries
        self._local: threading.local | None = None
        self._pid = -1

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_local"], state["_pid"] = None, -1
        return state

    def name(self, rel: str) -> str:
        return self._base + urllib.parse.quote(check_rel(rel))

    # connections ---------------------------------------------------------------------------------------
    def _connections(self) -> dict[tuple[str, str, int], http.client.HTTPConnection]:
        if self._local is None or self._pid != os.getpid():
            self._local, self._pid = threading.local(), os.getpid()
        conns: dict[tuple[str, str, int], http.client.HTTPConnection] | None = getattr(self._local, "c", None)
        if conns is None:
            conns = self._local.c = {}
        return conns

    def _connection(self, url: str) -> tuple[http.client.HTTPConnection, bool]:
        """The thread's connection to the URL's host, and whether it is new."""
        p = urllib.parse.urlsplit(url)
        port = p.port or (443 if p.scheme == "https" else 80)
        key = (p.scheme, p.hostname or "", port)
        conns = self._connections()
        conn = conns.get(key)
        if conn is not None:
            return conn, False
        cls = http.client.HTTPSConnection if p.scheme == "https" else http.client.HTTPConnection
        conn = cls(key[1], port, timeout=self.timeout_s)
        conns[key] = conn
        return conn, True

    def _drop(self, url: str) -> None:
        p = urllib.parse.urlsplit(url)
        port = p.port or (443 if p.scheme == "https" else 80)
        conn = self._connections().pop((p.scheme, p.hostname or "", port), None)
        if conn is not None:
            conn.close()

    def _exchange(self, method: str, url: str, headers: dict[str, str]) -> http.client.HTTPResponse:
        """One request on the thread's connection; a connection the server closed while idle is re-made
        once without counting as a failure."""
        for _ in range(2):
            conn, fresh = self._connection(url)
            p = urllib.parse.urlsplit(url)
            target = (p.path or "/") + (f"?{p.query}" if p.query else "")
            try:
                conn.request(method, target, headers=headers)
                return conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                self._drop(url)
                if fresh:
                    raise TransientError(ConnectionError(f"{url}: {type(e).__name__}: {e}")) from e
            except TimeoutError as e:
                self._drop(url)
                raise TransientError(TimeoutError(f"{url}: no answer within {self.timeout_s} s")) from e
            except ssl.SSLCertVerificationError as e:  # not worth retrying
                self._drop(url)
                raise ConnectionError(f"{url}: {e} (set SSL_CERT_FILE to trust a private CA)") from e
            except (OSError, http.client.HTTPException) as e:
                self._drop(url)
                raise TransientError(ConnectionError(f"{url}: {type(e).__name__}: {e}")) from e
        raise AssertionError("unreachable")

    def _request(
        self, method: str, url: str, headers: dict[str, str]
    ) -> tuple[str, http.client.HTTPResponse]:
        """The response after redirects, with errors mapped (4xx/5xx raise); returns the final URL too."""
        origin = urllib.parse.urlsplit(url).netloc
        for _ in range(_MAX_REDIRECTS + 1):
            h = dict(headers)
            if self._auth is not None and urllib.parse.urlsplit(url).netloc == origin:
                h["Authorization"] = self._auth
            resp = self._exchange(method, url, h)
            location = resp.getheader("Location")
            if resp.status in (301, 302, 303, 307, 308) and location:
                self._finish(url, resp)
                url = urllib.parse.urljoin(url, location)
                continue
            if resp.status >= 400:
                self._finish(url, resp)
                raise http_error(url, resp.status, resp.reason, resp.getheader("Retry-After"))
            return url, resp
        raise RemoteReadError(f"{url}: more than {_MAX_REDIRECTS} redirects")

    def _finish(self, url: str, resp: http.client.HTTPResponse) -> None:
        """Discard a response's body: read a small one to keep the connection, drop it otherwise."""
        # http.client sets length to 0 for a HEAD response, whatever Content-Length says
        if resp.length is not None and resp.length <= 65536 and not resp.will_close:
            try:
                resp.read()
                return
            except (OSError, http.client.HTTPException):
                pass
        self._drop(url)

    # the source ----------------------------------------------------------------------------------------
    def _stat(self, rel: str) -> FileStat:
        return with_retries(lambda: self._stat_once(rel), self.retries)

    def _stat_once(self, rel: str) -> FileStat:
        url = self.name(rel)
        try:
            final, resp = self._request("HEAD", url, {})
        except HttpStatusError as e:
            if e.status not in (405, 501):  # no HEAD: ask for one byte instead
                raise
        else:
            length = resp.getheader("Content-Length")
            self._finish(final, resp)
            if length is not None and length.isdigit():
                return FileStat(int(length), version_of(resp))
        return self._stat_by_range(url)

    def _stat_by_range(self, url: str) -> FileStat:
        """Size from a one-byte range request's ``Content-Range`` (servers without HEAD)."""
        try:
            final, resp = self._request("GET", url, {"Range": "bytes=0-0"})
        except TruncatedError as e:
            if "HTTP 416" in str(e):  # an empty file has no byte 0
                return FileStat(0, "")
            raise
        total = content_range(resp.getheader("Content-Range"))
        version = version_of(resp)
        self._finish(final, resp)
        if resp.status != 206 or total is None:
            raise RangeNotSupportedError(
                f"{url}: the server does not answer byte-range requests (HTTP {resp.status})"
            )
        return FileStat(total[2], version)

    def _read(self, rel: str, start: int, stop: int) -> bytes:
        return with_retries(lambda: self._read_once(rel, start, stop), self.retries)

    def _read_once(self, rel: str, start: int, stop: int) -> bytes:
        url = self.name(rel)
        final, resp = self._request("GET", url, {"Range": f"bytes={start}-{stop - 1}"})
        if resp.status != 206:
            self._drop(final)
            raise RangeNotSupportedError(
                f"{url}: the server ignores byte-range requests (answered HTTP {resp.status} to Range: "
                f"bytes={start}-{stop - 1}); serve the dataset with a server that supports Range "
                "(nginx, S3, ...)"
            )
        try:
            self._check_range_answer(url, rel, resp, start, stop)
        except RemoteReadError:
            self._drop(final)  # the unread body would corrupt the next response on this connection
            raise
        try:
            return self._body(url, resp, stop - start)
        except TransientError:
            self._drop(final)
            raise
        except (OSError, http.client.HTTPException) as e:
            self._drop(final)
            raise TransientError(ConnectionError(f"{url}: {type(e).__name__}: {e}")) from e

    def _body(self, url: str, resp: http.client.HTTPResponse, n: int) -> bytes:
        """Exactly ``n`` body bytes. Each wait is bounded by the socket timeout, and the whole body by
        ``timeout_s`` plus :data:`MIN_BYTES_PER_S`: a server that trickles cannot hold a read forever."""
        deadline = time.monotonic() + self.timeout_s + n / MIN_BYTES_PER_S
        parts, got = [], 0
        while got < n:
            try:
                chunk = resp.read1(min(_CHUNK, n - got))
            except TimeoutError as e:
                raise TransientError(TimeoutError(f"{url}: the body stalled for {self.timeout_s} s")) from e
            if not chunk:
                raise TransientError(TruncatedError(f"{url}: the server sent {got} of {n} bytes (truncated)"))
            parts.append(chunk)
            got += len(chunk)
            if got < n and time.monotonic() > deadline:
                raise TransientError(
                    TimeoutError(
                        f"{url}: {got} of {n} bytes after {self.timeout_s} s + {MIN_BYTES_PER_S} B/s"
                    )
                )
        if not resp.isclosed() and resp.read(1):
            raise TruncatedError(f"{url}: the server sent more than the {n} bytes asked")
        return b"".join(parts)

    def _check_range_answer(
        self, url: str, rel: str, resp: http.client.HTTPResponse, start: int, stop: int
    ) -> None:
        got = content_range(resp.getheader("Content-Range"))
        known = self._stats.get(rel)
        version = version_of(resp)
        if known is not None and known.version and version and version != known.version:
            raise RemoteReadError(
                f"{url}: the file changed on the server while it was being read (version {known.version} -> "
                f"{version}); restart to read the new version"
            )
        if known is not None and got is not None and got[2] != known.size:
            raise RemoteReadError(
                f"{url}: the file changed on the server while it was being read (size {known.size} -> "
                f"{got[2]} bytes); restart to read the new version"
            )
        if got is not None and (got[0] != start or got[1] != stop - 1):
            raise TruncatedError(
                f"{url}: asked for bytes [{start}, {stop}), the server sent [{got[0]}, {got[1] + 1}) of "
                f"{got[2]} (truncated file?)"
            )


def content_range(value: str | None) -> tuple[int, int, int] | None:
    """``bytes a-b/total`` -> (a, b, total); ``bytes */total`` -> (0, -1, total); None otherwise."""
    if value is None:
        return None
    m = re.fullmatch(r"\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+)\s*", value)
    if m is None:
        return None
    if m.group(1) is None:
        return 0, -1, int(m.group(3))
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def version_of(resp: http.client.HTTPResponse) -> str:
    etag = resp.getheader("ETag")
    if etag:
        return "etag:" + etag
    modified = resp.getheader("Last-Modified")
    return "modified:" + modified if modified else ""


def http_error(url: str, status: int, reason: str, retry_after: str | None) -> Exception:
    """The exception for an HTTP error status (a :class:`TransientError` for the ones worth retrying)."""
    message = f"{url}: HTTP {status} {reason}".rstrip()
    if status in (404, 410):
        return FileNotFoundError(message)
    if status in (401, 403):
        return PermissionError(message)
    if status == 416:
        return TruncatedError(message + " (the file is shorter than the range asked: truncated or changed?)")
    if status == 429 or status >= 500:
        wait = float(retry_after) if retry_after and retry_after.strip().isdigit() else None
        return TransientError(RemoteReadError(message), retry_after_s=wait)
    return HttpStatusError(message, status)


class HttpStatusError(RemoteReadError):
    """An HTTP error status without a more specific exception (``status`` holds it)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


# ------------------------------------------------------------------------------------ fsspec filesystems


class FsspecSource(RemoteSource):
    """A root inside any fsspec filesystem (``hf://`` through huggingface_hub's HfFileSystem, memory, gcs,
    ...); transient failures (timeouts, reset connections) are retried."""

    def __init__(self, fs: Any, path: str, url: str, identity: str, *, retries: int) -> None:
        super().__init__(url, identity)
        self.fs = fs
        self.path = path.rstrip("/")
        self.retries = retries

    def _full(self, rel: str) -> str:
        return f"{self.path}/{rel}" if rel else self.path

    def _call(self, rel: str, what: Any) -> Any:
        def once() -> Any:
            try:
                return what()
            except FileNotFoundError as e:
                raise FileNotFoundError(f"{self.name(rel)}: not found ({e})") from e
            except PermissionError as e:
                raise PermissionError(f"{self.name(rel)}: permission denied ({e})") from e
            except (TimeoutError, ConnectionError) as e:
                raise TransientError(type(e)(f"{self.name(rel)}: {type(e).__name__}: {e}")) from e

        return with_retries(once, self.retries)

    def _stat(self, rel: str) -> FileStat:
        info = self._call(rel, lambda: self.fs.info(self._full(rel)))
        if info.get("type") == "directory":
            raise IsADirectoryError(f"{self.name(rel)} is a directory")
        version = ""
        for key in ("ETag", "etag", "blob_id", "LastModified", "last_modified", "mtime", "created"):
            if info.get(key) is not None:
                version = f"{key}:{info[key]}"
                break
        return FileStat(int(info["size"]), version)

    def _read(self, rel: str, start: int, stop: int) -> bytes:
        return bytes(self._call(rel, lambda: self.fs.cat_file(self._full(rel), start=start, end=stop)))

    def list(self, rel_dir: str) -> list[str] | None:
        base = self._full(check_rel(rel_dir).rstrip("/"))
        try:
            found = self._call(rel_dir, lambda: self.fs.find(base))
        except FileNotFoundError:
            return []
        prefix = self.path.strip("/") + "/" if self.path.strip("/") else ""
        out = []
        for p in found:
            p = str(p).lstrip("/")
            if p.startswith(prefix):
                out.append(p[len(prefix) :])
        return sorted(out)


# ------------------------------------------------------------------------------- pyarrow filesystems, S3


class ArrowSource(RemoteSource):
    """A root inside a pyarrow filesystem (S3 for ``s3://``, or one passed as ``filesystem=``). ``make``
    builds the filesystem; it is called once per process (the AWS SDK is not fork-safe). A thread opening
    a file checks its size and mtime against the file's stat."""

    checks_reads = True

    def __init__(self, fs: Any, path: str, url: str, identity: str, *, hint: str = "") -> None:
        super().__init__(url, identity)
        self._fs = fs
        self.path = path.rstrip("/")
        self._hint = hint
        self._infos: dict[str, Any] = {}
        self._local: threading.local | None = None
        self._local_pid = -1

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_infos"], state["_local"], state["_local_pid"] = {}, None, -1
        return state

    def filesystem(self) -> Any:
        return self._fs

    def _full(self, rel: str) -> str:
        return f"{self.path}/{rel}" if rel else self.path

    def _error(self, rel: str, e: OSError) -> OSError:
        text = str(e)
        low = text.lower()
        if isinstance(e, FileNotFoundError) or "nosuchkey" in low or "not found" in low or "404" in text:
            return FileNotFoundError(f"{self.name(rel)}: not found ({text})")
        if isinstance(e, PermissionError) or "accessdenied" in low or "access denied" in low or "403" in text:
            return PermissionError(f"{self.name(rel)}: permission denied ({text}){self._hint}")
        if "timeout" in low or "timed out" in low:
            return TimeoutError(f"{self.name(rel)}: timed out ({text})")
        return RemoteReadError(f"{self.name(rel)}: {text}")

    def _info(self, rel: str) -> Any:
        import pyarrow.fs as pafs

        found = self._infos.get(rel)
        if found is not None:
            return found
        try:
            info = self.filesystem().get_file_info(self._full(rel))
        except OSError as e:
            raise self._error(rel, e) from e
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"{self.name(rel)}: not found")
        if info.type == pafs.FileType.Directory:
            raise IsADirectoryError(f"{self.name(rel)} is a directory")
        self._infos[rel] = info
        return info

    def _stat(self, rel: str) -> FileStat:
        info = self._info(rel)
        mtime = info.mtime_ns
        return FileStat(int(info.size), f"mtime:{mtime}" if mtime is not None else "")

    def _handle(self, rel: str) -> Any:
        """The thread's open file of ``rel`` (opening costs a request on S3; at most
        :data:`_OPEN_FILES` stay open per thread)."""
        if self._local is None or self._local_pid != os.getpid():
            self._local, self._local_pid = threading.local(), os.getpid()
        handles: OrderedDict[str, Any] | None = getattr(self._local, "h", None)
        if handles is None:
            handles = self._local.h = OrderedDict()
        f = handles.get(rel)
        if f is None:
            info = self._info(rel)  # a missing file's error names the URL
            known = self._stats.get(rel)
            now = FileStat(int(info.size), f"mtime:{info.mtime_ns}" if info.mtime_ns is not None else "")
            if known is not None and (known.size != now.size or known.version != now.version):
                raise RemoteReadError(
                    f"{self.name(rel)}: the file changed on the server while it was being read (size "
                    f"{known.size} -> {now.size}, version {known.version} -> {now.version}); restart to "
                    "read the new version"
                )
            f = handles[rel] = self.filesystem().open_input_file(self._full(rel))
            while len(handles) > _OPEN_FILES:
                handles.popitem(last=False)[1].close()
        handles.move_to_end(rel)
        return f

    def _read(self, rel: str, start: int, stop: int) -> bytes:
        try:
            return bytes(self._handle(rel).read_at(stop - start, start))
        except RemoteReadError:
            raise  # ours, naming the URL (not to be re-classified by its text)
        except OSError as e:
            raise self._error(rel, e) from e

    def list(self, rel_dir: str) -> list[str] | None:
        import pyarrow.fs as pafs

        base = self._full(check_rel(rel_dir).rstrip("/"))
        selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
        try:
            infos = self.filesystem().get_file_info(selector)
        except OSError as e:
            raise self._error(rel_dir, e) from e
        prefix = self.path.strip("/") + "/" if self.path.strip("/") else ""
        out = [i.path.lstrip("/")[len(prefix) :] for i in infos if i.type == pafs.FileType.File]
        return sorted(out)


class S3Source(ArrowSource):
    """``s3://bucket/prefix`` through pyarrow's S3FileSystem, built lazily in each process. Endpoint from
    ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, region from ``AWS_REGION`` / ``AWS_DEFAULT_REGION``;
    anonymous when the environment and ``~/.aws`` hold no credentials (pass
    ``filesystem=pyarrow.fs.S3FileSystem(...)`` for anything else, e.g. an instance role)."""

    def __init__(self, url: str, *, timeout_s: float, retries: int) -> None:
        parts = urllib.parse.urlsplit(url)
        if not parts.netloc:
            raise ValueError(f"root must be s3://bucket[/prefix], got {url!r}")
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
        self._kwargs = s3_options(endpoint, timeout_s, retries)
        path = parts.netloc + parts.path.rstrip("/")
        where = f"@{endpoint}" if endpoint else ""
        hint = ""
        if self._kwargs.get("anonymous"):
            hint = " (read anonymously: no AWS credentials in the environment or ~/.aws)"
        super().__init__(None, path, url.rstrip("/"), f"s3://{path}{where}/", hint=hint)
        self._pid = -1

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_fs"], state["_pid"] = None, -1
        return state

    def filesystem(self) -> Any:
        if self._fs is None or self._pid != os.getpid():
            import pyarrow.fs as pafs

            self._fs, self._pid = pafs.S3FileSystem(**self._kwargs), os.getpid()
        return self._fs


def s3_options(endpoint: str, timeout_s: float, retries: int) -> dict[str, Any]:
    """Keyword arguments of ``pyarrow.fs.S3FileSystem`` from the environment."""
    import pyarrow.fs as pafs

    kw: dict[str, Any] = {
        "connect_timeout": timeout_s,
        "request_timeout": timeout_s,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=retries + 1),
    }
    if endpoint:
        p = urllib.parse.urlsplit(endpoint if "://" in endpoint else "https://" + endpoint)
        kw["endpoint_override"] = p.netloc
        kw["scheme"] = p.scheme
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        kw["region"] = region
    elif endpoint:
        kw["region"] = "us-east-1"
    if not has_aws_credentials():
        kw["anonymous"] = True
    return kw


def has_aws_credentials() -> bool:
    """Whether the environment or the shared files name AWS credentials (no network)."""
    env = (
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    )
    if any(os.environ.get(k) for k in env) or os.environ.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        return True
    home = Path.home() / ".aws"
    files = (
        os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or str(home / "credentials"),
        os.environ.get("AWS_CONFIG_FILE") or str(home / "config"),
    )
    return any(os.path.isfile(f) for f in files)


# --------------------------------------------------------------------------------------------- opening


def hf_filesystem() -> Any:
    """huggingface_hub's fsspec filesystem (token from the environment / ``huggingface-cli login``)."""
    try:
        from huggingface_hub import HfFileSystem
    except ImportError as e:
        raise ImportError(
            "hf:// roots need huggingface_hub: pip install huggingface_hub (or episode-sampler[remote])"
        ) from e
    return HfFileSystem()


def scheme_of(root: str) -> str | None:
    """The URL scheme of a root (lower case), ``None`` for a plain path (``C:\\`` is a path too)."""
    m = _SCHEME.match(root)
    return m.group(1).lower() if m and len(m.group(1)) > 1 else None


def local_path(root: str | os.PathLike[str]) -> Path:
    """A local root as a path (``file://`` stripped)."""
    text = os.fspath(root)
    if scheme_of(text) == "file":
        return Path(urllib.parse.unquote(urllib.parse.urlsplit(text).path))
    return Path(text)


def check_options(timeout_s: float, retries: int) -> None:
    if not isinstance(timeout_s, (int, float)) or isinstance(timeout_s, bool):
        raise TypeError(f"timeout_s must be a number of seconds, got {type(timeout_s).__name__}")
    if not 0 < timeout_s < float("inf"):
        raise ValueError(f"timeout_s must be a positive, finite number of seconds, got {timeout_s}")
    if not isinstance(retries, int) or isinstance(retries, bool):
        raise TypeError(f"retries must be an int, got {type(retries).__name__}")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")


def open_source(
    root: str | os.PathLike[str],
    *,
    filesystem: Any = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    retries: int = DEFAULT_RETRIES,
) -> RemoteSource | None:
    """The source of a dataset root; ``None`` for a local path (a path without a scheme, or ``file://``).

    ``http(s)://`` (range requests), ``s3://bucket/prefix`` (pyarrow's S3FileSystem),
    ``hf://datasets/org/name[@revision]`` (huggingface_hub), any other scheme fsspec knows (when its backend
    is installed), or ``root`` as a path inside ``filesystem`` (an fsspec ``AbstractFileSystem`` or a
    ``pyarrow.fs.FileSystem``).
    """
    check_options(timeout_s, retries)
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path or URL string, got {type(root).__name__}")
    text = os.fspath(root)
    if not isinstance(text, str):
        raise TypeError("root must be a str path or URL, not bytes")
    if filesystem is not None:
        return source_in_filesystem(filesystem, text, retries)
    scheme = scheme_of(text)
    if scheme is None or scheme == "file":
        return None
    if scheme in ("http", "https"):
        return HttpSource(text, timeout_s=timeout_s, retries=retries)
    if scheme == "s3":
        return S3Source(text, timeout_s=timeout_s, retries=retries)
    if scheme == "hf":
        path = text[len("hf://") :].strip("/")
        if not path.startswith(("datasets/", "models/", "spaces/")):
            raise ValueError(f"root must be hf://datasets/<org>/<name>[@revision][/path], got {text!r}")
        return FsspecSource(hf_filesystem(), path, text.rstrip("/"), f"hf://{path}/", retries=retries)
    return generic_fsspec_source(text, retries)


def generic_fsspec_source(url: str, retries: int) -> RemoteSource:
    try:
        fsspec: Any = importlib.import_module("fsspec")  # untyped (no py.typed marker)
    except ImportError as e:
        raise ImportError(f"root {url!r}: reading this scheme needs fsspec: pip install fsspec") from e
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ValueError as e:
        raise ValueError(f"root {url!r}: unknown URL scheme ({e})") from e
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return FsspecSource(fs, path, url.rstrip("/"), f"{protocol}://{path.strip('/')}/", retries=retries)


def source_in_filesystem(filesystem: Any, root: str, retries: int) -> RemoteSource:
    """``root`` as a path inside an fsspec or pyarrow filesystem object."""
    try:
        import pyarrow.fs as pafs
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        pafs = None
    if pafs is not None and isinstance(filesystem, pafs.FileSystem):
        path = strip_scheme(root)
        name = filesystem.type_name
        return ArrowSource(
            filesystem, path, f"{name}://{path.strip('/')}", f"pyarrow-{name}://{path.strip('/')}/"
        )
    try:
        abstract: Any = importlib.import_module("fsspec").AbstractFileSystem
    except ImportError:
        abstract = None
    if abstract is not None and isinstance(filesystem, abstract):
        path = strip_scheme(root)
        protocol = filesystem.protocol if isinstance(filesystem.protocol, str) else filesystem.protocol[0]
        url = f"{protocol}://{path.strip('/')}"
        return FsspecSource(filesystem, path, url, url + "/", retries=retries)
    raise TypeError(
        "filesystem must be an fsspec AbstractFileSystem or a pyarrow.fs.FileSystem, got "
        f"{type(filesystem).__name__}"
    )


def strip_scheme(root: str) -> str:
    """A root without its ``scheme://``."""
    m = _SCHEME.match(root)
    return root[len(m.group(0)) :] if m is not None and scheme_of(root) else root
