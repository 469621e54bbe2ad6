"""SIGKILL plus resume over HTTP is exact (issue 19, item 5).

A training run (tests/helpers/remote_trainer.py: a two-worker ``StatefulDataLoader`` over a dataset with
a camera served by nginx, through a cold on-disk cache) is killed with SIGKILL -- its whole process
group, workers included -- in the middle of its first epoch, while a worker is storing a downloaded block
(the temporary file written, the entry not yet moved in). A new process resumes from the last checkpoint.
The steps up to that checkpoint plus the resumed steps must equal an uninterrupted run over the local
directory: same indices in the same order (no duplicates, no gaps) and the same batch contents bit for
bit. Afterwards the cache holds no corrupt entry and serves every file byte for byte.

The ``lookahead`` case runs the same with ``episode_sampler.lookahead.LookAhead`` fetching ahead in the
run's own threads (the block store that pauses may be one of its fetches); its reference is still the
plain local run: the look-ahead changes nothing that is read or checkpointed. Skipped until that module
exists.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from episode_sampler import load_state
from episode_sampler.lerobot import write_lerobot_dataset
from episode_sampler.lerobot.block_cache import HEADER, BlockCache, check_entry
from episode_sampler.lerobot.storage import open_store
from tests.helpers import remote_trainer
from tests.helpers.remote_trainer import ARM_AT, BATCH, CAM, EPOCHS, read_log

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("remote-resume") / "ds"
    # one episode per file: shuffled by episodes, the run downloads new files all through the epoch
    write_lerobot_dataset(
        root, 10, 12, 20, seed=4, episodes_per_file=1, episodes_per_video_file=1, cameras={CAM: (64, 64)}
    )
    return root


def command(*args: object) -> list[str]:
    return [sys.executable, "-m", "tests.helpers.remote_trainer", *map(str, args)]


@pytest.mark.parametrize("lookahead", [False, True], ids=["plain", "lookahead"])
def test_sigkill_mid_download_then_resume_is_exact(nginx, dataset, tmp_path, lookahead):
    if lookahead:
        pytest.importorskip("episode_sampler.lookahead", reason="the look-ahead is not merged yet")
    url = nginx.serve(dataset, "remote-resume")
    reference = read_log_after(lambda log: remote_trainer.run(str(dataset), str(log), None, None), tmp_path)

    cache, ckpt, status, arm = (tmp_path / x for x in ("cache", "state.json", "status", "arm"))
    crash_log, resume_log = tmp_path / "crash.jsonl", tmp_path / "resume.jsonl"
    opts = ["--checkpoint", ckpt, "--cache", cache, *(["--lookahead"] if lookahead else [])]
    proc = subprocess.Popen(
        command(url, crash_log, *opts, "--arm", arm, "--status", status),
        env=remote_trainer.env(),
        start_new_session=True,  # its own process group: the kill takes the workers too
    )
    try:
        deadline = time.monotonic() + 180
        while not (status.exists() and status.read_text().startswith("paused")):
            assert proc.poll() is None, (
                f"the run ended (exit {proc.returncode}) without storing a block after step {ARM_AT}"
            )
            assert time.monotonic() < deadline, "the run never paused in a block store"
            time.sleep(0.01)
        in_flight = list((cache / "tmp").iterdir())
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert in_flight, "no download was in flight at the kill"
    crashed = read_log(crash_log)
    saved = load_state(ckpt)["step"]
    assert saved >= ARM_AT and len(crashed) >= saved
    steps = len(reference)
    assert saved < steps // EPOCHS  # killed in the first epoch

    subprocess.run(command(url, resume_log, *opts), env=remote_trainer.env(), check=True, timeout=300)
    resumed = read_log(resume_log)
    assert resumed[0]["step"] == saved + 1

    effective = [s for s in crashed if s["step"] <= saved] + resumed
    assert [s["step"] for s in effective] == list(range(1, steps + 1))
    assert [s["indices"] for s in effective] == [s["indices"] for s in reference]
    assert [s["digest"] for s in effective] == [s["digest"] for s in reference]  # items bit for bit
    # independently of the reference: each epoch takes every frame once
    frames = sum(len(s["indices"]) for s in reference) // EPOCHS
    per_epoch = -(-frames // BATCH)
    for e in range(EPOCHS):
        got = [i for s in effective[e * per_epoch : (e + 1) * per_epoch] for i in s["indices"]]
        assert sorted(got) == list(range(frames))

    # the cache: no temporary file of the dead, every entry checks out, every file served byte for byte
    bc = BlockCache(cache, 1 << 30)
    assert not list((cache / "tmp").iterdir())
    entries = bc.entries()
    assert entries
    for e in entries:
        raw = e.path.read_bytes()
        length = HEADER.unpack(raw[: HEADER.size])[1]
        assert check_entry(raw, length) is not None, f"corrupt entry {e.path}"
        assert e.nbytes == HEADER.size + length
    store = open_store(url, cache_dir=cache, cache_bytes=1 << 30)
    for path in sorted(p for p in dataset.rglob("*") if p.is_file()):
        rel = path.relative_to(dataset).as_posix()
        assert store.read_bytes(rel) == path.read_bytes(), rel
    assert store.cache.stats()["corrupt"] == 0


def read_log_after(run, tmp_path: Path) -> list[dict]:
    log = tmp_path / "reference.jsonl"
    run(log)
    return read_log(log)
