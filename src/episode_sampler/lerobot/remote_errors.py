"""Errors of remote reads, and the retry loop every remote source shares.

Every error names the URL it is about. Which failures are worth retrying (a reset connection, a timeout,
an HTTP 5xx or 429) is decided here once; sources raise :class:`TransientError` for those and the loop
retries them with exponential backoff, then raises the last one as the error the user sees.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: first wait between attempts; it doubles each time, capped at :data:`MAX_BACKOFF_S`
BASE_BACKOFF_S = 0.1
MAX_BACKOFF_S = 5.0


class RemoteReadError(OSError):
    """A remote file could not be read as asked (the message names the URL and what went wrong)."""


class TruncatedError(RemoteReadError):
    """The server returned fewer bytes than the file's size says it holds (or than the range asked)."""


class RangeNotSupportedError(RemoteReadError):
    """The server answered a byte-range request with the whole file (it ignores ``Range``)."""


class TransientError(RemoteReadError):
    """A failure that may succeed when tried again (5xx, 429, reset, timeout); ``final`` is what to raise
    once the retries are spent."""

    def __init__(self, final: BaseException, retry_after_s: float | None = None) -> None:
        super().__init__(str(final))
        self.final = final
        self.retry_after_s = retry_after_s


def backoff_s(attempt: int) -> float:
    """The wait before attempt ``attempt + 1`` (``attempt`` counts from 0)."""
    return float(min(MAX_BACKOFF_S, BASE_BACKOFF_S * (2**attempt)))


def with_retries(call: Callable[[], T], retries: int, sleep: Callable[[float], None] = time.sleep) -> T:
    """``call()``, tried up to ``retries + 1`` times while it raises :class:`TransientError`."""
    attempt = 0
    while True:
        try:
            return call()
        except TransientError as e:
            if attempt >= retries:
                raise e.final from None
            wait = backoff_s(attempt)
            if e.retry_after_s is not None:
                wait = min(MAX_BACKOFF_S, max(wait, e.retry_after_s))
            sleep(wait)
            attempt += 1
