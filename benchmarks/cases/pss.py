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
from ..datasets import PARQUET_SIZES, parquet_dataset, video_dataset
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
ds = LeRobotDataset("local/episode-sampler-bench", root={root!r}, **{kwargs!r})
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
    batches: int  # batches taken on the Parquet-only dataset before measuring
    video_batches: int  # on the video dataset (0: not run)
    reps: int
    lerobot: bool


SIZES = {
    "smoke": PssSizes(2, 0, 1, False),
    "quick": PssSizes(200, 6, 1, True),
    "full": PssSizes(400, 6, 3, True),
}


def bench_pss(cfg: Config, log: Log) -> dict[str, Any]:
    """Total PSS (main + 2 DataLoader workers) after ``batches`` batches, per method and dataset."""
    if not os.path.exists("/proc/self/smaps_rollup"):
        return {"rows": [], "note": "PSS needs Linux /proc/<pid>/smaps_rollup: not measured"}
    sz = SIZES[cfg.mode]
    data = PARQUET_SIZES[cfg.mode]
    note = lerobot_real.available() if sz.lerobot else "real LeRobot not run in --smoke"
    runs: dict[tuple[str, str], tuple[str, str, int]] = {}
    datasets = [("parquet", str(parquet_dataset(data, log)), sz.batches, {})]
    if sz.video_batches:  # both sides decode with PyAV
        datasets.append(
            ("video", str(video_dataset(cfg.mode, log)), sz.video_batches, {"video_backend": "pyav"})
        )
    for kind, root, batches, kwargs in datasets:
        fmt = {"root": root, "batch": BATCH, "workers": WORKERS, "batches": batches}
        runs[(OURS, kind)] = (
            lerobot_real.ours_python(),
            PSS_HELPERS + OURS_SNIPPET.format(kwargs=kwargs, **fmt),
            batches,
        )
        if cfg.mode != "smoke" and kind == "parquet":
            runs[(OURS_NO_CACHE, kind)] = (
                lerobot_real.ours_python(),
                PSS_HELPERS + OURS_SNIPPET.format(kwargs={**kwargs, "column_cache_bytes": 0}, **fmt),
                batches,
            )
        if note is None:
            python = lerobot_real.lerobot_python()
            assert python is not None
            runs[(LEROBOT, kind)] = (
                python,
                PSS_HELPERS + LEROBOT_SNIPPET.format(kwargs=kwargs, **fmt),
                batches,
            )
    samples: dict[tuple[str, str], list[dict[str, Any]]] = {k: [] for k in runs}
    for rep in range(sz.reps):
        for key, (python, code, _) in runs.items():
            root = next(r for k, r, _, _ in datasets if k == key[1])
            env = {"HF_DATASETS_CACHE": root + "-hf-cache", "HF_HOME": root + "-hf-home"}
            samples[key].append(lerobot_real.run_snippet(python, code, env=env))
        log(f"pss: repetition {rep + 1}/{sz.reps} done")
    rows = []
    for (name, kind), outs in samples.items():
        row = {
            "method": name,
            "data": kind,
            "workers": WORKERS,
            "batches": runs[(name, kind)][2],
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
            f"pss {kind} {name}: total {row['total_pss_mib']:.0f} MiB (main {row['main_pss_mib']:.0f}, "
            f"workers {row['worker_pss_mib']:.0f}, of which anonymous {row['worker_anon_mib']:.0f})"
        )
    return {
        "rows": rows,
        "episodes": data.episodes,
        "files": data.files,
        "batch_size": BATCH,
        "note": note,
    }


def pss_targets(section: dict[str, Any]) -> list[tuple[str, str, float | None, str, float, str]]:
    """(name, description, value, op, threshold, unit): ours / LeRobot total PSS, per dataset."""
    out = []
    for kind, name, what in (
        (
            "parquet",
            "pss_vs_lerobot",
            f"Parquet only, {section.get('episodes')} episodes, {section.get('files')} files",
        ),
        ("video", "pss_video_vs_lerobot", "2 AV1 cameras (the video section's dataset), PyAV on both sides"),
    ):
        rows = {r["method"]: r for r in section.get("rows", []) if r.get("data", "parquet") == kind}
        ours, lr = rows.get(OURS), rows.get(LEROBOT)
        if kind == "video" and ours is None:
            continue  # not run (--smoke)
        out.append(
            (
                name,
                f"total PSS (main + {WORKERS} DataLoader workers) after {ours['batches'] if ours else '?'} "
                f"batches of {BATCH}, ours / real LeRobotDataset, {what}",
                ours["total_pss_mib"] / lr["total_pss_mib"] if ours and lr else None,
                "<=",
                0.6,
                "x",
            )
        )
    return out


def pss_markdown(section: dict[str, Any]) -> list[str]:
    """The PSS table of docs/performance.md."""
    if not section.get("rows"):
        return [f"({section.get('note', 'not measured')})"]
    lines = [
        f"Total PSS with {WORKERS} DataLoader workers: Parquet only, {section['episodes']:,} episodes in "
        f"{section['files']} data files, and the video section's dataset (2 AV1 cameras, PyAV on both "
        f"sides); shuffled, batch {section['batch_size']}, measured after the batches shown (workers "
        "alive). PSS splits shared pages between the processes sharing them, so it adds up. MiB.",
        "",
        "| data | method | batches | total | main process | workers | workers' anonymous memory |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in section["rows"]:
        lines.append(
            f"| {r.get('data', 'parquet')} | {r['method']} | {r['batches']} | {r['total_pss_mib']:.0f} | "
            f"{r['main_pss_mib']:.0f} | {r['worker_pss_mib']:.0f} | {r['worker_anon_mib']:.0f} |"
        )
    if section.get("note"):
        lines += ["", f"({section['note']})"]
    return lines
