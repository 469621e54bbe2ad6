"""The real LeRobot (``lerobot`` 0.6.1), run in its own Python (it needs Python >= 3.12).

LeRobot cannot be imported in the suite's interpreter, so its side of a comparison runs as a snippet in
the Python of a separate venv: ``EPISODE_SAMPLER_LEROBOT_PYTHON`` names it, else
``/work/venv-lerobot/bin/python`` when that exists. Where neither imports ``lerobot``, the cases that
use it skip the real LeRobot with the note from :func:`available` (and keep the in-repo LeRobot-style
fallback where they have one).

Every snippet is run in a fresh process by :func:`run_snippet` (the same function runs our side, under
``sys.executable``), and reports its results as one JSON object on the last line of its stdout.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ENV = "EPISODE_SAMPLER_LEROBOT_PYTHON"
DEFAULT_PYTHON = "/work/venv-lerobot/bin/python"
REPO = Path(__file__).resolve().parents[2]


def lerobot_python() -> str | None:
    """The interpreter to run LeRobot with (``None`` when none is configured or the default is absent)."""
    configured = os.environ.get(ENV)
    if configured:
        return configured
    return DEFAULT_PYTHON if Path(DEFAULT_PYTHON).exists() else None


@functools.cache
def _probe(python: str) -> str | None:
    try:
        proc = subprocess.run(
            [
                python,
                "-c",
                "import lerobot, sys; print(lerobot.__version__ if hasattr(lerobot, '__version__') else '?')",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=snippet_env(),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{python} cannot run ({exc})"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return f"{python} cannot import lerobot ({last})"
    return None


def available() -> str | None:
    """``None`` when the real LeRobot can be run, otherwise why not (the note printed instead)."""
    python = lerobot_python()
    if python is None:
        return (
            f"real LeRobot skipped: set {ENV} to a Python that imports lerobot 0.6.1 "
            f"(none at {DEFAULT_PYTHON})"
        )
    note = _probe(python)
    return None if note is None else f"real LeRobot skipped: {note}"


def lerobot_version() -> str | None:
    python = lerobot_python()
    if python is None or available() is not None:
        return None
    return run_snippet(
        python, "import json, importlib.metadata as m; print(json.dumps({'v': m.version('lerobot')}))"
    )["v"]


def snippet_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a snippet: offline Hugging Face, this checkout's ``episode_sampler`` and
    ``benchmarks`` first on the path, one thread per library unless the caller says otherwise."""
    import episode_sampler

    env = dict(os.environ)
    paths = [str(Path(episode_sampler.__file__).resolve().parents[1]), str(REPO)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.update(extra or {})
    return env


def run_snippet(
    python: str, code: str, *, env: dict[str, str] | None = None, timeout: float = 600.0
) -> dict[str, Any]:
    """Run ``code`` in a fresh ``python`` process; its last stdout line, parsed as JSON.

    The result gains ``wall_s``, the parent's wall time from just before the process was started to
    its exit, and ``spawn_t``, the parent's ``time.time()`` just before the start (a snippet that
    reports its own ``time.time()`` at some event can be turned into "process start to event").
    """
    spawn_t = time.time()
    t0 = time.perf_counter()
    proc = subprocess.run(
        [python, "-c", code],
        capture_output=True,
        text=True,
        env=snippet_env(env),
        timeout=timeout,
        check=False,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"snippet failed under {python} (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    lines = proc.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"snippet under {python} printed nothing:\n{proc.stderr[-3000:]}")
    out = json.loads(lines[-1])
    out["wall_s"] = wall
    out["spawn_t"] = spawn_t
    return out


def ours_python() -> str:
    return sys.executable
