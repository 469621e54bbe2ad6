"""Video end to end: samples/s of ``LeRobotFrames`` with cameras against the decode limit.

The dataset: ``write_lerobot_dataset`` with two cameras, 96x96 and 240x320 (AV1, ``g=2``, as LeRobot
encodes). A sample is one frame of every camera, delivered as float32 CHW in ``[0, 1]``.

- **decode limit** (``results["video"]["limit"]``, samples/s): sequential decoding of every frame of the
  same video files with one PyAV decoder per file (one codec thread), each frame converted to RGB and
  into the delivered ``[B, 3, H, W]`` float32 batch (``limit_uint8``: into a ``uint8`` batch), on one
  thread. No reader that decodes these files with PyAV can deliver faster on one core.
- **ours**: ``LeRobotFrames(video_backend="pyav")`` through ``DataLoader(batch_size=B,
  collate_fn=LeRobotFrames.collate)`` (``__getitems__``: one batched, cached decode per (camera, file))
  with ``EpisodeAwareSampler(order="frames")`` and ``order="blocks"`` (block_size 8 and 32).
- **LeRobot-style per-item decode** (informational): a LeRobot-style dataset written here, following
  LeRobot 0.6.1's ``dataset_reader.py`` and ``decode_video_frames_pyav``: per item, the data row, then
  per camera (cameras in a fresh thread pool per item, as LeRobot does) open the file, seek to the
  keyframe before the wanted time, decode forward, convert every decoded frame to RGB, pick the one
  within tolerance. Shuffled with ``RandomSampler``.

Each repetition times the limit and then every reader, in turn, so that each reader's
``fraction_of_limit`` (median over repetitions of its samples/s over the limit's in the same
repetition) compares runs made under the same machine load; ``fraction_of_limit_cpu`` does the same
with samples per CPU-second of this process (at ``num_workers=0``). Also reported at
``num_workers=0``: compressed bytes and frames decoded per sample-camera, and a sweep over
``block_size`` of decode cost and of how alike batch-mates are (the share of batch-mate pairs from the
same episode), the trade-off plotted in the docs.

The workers rows (``results["video"]["workers"]``): samples/s and samples per CPU-second (this process
and its children, psutil) of the same ``DataLoader`` with 0 and 2 workers; see :func:`bench_workers`.
"""

from __future__ import annotations

import os
import resource
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Config
from ..timing import Log, med

CAMERAS = {"observation.images.small": (96, 96), "observation.images.large": (240, 320)}
BATCH = 32
VIDEO_BLOCK_SIZE = 8


@dataclass(frozen=True)
class VideoSizes:
    """Sizes of the video section per mode (kept here so the suite's Config stays untouched)."""

    episodes: int
    lengths: tuple[int, int]
    batch: int
    workers: tuple[int, ...]
    reps: int
    sweep_blocks: tuple[int, ...]
    cameras: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(CAMERAS))
    workers_reps: int = 2  # repetitions of the workers rows (bench_workers); 0: not run


SIZES = {
    "smoke": VideoSizes(3, (10, 14), 8, (0,), 1, (1, 8), {"observation.images.small": (64, 64)}, 0),
    # quick: the readers at num_workers=0 only (the workers rows measure 2 workers)
    "quick": VideoSizes(12, (40, 60), BATCH, (0,), 3, (1, 8), workers_reps=2),
    "full": VideoSizes(16, (40, 80), BATCH, (0, 2), 5, (1, 2, 4, 8, 16, 32), workers_reps=3),
}
BASELINE = "LeRobot-style per item, per camera (RandomSampler)"
FRAMES = "LeRobotFrames, order='frames', video_threads=1"
BLOCKS = f"LeRobotFrames, order='blocks' (block_size={VIDEO_BLOCK_SIZE}), video_threads=1"
BLOCKS32 = "LeRobotFrames, order='blocks' (block_size=32), video_threads=1"
BLOCKS32_U8 = "LeRobotFrames, order='blocks' (block_size=32), video_threads=1, return_uint8=True"
FRAMES_THREADS = "LeRobotFrames, order='frames', video_threads=None (one per camera)"
BLOCKS32_THREADS = "LeRobotFrames, order='blocks' (block_size=32), video_threads=None (one per camera)"
LIMIT = "decode limit: sequential, one decoder per file, one thread"
LIMIT_U8 = "decode limit, uint8 delivery"
SWEEP_BLOCKS = (1, 2, 4, 8, 16, 32)
READERS = {  # name: (order, block_size, return_uint8, video_threads)
    FRAMES: ("frames", None, False, 1),
    BLOCKS: ("blocks", VIDEO_BLOCK_SIZE, False, 1),
    BLOCKS32: ("blocks", 32, False, 1),
    BLOCKS32_U8: ("blocks", 32, True, 1),
    FRAMES_THREADS: ("frames", None, False, None),
    BLOCKS32_THREADS: ("blocks", 32, False, None),
}


