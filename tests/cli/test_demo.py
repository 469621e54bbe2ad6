"""``episode-sampler demo``: its usage errors and refusals (exit 2, one line, no traceback), bad roots,
and the run end to end (exact verdict, and a detected mismatch); help and argparse errors are in
test_parser.py, ``inspect`` in test_inspect.py. The benchmark suite is not a subcommand
(it is ``python -m benchmarks`` in a checkout; its own tests are in tests/benchmarks/test_benchmarks.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import CONSOLE, field, run, subcommand_error


def test_kill_at_step_beyond_the_run_is_a_usage_error(tmp_path: Path, capsys) -> None:
    code, _, err = run(
        ["demo", "--root", str(tmp_path / "ds"), "--episodes", "3", "--kill-at-step", "100000", "--quiet"],
        capsys,
    )
    assert code == 2
    assert "--kill-at-step" in subcommand_error(err, "demo")
    assert err.count("\n") == 1  # one line, no usage (issue 20)


def test_demo_refuses_episodes_that_disagree_with_an_existing_root(tmp_path: Path, capsys) -> None:
    from episode_sampler import write_lerobot_dataset

    root = tmp_path / "ds"
    write_lerobot_dataset(root, num_episodes=5)
    code, out, err = run(["demo", "--root", str(root), "--episodes", "50", "--quiet"], capsys)
    assert code == 2 and out == ""
    line = subcommand_error(err, "demo")
    assert "5 episodes" in line and "--episodes 50" in line


@pytest.mark.parametrize("case", ["file", "not empty"])
def test_demo_refuses_an_unusable_root_or_keep(case: str, tmp_path: Path, capsys) -> None:
    target = tmp_path / "x"
    if case == "file":
        target.write_text("hello")
    else:
        target.mkdir()
        (target / "other.txt").write_text("hello")
    for flag in ("--root", "--keep"):
        code, out, err = run(["demo", flag, str(target), "--quiet"], capsys)
        assert code == 2 and out == ""
        assert flag in subcommand_error(err, "demo")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]  # nothing written next to it


def _bad_roots(tmp_path: Path) -> dict[str, Path]:
    from episode_sampler import write_lerobot_dataset

    good = tmp_path / "good"
    write_lerobot_dataset(good, num_episodes=4)
    roots = {}
    for name in ("empty info", "garbage info", "keyless info", "no data", "corrupt parquet"):
        root = tmp_path / name.replace(" ", "_")
        shutil.copytree(good, root)
        roots[name] = root
    (roots["empty info"] / "meta" / "info.json").write_text("")
    (roots["garbage info"] / "meta" / "info.json").write_text("{not json")
    (roots["keyless info"] / "meta" / "info.json").write_text("{}")
    shutil.rmtree(roots["no data"] / "data")
    for f in (roots["corrupt parquet"] / "meta" / "episodes").rglob("*.parquet"):
        f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2])
    roots["file"] = tmp_path / "afile"
    roots["file"].write_text("x")
    roots["foreign dir"] = tmp_path / "foreign"
    (roots["foreign dir"] / "data").mkdir(parents=True)
    return roots


@pytest.mark.parametrize(
    "case",
    ["empty info", "garbage info", "keyless info", "no data", "corrupt parquet", "file", "foreign dir"],
)
def test_demo_bad_root_is_one_line(case: str, tmp_path: Path, capsys) -> None:
    root = _bad_roots(tmp_path)[case]
    code, out, err = run(["demo", "--root", str(root), "--quiet"], capsys)
    assert code == 2, err
    assert str(root) in subcommand_error(err, "demo")
    assert out == ""


# ---------------------------------------------------------------------------------------------- demo
def _steps_per_epoch(root: Path, batch: int) -> tuple[int, int]:
    from episode_sampler.lerobot import read_episode_index

    n = read_episode_index(root).num_frames
    return n, -(-n // batch)


@pytest.mark.slow
def test_demo_end_to_end_through_the_console_script(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    cmd = [str(CONSOLE)] if CONSOLE.exists() else [sys.executable, "-m", "episode_sampler.cli"]
    proc = subprocess.run(
        [*cmd, "demo", "--root", str(root), "--episodes", "40", "--quiet", "--keep", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    n, spe = _steps_per_epoch(root, 32)  # the dataset is kept under --root: recompute independently
    out = proc.stdout
    assert f"{2 * spe} steps, {2 * n} samples identical" in field(out, "verdict")
    assert field(out, "verdict").startswith("EXACT")
    kill_at = spe + spe // 2 + 3
    assert f"asked for step {kill_at}" in field(out, "kill")
    last = int(field(out, "kill").split("after step ")[1].split()[0])
    ck_step = int(field(out, "checkpoint").split("at step ")[1].split(":")[0])
    # the last committed checkpoint: the last multiple of 20 reached, or the one before when the kill
    # landed inside that checkpoint's write
    assert last >= kill_at and ck_step % 20 == 0 and last - 20 <= ck_step <= last
    assert "samples/s" in field(out, "reference")
    assert proc.stderr == ""  # --quiet: no progress output

    # --keep: the run directory stays, with the checkpoint the resume started from, for `inspect`
    kept = tmp_path / "run" / "killed-checkpoint.json"
    assert f"inspect {kept}" in out
    assert {"checkpoints", "killed.jsonl", "resumed.jsonl", "reference.jsonl"} <= {
        p.name for p in (tmp_path / "run").iterdir()
    }
    inspected = subprocess.run([*cmd, "inspect", str(kept)], capture_output=True, text=True, timeout=120)
    assert inspected.returncode == 0, inspected.stderr
    assert "epoch         1" in inspected.stdout  # ck_step is past epoch 0's spe steps
    assert f"next sample is its #{(ck_step - spe) * 32} of {n} " in inspected.stdout
    wall = float(field(out, "time").split()[0])
    assert wall > float(field(out, "time").split(", ")[1].split()[0]) > 0  # startup included


@pytest.mark.slow
def test_demo_options_and_exact_verdict(tmp_path: Path, capsys) -> None:
    argv = [
        "demo",
        "--root",
        str(tmp_path / "ds"),
        "--episodes",
        "25",
        "--batch-size",
        "8",
        "--seed",
        "77",
        "--permutation",
        "randperm",
        "--order",
        "blocks",
        "--block-size",
        "3",
        "--kill-at-step",
        "50",
        "--checkpoint-every",
        "7",
        "--epochs",
        "1",
    ]
    code, out, err = run(argv, capsys)
    assert code == 0, out + err
    assert "order='blocks', block_size=3" in out and "permutation='randperm'" in out
    ck_step = int(field(out, "checkpoint").split("at step ")[1].split(":")[0])
    last = int(field(out, "kill").split("after step ")[1].split()[0])
    assert ck_step % 7 == 0 and last - 7 <= ck_step <= last
    assert field(out, "verdict").startswith("EXACT")

    # progress on stderr: a status line for each wait, and bars that end where the report says
    total = int(field(out, "training").split(" = ")[1].split()[0])
    for status in ("writing a synthetic LeRobot v3 dataset of 25 episodes", "starting the run to be killed",
                   "starting the resumed run"):  # fmt: skip
        assert re.search(re.escape(status) + r".*: done in \d+\.\d s", err), err
    final = {}  # the last drawing of each bar (tqdm redraws with \r)
    for part in re.split(r"[\r\n]", err):
        label = part.split(":")[0]
        if label in ("reference run", "run to be killed", "resumed run"):
            final[label] = part
    assert f" {total}/{total} " in final["reference run"]
    assert f" {last}/{total} " in final["run to be killed"] and "SIGKILL" in final["run to be killed"]
    assert f" {total}/{total} " in final["resumed run"]
    assert "Traceback" not in err


@pytest.mark.slow
def test_demo_reports_a_mismatch(tmp_path: Path, capsys, monkeypatch) -> None:
    """A resumed stream that lost one sample must be caught: exit 1 and a MISMATCH verdict."""
    from episode_sampler.cli import worker

    real = worker.read_log

    def tampered(path):
        steps = real(path)
        if Path(path).name == "resumed.jsonl" and steps:
            steps[len(steps) // 2]["indices"] = steps[len(steps) // 2]["indices"][1:]
        return steps

    monkeypatch.setattr(worker, "read_log", tampered)
    argv = ["demo", "--root", str(tmp_path / "ds"), "--episodes", "12", "--epochs", "1", "--quiet"]
    code, out, _ = run(argv, capsys)
    assert code == 1
    assert field(out, "verdict").startswith("MISMATCH")


def test_compare_reports_the_first_difference() -> None:
    from episode_sampler.cli.demo import compare

    ref = [{"step": i, "indices": [i, i + 1]} for i in range(1, 5)]
    assert compare(ref, [dict(s) for s in ref]) is None
    bad = [dict(s) for s in ref]
    bad[2] = {"step": 3, "indices": [3, 5]}
    assert compare(ref, bad).startswith("step 3")
    assert "steps" in compare(ref, ref[:3])


def test_a_failing_worker_is_one_line_naming_its_last_error(tmp_path: Path) -> None:
    from episode_sampler.cli.demo import DemoFailed, Worker
    from episode_sampler.cli.progress import Progress

    crash = (
        "import sys; print('ready 0', flush=True); print('step 1', flush=True); sys.exit('boom: disk full')"
    )
    worker = Worker([sys.executable, "-c", crash], tmp_path, Progress(enabled=False))
    with pytest.raises(DemoFailed, match=r"exited \(code 1\) before step 5: boom: disk full"):
        worker.run_until_kill("run to be killed", tmp_path / "k.jsonl", kill_at=5, total=10)
    with pytest.raises(DemoFailed, match=r"the resumed run failed \(exit 1\): boom: disk full"):
        worker.run_to_end("resumed run", tmp_path / "r.jsonl", total=10)


def test_demo_keeps_the_run_directory_when_a_worker_fails(tmp_path: Path, capsys, monkeypatch) -> None:
    from episode_sampler.cli import demo

    def fail(self, *args, **kwargs):
        raise demo.DemoFailed("the run to be killed exited (code 1) before step 3: boom")

    monkeypatch.setattr(demo.Worker, "run_until_kill", fail)
    real_mkdtemp = demo.tempfile.mkdtemp

    def mkdtemp(suffix=None, prefix=None, dir=None):  # the demo's run directory; others (video encoding) real
        if prefix == "episode-sampler-demo-":
            return str(tmp_path / "run")
        return real_mkdtemp(suffix, prefix, dir)

    monkeypatch.setattr(demo.tempfile, "mkdtemp", mkdtemp)
    (tmp_path / "run").mkdir()
    code, _, err = run(["demo", "--episodes", "3", "--batch-size", "8", "--epochs", "1", "--quiet"], capsys)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("episode-sampler demo: error: the run to be killed exited")
    assert f"logs kept in {tmp_path / 'run'}" in err
    assert (tmp_path / "run" / "reference.jsonl").exists()
