"""Look-ahead prefetch: fetch the bytes of the samples a sampler or node will yield next, ahead of need.

The order is a pure function of (seed, epoch, layout), so the next samples of a cursor follow from its
position alone: :class:`LookAhead` reads the position of an :class:`~episode_sampler.EpisodeAwareSampler`
or :class:`~episode_sampler.EpisodeSamplerNode` (its ``state_dict()`` / ``get_state()``, cheap and
thread-safe) from a background thread, maps the next ``window`` positions to frame indices
(``sharded_order.frames``), plans their byte ranges (``dataset.byte_ranges``) and fetches them into the
dataset's shared on-disk cache with a bounded thread pool (``dataset.store.prefetch``). DataLoader
workers (processes) and ``ParallelMapper`` threads then find their reads in that cache.

Nothing here touches the cursor: it only reads positions. The window is never part of any state, so
checkpoints are identical with and without a look-ahead and a restored pipeline recomputes its window
from the restored position. Background errors never reach training: they are counted, logged once, and
the foreground read (which retries and raises clearly on its own) fetches what is missing.

Bounded: at most ``window`` samples ahead of the cursor (and at most into the next epoch), at most
``max_pending`` fetch tasks queued or running, ``threads`` requests in flight.
"""

from __future__ import annotations

import bisect
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .core.cursor import ShardedOrder
from .core.state import MAX_EPOCH
from .core.validation import check_int
from .node import EpisodeSamplerNode
from .sampler import EpisodeAwareSampler

__all__ = ["LookAhead"]

logger = logging.getLogger(__name__)

Ranges = Sequence[tuple[str, int, int]]
_RECENT = 1 << 14  # byte ranges remembered as queued (merged per file); forgotten all at once beyond


