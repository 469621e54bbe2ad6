"""Fault injection: the demo's training worker is SIGKILLed at many points -- between steps, inside each
phase of a checkpoint write, at random moments of a checkpoint-every-step loop, twice in a row -- and
every resume must continue exactly: the steps up to the checkpoint that survived the kill plus the
resumed steps equal an uninterrupted run, sample for sample, with bit-identical final weights.

The uninterrupted run is itself checked against an independent brute-force epoch order
(``tests/helpers/reference.py``), and every kill inside a checkpoint write must leave the previous
checkpoint loadable. The runs killed at a precise point go through ``tests/helpers/pausing_worker.py``,
which wraps the real worker to pause there; the others run the worker as it is. Workers are forked
from a forkserver that has torch preloaded (each is a fresh process, killed with a real SIGKILL) so
the ~25 processes cost seconds, not minutes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from episode_sampler import cli, load_state, write_lerobot_dataset
from episode_sampler.cli import worker
from tests.helpers import pausing_worker
from tests.helpers.reference import episodes_lists, reference_epoch

pytestmark = pytest.mark.slow

EPISODES, BATCH, SEED, EPOCHS, EVERY = 30, 16, 11, 2, 10
PRELOAD = [
    "torch",
    "pyarrow.parquet",
    "torchdata.nodes",
    "episode_sampler.cli.worker",
    "episode_sampler.lerobot",
    "episode_sampler.node",
    "episode_sampler.core.checkpoint",
    "tests.helpers.pausing_worker",
]
TIMEOUT = 90.0


@dataclass
class Kill:
    """Where to kill one run: at a ``--pause-at`` point, or ``delay`` s after step ``step`` is logged."""

    pause: str | None = None
    step: int | None = None
    delay: float = 0.0


@dataclass
class Scenario:
    name: str
    kills: list[Kill]
    every: int = EVERY


@dataclass
class KillRecord:
    last_logged: int  # last step the killed process logged
    ckpt_at_pause: int | None  # committed checkpoint step while paused (None: no checkpoint yet)
    ckpt_after: int  # committed checkpoint step after the kill (0: none)
    files_at_pause: list[str] = field(default_factory=list)
    tmp_json: Any = None  # content of a temporary checkpoint.json left by the kill, if any
    checkpoint_copy: Path | None = None


@dataclass
class Outcome:
    kills: list[KillRecord]
    effective: list[dict[str, Any]]
    summary: dict[str, Any]


# ---------------------------------------------------------------------------------------------- helpers
def _context() -> Any:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def _argv(root: Path, ck: Path, log: Path, every: int, **extra: Any) -> list[str]:
    argv = [
        "--root",
        str(root),
        "--checkpoint-dir",
        str(ck),
        "--log",
        str(log),
        "--batch-size",
        str(BATCH),
        "--seed",
        str(SEED),
        "--epochs",
        str(EPOCHS),
        "--checkpoint-every",
        str(every),
        "--permutation",
        "feistel",
    ]
    for key, value in extra.items():
        flag = "--" + key.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    return argv


def _wait(proc: Any, ready: Any, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not ready():
        if not proc.is_alive():
            raise AssertionError(f"the worker exited ({proc.exitcode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


def _committed_step(ck: Path) -> int | None:
    found = worker.load_checkpoint(ck)  # raises if checkpoint.json is torn or names a missing model file
    return None if found is None else found[0]["step"]


def _run_scenario(ctx: Any, root: Path, work: Path, sc: Scenario) -> Outcome:
    ck = work / "ck"
    records: list[KillRecord] = []
    effective: list[dict[str, Any]] = []
    for i, kill in enumerate(sc.kills):
        log, status = work / f"run{i}.jsonl", work / f"status{i}"
        extra: dict[str, Any] = {"resume": True} if i else {}
        if kill.pause:
            extra.update(pause_at=kill.pause, status=status)
        target = pausing_worker.main if kill.pause else worker.main
        proc = ctx.Process(target=target, args=(_argv(root, ck, log, sc.every, **extra),))
        proc.start()
        try:
            if kill.pause:
                _wait(proc, lambda st=status: st.exists() and "paused" in st.read_text(), kill.pause)
            else:
                _wait(proc, lambda lg=log, k=kill.step: len(worker.read_log(lg)) >= k, f"step {kill.step}")
                time.sleep(kill.delay)
            files = sorted(p.name for p in ck.iterdir()) if ck.exists() else []
            at_pause = _committed_step(ck) if kill.pause else None
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.join(TIMEOUT)
            if proc.is_alive():
                proc.kill()
                proc.join()
        assert proc.exitcode == -signal.SIGKILL, f"{sc.name}: worker exit code {proc.exitcode}"
        after = _committed_step(ck) or 0
        tmp_json = None
        for tmp in ck.glob(".checkpoint.json.*.tmp") if ck.exists() else []:
            tmp_json = json.loads(tmp.read_text())
        copy = None
        if after:
            copy = work / f"checkpoint-after-kill{i}.json"
            shutil.copy(ck / "checkpoint.json", copy)
        steps = worker.read_log(log)
        records.append(KillRecord(steps[-1]["step"] if steps else 0, at_pause, after, files, tmp_json, copy))
        effective += [s for s in steps if s["step"] <= after]
    final_log, summary_path = work / "final.jsonl", work / "summary.json"
    proc = ctx.Process(
        target=worker.main, args=(_argv(root, ck, final_log, sc.every, resume=True, summary=summary_path),)
    )
    proc.start()
    proc.join(TIMEOUT)
    assert proc.exitcode == 0, f"{sc.name}: the final resume exited with {proc.exitcode}"
    effective += worker.read_log(final_log)
    return Outcome(records, effective, json.loads(summary_path.read_text()))


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    root = tmp_path_factory.mktemp("fault") / "dataset"
    index = write_lerobot_dataset(root, num_episodes=EPISODES)
    return root, index


def _steps_per_epoch(index: Any) -> int:
    return -(-index.num_frames // BATCH)


def _scenarios(spe: int) -> list[Scenario]:
    rng = random.Random(2024)
    total = EPOCHS * spe
    r1, r2 = rng.randrange(5, total - 20), rng.randrange(5, total - 20)
    return [
        Scenario("between steps, before the first checkpoint", [Kill(pause="5:step")]),
        Scenario("between steps, mid epoch 0", [Kill(pause="37:step")]),
        Scenario("checkpoint: temporary model file written, not renamed", [Kill(pause="50:model-tmp")]),
        Scenario("checkpoint: model renamed, checkpoint.json not written", [Kill(pause="60:model-renamed")]),
        Scenario("checkpoint: inside save_state, before its rename", [Kill(pause="70:json-tmp")]),
        Scenario("checkpoint: committed, old files not yet removed", [Kill(pause="90:json-renamed")]),
        Scenario("after the last step of epoch 0, before its checkpoint", [Kill(pause=f"{spe}:step")]),
        Scenario("checkpoint exactly at the epoch boundary", [Kill(pause=f"{spe}:json-renamed")], every=spe),
        Scenario("random moment 1, checkpoint every step", [Kill(step=r1, delay=rng.uniform(0, 0.02))], 1),
        Scenario("random moment 2, checkpoint every step", [Kill(step=r2, delay=rng.uniform(0, 0.02))], 1),
        Scenario(
            "twice: inside save_state, then the resumed run inside its model write",
            [Kill(pause="120:json-tmp"), Kill(pause="140:model-tmp")],
        ),
    ]


@pytest.fixture(scope="module")
def runs(dataset: tuple[Path, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The reference run and every scenario, run two at a time (the machine has two cores)."""
    root, index = dataset
    ctx = _context()
    spe = _steps_per_epoch(index)
    work = tmp_path_factory.mktemp("runs")

    def reference() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        log, summary = work / "reference.jsonl", work / "reference-summary.json"
        proc = ctx.Process(
            target=worker.main, args=(_argv(root, work / "ref-ck", log, EVERY, summary=summary),)
        )
        proc.start()
        proc.join(TIMEOUT)
        assert proc.exitcode == 0
        return worker.read_log(log), json.loads(summary.read_text())

    scenarios = _scenarios(spe)
    with ThreadPoolExecutor(max_workers=2) as pool:
        ref = pool.submit(reference)
        futures = {}
        for n, sc in enumerate(scenarios):
            (work / f"s{n}").mkdir()
            futures[sc.name] = pool.submit(_run_scenario, ctx, root, work / f"s{n}", sc)
        outcomes = {name: f.result() for name, f in futures.items()}
        reference_log, reference_summary = ref.result()
    return {
        "reference": reference_log,
        "reference_summary": reference_summary,
        "outcomes": outcomes,
        "scenarios": {sc.name: sc for sc in scenarios},
        "spe": spe,
    }


