"""The command line's usage errors and help (issue 20, "rough edges"): a bad flag value is one line that
names the flag once (it was 9 lines of usage, then ``argument --episodes: --episodes must be ...``);
``inspect``'s argument says it takes a dataset directory too; ``demo --keep``'s help names the file
worth inspecting."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from episode_sampler.cli import main

ONE_LINE_ERRORS = [
    (["demo", "--episodes", "0"], "episode-sampler demo: error: --episodes must be in [1, 100000], got 0"),
    (
        ["demo", "--batch-size", "two"],
        "episode-sampler demo: error: --batch-size must be an integer, got 'two'",
    ),
    (["demo", "--batch-size", "0"], "episode-sampler demo: error: --batch-size must be >= 1, got 0"),
    (
        ["demo", "--seed", "-1"],
        "episode-sampler demo: error: --seed must be in [0, 18446744073709551615], got -1",
    ),
    (
        ["demo", "--permutation", "sorted"],
        "episode-sampler demo: error: --permutation: invalid choice: 'sorted' "
        "(choose from 'randperm', 'feistel')",
    ),
    (["demo", "--root"], "episode-sampler demo: error: --root: expected one argument"),
    (
        ["demo", "--order", "frames", "--block-size", "4"],
        "episode-sampler demo: error: --block-size applies only to --order blocks",
    ),
    (
        ["demo", "--unknown"],
        "episode-sampler demo: error: unrecognized arguments: --unknown (see 'episode-sampler demo --help')",
    ),
    (
        ["inspect"],
        "episode-sampler inspect: error: the following arguments are required: STATE_OR_DATASET "
        "(see 'episode-sampler inspect --help')",
    ),
    (
        [],
        "episode-sampler: error: missing COMMAND: one of demo, inspect, bench, lerobot-train "
        "(see 'episode-sampler --help')",
    ),
    (
        ["nope"],
        "episode-sampler: error: unknown command 'nope' "
        "(choose from 'demo', 'inspect', 'bench', 'lerobot-train') "
        "(see 'episode-sampler --help')",
    ),
]


@pytest.mark.parametrize(
    "argv, line", ONE_LINE_ERRORS, ids=[" ".join(a) or "<none>" for a, _ in ONE_LINE_ERRORS]
)
def test_a_usage_error_is_one_line_naming_the_flag_once(
    argv: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == line + "\n"
    assert "argument " not in err and "usage:" not in err


@pytest.mark.parametrize(
    "flag, value", [("--episodes", "0"), ("--epochs", "x"), ("--checkpoint-every", "-3")]
)
def test_a_bad_value_names_its_flag_once(flag: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", flag, value]) == 2
    _, err = capsys.readouterr()
    assert err.count(flag) == 1 and err.count("\n") == 1


def test_kill_at_step_beyond_the_run_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["demo", "--root", str(tmp_path / "ds"), "--episodes", "3", "--kill-at-step", "100000", "--quiet"]
    assert main(argv) == 2
    _, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "episode-sampler demo: error: --kill-at-step must be in [1, "
    )
    assert err.count("--kill-at-step") == 1


def test_console_script_prints_the_same_one_line() -> None:
    script = shutil.which("episode-sampler")
    cmd = [script] if script else [sys.executable, "-m", "episode_sampler.cli"]
    proc = subprocess.run(
        [*cmd, "demo", "--episodes", "0"], capture_output=True, text=True, env=dict(os.environ), timeout=120
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == "episode-sampler demo: error: --episodes must be in [1, 100000], got 0\n"


def test_inspect_usage_says_it_takes_a_state_or_a_dataset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "--help"]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[0] == "usage: episode-sampler inspect [-h] STATE_OR_DATASET"
    assert "STATE_FILE" not in out
    assert "or a LeRobot v3 dataset directory" in " ".join(out.split())


def test_demo_keep_help_names_killed_checkpoint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--help"]) == 0
    out, _ = capsys.readouterr()
    text = " ".join(out.split())
    assert (
        "DIR/killed-checkpoint.json (the checkpoint the resumed run started from: try "
        "`episode-sampler inspect DIR/killed-checkpoint.json`)" in text
    )
    assert "checkpoints/checkpoint.json" not in text