def cpu_self() -> float:
    """CPU seconds (user + system) of this process, all its threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _sequential_frames(paths: list[str]):
    """Every frame of ``paths`` in order, as ``[H, W, 3]`` uint8 views of PyAV's rgb24 conversion
    (one decoder per file, one codec thread, one reused scaler)."""
    import av

    for path in paths:
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1
            scaler = av.video.reformatter.VideoReformatter()
            for frame in container.decode(stream):
                rgb = scaler.reformat(frame, format="rgb24")
                plane = rgb.planes[0]
                yield np.ndarray(
                    (rgb.height, rgb.width, 3), np.uint8, buffer=plane, strides=(plane.line_size, 3, 1)
                )


def decode_limit(paths: dict[str, list[str]], batch: int, uint8: bool = False) -> tuple[int, float, float]:
    """The decode limit: every frame of every camera's files decoded in order and delivered as
    ``[batch, 3, H, W]`` tensors (float32 ``x / 255``, or uint8), on this thread with torch's intra-op
    threads off. Returns (samples, wall seconds, CPU seconds); a sample is one frame of every camera."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t0, c0 = time.perf_counter(), cpu_self()
        streams = [_sequential_frames(p) for p in paths.values()]
        samples = 0
        while True:
            got = batch
            for frames in streams:
                out = None
                n = 0
                for frame in frames:
                    if out is None:
                        dtype = torch.uint8 if uint8 else torch.float32
                        out = torch.empty((batch, 3, *frame.shape[:2]), dtype=dtype).numpy()
                    if uint8:
                        np.copyto(out[n], frame.transpose(2, 0, 1))
                    else:
                        np.divide(frame.transpose(2, 0, 1), np.float32(255), out=out[n], dtype=np.float32)
                    n += 1
                    if n == batch:
                        break
                got = min(got, n)
            samples += got
            if got < batch:
                break
        return samples, time.perf_counter() - t0, cpu_self() - c0
    finally:
        torch.set_num_threads(threads)


class _Counter:
    """Bytes and frames decoded by the baseline (per process; read at num_workers=0)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.packet_bytes = 0
        self.frames_decoded = 0

    def add(self, nbytes: int, frames: int) -> None:
        with self.lock:
            self.packet_bytes += nbytes
            self.frames_decoded += frames


BASELINE_COUNTER = _Counter()


def lerobot_decode_video_frames_pyav(video_path: str, timestamps: list[float], tolerance_s: float):
    """LeRobot 0.6.1 ``decode_video_frames_pyav`` (RGB, float32 output), with packets counted: the
    demux + decode loop is what ``container.decode(stream)`` does."""
    import av
    import torch

    first_ts, last_ts = min(timestamps), max(timestamps)
    loaded_frames, loaded_ts = [], []
    nbytes = 0
    with av.open(video_path) as container:
        stream = container.streams.video[0]
        container.seek(round(first_ts / stream.time_base) - 1, backward=True, any_frame=False, stream=stream)
        done = False
        for packet in container.demux(stream):
            nbytes += packet.size
            for frame in packet.decode():
                if frame.pts is None:
                    continue
                current_ts = float(frame.pts * stream.time_base)
                arr = frame.to_ndarray(format="rgb24")
                loaded_frames.append(torch.from_numpy(arr).permute(2, 0, 1).contiguous())
                loaded_ts.append(current_ts)
                if current_ts >= last_ts:
                    done = True
                    break
            if done:
                break
    BASELINE_COUNTER.add(nbytes, len(loaded_frames))
    query_ts = torch.tensor(timestamps)
    loaded_ts_t = torch.tensor(loaded_ts)
    dist = torch.cdist(query_ts[:, None], loaded_ts_t[:, None], p=1)
    min_, argmin_ = dist.min(1)
    if not (min_ < tolerance_s).all():
        raise ValueError(f"frames of {video_path} at {timestamps} violate the tolerance")
    closest_frames = torch.stack([loaded_frames[idx] for idx in argmin_])
    return closest_frames.type(torch.float32) / 255


class LeRobotStyleVideoDataset:
    """LeRobot 0.6.1's ``get_item`` for a dataset with cameras, per item (no ``__getitems__``)."""

    def __init__(self, root: str) -> None:
        import json
        from pathlib import Path

        import pyarrow as pa
        import pyarrow.parquet as pq

        from episode_sampler import LeRobotFrames

        self.root = Path(root)
        info = json.loads((self.root / "meta" / "info.json").read_text())
        self.keys = [k for k, ft in info["features"].items() if ft["dtype"] == "video"]
        self.template = info["video_path"]
        self.data = LeRobotFrames(
            root, columns=[k for k in LeRobotFrames(root).columns if k not in self.keys]
        )
        files = sorted((self.root / "meta" / "episodes").glob("*/*.parquet"))
        rows = pa.concat_tables([pq.read_table(p) for p in files]).to_pylist()
        self.episodes = {r["episode_index"]: r for r in rows}

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        item = self.data[idx]
        ep = self.episodes[int(item["episode_index"])]
        current_ts = item["timestamp"].item()

        def decode(key: str):
            shifted = [ep[f"videos/{key}/from_timestamp"] + current_ts]
            path = self.root / self.template.format(
                video_key=key,
                chunk_index=ep[f"videos/{key}/chunk_index"],
                file_index=ep[f"videos/{key}/file_index"],
            )
            return key, lerobot_decode_video_frames_pyav(str(path), shifted, 1e-4).squeeze(0)

        with ThreadPoolExecutor(max_workers=len(self.keys)) as pool:
            frames = dict(f.result() for f in [pool.submit(decode, k) for k in self.keys])
        return {**frames, **item}


