"""``import episode_sampler`` is light (PEP 562 lazy names): no torch, torchdata, pyarrow or PyAV until a
name that needs them is used; every public name still resolves; the command line's first output comes
before torch is imported (checked structurally with an import hook, not by timing)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import episode_sampler

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchdata", "pyarrow", "av", "matplotlib")


def python(code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_import_and_version_import_nothing_heavy() -> None:
    proc = python(
        "import json, sys\n"
        "import episode_sampler\n"
        "v = episode_sampler.__version__\n"
        f"print(json.dumps([v, [m for m in {HEAVY!r} if m in sys.modules]]))\n"
    )
    assert proc.returncode == 0, proc.stderr
    version, loaded = json.loads(proc.stdout)
    assert loaded == []
    pyproject = (ROOT / "pyproject.toml").read_text()
    declared = re.search(r'^version\s*=\s*"([^"]+)"', pyproject, re.M)
    assert declared is None or version == declared.group(1)  # a dynamic version reads __init__ itself


@pytest.mark.slow
def test_every_public_name_resolves_in_a_fresh_process() -> None:
    names = [n for n in episode_sampler.__all__ if n != "__version__"]
    code = "import episode_sampler\n" + "".join(f"from episode_sampler import {n}\n" for n in names)
    code += "from episode_sampler import *\nprint(sorted(k for k in dir() if not k.startswith('_')))\n"
    proc = python(code)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.replace("'", '"')) == sorted([*names, "episode_sampler"])


def test_public_names_are_the_defining_modules_objects() -> None:
    from episode_sampler import distributed, lerobot, mixture, node, pipeline_check, sampler
    from episode_sampler.core import checkpoint, layout, seeding, steps
    from episode_sampler.integrations import accelerate

    modules = (
        accelerate,
        checkpoint,
        distributed,
        layout,
        lerobot,
        mixture,
        node,
        pipeline_check,
        sampler,
        seeding,
        steps,
    )
    for name in episode_sampler.__all__:
        value = getattr(episode_sampler, name)
        if name == "__version__":
            assert isinstance(value, str) and value
            continue
        homes = [m for m in modules if getattr(m, name, None) is value]
        assert homes, f"episode_sampler.{name} is not the object its module defines"
    assert set(episode_sampler.__all__) <= set(dir(episode_sampler))
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchName'"):
        episode_sampler.NoSuchName  # noqa: B018


@pytest.mark.slow
def test_cli_version_and_help_do_not_import_torch() -> None:
    proc = python(
        "import contextlib, io, json, sys\n"
        "from episode_sampler.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    codes = [main(['--version']), main(['demo', '--help']), main(['inspect', '--help'])]\n"
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(json.dumps([codes, out.getvalue().splitlines()[0], loaded]))\n"
    )
    assert proc.returncode == 0, proc.stderr
    codes, first, loaded = json.loads(proc.stdout)
    assert codes == [0, 0, 0] and first == f"episode-sampler {episode_sampler.__version__}"
    assert loaded == []


# The demo, run until it first imports torch: an import hook records that moment among everything the
# demo writes to stdout and stderr, then ends the process (so the test does not train anything).
DEMO_UNTIL_TORCH = r"""
import json, os, sys

events = []

class Recorder:
    def __init__(self, name, stream):
        self.name, self.stream = name, stream
    def write(self, text):
        if text:
            events.append([self.name, text])
        return len(text)
    def flush(self):
        pass
    def isatty(self):
        return False

class TorchImport:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            events.append(["import", "torch"])
            with open(sys.argv[1], "w") as f:
                json.dump(events, f)
            os._exit(0)
        return None

sys.stdout, sys.stderr = Recorder("stdout", sys.stdout), Recorder("stderr", sys.stderr)
sys.meta_path.insert(0, TorchImport())
from episode_sampler.cli import main
main(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    json.dump(events, f)
"""


@pytest.mark.slow
def test_demo_prints_its_first_line_before_importing_torch(tmp_path: Path) -> None:
    script, events_path = tmp_path / "demo_until_torch.py", tmp_path / "events.json"
    script.write_text(DEMO_UNTIL_TORCH)
    argv = ["demo", "--root", str(tmp_path / "ds"), "--episodes", "3", "--keep", str(tmp_path / "run")]
    proc = subprocess.run(
        [sys.executable, str(script), str(events_path), *argv], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    events = json.loads(events_path.read_text())
    assert ["import", "torch"] in events, "the demo never imported torch"
    before = events[: events.index(["import", "torch"])]
    # progress (stderr) says what the wait is for before it starts; the report (stdout) comes later
    assert before and before[0][0] == "stderr", before
    assert before[0][1].startswith("loading torch, torchdata, pyarrow and PyAV ..."), before
