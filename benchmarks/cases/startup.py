"""Time to first batch in fresh processes: ours against the real ``LeRobotDataset`` DataLoader.

The dataset: Parquet only, written once per run (``write_lerobot_dataset``, 10^6 frames, 5,000
episodes, 100 data files in ``--quick`` and full). Every run is a fresh process (page cache warm: one
unmeasured run per side first) that imports, builds the dataset and the sampler, optionally resumes,
and takes the first batch of ``DataLoader(batch_size=32, num_workers=0)``:

- **ours**: ``LeRobotFrames(root)`` + ``EpisodeAwareSampler.from_lerobot(dataset, shuffle=True)``;
  resumed: ``load_state_dict`` of a state saved in the middle of the epoch;
- **LeRobot** (0.6.1, in its own venv, :mod:`benchmarks.peers.lerobot_real`): ``LeRobotDataset`` +
  its ``EpisodeAwareSampler`` built as ``lerobot_train.py`` builds it; resumed as ``--resume`` does,
  ``sampler.load_state_dict(compute_sampler_state(step, len(sampler), 32, 1))`` at the same position.

Reported per method (medians over runs): process start to first batch, imports, the dataset, the
sampler (with the resume), the first batch. Our import time is ``import episode_sampler`` (with the
node and ``LeRobotFrames``) after ``import torch`` in the same fresh process: what we add to torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..datasets import PARQUET_SIZES, parquet_dataset
from ..peers import lerobot_real
from ..timing import Log, med

BATCH = 32
OURS, LEROBOT = "ours", "LeRobot"

# Each snippet prints one JSON line; times are perf_counter differences inside the process, and
# "first_batch_t" the wall clock (time.time()) when the first batch is out.
OURS_SNIPPET = """
import time, json
t0 = time.perf_counter()
import torch
t_torch = time.perf_counter()
from episode_sampler import EpisodeAwareSampler, EpisodeSamplerNode, LeRobotFrames
t_import = time.perf_counter()
ds = LeRobotFrames({root!r})
t_ds = time.perf_counter()
sampler = EpisodeAwareSampler.from_lerobot(ds, shuffle=True, seed=0)
state = {state!r}
if state is not None:
    sampler.load_state_dict(json.loads(state))
t_sampler = time.perf_counter()
batch = next(iter(torch.utils.data.DataLoader(ds, batch_size={batch}, sampler=sampler)))
t_batch = time.perf_counter()
first_batch_t = time.time()
assert len(batch["index"]) == {batch}
print(json.dumps({{"torch_s": t_torch - t0, "import_s": t_import - t0, "ours_import_s": t_import - t_torch,
    "dataset_s": t_ds - t_import, "sampler_s": t_sampler - t_ds, "batch_s": t_batch - t_sampler,
    "first_batch_t": first_batch_t, "first_index": int(batch["index"][0])}}))
"""

LEROBOT_SNIPPET = """
import time, json
t0 = time.perf_counter()
import torch
t_torch = time.perf_counter()
from lerobot.datasets import EpisodeAwareSampler, LeRobotDataset, compute_sampler_state
t_import = time.perf_counter()
ds = LeRobotDataset("local/episode-sampler-bench", root={root!r})
t_ds = time.perf_counter()
sampler = EpisodeAwareSampler(
    ds.meta.episodes["dataset_from_index"],
    ds.meta.episodes["dataset_to_index"],
    episode_indices_to_use=ds.episodes,
    drop_n_last_frames=0,
    shuffle=True,
    seed=0,
)
step = {step!r}
if step is not None:
    sampler.load_state_dict(compute_sampler_state(step, len(sampler), {batch}, 1))
