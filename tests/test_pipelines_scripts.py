"""pipelines/train_loader.py and pipelines/stateful_dataloader.py as scripts: help, usage errors, and
exact resume on one process and from a torchrun run of 2 ranks (elastic: resumed by 1 process).

Every expectation is the brute-force epoch order of ``tests/reference.py`` (LeRobot-style valid-frame
lists and a pure-Python Feistel), sharded by hand: never the scripts' own output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from episode_sampler import write_lerobot_dataset
from reference import episodes_lists, reference_epoch, shard

PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"
SCRIPTS = ["train_loader.py", "stateful_dataloader.py"]
EPISODES, BATCH, SEED = 20, 16, 3


def run(script: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    return subprocess.run(
        [sys.executable, str(PIPELINES / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def read_indices(path: Path) -> list[list[int]]:
    return [json.loads(line)["indices"] for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[list[int]]]:
    """A dataset on disk and its two epochs' global order, computed independently."""
    root = tmp_path_factory.mktemp("pipelines") / "ds"
    index = write_lerobot_dataset(root, num_episodes=EPISODES, seed=0)  # what --synthetic 20 writes
    eps = episodes_lists(index.starts.tolist(), index.ends.tolist())
    return root, [reference_epoch(eps, "frames", None, "feistel", SEED, e) for e in range(2)]


def batches(stream: list[int]) -> list[list[int]]:
    return [stream[i : i + BATCH] for i in range(0, len(stream), BATCH)]


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_and_usage_errors(script: str) -> None:
    proc = run(script, "--help")
    assert proc.returncode == 0 and "--checkpoint" in proc.stdout and "--workers" in proc.stdout
    proc = run(script, "--batch-size", "0")
    assert proc.returncode == 2 and "error:" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("script", "workers_before", "workers_after"),
    [("train_loader.py", "0", "2"), ("stateful_dataloader.py", "2", "2")],
)
def test_single_process_resume_is_exact(
    script: str, workers_before: str, workers_after: str, dataset, tmp_path: Path
) -> None:
    root, epochs = dataset
    ckpt, log = tmp_path / "ckpt" / "state.json", tmp_path / "steps.jsonl"
    common = ["--root", str(root), "--batch-size", str(BATCH), "--seed", str(SEED), "--epochs", "2"]
    first = run(
        script,
        *common,
        "--steps",
        "23",
        "--checkpoint",
        str(ckpt),
        "--checkpoint-every",
        "5",
        "--workers",
        workers_before,
        "--log-indices",
        str(log),
    )
    assert first.returncode == 0, first.stderr
    assert json.loads(ckpt.read_text())["step"] == 23
    second = run(
        script, *common, "--checkpoint", str(ckpt), "--workers", workers_after, "--log-indices", str(log)
    )
    assert second.returncode == 0, second.stderr
    assert "resumed from" in second.stdout
    assert read_indices(log) == batches(epochs[0]) + batches(epochs[1])


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_torchrun_two_ranks_then_one_process(script: str, dataset, tmp_path: Path) -> None:
    """2 ranks under torchrun (gloo) take positions r, r + 2, ...; one process resumes the rest exactly."""
    _, epochs = dataset
    ckpt, log = tmp_path / "state.json", tmp_path / "steps.jsonl"
    args = ["--synthetic", str(EPISODES), "--batch-size", str(BATCH), "--seed", str(SEED), "--epochs", "2"]
    steps = 7
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(PIPELINES / script),
            *args,
            "--steps",
            str(steps),
            "--checkpoint",
            str(ckpt),
            "--log-indices",
            str(log),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for rank in range(2):
        got = [i for b in read_indices(Path(f"{log}.rank{rank}")) for i in b]
        assert got == shard(epochs[0], rank, 2, drop_last=False)[: steps * BATCH]
    consumed = 2 * steps * BATCH  # the global prefix both ranks together consumed

    resumed = run(script, *args, "--checkpoint", str(ckpt), "--log-indices", str(tmp_path / "after.jsonl"))
    assert resumed.returncode == 0, resumed.stderr
    assert "saved by 2 rank(s), now 1" in resumed.stdout
    assert read_indices(tmp_path / "after.jsonl") == batches(epochs[0][consumed:]) + batches(epochs[1])
