"""What the sampler and the node cost per sample, against the video pipeline's time per sample.

Measured here: µs per sample of ``for i in EpisodeAwareSampler`` (one item at a time, as a DataLoader
pulls them) and of ``Loader(EpisodeSamplerNode(batch_size=32))`` (a list of 32 indices per ``next``),
both shuffled over a layout of 10^6 frames in 5,000 episodes (``--smoke``: 10^4 in 100), median of
repetitions. The target divides the larger of the two by the time per sample of the video section's
``order="frames"`` pipeline at ``num_workers=0`` (the sampler runs in that same process), measured in
the same run; without the video section the target is skipped.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from ..config import Config
from ..layouts import make_layout
from ..targets import find_row
from ..timing import Log, consume, med

BATCH = 32
SIZES = {
    "smoke": (10**4, 10**2, 2 * 10**3, 3),
    "quick": (10**6, 5000, 2 * 10**5, 5),
    "full": (10**6, 5000, 10**6, 7),
}
SAMPLER = "for i in EpisodeAwareSampler"
NODE = f"Loader(EpisodeSamplerNode(batch_size={BATCH}))"


def bench_overhead(cfg: Config, log: Log) -> dict[str, Any]:
    from torchdata.nodes import Loader

    from episode_sampler import EpisodeAwareSampler, EpisodeSamplerNode

    n, e, samples, reps = SIZES[cfg.mode]
    index = make_layout(n, e, gaps=True)
    times: dict[str, list[float]] = {SAMPLER: [], NODE: []}
    for rep in range(reps):
        sampler = EpisodeAwareSampler.from_index(index, shuffle=True, seed=rep)
        t0 = time.perf_counter()
        consume(iter(sampler), samples)
        times[SAMPLER].append((time.perf_counter() - t0) / samples)
        node = EpisodeSamplerNode(index.starts, index.ends, shuffle=True, seed=rep, batch_size=BATCH)
        batches = samples // BATCH
        t0 = time.perf_counter()
        consume(itertools.islice(iter(Loader(node)), batches))
        times[NODE].append((time.perf_counter() - t0) / (batches * BATCH))
    rows = []
    for method, ts in times.items():
        rows.append({"method": method, "us_per_sample": med(ts) * 1e6, "times_us": [t * 1e6 for t in ts]})
        log(f"overhead {method}: {rows[-1]['us_per_sample']:.3f} µs/sample")
    return {"rows": rows, "N": n, "E": e, "samples": samples, "batch_size": BATCH}


def overhead_target(
    section: dict[str, Any], video: dict[str, Any] | None
) -> tuple[str, str, float | None, str, float, str]:
    """Sampler + node cost per sample / video pipeline time per sample (frames order, 0 workers)."""
    cost = max(r["us_per_sample"] for r in section["rows"])  # µs
    value = None
    if video is not None:
        from .video import FRAMES

        row = find_row(video["rows"], workers=0, method=FRAMES)
        if row and row["samples_per_s"] > 0:
            value = 100.0 * cost / (1e6 / row["samples_per_s"])  # percent
    return (
        "overhead_vs_video",
        f"sampler and node time per sample (worst of {SAMPLER}, {NODE}) / µs per sample of the video "
        "pipeline (order='frames', num_workers=0), in percent",
        value,
        "<=",
        1.0,
        "%",
    )
