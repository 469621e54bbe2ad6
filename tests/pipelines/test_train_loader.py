"""pipelines/train_loader.py as a new user meets it (issue 20): a line while it writes its dataset, a
line per checkpoint, a word when a kill before the first checkpoint makes it start over, and "the run
is complete" (not ``0 samples ... loss 0.000e+00``) when rerun after the end."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from episode_sampler import write_lerobot_dataset

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"
SCRIPT = PIPELINES / "train_loader.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pipeline_train_loader_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert load_script().main(argv) == 0
    return capsys.readouterr().out.splitlines()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("train-loader") / "ds"
    write_lerobot_dataset(path, num_episodes=6, seed=0)
    return path


def test_it_says_that_it_writes_its_dataset(capsys: pytest.CaptureFixture[str]) -> None:
    lines = run(["--episodes", "3", "--steps", "2"], capsys)
    m = re.fullmatch(
        r"writing a synthetic LeRobot v3 dataset of 3 episodes with a 64x64 AV1 camera to (\S+) "
        r"\(deleted at the end; --root DIR reads your own\) \.\.\.",
        lines[0],
    )
    assert m is not None, lines
    assert not Path(m[1]).exists()  # deleted at the end, as said
    assert re.fullmatch(r"dataset written in \d+\.\d s: \d+ frames", lines[1]), lines
    assert lines[2].startswith("rank 0/1: 64 samples in ")


def test_a_line_per_checkpoint(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = tmp_path / "ck" / "state.json"
    argv = ["--root", str(root), "--batch-size", "4", "--steps", "12", "--checkpoint", str(ckpt)]
    lines = run([*argv, "--checkpoint-every", "5"], capsys)
    bytes_ = r"\(\d+ bytes\)"
    assert [re.sub(bytes_, "(B bytes)", ln) for ln in lines[:-1]] == [
        f"no checkpoint at {ckpt} yet: starting from scratch (first checkpoint at step 5)",
        f"checkpoint {ckpt} (B bytes) at step 5",
        f"checkpoint {ckpt} (B bytes) at step 10",
        f"checkpoint {ckpt} (B bytes) at step 12",
    ]
    assert lines[-1].startswith("rank 0/1: 48 samples in ")
    assert not (tmp_path / "ck" / "state.json.started").exists()  # removed by the first checkpoint


def test_a_checkpoint_at_the_last_step_is_announced_once(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = tmp_path / "state.json"
    lines = run(
        ["--root", str(root), "--steps", "4", "--checkpoint", str(ckpt), "--checkpoint-every", "2"], capsys
    )
    assert [ln.split(" (")[0] + " " + ln.split(") ")[1] for ln in lines if ln.startswith("checkpoint ")] == [
        f"checkpoint {ckpt} at step 2",
        f"checkpoint {ckpt} at step 4",
    ]


def test_rerun_after_the_end_says_the_run_is_complete(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = tmp_path / "state.json"
    argv = ["--root", str(root), "--epochs", "1", "--checkpoint", str(ckpt), "--resume"]
    first = run(argv, capsys)
    step = int(re.search(r"step (\d+), epoch 1,", first[-1])[1])
    before = ckpt.read_bytes()
    again = run(argv, capsys)
    assert again == [
        f"resumed from {ckpt} at step {step} (epoch 1, saved by 1 rank(s), now 1)",
        f"the run is complete: {ckpt} is at step {step}, epoch 1 (--epochs 1); nothing to train "
        "(raise --epochs or --steps to train on)",
    ]
    assert ckpt.read_bytes() == before  # untouched
    steps = run([*argv[:-1], "--steps", str(step), "--resume"], capsys)
    assert steps[-1] == (
        f"the run is complete: {ckpt} is at step {step}, epoch 1 (--epochs 1, --steps {step}); nothing to "
        "train (raise --epochs or --steps to train on)"
    )


def test_a_crash_before_the_first_checkpoint_is_reported_on_resume(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process: a training step that fails (as a kill would stop it) before the first checkpoint."""
    ckpt = tmp_path / "state.json"
    module = load_script()
    argv = ["--root", str(root), "--checkpoint", str(ckpt), "--resume", "--checkpoint-every", "1000"]

    def crash(*args: object) -> None:
        raise RuntimeError("killed")

    monkeypatch.setattr(module._common, "train_step", crash)
    with pytest.raises(RuntimeError, match="killed"):
        module.main(argv)
    assert capsys.readouterr().out.splitlines() == [
        f"no checkpoint at {ckpt} yet: starting from scratch (first checkpoint at step 1000)"
    ]
    monkeypatch.undo()
    lines = run([*argv[:-2], "--checkpoint-every", "7", "--steps", "3"], capsys)
    assert lines[0] == (
        f"no checkpoint at {ckpt}: the previous run was stopped before its first checkpoint (due at step "
        "1000), so training starts over from step 0"
    )
    assert lines[-1].startswith("rank 0/1: 96 samples in ")


@pytest.mark.slow
def test_sigkill_before_the_first_checkpoint_then_rerun_says_it_starts_over(
    root: Path, tmp_path: Path
) -> None:
    ckpt = tmp_path / "state.json"
    argv = [sys.executable, str(SCRIPT), "--root", str(root), "--checkpoint", str(ckpt), "--resume"]
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    proc = subprocess.Popen(
        [*argv, "--epochs", "1000", "--checkpoint-every", "100000"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(f"no checkpoint at {ckpt} yet: starting from scratch"), line
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    again = subprocess.run(
        [*argv, "--steps", "2"], capture_output=True, text=True, env=env, timeout=300, check=True
    ).stdout.splitlines()
    assert again[0] == (
        f"no checkpoint at {ckpt}: the previous run was stopped before its first checkpoint (due at step "
        "100000), so training starts over from step 0"
    )
    assert again[1].startswith(f"checkpoint {ckpt} (") and again[1].endswith(" bytes) at step 2")