# ---------------------------------------------------------------------------------------------- tests
def test_reference_run_is_the_brute_force_order(dataset: tuple[Path, Any], runs: dict[str, Any]) -> None:
    """The uninterrupted run consumes, epoch by epoch, the independently computed Feistel order."""
    _, index = dataset
    eps = episodes_lists(index.starts.tolist(), index.ends.tolist())
    ref = runs["reference"]
    spe = runs["spe"]
    assert [s["step"] for s in ref] == list(range(1, EPOCHS * spe + 1))
    for epoch in range(EPOCHS):
        stream = [i for s in ref if s["epoch"] == epoch for i in s["indices"]]
        assert stream == reference_epoch(eps, "frames", None, "feistel", SEED, epoch)
        assert [len(s["indices"]) for s in ref if s["epoch"] == epoch][:-1] == [BATCH] * (spe - 1)


def test_at_least_ten_kill_points(runs: dict[str, Any]) -> None:
    kills = [k for o in runs["outcomes"].values() for k in o.kills]
    assert len(kills) >= 10
    assert len({(k.last_logged, k.ckpt_after) for k in kills}) >= 10  # really different points


@pytest.mark.parametrize("name", [sc.name for sc in _scenarios(100)])  # names do not depend on the size
def test_resume_is_exact(name: str, runs: dict[str, Any]) -> None:
    outcome: Outcome = runs["outcomes"][name]
    reference = runs["reference"]
    assert [s["step"] for s in outcome.effective] == [s["step"] for s in reference]
    for got, want in zip(outcome.effective, reference):
        assert got == want, f"step {want['step']} differs after the resume"
    assert outcome.summary["weights_sha256"] == runs["reference_summary"]["weights_sha256"]
    for kill in outcome.kills:  # the process really was mid-run, and redoes at most the uncommitted steps
        assert 0 < kill.last_logged < len(reference)
        assert kill.ckpt_after <= kill.last_logged


