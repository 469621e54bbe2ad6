"""examples/accelerate_two_processes.py: the runnable command that docs/lerobot-migration.md's "Two
processes" section gives (issue 20: it asked readers to hand-write a spec.json for a test helper)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "accelerate_two_processes.py"

pytest.importorskip("accelerate")


def command_in_docs() -> list[str]:
    text = (ROOT / "docs" / "lerobot-migration.md").read_text(encoding="utf-8")
    section = text.split("## Two processes", 1)[1]
    (line,) = re.findall(r"```bash\n(torchrun [^\n]*)\n```", section.split("\n## ", 1)[0])
    return line.split()


def shown_output() -> str:
    text = (ROOT / "docs" / "lerobot-migration.md").read_text(encoding="utf-8")
    section = text.split("## Two processes", 1)[1]
    return re.search(r"```text\n(.*?)\n```", section, re.S)[1]


@pytest.mark.slow
def test_the_documented_torchrun_command_runs_and_prints_what_the_page_shows(tmp_path: Path) -> None:
    cmd = command_in_docs()
    assert cmd == [
        "torchrun",
        "--standalone",
        "--nproc-per-node",
        "2",
        "examples/accelerate_two_processes.py",
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", *cmd[1:-1], str(ROOT / cmd[-1])],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [shown_output()]