t_sampler = time.perf_counter()
batch = next(iter(torch.utils.data.DataLoader(ds, batch_size={batch}, sampler=sampler)))
t_batch = time.perf_counter()
first_batch_t = time.time()
assert len(batch["index"]) == {batch}
print(json.dumps({{"torch_s": t_torch - t0, "import_s": t_import - t0, "dataset_s": t_ds - t_import,
    "sampler_s": t_sampler - t_ds, "batch_s": t_batch - t_sampler, "first_batch_t": first_batch_t,
    "first_index": int(batch["index"][0])}}))
"""


@dataclass(frozen=True)
class StartupSizes:
    reps: int  # measured runs per method (after one unmeasured warm-up run per side)
    lerobot: bool  # run the real LeRobot (skipped in --smoke: its import alone takes seconds)


SIZES = {
    "smoke": StartupSizes(1, False),
    "quick": StartupSizes(3, True),
    "full": StartupSizes(5, True),
}
FIELDS = ("first_batch_s", "import_s", "dataset_s", "sampler_s", "setup_s", "batch_s")


def _resume_step(num_frames: int) -> int:
    """A training step in the middle of the first epoch (batch 32, one process)."""
    return (num_frames // 2) // BATCH


def _our_state(root: Any, start_index: int) -> str:
    """Our sampler's state after ``start_index`` samples of epoch 0, as a training run saves it."""
    from episode_sampler import EpisodeAwareSampler
    from episode_sampler.lerobot import read_episode_index

    sampler = EpisodeAwareSampler.from_index(read_episode_index(root), shuffle=True, seed=0)
    sampler.load_state_dict({"epoch": 0, "start_index": start_index})
    return json.dumps(sampler.state_dict())


def bench_startup(cfg: Config, log: Log) -> dict[str, Any]:
    """Process start to first batch (fresh and resumed), set-up and imports, ours vs the real LeRobot."""
    from episode_sampler.lerobot import read_episode_index

    sz = SIZES[cfg.mode]
    data = PARQUET_SIZES[cfg.mode]
    root = str(parquet_dataset(data, log))
    num_frames = read_episode_index(root).num_frames
    step = _resume_step(num_frames)
    state = _our_state(root, step * BATCH)
    note = lerobot_real.available() if sz.lerobot else "real LeRobot not run in --smoke"
    lerobot_python = lerobot_real.lerobot_python() if note is None else None

    runs: dict[tuple[str, str], dict[str, Any]] = {}
    if lerobot_python is not None:
        runs[(LEROBOT, "fresh")] = {"python": lerobot_python, "code": LEROBOT_SNIPPET, "args": {"step": None}}
        runs[(LEROBOT, "resumed")] = {
            "python": lerobot_python,
            "code": LEROBOT_SNIPPET,
            "args": {"step": step},
        }
    runs[(OURS, "fresh")] = {
        "python": lerobot_real.ours_python(),
        "code": OURS_SNIPPET,
        "args": {"state": None},
    }
    runs[(OURS, "resumed")] = {
        "python": lerobot_real.ours_python(),
        "code": OURS_SNIPPET,
        "args": {"state": state},
    }

    def run(key: tuple[str, str]) -> dict[str, Any]:
        r = runs[key]
        code = r["code"].format(root=root, batch=BATCH, **r["args"])
        # the Hugging Face datasets cache (LeRobot's Arrow copy of the data) stays inside the run's dir
        env = {"HF_DATASETS_CACHE": str(root) + "-hf-cache", "HF_HOME": str(root) + "-hf-home"}
        out = lerobot_real.run_snippet(r["python"], code, env=env)
        out["first_batch_s"] = out["first_batch_t"] - out["spawn_t"]
        out["setup_s"] = out["dataset_s"] + out["sampler_s"]
        return out

    if cfg.mode != "smoke":  # warm the page cache (and LeRobot's datasets cache) once per side
        for key in runs:
            if key[1] == "fresh":
                run(key)
                log(f"startup: warm-up run of {key[0]} done")
    samples: dict[tuple[str, str], list[dict[str, Any]]] = {k: [] for k in runs}
    for rep in range(sz.reps):
        for key in runs:
            samples[key].append(run(key))
        log(f"startup: repetition {rep + 1}/{sz.reps} done")

    rows = []
    for (method, case), outs in samples.items():
        row: dict[str, Any] = {"method": method, "case": case, "runs": len(outs)}
        for f in FIELDS:
            row[f] = med([o[f] for o in outs])
            row[f + "_all"] = [o[f] for o in outs]
        row["torch_s"] = med([o["torch_s"] for o in outs])
        if method == OURS:
            row["ours_import_s"] = med([o["ours_import_s"] for o in outs])
        firsts = {o["first_index"] for o in outs}
        row["first_index"] = sorted(firsts)
        rows.append(row)
        log(
            f"startup {method} {case}: first batch {row['first_batch_s']:.2f} s after process start "
            f"(imports {row['import_s']:.2f}, dataset {row['dataset_s']:.3f}, "
            f"sampler {row['sampler_s']:.3f}, batch {row['batch_s']:.3f})"
        )
    ours_imports = [o["ours_import_s"] for k, outs in samples.items() if k[0] == OURS for o in outs]
    return {
        "rows": rows,
        "frames": num_frames,
        "episodes": data.episodes,
        "files": data.files,
        "batch_size": BATCH,
        "resume_step": step,
        "ours_import_over_torch_s": med(ours_imports),
        "lerobot_note": note,
    }


