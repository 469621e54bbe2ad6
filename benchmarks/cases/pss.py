"""Total PSS of a training data pipeline with DataLoader workers: ours vs the real LeRobot.

Each method runs in a fresh process over the same Parquet-only dataset (:mod:`benchmarks.datasets`):
dataset + sampler (shuffled) + ``DataLoader(batch_size=32, num_workers=2)``, ``batches`` batches taken,
then, with the workers alive, the PSS (proportional set size: shared pages split between the
processes sharing them) of the main process and of each worker, from ``/proc/<pid>/smaps_rollup``.
PSS adds up across processes, unlike RSS, which counts shared pages (torch's libraries, a forked
parent's heap) once per process.

- **ours**: ``LeRobotFrames`` + ``EpisodeAwareSampler.from_lerobot(dataset)``; also with
  ``column_cache_bytes=0`` (no decoded columns kept) to show what the column cache costs;
- **LeRobot** (0.6.1, its own venv): ``LeRobotDataset`` + its ``EpisodeAwareSampler``.

Linux only (``smaps_rollup``); elsewhere the section reports a note and no rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..datasets import PARQUET_SIZES, parquet_dataset
from ..peers import lerobot_real
from ..timing import Log, med

BATCH = 32
WORKERS = 2

PSS_HELPERS = """
import glob, json, os, time
def pss_kib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        out = {}
        for line in f:
            parts = line.split()
            if parts[0] in ("Rss:", "Pss:", "Pss_Anon:", "Pss_File:", "Pss_Shmem:"):
                out[parts[0][:-1].lower()] = int(parts[1])
        return out
def children(pid):
    kids = []
    for path in glob.glob(f"/proc/{pid}/task/*/children"):
        with open(path) as f:
            kids += [int(c) for c in f.read().split()]
    return sorted(set(kids))
def measure(loader, batches, before):
    it = iter(loader)
    for _ in range(batches):
        next(it)
    main = pss_kib(os.getpid())
    workers = [pss_kib(c) for c in children(os.getpid())]
    print(json.dumps({"main": main, "workers": workers, "before_loader": before,
        "total_pss_kib": main["pss"] + sum(w["pss"] for w in workers)}))
"""

OURS_SNIPPET = """
import torch
from episode_sampler import EpisodeAwareSampler, LeRobotFrames
ds = LeRobotFrames({root!r}, **{kwargs!r})
sampler = EpisodeAwareSampler.from_lerobot(ds, shuffle=True, seed=0)
before = pss_kib(os.getpid())
measure(torch.utils.data.DataLoader(ds, batch_size={batch}, sampler=sampler, num_workers={workers}),
    {batches}, before)
"""

LEROBOT_SNIPPET = """
import torch
from lerobot.datasets import EpisodeAwareSampler, LeRobotDataset
ds = LeRobotDataset("local/episode-sampler-bench", root={root!r})
sampler = EpisodeAwareSampler(ds.meta.episodes["dataset_from_index"], ds.meta.episodes["dataset_to_index"],
    episode_indices_to_use=ds.episodes, shuffle=True, seed=0)
before = pss_kib(os.getpid())
measure(torch.utils.data.DataLoader(ds, batch_size={batch}, sampler=sampler, num_workers={workers}),
    {batches}, before)
