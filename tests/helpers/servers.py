"""Real servers on loopback for the remote-read tests: nginx (HTTP with Range), moto (S3) and a
misbehaving HTTP server written here (errors, stalls, servers that ignore Range or cut bodies short).

Each is a context manager that starts the server on a free port and stops it on exit.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.helpers.procs import free_port

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout_s} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------------------------------------ nginx


class Nginx:
    """nginx serving ``root`` (files and symlinked directories) with Range support on 127.0.0.1.

    ``serve(directory)`` links a directory under the root and returns its URL.
    """

    def __init__(self, workdir: Path, tls: tuple[Path, Path] | None = None) -> None:
        if NGINX is None:
            raise RuntimeError("nginx is not installed (apt-get install nginx)")
        self.workdir = workdir
        self.root = workdir / "www"
        self.root.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def serve(self, directory: Path, name: str | None = None) -> str:
        name = name or directory.name
        link = self.root / name
        if not link.exists():
            link.symlink_to(directory.resolve(), target_is_directory=True)
        return f"{self.url}/{name}"

    def _config(self) -> Path:
        tmp = self.workdir / "tmp"
        tmp.mkdir(exist_ok=True)
        user = "user root;" if os.geteuid() == 0 else ""
        temps = "\n".join(
            f"  {k}_temp_path {tmp / k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        tls = ""
        if self.tls is not None:
            tls = f"    ssl_certificate {self.tls[0]};\n    ssl_certificate_key {self.tls[1]};"
        conf = self.workdir / "nginx.conf"
        conf.write_text(
            f"""{user}
daemon off;
master_process on;
worker_processes 1;
pid {self.workdir / "nginx.pid"};
error_log {self.workdir / "error.log"} warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
{temps}
  default_type application/octet-stream;
  keepalive_requests 100000;
  server {{
    listen 127.0.0.1:{self.port}{" ssl" if self.tls else ""};
{tls}
    root {self.root};
    location / {{ disable_symlinks off; }}
  }}
}}
"""
        )
        return conf

    def __enter__(self) -> Nginx:
        for _ in range(3):
            self.port = free_port()
            conf = self._config()
            args = [
                str(NGINX),
                "-c",
                str(conf),
                "-p",
                str(self.workdir),
                "-e",
                str(self.workdir / "error.log"),
            ]
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_for_port(self.port, self.proc, 10, "nginx")
                return self
            except RuntimeError:
                stop(self.proc)
        log = (self.workdir / "error.log").read_text() if (self.workdir / "error.log").exists() else ""
        raise RuntimeError(f"nginx did not start: {log[-2000:]}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            stop(self.proc)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (openssl); trust it with ``SSL_CERT_FILE``."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


# ------------------------------------------------------------------------------------------ moto (S3)


class Moto:
    """moto's standalone S3 server on 127.0.0.1 (a subprocess). ``env`` holds the AWS variables that point
    a client at it; ``filesystem()`` is a pyarrow S3FileSystem for uploads."""

    def __init__(self) -> None:
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
        }

    def filesystem(self) -> Any:
        import pyarrow.fs as pafs

        return pafs.S3FileSystem(
            access_key="testing",
            secret_key="testing",
            region="us-east-1",
            endpoint_override=f"127.0.0.1:{self.port}",
            scheme="http",
            allow_bucket_creation=True,
        )

    def upload(self, directory: Path, bucket: str, prefix: str) -> None:
        """Copy a local directory to ``s3://bucket/prefix`` (the bucket is created)."""
        import pyarrow.fs as pafs

        fs = self.filesystem()
        fs.create_dir(bucket)
        pafs.copy_files(
            str(directory),
            f"{bucket}/{prefix}",
            source_filesystem=pafs.LocalFileSystem(),
            destination_filesystem=fs,
        )

    def __enter__(self) -> Moto:
        self.port = free_port()
        args = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.proc, 60, "moto_server")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            stop(self.proc)


# ------------------------------------------------------------------------------- a misbehaving server


