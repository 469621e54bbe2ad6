"""A TCP proxy on loopback that adds network latency: every byte is delivered ``rtt_s / 2`` seconds
after it was sent, in each direction, and a new connection waits one ``rtt_s`` (the handshake), so an
HTTP request over a kept-alive connection costs one round trip more than on loopback. No bandwidth
limit. Pure Python (asyncio in a background thread), for tests and benchmarks when netem (which needs a
network namespace) is not available.

    with Nginx(tmp) as nginx, LatencyProxy(nginx.port, rtt_s=0.03) as proxy:
        url = proxy.url_for(nginx.serve(dataset_dir))
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import urllib.parse
from typing import Any


class LatencyProxy:
    """Forward ``127.0.0.1:port`` to ``upstream_host:upstream_port`` with ``rtt_s`` of added round trip.

    ``connections`` counts accepted connections, ``chunks`` the data chunks forwarded client -> server
    (about one per request), ``bytes_down`` the bytes forwarded server -> client.
    """

    def __init__(self, upstream_port: int, rtt_s: float = 0.03, *, upstream_host: str = "127.0.0.1") -> None:
        if not rtt_s >= 0:
            raise ValueError(f"rtt_s must be >= 0, got {rtt_s!r}")
        self.upstream = (upstream_host, int(upstream_port))
        self.rtt_s = float(rtt_s)
        self.port = 0
        self.connections = 0
        self.chunks = 0
        self.bytes_down = 0  # bytes forwarded server -> client (responses)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url_for(self, upstream_url: str) -> str:
        """``upstream_url`` (on the upstream host and port) as seen through the proxy."""
        parts = urllib.parse.urlsplit(upstream_url)
        return urllib.parse.urlunsplit(parts._replace(netloc=f"127.0.0.1:{self.port}"))

    # ------------------------------------------------------------------ life cycle
    def __enter__(self) -> LatencyProxy:
        self._thread = threading.Thread(target=self._main, name="latency-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("latency proxy did not start")
        if self._error is not None:
            raise RuntimeError(f"latency proxy did not start: {self._error}") from self._error
        return self

    def __exit__(self, *exc: object) -> None:
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:  # noqa: BLE001 (reported to __enter__)
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.close()

    # ------------------------------------------------------------------ forwarding
    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await asyncio.sleep(self.rtt_s)  # the TCP handshake's round trip
            s_reader, s_writer = await asyncio.open_connection(*self.upstream)
        except (OSError, asyncio.CancelledError):
            c_writer.close()
            return
        half = self.rtt_s / 2
        with contextlib.suppress(asyncio.CancelledError):  # cancelled when the proxy stops
            await asyncio.gather(
                self._pipe(c_reader, s_writer, half, count=True),
                self._pipe(s_reader, c_writer, half, count=False),
                return_exceptions=True,
            )
        for w in (c_writer, s_writer):
            with contextlib.suppress(Exception):
                w.close()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float, count: bool
    ) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def receive() -> None:
            try:
                while True:
                    data = await reader.read(1 << 16)
                    if data and count:
                        self.chunks += 1
                    elif data:
                        self.bytes_down += len(data)
                    queue.put_nowait((loop.time() + delay, data))
                    if not data:
                        return
            except (OSError, asyncio.IncompleteReadError):
                queue.put_nowait((loop.time() + delay, b""))

        async def send() -> None:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    with contextlib.suppress(Exception):
                        if writer.can_write_eof():
                            writer.write_eof()
                        else:
                            writer.close()
                    return
                writer.write(data)
                await writer.drain()

        results: list[Any] = await asyncio.gather(receive(), send(), return_exceptions=True)
        del results