def _same_episode_share(episodes_of_batches: list[np.ndarray]) -> float:
    """Share of pairs of batch-mates from the same episode."""
    same = pairs = 0
    for ep in episodes_of_batches:
        _, counts = np.unique(ep, return_counts=True)
        same += int((counts * (counts - 1) // 2).sum())
        pairs += ep.size * (ep.size - 1) // 2
    return same / pairs if pairs else 0.0


def _run_loader(
    loader: Any, batches: int, convert: Any = None, started: Any = None
) -> tuple[int, float, float, float]:
    """Take ``batches`` batches of ``loader`` after the first one: the clock starts after the first batch
    (worker start-up, imports and first file opens excluded alike) and stops before the end of the epoch
    (whose end shuts the workers down before their CPU time can be read). Returns (samples, wall s,
    CPU s of this process, CPU s of this process and its workers). ``started()`` runs when the clock
    starts (to take decode counters over the same batches)."""
    from benchmarks.workers import cpu_since, cpu_snapshot

    it = iter(loader)
    first = next(it)
    if convert is not None:
        convert(first)
    if started is not None:
        started()
    t, c, ct = time.perf_counter(), cpu_self(), cpu_snapshot()
    got = 0
    for _ in range(batches):
        batch = next(it)
        if convert is not None:
            convert(batch)
        got += len(batch["index"])
    wall, cpu, cpu_all = time.perf_counter() - t, cpu_self() - c, cpu_since(ct)
    del it
    return got, wall, cpu, cpu_all


def bench_video(cfg: Config, log: Log) -> dict[str, Any]:
    """Samples/s with cameras: the decode limit, LeRobotFrames + EpisodeAwareSampler, LeRobot-style."""
    import torch
    from torch.utils.data import DataLoader, RandomSampler

    from episode_sampler import EpisodeAwareSampler, LeRobotFrames, write_lerobot_dataset

    sz = SIZES[cfg.mode]
    lo, hi = sz.lengths
    batch_size = sz.batch
    rows: list[dict[str, Any]] = []
    sweep: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="episode-sampler-bench-video-") as tmp:
        t0 = time.perf_counter()
        per_file = max(1, sz.episodes // 2)
        write_lerobot_dataset(
            tmp, sz.episodes, lo, hi, seed=0, episodes_per_file=per_file, cameras=sz.cameras
        )
        log(f"video: wrote {sz.episodes} episodes, cameras {sz.cameras}, in {time.perf_counter() - t0:.1f} s")
        ours = {
            (u8, threads): LeRobotFrames(tmp, video_backend="pyav", return_uint8=u8, video_threads=threads)
            for u8 in (False, True)
            for threads in (1, None)
        }
        default = ours[False, None]
        base = LeRobotStyleVideoDataset(tmp)
        n = len(default)
        eps = default.episodes
        cams = len(sz.cameras)
        # every video file of each camera (LeRobot's layout: videos/<key>/chunk-*/file-*.mp4)
        paths = {
            k: sorted(str(p) for p in Path(tmp, "videos", k).glob("chunk-*/file-*.mp4")) for k in sz.cameras
        }

        def sampler(order: str, block: int | None, seed: int):
            return EpisodeAwareSampler.from_index(eps, shuffle=True, seed=seed, order=order, block_size=block)

        def loaders(workers: int, rep: int) -> dict[str, tuple[Any, Any]]:
            g = torch.Generator().manual_seed(rep)
            common = {"batch_size": batch_size, "num_workers": workers}
            out: dict[str, tuple[Any, Any]] = {
                BASELINE: (DataLoader(base, sampler=RandomSampler(base, generator=g), **common), None)
            }
            for name, (order, block, u8, threads) in READERS.items():
                ds = ours[u8, threads]
                dl = DataLoader(
                    ds, sampler=sampler(order, block, rep), collate_fn=LeRobotFrames.collate, **common
                )
                out[name] = (dl, ds)
            return out

        timed = max(1, n // batch_size - 2)  # full batches after the first, short of the epoch's end
        limits: dict[str, list[tuple[int, float, float]]] = {LIMIT: [], LIMIT_U8: []}
        runs: dict[tuple[int, str], list[dict[str, float]]] = {}
        for rep in range(sz.reps):
            limits[LIMIT].append(decode_limit(paths, batch_size))
            limits[LIMIT_U8].append(decode_limit(paths, batch_size, uint8=True))
            for workers in sz.workers:
                for name, (dl, ds) in loaders(workers, rep).items():
                    if ds is not None:
                        ds.close()  # every run starts with no open decoder, like a fresh process
                    stats0: dict[str, int] = {}

                    def started(ds: Any = ds, stats0: dict[str, int] = stats0) -> None:
                        # decode work counted over the timed batches only
                        if ds is not None:
                            stats0.update(ds.video_stats)
                        BASELINE_COUNTER.packet_bytes = BASELINE_COUNTER.frames_decoded = 0

                    got, wall, cpu, _ = _run_loader(dl, timed, started=started)
                    del dl
                    run = {"samples": got, "wall_s": wall, "cpu_s": cpu}
                    if workers == 0:
                        if ds is None:
                            nbytes, frames = BASELINE_COUNTER.packet_bytes, BASELINE_COUNTER.frames_decoded
                        else:
                            st = ds.video_stats
                            nbytes = st["packet_bytes"] - stats0["packet_bytes"]
                            frames = st["frames_decoded"] - stats0["frames_decoded"]
                        run["bytes"], run["frames"] = nbytes, frames
                    runs.setdefault((workers, name), []).append(run)
        limit = med([s / w for s, w, _ in limits[LIMIT]])
        limit_u8 = med([s / w for s, w, _ in limits[LIMIT_U8]])
        log(f"video decode limit: {limit:.0f} samples/s (uint8 delivery: {limit_u8:.0f})")
        for (workers, name), rs in runs.items():
            u8 = name in READERS and READERS[name][2]
            lim = limits[LIMIT_U8 if u8 else LIMIT]
            rates = [r["samples"] / r["wall_s"] for r in rs]
            fractions = [rate / (s / w) for rate, (s, w, _) in zip(rates, lim)]
            row: dict[str, Any] = {
                "workers": workers,
                "batch_size": batch_size,
                "method": name,
                "samples": rs[0]["samples"],
                "median_s": med([r["wall_s"] for r in rs]),
                "samples_per_s": med(rates),
                "times_s": [r["wall_s"] for r in rs],
                "limit": "uint8" if u8 else "float32",
                "fraction_of_limit": med(fractions),
                "fractions_of_limit": fractions,
            }
            if workers == 0:
                row["fraction_of_limit_cpu"] = med(
                    [(r["samples"] / r["cpu_s"]) / (s / c) for r, (s, _, c) in zip(rs, lim)]
                )
                got = sum(r["samples"] for r in rs)
                row["bytes_per_sample"] = sum(r["bytes"] for r in rs) / got
                row["frames_per_sample"] = sum(r["frames"] for r in rs) / got
                row["frames_per_sample_camera"] = row["frames_per_sample"] / cams
            rows.append(row)
            log(
                f"video workers={workers} {name}: {row['samples_per_s']:.0f} samples/s, "
                f"{row['fraction_of_limit']:.2f} of the limit"
                + (f" ({row['fraction_of_limit_cpu']:.2f} per CPU-second)" if workers == 0 else "")
            )

        # decode cost and batch-mate similarity against block size (num_workers=0, get_batch)
        want = min(n, 8 * batch_size)
        ds = default
        for block in sz.sweep_blocks:
            order, size = ("frames", None) if block == 1 else ("blocks", block)
            s = sampler(order, size, 0)
            every = np.fromiter(iter(s), dtype=np.int64, count=len(s))
            idx = every[:want]
            ds.close()
            stats0 = dict(ds.video_stats)
            t = time.perf_counter()
            for k in range(0, idx.size, batch_size):
                ds.get_batch(idx[k : k + batch_size])
            dt = time.perf_counter() - t
            st = ds.video_stats
            ep_all = eps.episode_of(every)
            full = ep_all.size // batch_size * batch_size
            sweep.append(
                {
                    "block_size": block,
                    "us_per_sample": dt / idx.size * 1e6,
                    "frames_decoded_per_sample": (st["frames_decoded"] - stats0["frames_decoded"]) / idx.size,
                    "bytes_per_sample": (st["packet_bytes"] - stats0["packet_bytes"]) / idx.size,
                    "seeks_per_sample": (st["seeks"] - stats0["seeks"]) / idx.size,
                    "same_episode_share": _same_episode_share(list(ep_all[:full].reshape(-1, batch_size))),
                }
            )
            log(f"video sweep block_size={block}: {sweep[-1]}")
        lengths = eps.lengths.astype(np.float64)
        random_share = float((lengths * (lengths - 1)).sum() / (n * (n - 1)))
        workers_rows = bench_workers(tmp, batch_size, sz.workers_reps, log) if sz.workers_reps else []
        for d in ours.values():
            d.close()
    return {
        "rows": rows,
        "limit": limit,
        "limit_uint8": limit_u8,
        "limit_runs": {
            k: [{"samples": s, "wall_s": w, "cpu_s": c} for s, w, c in v] for k, v in limits.items()
        },
        "workers": workers_rows,
        "sweep": sweep,
        "random_same_episode_share": random_share,
        "frames": n,
        "episodes": sz.episodes,
        "batch_size": batch_size,
        "block_size": VIDEO_BLOCK_SIZE,
        "cameras": {k: list(v) for k, v in sz.cameras.items()},
        "load": list(os.getloadavg()),
    }


WORKERS_BASE = "DataLoader, float32, num_workers=0"
WORKERS_BASE_1T = "DataLoader, float32, num_workers=0, video_threads=1"
WORKERS_BASE_U8 = "DataLoader, uint8, num_workers=0"
WORKERS_BASE_U8_1T = "DataLoader, uint8, num_workers=0, video_threads=1"
WORKERS_U8_1T = "DataLoader, uint8, num_workers=2, video_threads=1"
WORKERS_FLOAT = "DataLoader, float32, num_workers=2"
WORKERS_U8 = "DataLoader, uint8, num_workers=2"
WORKERS_U8_MAIN = "DataLoader, uint8, num_workers=2, float32 made in the main process"
WORKERS_THREADS = "ParallelMapper(get_batch, num_workers=2, method='thread'), float32"
WORKERS_COMPARED = (  # (short name, 2-worker pipeline, its 0-worker baseline)
    ("uint8", WORKERS_U8, WORKERS_BASE_U8),
    ("float", WORKERS_FLOAT, WORKERS_BASE),
    ("float_1t", WORKERS_FLOAT, WORKERS_BASE_1T),
    ("uint8_1t", WORKERS_U8_1T, WORKERS_BASE_U8_1T),
    ("uint8_main", WORKERS_U8_MAIN, WORKERS_BASE),
    ("threads", WORKERS_THREADS, WORKERS_BASE),
)


def to_float(batch: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """uint8 camera frames to LeRobot's float32 ``x / 255`` (the same values as float delivery), on
    this thread."""
    import torch

    for key in keys:
        batch[key] = torch.from_numpy(np.divide(batch[key].numpy(), np.float32(255), dtype=np.float32))
    return batch


def bench_workers(root: str, batch_size: int, reps: int, log: Log) -> list[dict[str, Any]]:
    """Do workers scale? ``order="frames"``, one epoch per run, samples/s and samples per CPU-second
    (this process and its workers). Runs alternate configurations within each repetition."""
    from torch.utils.data import DataLoader
    from torchdata.nodes import Loader, ParallelMapper

    from episode_sampler import EpisodeAwareSampler, EpisodeSamplerNode, LeRobotFrames

    f32 = LeRobotFrames(root, video_backend="pyav")
    one = LeRobotFrames(root, video_backend="pyav", video_threads=1)
    u8 = LeRobotFrames(root, video_backend="pyav", return_uint8=True)
    u8_one = LeRobotFrames(root, video_backend="pyav", return_uint8=True, video_threads=1)
    keys = f32.video_keys
    timed = max(1, len(f32) // batch_size - 2)  # full batches after the first, short of the epoch's end

    def dl(ds: Any, workers: int, seed: int) -> Any:
        s = EpisodeAwareSampler.from_index(ds.episodes, shuffle=True, seed=seed, order="frames")
        return DataLoader(
            ds, sampler=s, batch_size=batch_size, num_workers=workers, collate_fn=LeRobotFrames.collate
        )

    def threads(seed: int) -> Any:
        node = EpisodeSamplerNode.from_index(
            f32.episodes, batch_size=batch_size, shuffle=True, seed=seed, order="frames"
        )
        return Loader(ParallelMapper(node, f32.get_batch, num_workers=2, method="thread", in_order=True))

    configs: dict[str, tuple[int, Any, Any, Any]] = {
        WORKERS_BASE: (0, lambda seed: dl(f32, 0, seed), None, f32),
        WORKERS_BASE_1T: (0, lambda seed: dl(one, 0, seed), None, one),
        WORKERS_BASE_U8: (0, lambda seed: dl(u8, 0, seed), None, u8),
        WORKERS_BASE_U8_1T: (0, lambda seed: dl(u8_one, 0, seed), None, u8_one),
        WORKERS_U8_1T: (2, lambda seed: dl(u8_one, 2, seed), None, u8_one),
        WORKERS_FLOAT: (2, lambda seed: dl(f32, 2, seed), None, f32),
        WORKERS_U8: (2, lambda seed: dl(u8, 2, seed), None, u8),
        WORKERS_U8_MAIN: (2, lambda seed: dl(u8, 2, seed), lambda b: to_float(b, keys), u8),
        WORKERS_THREADS: (2, threads, None, f32),
    }
    runs: dict[str, list[tuple[int, float, float]]] = {}
    loads: list[float] = []
    for rep in range(reps):
        loads.append(os.getloadavg()[0])
        for name, (_, make, convert, ds) in configs.items():
            ds.close()
            got, wall, _, cpu_all = _run_loader(make(rep), timed, convert)
            runs.setdefault(name, []).append((got, wall, cpu_all))
    out = []
    for name, rs in runs.items():
        row = {
            "method": name,
            "workers": configs[name][0],
            "samples_per_s": med([g / w for g, w, _ in rs]),
            "samples_per_cpu_s": med([g / c for g, _, c in rs]),
            "cpu_per_wall": med([c / w for _, w, c in rs]),
            "runs": [{"samples": g, "wall_s": w, "cpu_s": c} for g, w, c in rs],
            "load1": loads,
        }
        out.append(row)
        log(
            f"video workers: {name}: {row['samples_per_s']:.0f} samples/s, "
            f"{row['samples_per_cpu_s']:.0f} samples/CPU-s, {row['cpu_per_wall']:.2f} cores (load {loads})"
        )
    for ds in (f32, one, u8, u8_one):
        ds.close()
    return out


def workers_ratios(section: dict[str, Any]) -> dict[str, float | None]:
    """Per comparison of :data:`WORKERS_COMPARED`: ``speed:<short>`` (samples/s) and ``cpu:<short>``
    (samples per CPU-second) of the 2-worker pipeline over its 0-worker baseline, each the median over
    repetitions of the ratio within a repetition."""
    rows = {r["method"]: r for r in section.get("workers", [])}
    out: dict[str, float | None] = {}
    for short, name, base_name in WORKERS_COMPARED:
        r, base = rows.get(name), rows.get(base_name)
        if r is None or base is None:
            out[f"speed:{short}"] = out[f"cpu:{short}"] = None
            continue
        pairs = list(zip(r["runs"], base["runs"]))
        out[f"speed:{short}"] = med(
            [(a["samples"] / a["wall_s"]) / (b["samples"] / b["wall_s"]) for a, b in pairs]
        )
        out[f"cpu:{short}"] = med(
            [(a["samples"] / a["cpu_s"]) / (b["samples"] / b["cpu_s"]) for a, b in pairs]
        )
    return out


def _row(section: dict[str, Any], workers: int, method: str) -> dict[str, Any] | None:
    for r in section["rows"]:
        if r["workers"] == workers and r["method"] == method:
            return r
    return None


def _rate(section: dict[str, Any], workers: int, method: str) -> float | None:
    r = _row(section, workers, method)
    return None if r is None else r["samples_per_s"]


VIDEO_TARGETS = (  # (name, reader, threshold): fraction of the decode limit at num_workers=0
    ("video_frames_vs_limit", FRAMES, 0.60),
    ("video_blocks8_vs_limit", BLOCKS, 0.85),
    ("video_blocks32_vs_limit", BLOCKS32, 0.95),
)


def video_targets(section: dict[str, Any]) -> list[tuple[str, str, float | None, str, float]]:
    """(name, description, value, op, threshold) of the video targets: samples/s over the decode limit's,
    at num_workers=0 (median over repetitions of the ratio within a repetition)."""
    out = []
    cams = len(section["cameras"])
    for name, method, threshold in VIDEO_TARGETS:
        row = _row(section, 0, method)
        out.append(
            (
                name,
                f"samples/s with {cams} AV1 camera(s), {method} (DataLoader, "
                "collate_fn=LeRobotFrames.collate) / the decode limit "
                f"(B={section['batch_size']}, num_workers=0)",
                None if row is None else row["fraction_of_limit"],
                ">=",
                threshold,
            )
        )
    if section.get("workers"):
        ratios = workers_ratios(section)
        out.append(
            (
                "workers_cpu_efficiency",
                "samples per CPU-second (process + workers), 2 DataLoader workers / 0 workers, both "
                "delivering uint8 (order='frames'; convert to float on the accelerator)",
                ratios["cpu:uint8"],
                ">=",
                0.9,
            )
        )
        out.append(
            (
                "workers_speedup",
                "samples/s, 2 DataLoader workers / 0 workers, both delivering uint8 (order='frames'; "
                "meant for an idle 2-core machine: see the load average)",
                ratios["speed:uint8"],
                ">=",
                1.7,
            )
        )
        out.append(
            (
                "workers_speedup_one_thread",
                "samples/s, 2 DataLoader workers / 0 workers, both delivering uint8 with one decoding "
                "thread per process (video_threads=1: the 0-worker run then uses one core, not ~1.7; "
                "order='frames', meant for an idle 2-core machine)",
                ratios["speed:uint8_1t"],
                ">=",
                1.7,
            )
        )
    return out


def video_informational(section: dict[str, Any]) -> list[tuple[str, str, float | None]]:
    """(name, description, value) of the video ratios reported without a threshold."""
    out = []
    for workers in sorted({r["workers"] for r in section["rows"]}):
        base = _rate(section, workers, BASELINE)
        for method, name in ((FRAMES, "video_frames_vs_lerobot"), (BLOCKS, "video_blocks_vs_lerobot")):
            ours = _rate(section, workers, method)
            out.append(
                (
                    f"{name}_w{workers}",
                    f"samples/s, {method} vs LeRobot-style per-item decode (num_workers={workers})",
                    ours / base if ours and base else None,
                )
            )
    row = _row(section, 0, BASELINE)
    out.append(
        (
            "video_lerobot_vs_limit",
            "samples/s of the LeRobot-style per-item decode / the decode limit (num_workers=0)",
            None if row is None else row["fraction_of_limit"],
        )
    )
    if section.get("workers"):
        ratios = workers_ratios(section)
        for short, name, base_name in WORKERS_COMPARED:
            if short == "uint8":
                continue  # the targets (and speed:uint8_1t)
            for kind, what in (("speed", "samples/s"), ("cpu", "samples per CPU-second")):
                if (short, kind) == ("uint8_1t", "speed"):
                    continue  # a target
                out.append(
                    (f"workers_{short}_{kind}", f"{what}, {name} / {base_name}", ratios[f"{kind}:{short}"])
                )
    for method, name in ((FRAMES_THREADS, "frames"), (BLOCKS32_THREADS, "blocks32")):
        row = _row(section, 0, method)
        out.append(
            (
                f"video_{name}_threads_vs_limit",
                f"samples/s, {method} / the one-thread decode limit (num_workers=0)",
                None if row is None else row["fraction_of_limit"],
            )
        )
    row = _row(section, 0, BLOCKS32_U8)
    out.append(
        (
            "video_blocks32_uint8_vs_limit",
            "samples/s, blocks of 32 with return_uint8=True / the uint8 decode limit (num_workers=0)",
            None if row is None else row["fraction_of_limit"],
        )
    )
    return out


def video_markdown(section: dict[str, Any], img: str | None = None) -> list[str]:
    """The video part of docs/performance.md: samples/s table, decode cost, block-size sweep."""
    cams = ", ".join(f"`{k}` {h}x{w}" for k, (h, w) in section["cameras"].items())
    lines = [
        f"Dataset: `write_lerobot_dataset` with {section['episodes']} episodes ({section['frames']} frames) "
        f"and cameras {cams}, AV1 (libsvtav1, yuv420p, `g=2`, crf 30) as LeRobot encodes them, decoded "
        f"with PyAV (dav1d). `DataLoader(batch_size={section['batch_size']})`, every item holds both cameras "
        "as float32 CHW in [0, 1]; ours with `collate_fn=LeRobotFrames.collate`. Steady-state throughput: "
        "the clock starts after the first batch (worker start-up excluded).",
        "",
        f"**The decode limit: {section['limit']:.0f} samples/s** (uint8 delivery: "
        f"{section['limit_uint8']:.0f}): every frame of the same files decoded in order, one decoder per "
        "file, converted into the delivered batch, on one thread. Each reader's fraction of it is the "
        "median over repetitions of its samples/s over the limit's, both measured in the same repetition "
        "(load average at the end of the section: "
        f"{', '.join(f'{x:.2f}' for x in section.get('load', []))}).",
        "",
        "| num_workers | method | samples/s | fraction of the limit | (per CPU-second) "
        "| frames decoded / sample-camera | compressed bytes decoded / sample |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in section["rows"]:
        b = f"{r['bytes_per_sample'] / 1024:.1f} KiB" if "bytes_per_sample" in r else "–"
        f = f"{r['frames_per_sample_camera']:.2f}" if "frames_per_sample_camera" in r else "–"
        c = f"{r['fraction_of_limit_cpu']:.2f}" if "fraction_of_limit_cpu" in r else "–"
        lim = " (of the uint8 limit)" if r.get("limit") == "uint8" else ""
        lines.append(
            f"| {r['workers']} | {r['method']} | {r['samples_per_s']:.0f} | "
            f"{r['fraction_of_limit']:.2f}{lim} | {c} | {f} | {b} |"
        )
    if section.get("workers"):
        lines += [
            "",
            "**Workers** (`order='frames'`, one epoch per run; CPU-seconds of the process and its workers):",
            "",
            "| pipeline | samples/s | samples / CPU-second | cores used |",
            "|---|---:|---:|---:|",
        ]
        for r in section["workers"]:
            lines.append(
                f"| {r['method']} | {r['samples_per_s']:.0f} | {r['samples_per_cpu_s']:.0f} | "
                f"{r['cpu_per_wall']:.2f} |"
            )
    lines += [
        "",
        "LeRobot-style: LeRobot 0.6.1's item path written in the benchmark (`decode_video_frames_pyav` per "
        "item and per camera: open, seek to the keyframe before, decode forward, convert every decoded "
        "frame), shuffled by `RandomSampler`.",
        "",
        "**Block order: decode cost against shuffle quality.** Per `block_size` (1 = `order='frames'`), "
        "the decode work per sample of `get_batch` and how alike batch-mates are: the share of pairs of "
        "batch-mates from the same episode (a uniform shuffle gives "
        f"{section['random_same_episode_share']:.3f} on this dataset; `order='episodes'` gives 1).",
        "",
        "| block_size | µs / sample | frames decoded / sample | seeks / sample | KiB decoded / sample "
        "| same-episode batch-mate pairs |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in section["sweep"]:
        lines.append(
            f"| {r['block_size']} | {r['us_per_sample']:.0f} | {r['frames_decoded_per_sample']:.2f} | "
            f"{r['seeks_per_sample']:.2f} | {r['bytes_per_sample'] / 1024:.1f} | "
            f"{r['same_episode_share']:.3f} |"
        )
    if img:
        lines += ["", f"![decode cost and batch-mate similarity against block size]({img})"]
    return lines
