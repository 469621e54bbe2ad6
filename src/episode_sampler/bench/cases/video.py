"""Video end to end: samples/s of ``LeRobotFrames`` with cameras vs LeRobot's per-item, per-camera decode.

The dataset: ``write_lerobot_dataset`` with two cameras, 96x96 and 240x320 (AV1, ``g=2``, as LeRobot
encodes). Every method runs through ``DataLoader(batch_size=B, num_workers=W)`` and yields the same item
dicts (numeric columns + both cameras as float32 CHW in [0, 1]):

- **baseline**: a LeRobot-style dataset written here, following LeRobot 0.6.1's ``dataset_reader.py``
  and ``decode_video_frames_pyav``: per item, the data row, then per camera (cameras in a fresh thread
  pool per item, as LeRobot does) open the file, seek to the keyframe before the wanted time, decode
  forward, convert every decoded frame to RGB, pick the one within tolerance. Shuffled with
  ``RandomSampler``.
- **ours**: ``LeRobotFrames`` (``__getitems__``: one batched, cached decode per (camera, file)) with
  ``EpisodeAwareSampler(order="frames")`` and with ``order="blocks"``.

Besides samples/s it reports, at ``num_workers=0``, the compressed video bytes and frames decoded per
sample, and a sweep over ``block_size`` of decode cost and of how alike batch-mates are (the share of
batch-mate pairs from the same episode), the trade-off plotted in the docs.
"""

from __future__ import annotations

import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..config import Config
from ..timing import Log, med

CAMERAS = {"observation.images.small": (96, 96), "observation.images.large": (240, 320)}
BATCH = 32
VIDEO_BLOCK_SIZE = 8
BASELINE = "LeRobot-style per item, per camera (RandomSampler)"
FRAMES = "LeRobotFrames, order='frames'"
BLOCKS = f"LeRobotFrames, order='blocks' (block_size={VIDEO_BLOCK_SIZE})"
SWEEP_BLOCKS = (1, 2, 4, 8, 16, 32)


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

        from ...lerobot import LeRobotFrames

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


def bench_video(cfg: Config, log: Log) -> dict[str, Any]:
    """Samples/s with cameras: LeRobot-style baseline vs LeRobotFrames + EpisodeAwareSampler."""
    import torch
    from torch.utils.data import DataLoader, RandomSampler

    from ...lerobot import LeRobotFrames, write_lerobot_dataset
    from ...sampler import EpisodeAwareSampler

    episodes, (lo, hi) = cfg.video_episodes, cfg.video_lengths
    batches = cfg.video_batches
    rows: list[dict[str, Any]] = []
    sweep: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="episode-sampler-bench-video-") as tmp:
        t0 = time.perf_counter()
        write_lerobot_dataset(
            tmp, episodes, lo, hi, seed=0, episodes_per_file=max(1, episodes // 2), cameras=CAMERAS
        )
        log(f"video: wrote {episodes} episodes with cameras {CAMERAS} in {time.perf_counter() - t0:.1f} s")
        ours = LeRobotFrames(tmp)
        base = LeRobotStyleVideoDataset(tmp)
        n = len(ours)
        eps = ours.episodes
        samples = batches * BATCH

        def sampler(order: str, block: int | None, seed: int):
            return EpisodeAwareSampler.from_index(eps, shuffle=True, seed=seed, order=order, block_size=block)

        def loaders(workers: int, rep: int) -> dict[str, Any]:
            g = torch.Generator().manual_seed(rep)
            common = {"batch_size": BATCH, "num_workers": workers}
            if workers:
                common["persistent_workers"] = False
            return {
                BASELINE: DataLoader(base, sampler=RandomSampler(base, generator=g), **common),
                FRAMES: DataLoader(ours, sampler=sampler("frames", None, rep), **common),
                BLOCKS: DataLoader(ours, sampler=sampler("blocks", VIDEO_BLOCK_SIZE, rep), **common),
            }

        for workers in cfg.video_workers:
            times: dict[str, list[float]] = {}
            decoded: dict[str, dict[str, float]] = {}
            for rep in range(cfg.reps):
                for name, dl in loaders(workers, rep).items():
                    stats0 = dict(ours.video_stats)
                    BASELINE_COUNTER.packet_bytes = BASELINE_COUNTER.frames_decoded = 0
                    t = time.perf_counter()
                    got = 0
                    for b, batch in enumerate(dl):
                        got += len(batch["index"])
                        if b + 1 == batches:
                            break
                    times.setdefault(name, []).append(time.perf_counter() - t)
                    del dl
                    if workers == 0:
                        if name == BASELINE:
                            nbytes, frames = BASELINE_COUNTER.packet_bytes, BASELINE_COUNTER.frames_decoded
                        else:
                            s = ours.video_stats
                            nbytes = s["packet_bytes"] - stats0["packet_bytes"]
                            frames = s["frames_decoded"] - stats0["frames_decoded"]
                        decoded[name] = {"bytes_per_sample": nbytes / got, "frames_per_sample": frames / got}
                ours.close()  # next repetition starts with no open decoders, like a fresh epoch
            for name, ts in times.items():
                rows.append(
                    {
                        "workers": workers,
                        "batch_size": BATCH,
                        "method": name,
                        "samples": samples,
                        "median_s": med(ts),
                        "samples_per_s": samples / med(ts),
                        "times_s": ts,
                        **decoded.get(name, {}),
                    }
                )
                log(f"video workers={workers} {name}: {samples / med(ts):.0f} samples/s")

        # decode cost and batch-mate similarity against block size (num_workers=0, get_batch)
        for block in cfg.video_sweep_blocks:
            order, size = ("frames", None) if block == 1 else ("blocks", block)
            s = sampler(order, size, 0)
            idx = np.fromiter(iter(s), dtype=np.int64, count=min(len(s), samples))
            ours.close()
            stats0 = dict(ours.video_stats)
            t = time.perf_counter()
            for k in range(0, idx.size, BATCH):
                ours.get_batch(idx[k : k + BATCH])
            dt = time.perf_counter() - t
            st = ours.video_stats
            ep_all = eps.episode_of(np.fromiter(iter(s), dtype=np.int64, count=len(s)))
            full = ep_all.size // BATCH * BATCH
            share = _same_episode_share(list(ep_all[:full].reshape(-1, BATCH)))
            sweep.append(
                {
                    "block_size": block,
                    "us_per_sample": dt / idx.size * 1e6,
                    "frames_decoded_per_sample": (st["frames_decoded"] - stats0["frames_decoded"]) / idx.size,
                    "bytes_per_sample": (st["packet_bytes"] - stats0["packet_bytes"]) / idx.size,
                    "same_episode_share": share,
                }
            )
            log(f"video sweep block_size={block}: {sweep[-1]}")
        ep_lengths = eps.lengths
        random_share = float((ep_lengths * (ep_lengths - 1)).sum() / (n * (n - 1)))
        ours.close()
    return {
        "rows": rows,
        "sweep": sweep,
        "random_same_episode_share": random_share,
        "frames": n,
        "episodes": episodes,
        "cameras": {k: list(v) for k, v in CAMERAS.items()},
    }
