"""Datasets on disk shared by the cases of one run, written once and removed when the run ends."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .timing import Log


@dataclass(frozen=True)
class ParquetSizes:
    """A Parquet-only LeRobot v3 dataset: ``episodes`` episodes of ``lengths`` frames (uniform),
    ``per_file`` episodes per data file."""

    episodes: int
    lengths: tuple[int, int]
    per_file: int

    @property
    def files(self) -> int:
        return -(-self.episodes // self.per_file)


#: 10^6 frames (about: lengths average 200), 5,000 episodes, 100 data files
PARQUET_SIZES = {
    "smoke": ParquetSizes(40, (5, 15), 10),
    "quick": ParquetSizes(5000, (150, 250), 50),
    "full": ParquetSizes(5000, (150, 250), 50),
}

_written: dict[ParquetSizes, Path] = {}


def parquet_dataset(sizes: ParquetSizes, log: Log) -> Path:
    """The dataset of ``sizes`` (``write_lerobot_dataset``, seed 0, one chunk directory), written on
    first use in this process into a temporary directory deleted at exit."""
    if sizes in _written:
        return _written[sizes]
    from episode_sampler import write_lerobot_dataset

    tmp = Path(tempfile.mkdtemp(prefix="episode-sampler-bench-parquet-"))
    atexit.register(shutil.rmtree, tmp, True)
    root = tmp / "ds"
    t0 = time.perf_counter()
    index = write_lerobot_dataset(
        root,
        sizes.episodes,
        *sizes.lengths,
        seed=0,
        episodes_per_file=sizes.per_file,
        files_per_chunk=sizes.files,
    )
    log(
        f"wrote a Parquet-only dataset: {index.num_frames} frames, {sizes.episodes} episodes, "
        f"{sizes.files} data files, in {time.perf_counter() - t0:.1f} s"
    )
    _written[sizes] = root
    return root


_videos: dict[str, Path] = {}


def video_dataset(mode: str, log: Log) -> Path:
    """A small dataset with the video section's two AV1 cameras (its ``--quick`` sizes, or its
    ``--smoke`` sizes in ``--smoke``), written on first use in this process, deleted at exit."""
    if mode in _videos:
        return _videos[mode]
    from episode_sampler import write_lerobot_dataset

    from .cases.video import SIZES

    sz = SIZES["smoke" if mode == "smoke" else "quick"]
    tmp = Path(tempfile.mkdtemp(prefix="episode-sampler-bench-video-"))
    atexit.register(shutil.rmtree, tmp, True)
    root = tmp / "ds"
    t0 = time.perf_counter()
    write_lerobot_dataset(
        root, sz.episodes, *sz.lengths, seed=0, episodes_per_file=max(1, sz.episodes // 2), cameras=sz.cameras
    )
    took = time.perf_counter() - t0
    log(f"wrote a video dataset: {sz.episodes} episodes, cameras {sz.cameras}, in {took:.1f} s")
    _videos[mode] = root
    return root