def _single(runs: dict[str, Any], prefix: str) -> KillRecord:
    (outcome,) = [o for k, o in runs["outcomes"].items() if k.startswith(prefix)]
    return outcome.kills[0]


def test_kill_between_steps_keeps_the_last_checkpoint(runs: dict[str, Any]) -> None:
    assert _single(runs, "between steps, before").ckpt_after == 0  # resumed from scratch
    kill = _single(runs, "between steps, mid epoch 0")
    assert (kill.last_logged, kill.ckpt_after) == (37, 30)
    spe = runs["spe"]
    kill = _single(runs, "after the last step of epoch 0")
    assert (kill.last_logged, kill.ckpt_after) == (spe, spe // EVERY * EVERY)


@pytest.mark.parametrize(
    ("prefix", "step", "previous"),
    [
        ("checkpoint: temporary model file", 50, 40),
        ("checkpoint: model renamed", 60, 50),
        ("checkpoint: inside save_state", 70, 60),
    ],
)
def test_kill_mid_write_leaves_the_previous_checkpoint_loadable(
    runs: dict[str, Any], prefix: str, step: int, previous: int
) -> None:
    kill = _single(runs, prefix)
    assert kill.ckpt_at_pause == previous and kill.ckpt_after == previous
    assert f"model-{previous:08d}.pt" in kill.files_at_pause  # the model the committed JSON names
    if "temporary model" in prefix:
        assert f"model-{step:08d}.pt" not in kill.files_at_pause
        assert any(f.startswith(f".model-{step:08d}.pt.") for f in kill.files_at_pause)
    if "model renamed" in prefix:
        assert f"model-{step:08d}.pt" in kill.files_at_pause  # orphan, never named by checkpoint.json
    if "inside save_state" in prefix:  # the new state was fully written, only the rename was missing
        assert kill.tmp_json is not None and kill.tmp_json["step"] == step
    saved = load_state(kill.checkpoint_copy)
    assert saved["step"] == previous
    assert cli.main(["inspect", str(kill.checkpoint_copy)]) == 0


def test_kill_after_commit_resumes_from_the_new_checkpoint(runs: dict[str, Any]) -> None:
    kill = _single(runs, "checkpoint: committed")
    assert kill.ckpt_at_pause == 90 and kill.ckpt_after == 90
    assert "model-00000080.pt" in kill.files_at_pause  # not yet removed: harmless
    spe = runs["spe"]
    kill = _single(runs, "checkpoint exactly at the epoch boundary")
    assert kill.ckpt_after == spe
    state = worker.find_sampler_state(load_state(kill.checkpoint_copy)["loader"])
    assert (state["epoch"], state["start_index"]) == (1, 0)


def test_random_kills_in_a_tight_checkpoint_loop(runs: dict[str, Any]) -> None:
    for key, outcome in runs["outcomes"].items():
        if key.startswith("random moment"):
            (kill,) = outcome.kills
            # checkpoint every step: at most the step being checkpointed is lost
            assert kill.last_logged - kill.ckpt_after in (0, 1), key


def test_two_kills_in_a_row(runs: dict[str, Any]) -> None:
    (outcome,) = [o for k, o in runs["outcomes"].items() if k.startswith("twice")]
    first, second = outcome.kills
    assert (first.ckpt_after, second.ckpt_after) == (110, 130)
    assert first.tmp_json is not None and first.tmp_json["step"] == 120