def _row(section: dict[str, Any], method: str, case: str) -> dict[str, Any] | None:
    return next((r for r in section["rows"] if r["method"] == method and r["case"] == case), None)


def startup_targets(section: dict[str, Any]) -> list[tuple[str, str, float | None, str, float, str]]:
    """(name, description, value, op, threshold, unit) of the startup targets."""
    size = f"{section['frames']:,} frames, {section['episodes']:,} episodes, {section['files']} files"
    out: list[tuple[str, str, float | None, str, float, str]] = []
    for field, name, what, threshold in (
        ("first_batch_s", "startup_first_batch_vs_lerobot", "process start to first batch", 0.4),
        ("setup_s", "startup_setup_vs_lerobot", "set-up after imports (dataset + sampler)", 1.0),
    ):
        ratios = []
        for case in ("fresh", "resumed"):
            ours, lr = _row(section, OURS, case), _row(section, LEROBOT, case)
            if ours and lr:
                ratios.append(ours[field] / lr[field])
        out.append(
            (
                name,
                f"{what}, ours / real LeRobotDataset + its EpisodeAwareSampler, fresh processes, warm "
                f"cache, B={section['batch_size']} (worst of fresh, resumed), {size}",
                max(ratios) if ratios else None,
                "<=",
                threshold,
                "x",
            )
        )
    out.append(
        (
            "import_over_torch",
            "import episode_sampler (+ node, LeRobotFrames) after import torch, fresh processes",
            section["ours_import_over_torch_s"],
            "<=",
            0.3,
            "s",
        )
    )
    return out


def startup_markdown(section: dict[str, Any]) -> list[str]:
    """The startup table of docs/performance.md."""
    lines = [
        f"Dataset: Parquet only, {section['frames']:,} frames, {section['episodes']:,} episodes, "
        f"{section['files']} data files. Fresh processes, warm page cache, first batch of "
        f"`DataLoader(batch_size={section['batch_size']}, num_workers=0)`; resumed at step "
        f"{section['resume_step']:,}. Medians; seconds.",
        "",
        "| method | case | process start to first batch | imports | dataset | sampler | first batch |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in section["rows"]:
        lines.append(
            f"| {r['method']} | {r['case']} | {r['first_batch_s']:.2f} | {r['import_s']:.2f} | "
            f"{r['dataset_s']:.3f} | {r['sampler_s']:.3f} | {r['batch_s']:.3f} |"
        )
    if section.get("lerobot_note"):
        lines += ["", f"({section['lerobot_note']})"]
    return lines
