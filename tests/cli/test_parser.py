"""The ``episode-sampler`` parser: help everywhere, clean usage errors (exit 2, no traceback), from the
function, the module and the console script."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers.cli import CONSOLE, run


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
    ["bench"],  # `bench DATASET_DIR` measures a user's dataset (the peer suite is `python -m benchmarks`)
    ["bench", "--quick"],
    ["bench", "ds", "--workers", "x"],
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
    if argv and argv[0] in ("demo", "inspect", "bench"):  # the subcommand's prefix, not the top-level's
        assert error.startswith(f"episode-sampler {argv[0]}: error: ")
    else:
        assert error.startswith("episode-sampler: error: ")


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