class LookAhead:
    """Prefetch the byte ranges of the next ``window`` samples of ``source`` while it is iterated.

    Use it around the loop that iterates ``source`` (in the main process)::

        with LookAhead(sampler, frames, window=8 * 32, batch_size=32):
            for batch in DataLoader(frames, batch_size=32, sampler=sampler, num_workers=4):
                ...

    Args:
        source: the :class:`~episode_sampler.EpisodeAwareSampler` or
            :class:`~episode_sampler.EpisodeSamplerNode` whose future samples are fetched.
        dataset: what the samples index, with ``byte_ranges(indices) -> [(rel, start, stop)]`` and a
            ``store`` with ``prefetch(ranges)`` (a :class:`~episode_sampler.LeRobotFrames`); or pass
            ``plan`` and ``fetch`` instead.
        window: samples ahead of the cursor's position to keep fetched (default ``8 * batch_size``);
            make it larger than what the loader holds in flight (``num_workers * prefetch_factor``
            batches) plus a few batches.
        batch_size: samples planned together (one planning unit).
        threads: fetch threads (concurrent requests).
        plan_threads: planning threads (planning reads each file's index -- a Parquet footer, an MP4
            ``moov`` -- once, so the first batches of a run plan in parallel).
        max_pending: fetch tasks queued or running at most (default ``4 * threads``).
        poll_s: how often the cursor's position is read.
        plan: ``plan(indices) -> ranges`` (default ``dataset.byte_ranges``).
        fetch: ``fetch(ranges) -> bytes downloaded`` (default ``dataset.store.prefetch``); called
            with one range per task, so that the ranges of one file are fetched concurrently too.

    Raises:
        TypeError: ``source`` is neither a sampler nor a node, or neither ``dataset`` nor
            ``plan``/``fetch`` is given; TypeError/ValueError for the sizes (named).
    """

    def __init__(
        self,
        source: EpisodeAwareSampler | EpisodeSamplerNode,
        dataset: Any = None,
        *,
        window: int | None = None,
        batch_size: int = 32,
        threads: int = 16,
        plan_threads: int = 4,
        max_pending: int | None = None,
        poll_s: float = 0.002,
        plan: Callable[[np.ndarray], Ranges] | None = None,
        fetch: Callable[[Ranges], Any] | None = None,
    ) -> None:
        if isinstance(source, EpisodeAwareSampler):
            self._position: Callable[[], Mapping[str, Any]] = source.state_dict
        elif isinstance(source, EpisodeSamplerNode):
            self._position = source.get_state
        else:
            raise TypeError(
                f"source must be an EpisodeAwareSampler or an EpisodeSamplerNode, got {type(source).__name__}"
            )
        if plan is None:
            plan = getattr(dataset, "byte_ranges", None)
        if fetch is None:
            fetch = getattr(getattr(dataset, "store", None), "prefetch", None)
        if plan is None or fetch is None:
            raise TypeError(
                "LookAhead needs a dataset with byte_ranges() and store.prefetch() (a LeRobotFrames), "
                f"or plan= and fetch=; got dataset={type(dataset).__name__}"
            )
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.window = check_int("window", 8 * self.batch_size if window is None else window, minimum=1)
        self.threads = check_int("threads", threads, minimum=1, maximum=1024)
        self.plan_threads = check_int("plan_threads", plan_threads, minimum=1, maximum=64)
        self.max_pending = check_int(
            "max_pending", 4 * self.threads if max_pending is None else max_pending, minimum=1
        )
        if isinstance(poll_s, bool) or not isinstance(poll_s, (int, float)) or not 0 < poll_s <= 10:
            raise ValueError(f"poll_s must be a number of seconds in (0, 10], got {poll_s!r}")
        self.poll_s = float(poll_s)
        self._sharded: ShardedOrder = source.sharded_order
        self._plan = plan
        self._fetch = fetch
        self._lock = threading.Lock()
        self._pending = 0  # fetch tasks queued or running
        self._units = 0  # planning units queued or running
        self._slots = threading.Semaphore(self.max_pending)
        self._mark: tuple[int, int, int] | None = None  # (epoch, global_start, position) planned up to
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fetches: _Workers | None = None
        self._planners: _Workers | None = None
        # per file, the merged byte ranges queued lately: a range inside them is not queued again (a
        # file's header is planned with every batch, a block holds many frames)
        self._recent: dict[str, list[tuple[int, int]]] = {}
        self._recent_count = 0
        self._stats = {
            "samples_planned": 0,
            "fetches": 0,
            "fetches_done": 0,
            "bytes_fetched": 0,
            "errors": 0,
            "restarts": 0,
        }
        self.last_error: BaseException | None = None
        self._warned = False

    # ------------------------------------------------------------------ life cycle
    def start(self) -> LookAhead:
        """Start the background thread (idempotent); returns ``self``."""
        if self._thread is None or not self._thread.is_alive():
            _import_before_threads()
            self._stop.clear()
            self._fetches = _Workers(self.threads, "episode-sampler-fetch")
            # planning units are bounded by the window (each is planned once)
            self._planners = _Workers(self.plan_threads, "episode-sampler-plan")
            self._thread = threading.Thread(target=self._run, name="episode-sampler-lookahead", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop planning and drop queued fetches; waits up to ``timeout_s`` for the planning thread.
        Running requests finish on their own (daemon threads, bounded by the source's timeout): a
        stalled server never blocks the caller, nor the interpreter's exit."""
        self._stop.set()
        thread, fetches, planners = self._thread, self._fetches, self._planners
        if thread is not None:
            thread.join(timeout_s)
        for w in (planners, fetches):
            if w is not None:
                w.shutdown()
        self._thread = None
        self._fetches = self._planners = None
        self._mark = None
        self._recent.clear()
        self._recent_count = 0

    def wait(self, timeout_s: float = 60.0) -> bool:
        """Block until the current window is planned and fetched (nothing queued or running), at most
        ``timeout_s`` seconds; returns whether it was. Use it to have the first batches local before
        the loop starts (e.g. while the model is built)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running:
                return False
            with self._lock:
                idle = self._units == 0 and self._pending == 0
            mark = self._mark
            if idle and mark is not None:
                state = self._position()
                cur = (int(state["epoch"]), int(state["global_start"]), int(state["start_index"]))
                ahead = self._ahead(cur, mark)
                if ahead is not None and ahead >= min(self.window, self._most_ahead(cur)):
                    return True
            time.sleep(min(0.01, self.poll_s))
        return False

    def _most_ahead(self, cur: tuple[int, int, int]) -> int:
        """Samples that can be planned from ``cur``: the rest of its epoch and the whole next one."""
        rest = self._count(cur[1]) - cur[2]
        return rest + (self._count(0) if cur[0] + 1 < MAX_EPOCH else 0)

    def __enter__(self) -> LookAhead:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._stop.set()
        except Exception:
            pass

    @property
    def running(self) -> bool:
        """Whether the background thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def stats(self) -> dict[str, int]:
        """Counters of this look-ahead: ``samples_planned``, ``fetches`` (submitted), ``fetches_done``,
        ``bytes_fetched`` (downloaded, as the store reports), ``errors``, ``restarts`` (the cursor
        jumped: a restore, ``set_epoch``, a new epoch from elsewhere) and ``pending``."""
        with self._lock:
            return {**self._stats, "pending": self._pending}

    # ------------------------------------------------------------------ the planning loop
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as exc:  # a bug or a planning failure: never kill training, say it once
                self._error(exc)
            self._stop.wait(self.poll_s)

    def _count(self, global_start: int) -> int:
        return self._sharded.count(global_start)

    def _ahead(self, cur: tuple[int, int, int], mark: tuple[int, int, int]) -> int | None:
        """Samples from position ``cur`` to ``mark`` (``None`` when ``mark`` is not ahead of ``cur``
        within the next epoch)."""
        e, g, p = cur
        me, mg, mp = mark
        if (me, mg) == (e, g):
            return mp - p if mp >= p else None
        if me == e + 1 and mg == 0:
            return self._count(g) - p + mp
        return None

    def step(self) -> int:
        """One planning round (the background thread calls it every ``poll_s``): read the cursor's
        position and submit fetches for the window's positions not planned yet. Returns the samples
        planned."""
        state = self._position()
        cur = (int(state["epoch"]), int(state["global_start"]), int(state["start_index"]))
        old = self._mark
        ahead = None if old is None else self._ahead(cur, old)
        mark = cur if ahead is None or ahead > self.window else old  # None: first round, or a jump
        if mark is not old:
            if old is not None:
                self._stats["restarts"] += 1
            ahead = 0
        assert mark is not None and ahead is not None
        planned = 0
        while ahead < self.window and not self._stop.is_set():
            epoch, g, pos = mark
            total = self._count(g)
            if pos >= total:  # the epoch's end: go on into the next epoch from its start (only)
                if epoch + 1 >= MAX_EPOCH or epoch > cur[0]:
                    break
                mark = (epoch + 1, 0, 0)
                continue
            n = min(self.batch_size, total - pos, self.window - ahead)
            frames = self._sharded.frames(epoch, g, pos, pos + n)
            self._submit(frames)
            mark = (epoch, g, pos + n)
            ahead += n
            planned += n
        self._mark = mark
        with self._lock:
            self._stats["samples_planned"] += planned
        return planned

    def _submit(self, frames: np.ndarray) -> None:
        planners = self._planners
        if planners is None:  # step() called directly, without start(): plan and fetch in this thread
            self._plan_and_fetch(frames)
        else:
            with self._lock:
                self._units += 1
            planners.put(self._plan_unit, frames)

    def _plan_unit(self, frames: np.ndarray) -> None:
        try:
            self._plan_and_fetch(frames)
        finally:
            with self._lock:
                self._units -= 1

    def _plan_and_fetch(self, frames: np.ndarray) -> None:
        """Plan one unit's ranges and queue a fetch per range not queued lately (a planning thread)."""
        if self._stop.is_set() and self._planners is not None:
            return
        try:
            planned = self._plan(frames)
        except Exception as exc:  # e.g. a file index that cannot be read now: the reads will say
            self._error(exc)
            return
        fresh = []
        with self._lock:
            for r in planned:
                key = (r[0], int(r[1]), int(r[2]))
                if not self._remember(*key):
                    fresh.append(key)
        fetches = self._fetches
        for key in fresh:
            if fetches is None:
                self._run_fetch([key], counted=False)
                continue
            while not self._slots.acquire(timeout=0.05):  # at most max_pending queued or running
                if self._stop.is_set():
                    return
            with self._lock:
                self._pending += 1
                self._stats["fetches"] += 1
            fetches.put(self._run_fetch, [key])

    def _remember(self, rel: str, start: int, stop: int) -> bool:
        """Whether ``[start, stop)`` of ``rel`` lies inside the ranges queued lately; if not, remember
        it (the caller holds the lock)."""
        spans = self._recent.setdefault(rel, [])
        i = bisect.bisect_right(spans, (start, 1 << 62)) - 1
        if i >= 0 and spans[i][0] <= start and stop <= spans[i][1]:
            return True
        if self._recent_count >= _RECENT:  # bounded memory: start over
            self._recent.clear()
            self._recent_count = 0
            spans = self._recent[rel] = []
        spans[:] = merge_spans([*spans, (start, stop)])
        self._recent_count = sum(len(v) for v in self._recent.values())
        return False

    def _run_fetch(self, ranges: Ranges, counted: bool = True) -> None:
        try:
            if not self._stop.is_set() or not counted:
                got = self._fetch(ranges)
                with self._lock:
                    self._stats["fetches_done"] += 1
                    if not counted:
                        self._stats["fetches"] += 1
                    if isinstance(got, (int, np.integer)):
                        self._stats["bytes_fetched"] += int(got)
        except Exception as exc:
            self._error(exc, ranges)
        finally:
            if counted:
                with self._lock:
                    self._pending -= 1
                self._slots.release()

    def _error(self, exc: BaseException, ranges: Ranges | None = None) -> None:
        with self._lock:
            self._stats["errors"] += 1
            self.last_error = exc
            warn = not self._warned
            self._warned = True
        if warn:
            where = f" of {ranges[0][0]!r}" if ranges else ""
            logger.warning(
                "episode-sampler look-ahead: a background fetch%s failed (%s: %s); training goes on and the "
                "reads fetch what is missing themselves (further errors are counted in LookAhead.stats())",
                where,
                type(exc).__name__,
                exc,
            )

    def __repr__(self) -> str:
        return (
            f"LookAhead(window={self.window}, batch_size={self.batch_size}, threads={self.threads}, "
            f"running={self.running})"
        )


class _Workers:
    """``n`` daemon threads running queued calls. Daemon threads: a request stalled on a dead server
    never holds up the interpreter's exit."""

    def __init__(self, n: int, name: str) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._n = n
        for k in range(n):
            threading.Thread(target=self._work, name=f"{name}-{k}", daemon=True).start()

    def put(self, fn: Callable[..., Any], *args: Any) -> None:
        self._queue.put((fn, args))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, args = item
            fn(*args)

    def shutdown(self) -> None:
        """Run the queued calls now (the stop event is set: they return at once, counting themselves
        out) and let the threads end after their current call."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0](*item[1])
        for _ in range(self._n):
            self._queue.put(None)


def merge_spans(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, disjoint ``(start, stop)`` spans covering ``spans`` (touching ones joined)."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _import_before_threads() -> None:
    """Import, in the calling thread, the modules our threads or forked DataLoader workers import lazily.

    A DataLoader worker forked while one of this look-ahead's threads holds an import lock inherits the
    lock held by a thread that does not exist in the child: its first import of that module (torchdata's
    worker imports ``numpy.random`` to seed it) then waits forever. Importing them here first, before any
    thread starts, leaves nothing to import later. (Only imported: no global RNG is used.)
    """
    import numpy.random  # noqa: F401

    from .lerobot import remote_file  # noqa: F401