class Misbehaving:
    """An HTTP/1.1 server (threads) serving ``files`` under a behaviour prefix: ``/<mode>/<name>``.

    Modes: ``ok`` (Range, ETag), ``404``, ``403``, ``401``, ``flaky`` (HTTP 500 for the first
    ``fail[name]`` requests, then ok), ``busy`` (HTTP 429 with ``Retry-After: 0`` once, then ok),
    ``nohead`` (HTTP 405 to HEAD), ``stall`` (HEAD answers, GET never does), ``stallbody`` (headers, then
    silence), ``norange`` (HTTP 200 with the whole file), ``cut`` (announces the range, sends half,
    closes), ``short`` (an honest ``Content-Length`` shorter than the range), ``slow`` (the body trickles:
    ``trickle`` bytes every 20 ms), ``oneshot`` (closes each connection after one answer, unannounced).
    ``log`` records (method, path, Range header) of every request, ``connections`` the client addresses.
    """

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.fail: dict[str, int] = {}
        self.trickle = 256
        self.etag = '"v1"'
        self.log: list[tuple[str, str, str | None]] = []
        self.connections: set[tuple[str, int]] = set()
        self.release = threading.Event()
        self.body_started = threading.Event()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Misbehaving:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:  # noqa: N802
                owner.handle(self, head=True)

            def do_GET(self) -> None:  # noqa: N802
                owner.handle(self, head=False)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out and closed its end: expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def handle(self, h: BaseHTTPRequestHandler, *, head: bool) -> None:
        rng = h.headers.get("Range")
        self.connections.add(h.client_address)
        self.log.append(("HEAD" if head else "GET", h.path, rng))
        parts = h.path.lstrip("/").split("/", 1)
        mode, name = parts[0], parts[1] if len(parts) > 1 else ""
        if mode in ("404", "403", "401") or name not in self.files:
            status = int(mode) if mode in ("403", "401") else 404
            return self.reply(h, status, b"no", {})
        if mode == "flaky" and self.fail.get(name, 0) > 0:
            self.fail[name] -= 1
            return self.reply(h, 500, b"oops", {})
        if mode == "busy" and self.fail.get(name, 0) > 0:
            self.fail[name] -= 1
            return self.reply(h, 429, b"slow down", {"Retry-After": "0"})
        data = self.files[name]
        if head and mode == "nohead":
            return self.reply(h, 405, b"", {"Content-Length": "0"}, head=True)
        if head:
            return self.reply(h, 200, b"", {"Content-Length": str(len(data)), "ETag": self.etag}, head=True)
        if mode == "stall":
            self.release.wait(60)
            return
        m = re.fullmatch(r"bytes=(\d+)-(\d+)", rng or "")
        if mode == "norange" or m is None:
            return self.reply(h, 200, data, {"ETag": self.etag})
        a, b = int(m.group(1)), min(int(m.group(2)), len(data) - 1)
        if a >= len(data):
            return self.reply(h, 416, b"", {"Content-Range": f"bytes */{len(data)}"})
        body = data[a : b + 1]
        headers = {"Content-Range": f"bytes {a}-{b}/{len(data)}", "ETag": self.etag}
        if mode == "short":
            body = body[: len(body) // 2]
        if mode == "cut":
            return self.reply(h, 206, body[: len(body) // 2], headers, length=len(body), close=True)
        if mode == "stallbody":
            return self.reply(h, 206, b"", headers, length=len(body), stall=True)
        if mode == "slow":
            return self.reply(h, 206, body, headers, trickle=self.trickle)
        if mode == "oneshot":  # answers, then closes the connection without saying so
            self.reply(h, 206, body, headers)
            h.close_connection = True
            return None
        return self.reply(h, 206, body, headers)

    def reply(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        headers: dict[str, str],
        *,
        head: bool = False,
        length: int | None = None,
        close: bool = False,
        stall: bool = False,
        trickle: int = 0,
    ) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        if "Content-Length" not in headers:
            h.send_header("Content-Length", str(len(body) if length is None else length))
        if close:
            h.send_header("Connection", "close")
        h.end_headers()
        if head:
            return
        if stall:
            h.wfile.flush()
            self.body_started.set()
            self.release.wait(60)
            return
        if trickle:
            for i in range(0, len(body), trickle):
                h.wfile.write(body[i : i + trickle])
                h.wfile.flush()
                self.body_started.set()
                if self.release.wait(0.02):
                    return
            return
        h.wfile.write(body)
        h.wfile.flush()
        if close:
            h.close_connection = True


# ----------------------------------------------------------------------------------- pytest fixtures
# imported by tests/lerobot/conftest.py; session-scoped: one nginx and one moto for the whole run

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A running nginx: ``nginx.serve(directory)`` returns the directory's URL."""
    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install nginx; CI installs it)")
    with Nginx(tmp_path_factory.mktemp("nginx")) as server:
        yield server


@pytest.fixture(scope="session")
def moto_s3() -> Any:
    """A running moto S3 server: ``moto_s3.upload(directory, bucket, prefix)``, ``moto_s3.env``."""
    pytest.importorskip("moto.server", reason="moto[server] is not installed (the test extra has it)")
    with Moto() as server:
        yield server
