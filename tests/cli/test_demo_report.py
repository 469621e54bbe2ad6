"""The demo's report says why the kill landed after the step asked for (issue 20): the SIGKILL is sent
when the demo reads the process's ``step K`` line, and the process trains on until it lands."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from episode_sampler.cli import main
from episode_sampler.cli.demo import kill_report


def test_kill_at_the_asked_step_is_one_line() -> None:
    assert kill_report(231, 231, 152) == [
        "  kill        SIGKILL after step 231 (epoch 1, step 79 of 152); asked for step 231"
    ]


@pytest.mark.parametrize("last, ran", [(232, "1 step"), (234, "3 steps")])
def test_kill_after_the_asked_step_says_why(last: int, ran: str) -> None:
    assert kill_report(last, 231, 152) == [
        f"  kill        SIGKILL after step {last} (epoch 1, step {last - 152} of 152); asked for step 231",
        f"              the process ran {ran} past it before the signal landed: the demo sends SIGKILL on",
        "              reading its 'step 231' line, and the process trains on meanwhile (its batches are "
        "prefetched)",
    ]


@pytest.mark.slow
def test_a_late_signal_lets_the_process_run_on_and_the_report_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Delay the demo's SIGKILL (as a busy machine does): the process logs further steps, the report
    names them and why, and the resume is still exact."""
    real_kill = os.kill

    def late_kill(pid: int, sig: int) -> None:
        time.sleep(0.05)
        real_kill(pid, sig)

    monkeypatch.setattr(os, "kill", late_kill)
    argv = ["demo", "--root", str(tmp_path / "ds"), "--episodes", "12", "--epochs", "1", "--batch-size", "1"]
    assert main([*argv, "--kill-at-step", "30", "--quiet"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    (i,) = [k for k, ln in enumerate(lines) if ln.startswith("  kill ")]
    last = int(re.search(r"SIGKILL after step (\d+) ", lines[i])[1])
    assert last > 30 and lines[i].endswith("; asked for step 30")
    assert lines[i + 1].startswith(f"              the process ran {last - 30} step")
    assert lines[i + 2].startswith("              reading its 'step 30' line, and the process trains on")
    assert "verdict     EXACT" in out
