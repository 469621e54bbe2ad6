"""Progress output on a stream that is not a terminal (CI logs, ``2>&1 | cat``): whole lines, never
``\\r``-joined tqdm redraws (issue 20: they became 3 KB lines)."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from episode_sampler.cli.progress import PlainStepBar, Progress, StepBar

SECONDS = r"\d+\.\d s"


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_on_a_pipe_prints_a_line_per_quarter_and_one_at_the_end() -> None:
    stream = io.StringIO()
    bar = Progress(stream=stream).bar("reference run", 10)
    assert isinstance(bar, PlainStepBar)
    for step in range(1, 11):
        bar.to(step)
    bar.close(10)
    bar.close()  # a second close prints nothing more
    text = stream.getvalue()
    assert "\r" not in text and "\033" not in text
    lines = text.splitlines()
    assert [re.sub(SECONDS, "S", ln) for ln in lines] == [
        "reference run: 3/10 steps (S)",
        "reference run: 5/10 steps (S)",
        "reference run: 8/10 steps (S)",
        "reference run: 10/10 steps in S",
    ]


def test_a_resumed_bar_on_a_pipe_starts_at_its_step_and_ends_with_its_note() -> None:
    stream = io.StringIO()
    bar = Progress(stream=stream).bar("run to be killed", 100, initial=40)
    bar.to(49)
    bar.to(77)  # past the 2nd and the 3rd quarter: one line
    bar.close(78, "SIGKILL")
    lines = [re.sub(SECONDS, "S", ln) for ln in stream.getvalue().splitlines()]
    assert lines == ["run to be killed: 77/100 steps (S)", "run to be killed: 78/100 steps in S, SIGKILL"]


def test_status_on_a_pipe_is_two_plain_lines() -> None:
    stream = io.StringIO()
    with Progress(stream=stream).status("writing a dataset"):
        pass
    lines = [re.sub(SECONDS, "S", ln) for ln in stream.getvalue().splitlines()]
    assert lines == ["writing a dataset ...", "writing a dataset: done in S"]


def test_a_terminal_still_gets_a_tqdm_bar() -> None:
    stream = FakeTTY()
    bar = Progress(stream=stream).bar("reference run", 10)
    assert type(bar) is StepBar
    bar.to(10)
    bar.close(10)
    assert "\r" in stream.getvalue()


def test_status_without_report_on_a_terminal_leaves_no_line_and_lines_are_whole() -> None:
    stream = FakeTTY()
    progress = Progress(stream=stream)
    assert progress.interactive
    with progress.status("[1/2] frames, 0 workers", report=False):
        pass
    progress.line("[1/2] frames, 0 workers: 1,000 samples/s")
    text = stream.getvalue()
    assert "done in" not in text  # the spinner is cleared, the caller's result line replaces it
    assert text.endswith("\r\033[K[1/2] frames, 0 workers: 1,000 samples/s\n")
    with pytest.raises(RuntimeError), progress.status("[2/2] blocks", report=False):
        raise RuntimeError
    assert re.search(r"\[2/2\] blocks: stopped in \d+\.\d s\n$", stream.getvalue())  # failures still say so


def test_quiet_prints_nothing() -> None:
    stream = io.StringIO()
    bar = Progress(enabled=False, stream=stream).bar("reference run", 10)
    bar.to(5)
    bar.close(10)
    Progress(enabled=False, stream=stream).line("a result")
    assert not Progress(enabled=False, stream=FakeTTY()).interactive
    assert stream.getvalue() == ""


@pytest.mark.slow
def test_demo_progress_piped_is_plain_lines(tmp_path: Path) -> None:
    argv = ["demo", "--root", str(tmp_path / "ds"), "--episodes", "12", "--epochs", "1", "--batch-size", "8"]
    code = "import sys; from episode_sampler.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run(
        [sys.executable, "-c", code, *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600
    )
    out = proc.stdout.decode()
    assert proc.returncode == 0, out
    assert "\r" not in out and "\033" not in out
    bars = [
        ln
        for ln in out.splitlines()
        if ln.startswith(("reference run:", "run to be killed:", "resumed run:"))
    ]
    ends = [ln for ln in bars if " steps in " in ln]
    assert len(ends) == 3, bars
    assert all(len(ln) < 80 for ln in bars)
    assert re.fullmatch(r"run to be killed: \d+/\d+ steps in \d+\.\d s, SIGKILL", ends[1]), ends
