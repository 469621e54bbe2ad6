"""``episode_sampler.integrations.lerobot``: patch/unpatch against a fake LeRobot 0.6.1 (no real LeRobot).

Orders are checked against the fake trainer's own step log of an uninterrupted run (the reference),
never against a value computed by episode-sampler.
"""

from __future__ import annotations

import json
import logging
import os
import runpy
import socket
import subprocess
import sys
import types
from collections import Counter
from pathlib import Path

import pytest

from episode_sampler import EpisodeAwareSampler
from episode_sampler.integrations import lerobot as integration
from tests.integrations.fake_lerobot import write_fake_lerobot

SRC = Path(__file__).resolve().parents[2] / "src"
NAMES = {
    "EpisodeAwareSampler": ("lerobot.datasets.sampler", "lerobot.datasets"),
    "compute_sampler_state": ("lerobot.datasets.sampler", "lerobot.datasets"),
    "load_training_state": ("lerobot.common.train_utils",),
    "save_checkpoint": ("lerobot.common.train_utils",),
    "cycle": ("lerobot.utils.utils",),
}


def _forget_lerobot() -> None:
    for name in [m for m in sys.modules if m == "lerobot" or m.startswith("lerobot.")]:
        del sys.modules[name]


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fake lerobot on sys.path; unpatched and forgotten afterwards."""

    def make(version: str = "0.6.1") -> Path:
        root = write_fake_lerobot(tmp_path / f"site-{version}", version)
        monkeypatch.syspath_prepend(str(root))
        return root

    _forget_lerobot()
    yield make
    integration.unpatch()
    _forget_lerobot()


def originals() -> dict[str, object]:
    import importlib

    return {name: getattr(importlib.import_module(mods[0]), name) for name, mods in NAMES.items()}


def bound(name: str) -> list[object]:
    return [getattr(sys.modules[m], name) for m in NAMES[name]]


# ------------------------------------------------------------------------------------------ patching
def test_patch_replaces_every_name_and_unpatch_restores_them(fake) -> None:
    fake()
    before = originals()
    integration.patch()
    assert integration.is_patched()
    for name in NAMES:
        assert all(value is not before[name] for value in bound(name)), name
    import lerobot.datasets

    assert issubclass(lerobot.datasets.EpisodeAwareSampler, EpisodeAwareSampler)
    integration.unpatch()
    assert not integration.is_patched()
    for name in NAMES:
        assert all(value is before[name] for value in bound(name)), name


def test_patch_and_unpatch_are_idempotent(fake) -> None:
    fake()
    before = originals()
    integration.unpatch()  # not patched: nothing happens
    integration.patch()
    first = {name: bound(name) for name in NAMES}
    integration.patch(order="episodes")  # again: the same objects, new options, no stacked wrapper
    assert {name: bound(name) for name in NAMES} == first
    from lerobot.scripts.lerobot_train import train

    assert train(["--dry=1"]).order == "episodes"
    integration.unpatch()
    integration.unpatch()
    assert {name: bound(name)[0] for name in NAMES} == before


def test_import_after_patch_binds_ours_and_unpatch_restores_the_script(fake) -> None:
    fake()
    before = originals()
    integration.patch(permutation="feistel")
    from lerobot.scripts import lerobot_train

    sampler = lerobot_train.train(["--dry=1"])
    assert isinstance(sampler, integration.LeRobotTrainSampler)
    assert sampler.permutation == "feistel" and sampler.shuffle and sampler.num_frames == 31
    integration.unpatch()
    for name in NAMES:
        assert getattr(lerobot_train, name) is before[name]
    assert not isinstance(lerobot_train.train(["--dry=1"]), EpisodeAwareSampler)


def test_patch_after_import_rebinds_the_script(fake) -> None:
    fake()
    from lerobot.scripts import lerobot_train

    assert not isinstance(lerobot_train.train(["--dry=1"]), EpisodeAwareSampler)
    integration.patch()
    assert isinstance(lerobot_train.train(["--dry=1"]), integration.LeRobotTrainSampler)
    integration.unpatch()
    assert not isinstance(lerobot_train.train(["--dry=1"]), EpisodeAwareSampler)


def test_script_running_as_main_is_patched(fake, monkeypatch: pytest.MonkeyPatch) -> None:
    """`python -m lerobot.scripts.lerobot_train` / `torchrun -m`: the script is ``__main__``."""
    fake()
    integration.patch()
    monkeypatch.setattr(sys, "argv", ["lerobot-train", "--dry=1"])
    globs = runpy.run_module("lerobot.scripts.lerobot_train", run_name="__main__", alter_sys=True)
    assert isinstance(globs["SEEN"]["sampler"], integration.LeRobotTrainSampler)


def test_patch_rebinds_a_script_already_running_as_main(fake, monkeypatch: pytest.MonkeyPatch) -> None:
    root = fake()
    import importlib.util

    spec = importlib.util.find_spec("lerobot.scripts.lerobot_train")
    main = types.ModuleType("__main__")
    main.__spec__ = spec
    main.__file__ = str(root / "lerobot" / "scripts" / "lerobot_train.py")
    main.__package__ = "lerobot.scripts"
    monkeypatch.setattr(sys, "argv", ["lerobot-train", "--dry=1"])  # its `if __name__ == "__main__"` runs
    exec(compile(Path(main.__file__).read_text(), main.__file__, "exec"), main.__dict__)
    monkeypatch.setitem(sys.modules, "__main__", main)
    before = originals()
    assert main.EpisodeAwareSampler is before["EpisodeAwareSampler"]
    integration.patch()
    assert isinstance(main.train(["--dry=1"]), integration.LeRobotTrainSampler)
    integration.unpatch()
    for name in NAMES:
        assert getattr(main, name) is before[name]


def test_untested_version_is_refused_unless_forced(fake) -> None:
    fake("0.5.0")
    before = originals()
    with pytest.raises(integration.UnsupportedLeRobotVersion, match=r"0\.6\.1.*0\.5\.0.*force=True"):
        integration.patch()
    assert not integration.is_patched()
    assert {name: bound(name)[0] for name in NAMES} == before
    integration.patch(force=True)
    assert integration.is_patched()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"permutation": "sorted"}, ValueError, "permutation"),
        ({"order": 3}, TypeError, "order"),
        ({"order": "blocks"}, ValueError, "block_size is required"),
        ({"block_size": 4}, ValueError, "block_size is only for order='blocks'"),
        ({"order": "blocks", "block_size": 0}, ValueError, "block_size must be >= 1"),
        ({"force": "yes"}, TypeError, "force"),
        ({"set_epoch_log_level": "INFO"}, TypeError, "set_epoch_log_level"),
    ],
)
def test_patch_rejects_bad_options_naming_them(fake, kwargs, error, match) -> None:
    fake()
    with pytest.raises(error, match=match):
        integration.patch(**kwargs)
    assert not integration.is_patched()


def test_importing_episode_sampler_does_not_import_lerobot(fake) -> None:
    root = fake()
    code = (
        "import sys, episode_sampler\n"
        "from episode_sampler import EpisodeAwareSampler, compute_sampler_state\n"
        "import episode_sampler.integrations.lerobot, episode_sampler.integrations.lerobot_train\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'lerobot'))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(root)])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------ training
def run_train(root: Path, name: str, steps: int, **kw: object) -> list[list[int]]:
    """The fake trainer in this process, patched; returns the batches it trained (its log)."""
    from lerobot.scripts import lerobot_train

    log = root / f"{name}.log"
    args = [f"--steplog={log}", f"--output_dir={root / name}", f"--steps={steps}"]
    args += [f"--{k}={v}" for k, v in kw.items()]
    lerobot_train.train(args)
    return [json.loads(line) for line in Path(f"{log}.0").read_text().splitlines()]


def checkpoint(root: Path, name: str, step: int) -> Path:
    return root / name / f"{step:06d}"


# 31 frames, 7 batches of 5 per epoch (the last holds 1); 20 steps run into epoch 2
KILL_POINTS = [3, 6, 7, 10, 13, 14]


@pytest.mark.parametrize("sidecar", [True, False], ids=["episode_sampler.json", "LeRobot arithmetic"])
def test_resume_at_every_point_trains_the_uninterrupted_batches(fake, tmp_path: Path, sidecar: bool) -> None:
    fake()
    integration.patch()
    full = run_train(tmp_path, "full", 20, batch_size=5)
    assert sorted(x for b in full[:7] for x in b) == list(range(31))  # one epoch: every frame once
    assert full[:7] != full[7:14]  # epochs are shuffled differently
    run_train(tmp_path, "killed", 14, batch_size=5, save_freq=1)
    for step in KILL_POINTS:
        ckpt = checkpoint(tmp_path, "killed", step)
        state = ckpt / "training_state" / integration.SIDECAR
        assert state.is_file()
        if not sidecar:
            state.unlink()
        resumed = run_train(tmp_path, f"resumed{step}", 20, batch_size=5, resume_from=ckpt)
        assert resumed == full[step:], step


def test_checkpoint_state_records_the_position(fake, tmp_path: Path) -> None:
    fake()
    integration.patch()
    run_train(tmp_path, "run", 10, batch_size=5, save_freq=10)
    record = json.loads(
        (checkpoint(tmp_path, "run", 10) / "training_state" / integration.SIDECAR).read_text()
    )
    # 10 steps of 5: epoch 0 took 7 steps (31 frames), then 3 steps of epoch 1
    assert record["step"] == 10 and record["states"] == [{"epoch": 1, "start_index": 15}]
    assert record["segment"]["batch_size"] == 5 and record["segment"]["num_processes"] == 1
    assert record["sampler"]["num_frames"] == 31 and record["sampler"]["permutation"] == "randperm"


@pytest.mark.parametrize("step", [3, 9])
def test_another_batch_size_continues_the_global_order(fake, tmp_path: Path, step: int) -> None:
    fake()
    integration.patch()
    full = run_train(tmp_path, "full", 14, batch_size=5)  # 2 epochs at batch size 5
    run_train(tmp_path, "killed", step, batch_size=5, save_freq=step)
    ckpt = checkpoint(tmp_path, "killed", step)
    # the rest of both epochs at batch size 4: epoch 0 and 1 hold 31 frames each
    consumed = 5 * step if step < 7 else 31 + 5 * (step - 7)
    rest_steps = -(-(31 - 5 * step) // 4) if step < 7 else -(-(62 - consumed) // 4)
    resumed = run_train(tmp_path, "resumed", step + rest_steps, batch_size=4, resume_from=ckpt)
    flat_full = [x for b in full for x in b]
    flat_resumed = [x for b in resumed for x in b]
    end = 31 if step < 7 else 62
    assert flat_resumed[: end - consumed] == flat_full[consumed:end]  # same order, no loss, no repeat
    # a later checkpoint of the resized run resumes too (its origin is recorded)
    later = step + 2
    run_train(tmp_path, "resized", later, batch_size=4, resume_from=ckpt, save_freq=later)
    again = run_train(
        tmp_path, "again", later + 2, batch_size=4, resume_from=checkpoint(tmp_path, "resized", later)
    )
    assert again == resumed[2:4]


def test_resume_refuses_another_sampler_naming_the_option(fake, tmp_path: Path) -> None:
    fake()
    integration.patch()
    run_train(tmp_path, "run", 4, batch_size=5, save_freq=4)
    integration.patch(permutation="feistel")
    with pytest.raises(ValueError, match="permutation='randperm'.*permutation='feistel'"):
        run_train(tmp_path, "resumed", 8, batch_size=5, resume_from=checkpoint(tmp_path, "run", 4))


def test_resume_refuses_a_state_of_another_step(fake, tmp_path: Path) -> None:
    fake()
    integration.patch()
    run_train(tmp_path, "run", 4, batch_size=5, save_freq=2)
    a, b = checkpoint(tmp_path, "run", 2), checkpoint(tmp_path, "run", 4)
    (b / "training_state" / integration.SIDECAR).write_bytes(
        (a / "training_state" / integration.SIDECAR).read_bytes()
    )
    with pytest.raises(ValueError, match="for step 2 but the checkpoint's training_step.json says step 4"):
        run_train(tmp_path, "resumed", 8, batch_size=5, resume_from=b)


def test_resume_refuses_a_resize_when_processes_had_drifted(fake, tmp_path: Path) -> None:
    """even_batches=False on 2 processes: 7 batches per epoch, process 0 takes 4, process 1 takes 3."""
    fake()
    integration.patch()
    run_train(tmp_path, "run", 2, batch_size=5, save_freq=2)
    ckpt = checkpoint(tmp_path, "run", 2)
    path = ckpt / "training_state" / integration.SIDECAR
    record = json.loads(path.read_text())
    record["segment"].update(num_processes=2, even_batches=False)
    for step, drifted in ((2, False), (4, True)):  # after 4 steps process 1 is in epoch 1, process 0 is not
        record["step"] = step
        path.write_text(json.dumps(record))
        (ckpt / "training_state" / "training_step.json").write_text(json.dumps({"step": step}))
        if drifted:
            with pytest.raises(ValueError, match="even_batches=False and num_processes=2"):
                run_train(tmp_path, f"resumed{step}", step + 1, batch_size=5, resume_from=ckpt)
        else:
            full = run_train(tmp_path, "full", 5, batch_size=5)  # 2 steps x 2 processes = 4 here
            assert (
                run_train(tmp_path, f"resumed{step}", step + 1, batch_size=5, resume_from=ckpt) == full[4:5]
            )


def test_launcher_logs_the_expected_ignored_set_epoch_at_info(fake, caplog: pytest.LogCaptureFixture) -> None:
    fake()
    integration.patch(set_epoch_log_level=logging.INFO)
    from lerobot.scripts import lerobot_train

    sampler = lerobot_train.train(["--dry=1"])
    sampler.load_state_dict({"epoch": 2, "start_index": 3})
    with caplog.at_level(logging.DEBUG, logger="episode_sampler.sampler"):
        sampler.set_epoch(0)
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert "ignoring set_epoch(0)" in caplog.records[0].getMessage()


# ------------------------------------------------------------------------------------------ processes
@pytest.mark.slow
def test_torchrun_two_processes_resume_exactly_padding_included(fake, tmp_path: Path) -> None:
    """2 processes (gloo): each process's batches after a resume are the uninterrupted run's, including
    accelerate's padding of an epoch's last round; the launcher module runs as ``__main__``."""
    root = fake()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(root)]), "OMP_NUM_THREADS": "1"}

    def torchrun(name: str, steps: int, *extra: str) -> list[list[list[int]]]:
        log = tmp_path / f"{name}.log"
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2"]
        cmd += ["--master-addr=127.0.0.1", f"--master-port={port}"]
        cmd += ["-m", "episode_sampler.integrations.lerobot_train", f"--steplog={log}"]
        cmd += [f"--output_dir={tmp_path / name}", f"--steps={steps}", "--batch_size=3", *extra]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return [[json.loads(x) for x in Path(f"{log}.{r}").read_text().splitlines()] for r in (0, 1)]

    # 31 frames / 3 = 11 batches: 6 steps per epoch; accelerate pads the last round (the 1-frame batch and
    # process 1's missing batch: 5 samples) with samples from the start of the pass
    full = torchrun("full", 14)
    epoch_0 = Counter(x for r in full for b in r[:6] for x in b)
    assert set(epoch_0) == set(range(31)) and sum(epoch_0.values()) == 36
    torchrun("killed", 11, "--save_freq=1")
    for step in (2, 5, 6, 8, 11):
        resumed = torchrun(f"resumed{step}", 14, f"--resume_from={checkpoint(tmp_path, 'killed', step)}")
        assert resumed == [r[step:] for r in full], step


@pytest.mark.slow
def test_python_m_launcher_strips_our_options_and_passes_the_rest(fake, tmp_path: Path) -> None:
    root = fake()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), str(root)]),
        "EPISODE_SAMPLER_ORDER": "episodes",
    }
    code = (
        "import sys, runpy\n"
        "from episode_sampler.integrations.lerobot_train import main\n"
        "code = main(sys.argv[1:])\n"
        "from lerobot.scripts.lerobot_train import SEEN\n"
        "s = SEEN['sampler']\n"
        "print(type(s).__name__, s.permutation, s.order, SEEN['argv'], sys.argv[0])\n"
    )
    args = ["--dry=1", "--es.permutation", "feistel", "--resume=true", "--config_path=x/train_config.json"]
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split(" ", 3) == [
        "LeRobotTrainSampler",
        "feistel",
        "episodes",
        "['--dry=1', '--resume=true', '--config_path=x/train_config.json'] lerobot-train\n",
    ]


# ------------------------------------------------------------------------------------------ sampler option
def test_sampler_set_epoch_log_level_default_warning_and_settable(caplog: pytest.LogCaptureFixture) -> None:
    levels = []
    for level in (None, logging.INFO):
        sampler = EpisodeAwareSampler([0, 10], [10, 25], shuffle=True)
        assert sampler.set_epoch_log_level == logging.WARNING
        if level is not None:
            sampler.set_epoch_log_level = level
        sampler.load_state_dict({"epoch": 3, "start_index": 2})
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="episode_sampler.sampler"):
            sampler.set_epoch(0)
            sampler.set_epoch(1)  # logged once per sampler
        levels.append([r.levelno for r in caplog.records])
        assert sampler.state_dict()["epoch"] == 3  # still ignored, whatever the level
    assert levels == [[logging.WARNING], [logging.INFO]]
    with pytest.raises(TypeError, match="set_epoch_log_level"):
        sampler.set_epoch_log_level = "INFO"  # type: ignore[assignment]
    with pytest.raises(ValueError, match="set_epoch_log_level must be <= 50"):
        sampler.set_epoch_log_level = 60


# ------------------------------------------------------------------------------------------ launcher
def test_launcher_args_split_ours_from_lerobots() -> None:
    from episode_sampler.integrations.lerobot_train import parse_args

    argv = [
        "--resume=true",
        "--es.order=blocks",
        "--config_path=a/b.json",
        "--es.block-size",
        "4",
        "--es.force",
    ]
    env = {"EPISODE_SAMPLER_ORDER": "episodes", "EPISODE_SAMPLER_PERMUTATION": "feistel"}
    options, rest, want_help = parse_args(argv, env)
    assert options == {"order": "blocks", "block_size": 4, "force": True, "permutation": "feistel"}
    assert rest == ["--resume=true", "--config_path=a/b.json"] and not want_help
    assert parse_args(["--policy.type=act", "-h"], {})[1:] == (["--policy.type=act"], True)


@pytest.mark.parametrize(
    ("argv", "env", "match"),
    [
        (["--es.perm=feistel"], {}, "unknown option --es.perm"),
        (["--es.order=rows"], {}, "--es.order must be one of"),
        (["--es.block_size=x"], {}, "--es.block_size must be an integer"),
        (["--es.order"], {}, "--es.order needs a value"),
        ([], {"EPISODE_SAMPLER_FORCE": "maybe"}, "--es.force must be true or false"),
    ],
)
def test_launcher_rejects_bad_options_naming_them(argv, env, match) -> None:
    from episode_sampler.integrations.lerobot_train import LauncherUsageError, parse_args

    with pytest.raises(LauncherUsageError, match=match):
        parse_args(argv, env)


def test_cli_lerobot_train_help_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    from episode_sampler.cli import main

    assert main(["--help"]) == 0
    assert "lerobot-train" in capsys.readouterr().out
    assert main(["lerobot-train", "--help"]) == 0
    out = capsys.readouterr().out
    for text in ("--es.permutation", "--es.order", "--es.block_size", "--es.force", "EPISODE_SAMPLER_ORDER"):
        assert text in out
    assert main(["lerobot-train", "--es.nope=1"]) == 2
    assert "episode-sampler lerobot-train: error: unknown option --es.nope" in capsys.readouterr().err
