"""Remote reads: samples/s of ``LeRobotFrames`` over HTTP with a 30 ms round trip vs local disk, with and
without the look-ahead prefetch (``episode_sampler.lookahead.LookAhead``), frames and blocks orders.

Set-up, all on loopback and started here: ``write_lerobot_dataset`` with one AV1 camera, served by nginx
(Range requests) behind ``tests/helpers/latency_proxy.py``, a TCP proxy that delivers every byte 15 ms
late each way (30 ms RTT per request, one more per new connection). Every run reads through
``DataLoader(batch_size=B, num_workers=W)`` with ``EpisodeAwareSampler`` and yields the same items.

- **local**: the dataset directory (memory-mapped Parquet, video by path).
- **remote**: the URL through the proxy, a fresh (cold) on-disk block cache per run, so every block is
  downloaded once -- what every epoch of a dataset larger than the cache (or the disk) sees.
- **remote + look-ahead**: the same, with ``LookAhead(sampler, frames)`` fetching the byte ranges of
  the next ``WINDOW`` batches in the main process while the workers read. It is started with the loader
  and its first window fetched before the loop (``LookAhead.wait()``; in training, while the model is
  built); the workers then fork with the file sizes it learned.

The block cache uses 32 KiB blocks here: the camera is small (64x64, ~1.2 KB per compressed frame), so
this keeps the ratio of block to frame size close to a real dataset's with the default 1 MiB blocks
(256x256 frames of ~20-40 KB); with 1 MiB blocks the whole test dataset would be a handful of blocks
fetched by the first batch. Throughput is steady state as in the other sections: the clock starts when
the first batch is out. Bytes per sample are the bytes the proxy forwarded from the server over the run
(responses, headers included) divided by the samples read.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config
from ..timing import Log, med

RTT_S = 0.03
BLOCK = 32 << 10
CAMERA = {"observation.images.top": (64, 64)}
BLOCK_SIZE = 8  # frames per block with order="blocks"
WINDOW = 32  # batches fetched ahead
THREADS = 32  # concurrent look-ahead requests
LOCAL, REMOTE, AHEAD = "local disk", "HTTP, 30 ms RTT", "HTTP, 30 ms RTT + look-ahead"
METHODS = (LOCAL, REMOTE, AHEAD)


@dataclass(frozen=True)
class RemoteSizes:
    episodes: int
    lengths: tuple[int, int]
    batches: int  # batches timed per run (after the first)
    batch: int
    workers: int
    reps: int


SIZES = {
    "smoke": RemoteSizes(4, (10, 14), 2, 8, 0, 1),
    "quick": RemoteSizes(40, (40, 60), 58, 32, 2, 2),
    "full": RemoteSizes(80, (40, 80), 80, 32, 2, 3),
}


def _repo_root_on_path() -> None:
    root = str(Path(__file__).resolve().parents[2])
    if root not in sys.path:  # tests/helpers (servers, latency proxy) live in the checkout
        sys.path.insert(0, root)


def bench_remote(cfg: Config, log: Log) -> dict[str, Any]:
    """Samples/s and bytes per sample: local disk vs HTTP with 30 ms RTT, with and without look-ahead."""
    from torch.utils.data import DataLoader

    from episode_sampler import EpisodeAwareSampler, LeRobotFrames, write_lerobot_dataset
    from episode_sampler.lookahead import LookAhead

    _repo_root_on_path()
    from tests.helpers.latency_proxy import LatencyProxy
    from tests.helpers.servers import NGINX, Nginx

    sz = SIZES[cfg.mode]
    section: dict[str, Any] = {
        "rtt_s": RTT_S,
        "block_bytes": BLOCK,
        "batch_size": sz.batch,
        "workers": sz.workers,
        "window_batches": WINDOW,
        "threads": THREADS,
        "rows": [],
    }
    if NGINX is None:
        log("remote: nginx is not installed: skipped")
        section["skipped"] = "nginx is not installed"
        return section
    from episode_sampler.lerobot.block_cache import BlockCache
    from episode_sampler.lerobot.remote_source import open_source
    from episode_sampler.lerobot.storage import RemoteStore

    with tempfile.TemporaryDirectory(prefix="episode-sampler-bench-remote-") as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        lo, hi = sz.lengths
        write_lerobot_dataset(
            tmp / "ds",
            sz.episodes,
            lo,
            hi,
            seed=0,
            episodes_per_file=max(1, sz.episodes // 4),
            cameras=CAMERA,
        )
        size = sum(f.stat().st_size for f in (tmp / "ds").rglob("*") if f.is_file())
        log(
            f"remote: wrote {sz.episodes} episodes ({size / 2**20:.1f} MiB) "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        section.update(episodes=sz.episodes, dataset_bytes=size)
        with Nginx(tmp / "nginx") as nginx, LatencyProxy(nginx.port, RTT_S) as proxy:
            url = proxy.url_for(nginx.serve(tmp / "ds", "ds"))
            local = LeRobotFrames(tmp / "ds")
            section["frames"] = len(local)
            runs = 0

            def run(order: str, method: str, rep: int) -> dict[str, float]:
                nonlocal runs
                runs += 1
                if method == LOCAL:
                    frames = local
                else:
                    cache = BlockCache(tmp / f"cache-{runs}", 1 << 30, block_size=BLOCK)
                    frames = LeRobotFrames(RemoteStore(open_source(url), cache))
                sampler = EpisodeAwareSampler.from_index(
                    frames.episodes,
                    shuffle=True,
                    seed=rep,
                    order=order,
                    block_size=BLOCK_SIZE if order == "blocks" else None,
                )
                loader = DataLoader(frames, batch_size=sz.batch, sampler=sampler, num_workers=sz.workers)
                ahead = (
                    LookAhead(sampler, frames, window=WINDOW * sz.batch, batch_size=sz.batch, threads=THREADS)
                    if method == AHEAD
                    else None
                )
                down0 = proxy.bytes_down
                if ahead is not None:  # started with the loader; the first window is local first
                    ahead.start()
                    ahead.wait(30)
                try:
                    it = iter(loader)
                    got = len(next(it)["index"])
                    t = time.perf_counter()
                    timed = 0
                    for b, batch in enumerate(it, 1):
                        timed += len(batch["index"])
                        if b == sz.batches:
                            break
                    elapsed = time.perf_counter() - t
                    del it
                finally:
                    if ahead is not None:
                        ahead.close()
                frames.close()
                return {
                    "seconds": elapsed,
                    "samples": timed,
                    "bytes_per_sample": (proxy.bytes_down - down0) / max(1, got + timed),
                    "errors": float(ahead.stats()["errors"]) if ahead is not None else 0.0,
                }

            for order in ("blocks", "frames"):
                times: dict[str, list[float]] = {m: [] for m in METHODS}
                per_sample: dict[str, list[float]] = {m: [] for m in METHODS}
                errors: dict[str, float] = dict.fromkeys(METHODS, 0.0)
                counts: dict[str, int] = {}
                for rep in range(sz.reps):
                    for method in METHODS:
                        r = run(order, method, rep)
                        times[method].append(r["seconds"])
                        per_sample[method].append(r["bytes_per_sample"])
                        errors[method] += r["errors"]
                        counts[method] = int(r["samples"])
                for method in METHODS:
                    sec = med(times[method])
                    rate = counts[method] / sec if sec > 0 else None
                    section["rows"].append(
                        {
                            "order": order,
                            "method": method,
                            "samples_per_s": rate,
                            "bytes_per_sample": med(per_sample[method]),
                            "lookahead_errors": errors[method],
                        }
                    )
                    log(
                        f"remote: {order:<6} {method:<30} {rate or 0:9.0f} samples/s, "
                        f"{med(per_sample[method]):8.0f} B fetched / sample"
                    )
    return section


def _rate(section: dict[str, Any], order: str, method: str) -> float | None:
    for r in section.get("rows", []):
        if r["order"] == order and r["method"] == method:
            return r["samples_per_s"]
    return None


def _ratio(section: dict[str, Any], order: str, method: str) -> float | None:
    ours, local = _rate(section, order, method), _rate(section, order, LOCAL)
    return ours / local if ours and local else None


def remote_targets(section: dict[str, Any]) -> list[tuple[str, str, float | None, str, float]]:
    """(name, description, value, op, threshold) of the remote targets."""
    out = []
    for order, threshold in (("blocks", 0.70), ("frames", 0.50)):
        what = (
            f"samples/s over HTTP with {section['rtt_s'] * 1000:.0f} ms RTT and look-ahead vs local disk, "
            f"order={order!r} (B={section['batch_size']}, num_workers={section['workers']}, cold cache)"
        )
        out.append((f"remote_{order}_vs_local", what, _ratio(section, order, AHEAD), ">=", threshold))
    return out


def remote_informational(section: dict[str, Any]) -> list[tuple[str, str, float | None]]:
    """(name, description, value) of the remote ratios without look-ahead (no threshold)."""
    return [
        (
            f"remote_{order}_no_lookahead",
            f"samples/s over HTTP with {section['rtt_s'] * 1000:.0f} ms RTT without look-ahead vs local "
            f"disk, order={order!r}",
            _ratio(section, order, REMOTE),
        )
        for order in ("blocks", "frames")
    ]
