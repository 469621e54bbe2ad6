"""The ``episode-sampler`` command line: help everywhere, clean usage errors (exit 2, no traceback),
``inspect`` on every kind of state (expected wording computed here from first principles), and the
``demo`` end to end (exact verdict, and a detected mismatch). The benchmark suite is not a subcommand
(it is ``python -m benchmarks`` in a checkout; its own tests are in test_bench_smoke.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torchdata.nodes import Loader
from torchdata.stateful_dataloader import StatefulDataLoader
from torchdata.stateful_dataloader.sampler import BatchSampler

from episode_sampler import EpisodeAwareSampler, EpisodeIndex, cli, compute_sampler_state, save_state
from episode_sampler.node import EpisodeSamplerNode

LENGTHS = [30, 7, 52, 18, 41, 25, 9, 60]
INDEX = EpisodeIndex.from_lengths(LENGTHS)
N = sum(LENGTHS)  # 242
CONSOLE = Path(sys.executable).with_name("episode-sampler")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def sampler(**kw) -> EpisodeAwareSampler:
    kw = {"shuffle": True, "seed": 5, "permutation": "feistel", **kw}
    return EpisodeAwareSampler(INDEX.starts, INDEX.ends, **kw)


def consume(s: EpisodeAwareSampler, k: int) -> EpisodeAwareSampler:
    it = iter(s)
    for _ in range(k):
        next(it)
    return s


def field(out: str, name: str) -> str:
    """The text after ``name`` on its line of the inspect report."""
    rows = [re.split(r"\s{2,}", ln.strip(), maxsplit=1) for ln in out.splitlines() if ln.startswith("  ")]
    (value,) = [row[1] for row in rows if len(row) == 2 and row[0] == name]
    return value


# ---------------------------------------------------------------------------------------------- help / usage
@pytest.mark.parametrize(
    "argv", [["--help"], ["demo", "--help"], ["inspect", "--help"], ["-h"], ["--version"]]
)
def test_help_and_version_exit_0(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(argv, capsys)
    assert code == 0
    assert ("usage: episode-sampler" in out) or out.startswith("episode-sampler ")
    assert "Traceback" not in out + err


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(["--help"], capsys)
    for command in ("demo", "inspect"):
        assert command in out


BAD_USAGE = [
    [],
    ["nope"],
    ["demo", "--unknown"],
    ["demo", "--batch-size", "0"],
    ["demo", "--batch-size", "two"],
    ["demo", "--seed", "-1"],
    ["demo", "--seed", str(2**64)],
    ["demo", "--episodes", "0"],
    ["demo", "--permutation", "sorted"],
    ["demo", "--order", "shots"],
    ["demo", "--order", "frames", "--block-size", "4"],
    ["demo", "--kill-at-step", "0"],
    ["demo", "--root"],
    ["demo", "--block-size", "4"],
    ["demo", "extra"],
    ["inspect"],
    ["inspect", "a.json", "b.json"],
    ["inspect", "--bogus", "a.json"],
    ["bench"],  # no longer a subcommand: the suite is `python -m benchmarks` in a checkout
    ["bench", "--quick"],
]


@pytest.mark.parametrize("argv", BAD_USAGE, ids=[" ".join(a) or "<none>" for a in BAD_USAGE])
def test_invalid_usage_is_an_argparse_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(argv, capsys)
    assert code == 2
    assert "Traceback" not in out + err
    lines = err.splitlines()
    (error,) = [ln for ln in lines if "error:" in ln]  # one error line, the last one
    assert error == lines[-1]
    assert lines == [error]  # one line, no usage (issue 20)
    if argv and argv[0] in ("demo", "inspect"):  # the subcommand's prefix, not the top-level's
        assert error.startswith(f"episode-sampler {argv[0]}: error: ")
    else:
        assert error.startswith("episode-sampler: error: ")


def _subcommand_error(err: str, command: str) -> str:
    """The error line of a subcommand failure (after its usage, if any); checks the format."""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert lines and lines[-1].startswith(f"episode-sampler {command}: error: "), err
    assert all(ln.startswith(("usage:", " ")) for ln in lines[:-1]), err
    return lines[-1]


def test_kill_at_step_beyond_the_run_is_a_usage_error(tmp_path: Path, capsys) -> None:
    code, _, err = run(
        ["demo", "--root", str(tmp_path / "ds"), "--episodes", "3", "--kill-at-step", "100000", "--quiet"],
        capsys,
    )
    assert code == 2
    assert "--kill-at-step" in _subcommand_error(err, "demo")
    assert err.count("\n") == 1  # one line, no usage (issue 20)


def test_demo_refuses_episodes_that_disagree_with_an_existing_root(tmp_path: Path, capsys) -> None:
    from episode_sampler import write_lerobot_dataset

    root = tmp_path / "ds"
    write_lerobot_dataset(root, num_episodes=5)
    code, out, err = run(["demo", "--root", str(root), "--episodes", "50", "--quiet"], capsys)
    assert code == 2 and out == ""
    line = _subcommand_error(err, "demo")
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
        assert flag in _subcommand_error(err, "demo")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]  # nothing written next to it


def test_the_library_does_not_import_the_cli() -> None:
    code = (
        "import sys, episode_sampler, episode_sampler.lerobot, episode_sampler.node; "
        "print(sorted(m for m in sys.modules if m.startswith('episode_sampler.cli')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_worker_carries_no_test_hooks() -> None:
    """The kill points of the fault-injection tests live in tests/pausing_worker.py, not in the package."""
    from episode_sampler.cli import worker, worker_checkpoint

    usage = worker.build_parser().format_help()
    assert "--pause-at" not in usage and "--status" not in usage
    assert not hasattr(worker_checkpoint, "Pauser") and not hasattr(worker_checkpoint, "PHASES")


def test_console_script_and_module_report_usage_errors_without_traceback() -> None:
    commands = [[sys.executable, "-m", "episode_sampler.cli", "demo", "--batch-size", "-3"]]
    if CONSOLE.exists():
        commands.append([str(CONSOLE), "inspect"])
    for cmd in commands:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert "error:" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.skipif(not CONSOLE.exists(), reason="console script not installed next to this interpreter")
def test_console_script_help() -> None:
    proc = subprocess.run([str(CONSOLE), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "demo" in proc.stdout


# ---------------------------------------------------------------------------------------------- inspect
def test_inspect_sampler_state(tmp_path: Path, capsys) -> None:
    s = consume(sampler(), 60)
    path = tmp_path / "state.json"
    save_state(path, s.state_dict())
    code, out, err = run(["inspect", str(path)], capsys)
    assert code == 0, err
    assert field(out, "epoch") == "0"
    assert f"#60 of {N}" in field(out, "position")
    assert f"({100 * 60 / N:.1f}% of the rank's epoch done)" in field(out, "position")
    assert field(out, "all ranks").startswith(f"60 of {N} frames")
    assert s.fingerprint in field(out, "dataset") and str(N) in field(out, "dataset")
    assert field(out, "order") == "shuffled frames, permutation feistel, seed 5"
    assert field(out, "world size").startswith("1 ")


def test_inspect_sharded_and_elastic_states(tmp_path: Path, capsys) -> None:
    # rank 2 of 4 after 13 samples: all ranks together consumed 4 * 13 global positions
    s = consume(sampler(rank=2, world_size=4, order="blocks", block_size=5, seed=9), 13)
    path = tmp_path / "rank2.json"
    save_state(path, s.state_dict())
    _, out, _ = run(["inspect", str(path)], capsys)
    per_rank = -(-N // 4)
    assert f"rank 2 of 4: next sample is its #13 of {per_rank}" in field(out, "position")
    assert field(out, "all ranks").startswith(f"{4 * 13} of {N} frames")
    assert field(out, "order") == "shuffled blocks of 5 frames, permutation feistel, seed 9"

    # that state resumed by 3 ranks: the new world starts at global position 52; rank 1 takes 7 more
    r = sampler(rank=1, world_size=3, order="blocks", block_size=5, seed=9)
    r.load_state_dict(s.state_dict())
    consume(r, 7)
    save_state(path, r.state_dict())
    _, out, _ = run(["inspect", str(path)], capsys)
    assert f"this world started at global position {4 * 13}" in field(out, "all ranks")
    assert field(out, "all ranks").startswith(f"{4 * 13 + 3 * 7} of {N} frames")
    assert f"#7 of {-(-(N - 52) // 3)}" in field(out, "position")


def test_inspect_finished_epoch_and_drop_last(tmp_path: Path, capsys) -> None:
    s = sampler(drop_last=True, world_size=3)
    list(iter(s))
    path = tmp_path / "s.json"
    save_state(path, s.state_dict())
    _, out, _ = run(["inspect", str(path)], capsys)
    assert field(out, "epoch") == "1"  # after an epoch's last sample the state is (epoch + 1, 0)
    assert "dropped" in field(out, "epoch tail")


def test_inspect_finds_the_state_inside_a_loader_state_dict(tmp_path: Path, capsys) -> None:
    node = EpisodeSamplerNode(
        INDEX.starts, INDEX.ends, shuffle=True, seed=3, batch_size=10, rank=0, world_size=1
    )
    loader = Loader(node)
    it = iter(loader)
    for _ in range(4):
        next(it)
    path = tmp_path / "loader.json"
    save_state(path, {"step": 4, "loader": loader.state_dict()})
    code, out, _ = run(["inspect", str(path)], capsys)
    assert code == 0
    assert '["loader"]["root"]' in out.splitlines()[0]
    assert f"#40 of {N}" in field(out, "position")
    assert field(out, "order") == "shuffled frames, permutation randperm, seed 3"


def test_inspect_stateful_dataloader_state_saved_with_torch(tmp_path: Path, capsys) -> None:
    s = sampler()
    dl = StatefulDataLoader(list(range(N)), batch_sampler=BatchSampler(s, 8, drop_last=False))
    it = iter(dl)
    for _ in range(5):
        next(it)
    path = tmp_path / "dl.pt"
    torch.save({"dataloader": dl.state_dict(), "weights": torch.zeros(3)}, path)
    code, out, err = run(["inspect", str(path)], capsys)
    assert code == 0, err
    assert f"#40 of {N}" in field(out, "position")


def test_inspect_bare_lerobot_state(tmp_path: Path, capsys) -> None:
    state = compute_sampler_state(step=1000, num_frames=N, batch_size=8, num_processes=2)
    path = tmp_path / "lerobot.json"
    path.write_text(json.dumps(state))
    code, out, _ = run(["inspect", str(path)], capsys)
    assert code == 0
    assert "LeRobot" in field(out, "kind")
    assert field(out, "epoch") == str(state["epoch"])
    assert f"#{state['start_index']} of epoch {state['epoch']}" in field(out, "position")


def test_inspect_shows_identical_nested_states_once(tmp_path: Path, capsys) -> None:
    state = consume(sampler(), 3).state_dict()
    path = tmp_path / "twice.json"
    save_state(path, {"a": state, "b": [state]})
    _, out, _ = run(["inspect", str(path)], capsys)
    assert out.count("position") == 1 and "also at" in out


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    good = consume(sampler(), 3).state_dict()
    text = json.dumps(good)
    cases = {
        "missing": tmp_path / "missing.json",
        "truncated": tmp_path / "truncated.json",
        "empty": tmp_path / "empty.json",
        "directory": tmp_path,
        "no state": tmp_path / "nostate.json",
        "list": tmp_path / "list.json",
        "wrong type": tmp_path / "wrongtype.json",
        "missing keys": tmp_path / "missingkeys.json",
        "version 2": tmp_path / "v2.json",
        "beyond epoch": tmp_path / "beyond.json",
        "bad lerobot": tmp_path / "badlerobot.json",
        "binary": tmp_path / "binary.bin",
        "bad torch file": tmp_path / "bad.pt",
    }
    cases["truncated"].write_text(text[: len(text) // 2])
    cases["empty"].write_text("")
    cases["no state"].write_text('{"model": {"w": [1, 2]}, "step": 3}')
    cases["list"].write_text("[1, 2, 3]")
    cases["wrong type"].write_text(json.dumps({**good, "epoch": "3"}))
    cases["missing keys"].write_text(json.dumps({k: v for k, v in good.items() if k != "seed"}))
    cases["version 2"].write_text(json.dumps({**good, "version": 3}))
    cases["beyond epoch"].write_text(json.dumps({**good, "start_index": N + 1}))
    cases["bad lerobot"].write_text('{"epoch": -1, "start_index": 0}')
    cases["binary"].write_bytes(bytes(range(256)))
    cases["bad torch file"].write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    return cases


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "truncated",
        "empty",
        "directory",
        "no state",
        "list",
        "wrong type",
        "missing keys",
        "version 2",
        "beyond epoch",
        "bad lerobot",
        "binary",
        "bad torch file",
    ],
)
def test_inspect_errors_are_clean(case: str, tmp_path: Path, capsys) -> None:
    path = _bad_files(tmp_path)[case]
    code, out, err = run(["inspect", str(path)], capsys)
    assert code == 2
    assert err.startswith("episode-sampler inspect: error: ")
    assert "Traceback" not in out + err
    assert out == ""


def test_inspect_error_names_the_field(tmp_path: Path, capsys) -> None:
    files = _bad_files(tmp_path)
    assert "'epoch'" in run(["inspect", str(files["wrong type"])], capsys)[2]
    assert "seed" in run(["inspect", str(files["missing keys"])], capsys)[2]
    assert "truncated" in run(["inspect", str(files["truncated"])], capsys)[2]


def test_inspect_via_console_script_error_exit_code(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"epoch": 1, "start_ind')
    proc = subprocess.run(
        [sys.executable, "-m", "episode_sampler.cli", "inspect", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "error:" in proc.stderr


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
    assert str(root) in _subcommand_error(err, "demo")
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
