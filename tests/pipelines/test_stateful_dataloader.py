"""torchdata's ``set_vital`` deprecation warning (issue 20: the first thing a ``StatefulDataLoader`` user
saw): filtered where our code constructs a ``StatefulDataLoader``, for that construction only, never at
``import episode_sampler``; explained in the docs where users construct their own."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import warnings
from pathlib import Path
from types import ModuleType

import pytest

from episode_sampler import write_lerobot_dataset

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "pipelines" / "stateful_dataloader.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pipeline_stateful_dataloader_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def set_vital_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if "set_vital" in str(w.message)]


def test_constructing_a_stateful_dataloader_warns_here() -> None:
    """The premise: torchdata 0.11 with this torch warns on construction (else the filter is moot)."""
    from torchdata.stateful_dataloader import StatefulDataLoader

    module = load_script()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        StatefulDataLoader(list(range(4)))
    assert set_vital_warnings(caught) == [module._common.SET_VITAL_WARNING]


def test_the_pipeline_shows_no_set_vital_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "ds"
    write_lerobot_dataset(root, num_episodes=3, seed=0)
    module = load_script()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert module.main(["--root", str(root), "--steps", "2"]) == 0
    assert set_vital_warnings(caught) == []
    assert capsys.readouterr().out.splitlines()[-1].startswith("rank 0/1: 64 samples in ")


def test_the_filter_is_scoped_to_the_construction() -> None:
    from torchdata.stateful_dataloader import StatefulDataLoader

    common = load_script()._common
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with common.no_set_vital_warning():
            StatefulDataLoader(list(range(4)))
            warnings.warn("another warning", UserWarning, stacklevel=1)  # still shown
        StatefulDataLoader(list(range(4)))  # outside the block: shown again
    assert [str(w.message) for w in caught] == ["another warning", common.SET_VITAL_WARNING]


@pytest.mark.slow
def test_import_episode_sampler_installs_no_filter() -> None:
    code = (
        "import warnings, episode_sampler, episode_sampler.sampler, episode_sampler.node\n"
        "print(any('set_vital' in str(f[1]) for f in warnings.filters if f[1] is not None))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout == "False\n"


def test_the_docs_explain_it_where_users_construct_one() -> None:
    text = " ".join((ROOT / "docs" / "getting-started.md").read_text(encoding="utf-8").split())
    assert "UserWarning: 'set_vital' is deprecated, please do not call" in text
    assert (
        'warnings.filterwarnings("ignore", message="\'set_vital\' is deprecated", category=UserWarning)'
        in text
    )
