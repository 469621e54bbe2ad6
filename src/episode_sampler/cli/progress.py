"""Progress output of ``episode-sampler demo`` on stderr: status lines for waits, step bars for runs.

:meth:`Progress.status` covers a step whose length is unknown (writing the dataset, starting a process):
on a terminal a spinner with the elapsed time, replaced by a final ``done`` line; elsewhere one line when
it starts and one when it ends. :meth:`Progress.bar` is a bar over training steps that the caller
moves to the step it knows (``bar.to(step)``), so the bar always shows the same step as the report: on
a terminal a tqdm bar; elsewhere (CI logs, a pipe) plain lines, one per quarter of the run and one at
the end, never ``\r``-joined redraws. A disabled :class:`Progress` (``--quiet``) prints nothing.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

SPINNER = "|/-\\"


class Progress:
    """Where and whether progress is shown (``enabled=False``: nothing is printed)."""

    def __init__(self, enabled: bool = True, stream: IO[str] | None = None) -> None:
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr

    def _tty(self) -> bool:
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    @property
    def interactive(self) -> bool:
        """Whether progress is shown on a terminal (spinners and bars redraw in place)."""
        return self.enabled and self._tty()

    def line(self, text: str) -> None:
        """Print ``text`` as one whole line (nothing when disabled)."""
        if self.enabled:
            self._write(f"{text}\n")

    @contextmanager
    def status(self, text: str, report: bool = True) -> Iterator[None]:
        """Show ``text`` while the body runs, then ``text: done in S s`` (or ``stopped``).

        ``report=False``: no line when the body succeeds (the caller prints its own result line).
        """
        if not self.enabled:
            yield
            return
        t0 = time.perf_counter()
        stop = threading.Event()
        spinner = None
        if self._tty():
            spinner = threading.Thread(target=self._spin, args=(text, t0, stop), daemon=True)
            spinner.start()
        else:
            self._write(f"{text} ...\n")
        ok = False
        try:
            yield
            ok = True
        finally:
            stop.set()
            if spinner is not None:
                spinner.join()
            outcome = "done" if ok else "stopped"
            clear = "\r\033[K" if spinner is not None else ""
            if ok and not report:
                self._write(clear)
            else:
                self._write(f"{clear}{text}: {outcome} in {time.perf_counter() - t0:.1f} s\n")

    def _spin(self, text: str, t0: float, stop: threading.Event) -> None:
        i = 0
        while not stop.wait(0.1 if i else 0.0):
            self._write(f"\r\033[K{SPINNER[i % len(SPINNER)]} {text} ({time.perf_counter() - t0:.1f} s)")
            i += 1

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def bar(self, label: str, total: int, initial: int = 0) -> StepBar:
        """A bar over steps ``initial..total``; move it with ``to(step)``, end it with ``close()``."""
        if not self.enabled:
            return StepBar(label, total, initial, None)
        if not self._tty():
            return PlainStepBar(label, total, initial, self.stream)
        return StepBar(label, total, initial, self.stream)


class StepBar:
    """A tqdm bar of training steps that is moved to absolute step numbers (``stream=None``: nothing)."""

    def __init__(self, label: str, total: int, initial: int, stream: IO[str] | None) -> None:
        self.step = initial
        self._bar: Any = None
        if stream is not None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, initial=initial, desc=label, unit="step", file=stream, dynamic_ncols=True
            )

    def to(self, step: int) -> None:
        """Show ``step`` (redrawn at most every 0.1 s; :meth:`close` always draws the last one)."""
        if step > self.step:
            if self._bar is not None:
                self._bar.update(step - self.step)
            self.step = step

    def close(self, step: int | None = None, note: str | None = None) -> None:
        """Move to ``step`` (if given), draw the bar one last time with ``note`` after it, and end it."""
        if step is not None and self._bar is not None and step != self.step:
            self._bar.n = step
        if step is not None:
            self.step = step
        if self._bar is not None:
            if note:
                self._bar.set_postfix_str(note, refresh=False)
            self._bar.refresh()
            self._bar.close()
            self._bar = None


class PlainStepBar(StepBar):
    """A :class:`StepBar` for a stream that is not a terminal: whole lines, no ``\\r`` redraws.

    ``LABEL: STEP/TOTAL steps (S s)`` when the run passes each quarter of ``total``, and
    ``LABEL: STEP/TOTAL steps in S s[, NOTE]`` when it ends.
    """

    def __init__(self, label: str, total: int, initial: int, stream: IO[str]) -> None:
        super().__init__(label, total, initial, None)
        self.label, self.total, self.stream = label, total, stream
        self.t0 = time.perf_counter()
        self._next = self._milestone_after(initial)
        self._closed = False

    def _milestone_after(self, step: int) -> int:
        """The first quarter of the run strictly after ``step`` (``total`` at most)."""
        quarters = [-(-self.total * q // 4) for q in (1, 2, 3, 4)]
        return next((m for m in quarters if m > step), self.total + 1)

    def _line(self, text: str) -> None:
        self.stream.write(f"{self.label}: {self.step}/{self.total} steps {text}\n")
        self.stream.flush()

    def to(self, step: int) -> None:
        super().to(step)
        if self.step >= self._next and self.step < self.total:
            self._line(f"({time.perf_counter() - self.t0:.1f} s)")
            self._next = self._milestone_after(self.step)

    def close(self, step: int | None = None, note: str | None = None) -> None:
        super().close(step, note)
        if not self._closed:
            self._closed = True
            self._line(f"in {time.perf_counter() - self.t0:.1f} s" + (f", {note}" if note else ""))
