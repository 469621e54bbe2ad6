"""Running the ``episode-sampler`` command line in-process and reading its output (tests/cli/)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from episode_sampler import cli

CONSOLE = Path(sys.executable).with_name("episode-sampler")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def field(out: str, name: str) -> str:
    """The text after ``name`` on its line of the inspect report."""
    rows = [re.split(r"\s{2,}", ln.strip(), maxsplit=1) for ln in out.splitlines() if ln.startswith("  ")]
    (value,) = [row[1] for row in rows if len(row) == 2 and row[0] == name]
    return value


def subcommand_error(err: str, command: str) -> str:
    """The error line of a subcommand failure (after its usage, if any); checks the format."""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert lines and lines[-1].startswith(f"episode-sampler {command}: error: "), err
    assert all(ln.startswith(("usage:", " ")) for ln in lines[:-1]), err
    return lines[-1]