"""

OURS = "ours"
OURS_NO_CACHE = "ours, column_cache_bytes=0"
LEROBOT = "LeRobot"


@dataclass(frozen=True)
class PssSizes:
    batches: int
    reps: int
    lerobot: bool


SIZES = {
    "smoke": PssSizes(2, 1, False),
    "quick": PssSizes(200, 1, True),
    "full": PssSizes(400, 3, True),
}


def bench_pss(cfg: Config, log: Log) -> dict[str, Any]:
    """Total PSS (main + 2 DataLoader workers) after ``batches`` batches, per method."""
    if not os.path.exists("/proc/self/smaps_rollup"):
        return {"rows": [], "note": "PSS needs Linux /proc/<pid>/smaps_rollup: not measured"}
    sz = SIZES[cfg.mode]
    data = PARQUET_SIZES[cfg.mode]
    root = str(parquet_dataset(data, log))
    note = lerobot_real.available() if sz.lerobot else "real LeRobot not run in --smoke"
    env = {"HF_DATASETS_CACHE": root + "-hf-cache", "HF_HOME": root + "-hf-home"}
    fmt = {"root": root, "batch": BATCH, "workers": WORKERS, "batches": sz.batches}
    runs: dict[str, tuple[str, str]] = {
        OURS: (lerobot_real.ours_python(), PSS_HELPERS + OURS_SNIPPET.format(kwargs={}, **fmt)),
    }
    if cfg.mode != "smoke":
        runs[OURS_NO_CACHE] = (
            lerobot_real.ours_python(),
            PSS_HELPERS + OURS_SNIPPET.format(kwargs={"column_cache_bytes": 0}, **fmt),
        )
    if note is None:
        python = lerobot_real.lerobot_python()
        assert python is not None
        runs[LEROBOT] = (python, PSS_HELPERS + LEROBOT_SNIPPET.format(**fmt))
    samples: dict[str, list[dict[str, Any]]] = {k: [] for k in runs}
    for rep in range(sz.reps):
        for name, (python, code) in runs.items():
            samples[name].append(lerobot_real.run_snippet(python, code, env=env))
        log(f"pss: repetition {rep + 1}/{sz.reps} done")
    rows = []
    for name, outs in samples.items():
        row = {
            "method": name,
            "workers": WORKERS,
            "batches": sz.batches,
            "total_pss_mib": med([o["total_pss_kib"] for o in outs]) / 1024,
            "main_pss_mib": med([o["main"]["pss"] for o in outs]) / 1024,
            "worker_pss_mib": med([sum(w["pss"] for w in o["workers"]) for o in outs]) / 1024,
            "worker_anon_mib": med([sum(w.get("pss_anon", 0) for w in o["workers"]) for o in outs]) / 1024,
            "main_before_loader_pss_mib": med([o["before_loader"]["pss"] for o in outs]) / 1024,
            "workers_seen": med([len(o["workers"]) for o in outs]),
            "samples": outs,
        }
        rows.append(row)
        log(
            f"pss {name}: total {row['total_pss_mib']:.0f} MiB (main {row['main_pss_mib']:.0f}, "
            f"workers {row['worker_pss_mib']:.0f}, of which anonymous {row['worker_anon_mib']:.0f})"
        )
    return {
        "rows": rows,
        "episodes": data.episodes,
        "files": data.files,
        "batch_size": BATCH,
        "note": note,
    }


def pss_target(section: dict[str, Any]) -> tuple[str, str, float | None, str, float, str]:
    rows = {r["method"]: r for r in section.get("rows", [])}
    ours, lr = rows.get(OURS), rows.get(LEROBOT)
    return (
        "pss_vs_lerobot",
        f"total PSS (main + {WORKERS} DataLoader workers) after "
        f"{ours['batches'] if ours else '?'} batches of {BATCH}, ours / real LeRobotDataset, "
        f"Parquet only, {section.get('episodes')} episodes, {section.get('files')} files",
        ours["total_pss_mib"] / lr["total_pss_mib"] if ours and lr else None,
        "<=",
        0.6,
        "x",
    )


def pss_markdown(section: dict[str, Any]) -> list[str]:
    """The PSS table of docs/performance.md."""
    if not section.get("rows"):
        return [f"({section.get('note', 'not measured')})"]
    lines = [
        f"Total PSS with {WORKERS} DataLoader workers: Parquet only, {section['episodes']:,} episodes in "
        f"{section['files']} data files, shuffled, batch {section['batch_size']}, after "
        f"{section['rows'][0]['batches']} batches (workers alive). PSS splits shared pages between the "
        "processes sharing them, so it adds up. MiB.",
        "",
        "| method | total | main process | workers | workers' anonymous memory |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in section["rows"]:
        lines.append(
            f"| {r['method']} | {r['total_pss_mib']:.0f} | {r['main_pss_mib']:.0f} | "
            f"{r['worker_pss_mib']:.0f} | {r['worker_anon_mib']:.0f} |"
        )
    if section.get("note"):
        lines += ["", f"({section['note']})"]
    return lines
