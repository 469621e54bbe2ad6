"""Every example runs as a script (subprocess, fresh interpreter), exits 0 and prints its key line.

The examples assert their own claims against independent computations (LeRobot's formula written out,
a one-rank reference order, an uninterrupted run); these tests check that they run and say so.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
KEY_LINES = {
    "quickstart.py": "quickstart OK",
    "resume_after_crash.py": "resume_after_crash OK",
    "elastic_resize.py": "elastic_resize OK: exact coverage",
    "lerobot_migration.py": "lerobot_migration OK",
    "mixture.py": "mixture OK: 10 + ",
    "accelerate_two_processes.py": "accelerate_two_processes OK: 1 process(es), ",
    "remote_training.py": "remote_training OK: ",
}


def test_every_example_is_tested() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(KEY_LINES)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(KEY_LINES))
def test_example_runs(name: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # examples must not depend on the working directory or write into it
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert KEY_LINES[name] in proc.stdout
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []

    if name in ("resume_after_crash.py", "remote_training.py"):  # the kill landed mid-run, after a checkpoint
        lines = proc.stdout.splitlines()
        (killed,) = [ln for ln in lines if ln.startswith("killed the ") and " (SIGKILL) after step " in ln]
        (reference,) = [ln for ln in lines if ln.startswith("reference")]
        total = int(reference.split(": ")[1].split()[0])
        last, saved = map(int, re.search(r"after step (\d+)\D.*checkpoint: step (\d+)$", killed).groups())
        assert 0 < saved <= last < total
