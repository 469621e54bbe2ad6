"""pipelines/train_loader.py and pipelines/stateful_dataloader.py as scripts: help, usage errors, and
exact resume on one process and from a torchrun run of 2 ranks (elastic: resumed by 1 process).

Every expectation is the brute-force epoch order of ``tests/helpers/reference.py`` (LeRobot-style valid-frame
lists and a pure-Python Feistel), sharded by hand: never the scripts' own output.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from episode_sampler import write_lerobot_dataset
from tests.helpers.reference import episodes_lists, reference_epoch, shard

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"
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
    index = write_lerobot_dataset(root, num_episodes=EPISODES, seed=0)  # what --episodes 20 writes
    eps = episodes_lists(index.starts.tolist(), index.ends.tolist())
    return root, [reference_epoch(eps, "frames", None, "feistel", SEED, e) for e in range(2)]


def batches(stream: list[int]) -> list[list[int]]:
    return [stream[i : i + BATCH] for i in range(0, len(stream), BATCH)]


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_help_and_usage_errors(script: str) -> None:
    proc = run(script, "--help")
    assert proc.returncode == 0 and "--checkpoint" in proc.stdout and "--workers" in proc.stdout
    proc = run(script, "--batch-size", "0")
    assert proc.returncode == 2 and "error:" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
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
    refused = run(script, *common, "--checkpoint", str(ckpt))  # an existing checkpoint needs --resume
    assert refused.returncode == 2 and "--resume" in refused.stderr.splitlines()[-1]
    assert json.loads(ckpt.read_text())["step"] == 23  # untouched
    second = run(
        script,
        *common,
        "--checkpoint",
        str(ckpt),
        "--resume",
        "--workers",
        workers_after,
        "--log-indices",
        str(log),
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
    args = ["--episodes", str(EPISODES), "--batch-size", str(BATCH), "--seed", str(SEED), "--epochs", "2"]
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

    after = tmp_path / "after.jsonl"
    resumed = run(script, *args, "--checkpoint", str(ckpt), "--resume", "--log-indices", str(after))
    assert resumed.returncode == 0, resumed.stderr
    assert "saved by 2 rank(s), now 1" in resumed.stdout
    assert read_indices(tmp_path / "after.jsonl") == batches(epochs[0][consumed:]) + batches(epochs[1])


# ---------------------------------------------------------------------------------------------- shared flags
def load_script(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"pipeline_{name[:-3]}", PIPELINES / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# every script that builds its flags on the shared parser (train_loop.py and any later one)
FLAG_SCRIPTS = sorted(
    {*SCRIPTS, "train_loop.py"}
    | {p.name for p in PIPELINES.glob("*.py") if "_common.base_parser" in p.read_text()}
)
SHARED_DEFAULTS = {
    "root": None,
    "episodes": 60,
    "batch_size": 32,
    "permutation": "feistel",
    "order": "frames",
    "block_size": None,
    "seed": 0,
    "epochs": 1,
    "steps": None,
    "threads": None,
    "checkpoint": None,
    "checkpoint_every": 50,
    "resume": False,
    "log_indices": None,
}


@pytest.mark.parametrize("script", FLAG_SCRIPTS)
def test_every_script_has_the_shared_flags_and_defaults(script: str, capsys) -> None:
    module = load_script(script)
    with pytest.raises(SystemExit) as info:
        module.parse_args(["--help"])
    assert info.value.code == 0
    usage = capsys.readouterr().out
    for name in SHARED_DEFAULTS:
        assert f"--{name.replace('_', '-')}" in usage
    args = vars(module.parse_args([]))
    assert {k: args[k] for k in SHARED_DEFAULTS} == SHARED_DEFAULTS


BAD_FLAGS = [
    ["--batch-size", "0"],
    ["--epochs", "0"],
    ["--steps", "-1"],
    ["--threads", "0"],
    ["--episodes", "0"],
    ["--root", "somewhere", "--episodes", "3"],
    ["--order", "blocks"],
    ["--block-size", "4"],
    ["--order", "blocks", "--block-size", "0"],
    ["--permutation", "sorted"],
    ["--resume"],
    ["--checkpoint-every", "0", "--checkpoint", "x.json"],
    ["--unknown"],
]


@pytest.mark.parametrize("script", FLAG_SCRIPTS)
@pytest.mark.parametrize("argv", BAD_FLAGS, ids=[" ".join(a) for a in BAD_FLAGS])
def test_bad_flags_are_one_line_usage_errors(script: str, argv: list[str], capsys) -> None:
    module = load_script(script)
    with pytest.raises(SystemExit) as info:
        module.parse_args(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ") and "Traceback" not in err
    assert re.match(r"\S+\.py: error: ", err.splitlines()[-1]), err


@pytest.mark.parametrize("script", FLAG_SCRIPTS)
def test_an_existing_checkpoint_needs_resume(script: str, tmp_path: Path, capsys) -> None:
    module = load_script(script)
    ckpt = tmp_path / "state.json"
    ckpt.write_text("{}")
    with pytest.raises(SystemExit) as info:
        module.parse_args(["--checkpoint", str(ckpt)])
    assert info.value.code == 2 and "add --resume" in capsys.readouterr().err
    assert module.parse_args(["--checkpoint", str(ckpt), "--resume"]).resume
    assert module.parse_args(["--checkpoint", str(tmp_path / "new.json")]).checkpoint  # new file: fine


def test_threads_default_to_one_or_omp_num_threads(monkeypatch) -> None:
    import torch

    common = load_script("train_loader.py")._common
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        assert common.set_threads(common.check_args(*_parsed(common, []))) == 1
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert common.set_threads(common.check_args(*_parsed(common, []))) == 2
        assert common.set_threads(common.check_args(*_parsed(common, ["--threads", "3"]))) == 3
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def _parsed(common, argv: list[str]):
    parser = common.base_parser("test")
    return parser, parser.parse_args(argv)


def test_train_loop_layout_is_the_synthetic_datasets(tmp_path: Path) -> None:
    """Without --root, train_loop.py samples the layout --episodes N writes in the other scripts."""
    from episode_sampler.node import EpisodeSamplerNode

    train_loop = load_script("train_loop.py")
    for episodes in (None, 7):
        argv = [] if episodes is None else ["--episodes", str(episodes)]
        node = train_loop.build_node(train_loop.parse_args(argv), 0, 1)
        root = tmp_path / f"ds{episodes}"
        write_lerobot_dataset(root, num_episodes=episodes or 60, seed=0)
        written = EpisodeSamplerNode.from_lerobot(root, shuffle=True, seed=0, permutation="feistel")
        node.reset()
        written.reset()
        assert node.num_frames == written.num_frames
        assert node.get_state() == written.get_state()  # the layout fingerprint included
