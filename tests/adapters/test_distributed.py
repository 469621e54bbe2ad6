"""Real multi-process runs (torch.distributed, gloo, localhost) and ``episode_sampler.distributed``.

The crash test: 3 processes train through ``pipelines/train_loop.py`` (EpisodeSamplerNode -> Batcher
-> Loader), rank 0 checkpoints atomically at step C, the test SIGKILLs all of them mid-run, 2 new
processes resume from the file, and the indices logged by the ranks (fsynced per step) must cover
the epoch exactly once: steps <= C of the 3 old ranks plus everything of the 2 new ones, apart from
the wrap-around padding at the epoch's end (fewer than 2 frames repeated). The same from 2 to 3
processes with ``--drop-last`` (then fewer than 3 frames at the epoch's end are never consumed).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from episode_sampler import EpisodeAwareSampler, load_state
from episode_sampler import distributed as es_dist
from episode_sampler.distributed import check_consistent, consistency_record, get_rank_and_world_size
from tests.helpers.layouts import contiguous
from tests.helpers.procs import free_port
from tests.helpers.reference import episodes_lists, reference_epoch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "pipelines" / "train_loop.py"
LENGTHS = [9, 14, 3, 21, 7, 12, 18, 5, 16, 11, 8, 25]  # 149 frames
TIMEOUT = 60.0


def launch(world: int, args: list[str], out: Path, tag: str) -> list[subprocess.Popen]:
    """``world`` processes of ``train_loop.py`` with the env:// variables torchrun would set."""
    port = free_port()
    procs = []
    for rank in range(world):
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_WORLD_SIZE": str(world),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "OMP_NUM_THREADS": "1",
        }
        with open(out / f"{tag}.{rank}.stderr", "wb") as err:
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(SCRIPT), *args], env=env, stdout=subprocess.DEVNULL, stderr=err
                )
            )
    return procs


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line being written when we looked (never after the kill)
            break
    return out


def stderr_of(out: Path, tag: str, world: int) -> str:
    return "\n".join((out / f"{tag}.{r}.stderr").read_text(errors="replace")[-3000:] for r in range(world))


def kill_all(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
    for p in procs:
        p.wait(timeout=TIMEOUT)


SCENARIOS = {
    # (old world, new world, order, block size, permutation, drop_last)
    "3to2-blocks-feistel": (3, 2, "blocks", 3, "feistel", False),
    "2to3-frames-randperm-droplast": (2, 3, "frames", None, "randperm", True),
}


@pytest.mark.slow
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_kill_and_resume_with_another_world_size(tmp_path: Path, scenario: str) -> None:
    old_w, new_w, order, block_size, permutation, drop_last = SCENARIOS[scenario]
    bs, ckpt_step = 4, 5
    common = [
        "--episode-lengths", ",".join(map(str, LENGTHS)),
        "--batch-size", str(bs),
        "--order", order,
        *(["--block-size", str(block_size)] if block_size else []),
        "--permutation", permutation,
        *(["--drop-last"] if drop_last else []),
        "--seed", "17",
        "--checkpoint", str(tmp_path / "ckpt.json"),
    ]  # fmt: skip
    first = launch(
        old_w,
        [*common, "--checkpoint-step", str(ckpt_step), "--checkpoint-every", "100000", "--epochs", "1000",
         "--step-delay", "0.05", "--log-indices", str(tmp_path / "first.{rank}.jsonl")],
        tmp_path,
        "first",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:  # until the checkpoint exists and every rank is past it: then kill mid-run
            if any(p.poll() not in (None, 0) for p in first):
                pytest.fail("a first-run process failed:\n" + stderr_of(tmp_path, "first", old_w))
            logs = [read_log(tmp_path / f"first.{r}.jsonl") for r in range(old_w)]
            if (tmp_path / "ckpt.json").exists() and all(len(lg) >= ckpt_step + 2 for lg in logs):
                break
            if time.monotonic() > deadline:
                pytest.fail("first run too slow:\n" + stderr_of(tmp_path, "first", old_w))
            time.sleep(0.05)
        assert all(p.poll() is None for p in first), "the run should still be going when killed"
    finally:
        kill_all(first)
    assert all(p.returncode == -signal.SIGKILL for p in first)

    checkpoint = json.loads((tmp_path / "ckpt.json").read_text())
    assert checkpoint["step"] == ckpt_step and checkpoint["world_size"] == old_w
    second = launch(
        new_w,
        [*common, "--resume", "--epochs", "1", "--log-indices", str(tmp_path / "second.{rank}.jsonl")],
        tmp_path,
        "second",
    )
    try:
        for p in second:
            p.wait(timeout=TIMEOUT)
    finally:
        kill_all(second)
    assert all(p.returncode == 0 for p in second), stderr_of(tmp_path, "second", new_w)

    # ---- expectations from the materialized reference order and global positions
    from_idx, to_idx = contiguous(LENGTHS)
    full = reference_epoch(episodes_lists(from_idx, to_idx), order, block_size, permutation, 17, 0)
    n = len(full)
    before: list[int] = []
    for r in range(old_w):
        lines = [x for x in read_log(tmp_path / f"first.{r}.jsonl") if x["step"] <= ckpt_step]
        assert [x["step"] for x in lines] == list(range(1, ckpt_step + 1))
        assert {x["epoch"] for x in lines} == {0} and {x["world_size"] for x in lines} == {old_w}
        samples = [i for x in lines for i in x["indices"]]
        assert samples == [full[r + k * old_w] for k in range(len(samples))], f"old rank {r}"
        before += samples
    consumed = ckpt_step * bs * old_w
    after: list[int] = []
    steps_after = set()
    for r in range(new_w):
        lines = read_log(tmp_path / f"second.{r}.jsonl")
        assert [x["step"] for x in lines] == list(range(ckpt_step + 1, ckpt_step + 1 + len(lines)))
        assert {x["epoch"] for x in lines} == {0} and {x["world_size"] for x in lines} == {new_w}
        steps_after.add(len(lines))
        samples = [i for x in lines for i in x["indices"]]
        assert samples == [full[(consumed + r + k * new_w) % n] for k in range(len(samples))], f"new rank {r}"
        after += samples
    assert len(steps_after) == 1, "new ranks out of lockstep"
    counts, want = Counter(before + after), Counter(full)
    if drop_last:  # no repeats; fewer than new_w frames at the epoch's end never consumed
        missing = want - counts
        assert max(counts.values()) == 1
        assert missing == Counter(full[n - missing.total() :]) and missing.total() < new_w, missing
    else:  # every frame; fewer than new_w repeats, wrapped around from the epoch's start
        assert not want - counts, "frames never consumed"
        extra = counts - want
        wrapped = Counter(full[g % n] for g in range(n, n + extra.total()))
        assert extra == wrapped and extra.total() < new_w, extra


# ---------------------------------------------------------------- check_consistent across real ranks
CONSISTENCY_CHILD = textwrap.dedent(
    """
    import os, sys
    import torch.distributed as dist
    from episode_sampler import EpisodeAwareSampler
    from episode_sampler.distributed import check_consistent, get_rank_and_world_size
    dist.init_process_group("gloo")
    rank, world = get_rank_and_world_size()
    seed = int(sys.argv[1]) if rank == 1 else 3
    s = EpisodeAwareSampler([0, 10], [10, 30], shuffle=True, seed=seed, rank=rank, world_size=world)
    try:
        check_consistent(s)
        print("OK", flush=True)
    except ValueError as exc:
        print("ERR", exc, flush=True)
    dist.destroy_process_group()
    """
)


@pytest.mark.slow
def test_check_consistent_over_gloo(tmp_path: Path) -> None:
    def run(seed_of_rank1: int) -> list[str]:
        port = free_port()
        procs = []
        for rank in range(2):
            env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
                   "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}  # fmt: skip
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", CONSISTENCY_CHILD, str(seed_of_rank1)],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )  # fmt: skip
            )
        outs = []
        for p in procs:
            out, err = p.communicate(timeout=TIMEOUT)
            assert p.returncode == 0, err
            outs.append(out.strip())
        return outs

    mismatch = run(4)
    for out in mismatch:
        assert out.startswith("ERR"), out
        assert "'seed'" in out and "3 on rank [0]" in out and "4 on rank [1]" in out, out
        assert "'epoch'" not in out
    assert mismatch[0] == mismatch[1]  # every rank raises the same error


# ---------------------------------------------------------------- episode_sampler.distributed, in-process
def sampler(**kw: Any) -> EpisodeAwareSampler:
    base = dict(shuffle=True, seed=3, permutation="feistel", order="blocks", block_size=2)
    return EpisodeAwareSampler([0, 10, 30], [10, 30, 41], **{**base, **kw})


def test_without_process_group() -> None:
    assert get_rank_and_world_size() == (0, 1)
    check_consistent(sampler())  # no-op


class FakeDist:
    """Stands in for an initialized torch.distributed: all_gather_object returns prepared records."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records

    def get_world_size(self, group: Any = None) -> int:
        return len(self.records)

    def get_rank(self, group: Any = None) -> int:
        return 0

    def all_gather_object(self, out: list[Any], obj: Any, group: Any = None) -> None:
        assert obj == self.records[0]  # this process is rank 0
        out[:] = [json.loads(json.dumps(r)) for r in self.records]  # what pickling across ranks keeps


def gather_from(monkeypatch: pytest.MonkeyPatch, samplers: list[Any]) -> None:
    monkeypatch.setattr(es_dist, "_dist", lambda: FakeDist([consistency_record(s) for s in samplers]))
    check_consistent(samplers[0])


def test_consistent_ranks_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    ranks = [sampler(rank=r, world_size=3) for r in range(3)]
    its = [iter(s) for s in ranks]
    for it in its:  # lockstep: same count on every rank
        for _ in range(5):
            next(it)
    gather_from(monkeypatch, ranks)
    assert get_rank_and_world_size.__doc__


def test_node_records_match_sampler_records() -> None:
    from episode_sampler.node import EpisodeSamplerNode

    node = EpisodeSamplerNode([0, 10, 30], [10, 30, 41], shuffle=True, seed=3, permutation="feistel",
                              order="blocks", block_size=2, rank=1, world_size=3)  # fmt: skip
    node.reset()
    for _ in range(4):
        next(node)
    s = sampler(rank=1, world_size=3)
    it = iter(s)
    for _ in range(4):
        next(it)
    assert consistency_record(node) == consistency_record(s)
    assert consistency_record(s)["consumed"] == 4 * 3


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"seed": 4}, ["seed"]),
        ({"permutation": "randperm"}, ["permutation"]),
        ({"order": "frames", "block_size": None}, ["order", "block_size"]),
        ({"drop_last": True}, ["drop_last"]),
        ({"absolute_to_relative_idx": list(range(100, 141))}, ["relabel"]),  # relabelled on one rank only
    ],
)
def test_disagreeing_fields_and_ranks_are_named(monkeypatch, changes, fields) -> None:
    ranks = [sampler(rank=r, world_size=3, **(changes if r == 2 else {})) for r in range(3)]
    with pytest.raises(ValueError) as info:
        gather_from(monkeypatch, ranks)
    msg = str(info.value)
    for field in fields:
        assert f"field {field!r} differs" in msg
        assert "on ranks [0, 1]" in msg and "on rank [2]" in msg
    assert "'epoch'" not in msg and "'consumed'" not in msg


def test_position_and_layout_disagreements(monkeypatch) -> None:
    ranks = [sampler(rank=r, world_size=2) for r in range(2)]
    next(iter(ranks[1]))  # rank 1 one sample ahead
    with pytest.raises(ValueError, match=r"field 'consumed' differs across ranks: 0 on rank \[0\]; 2 on"):
        gather_from(monkeypatch, ranks)
    other = EpisodeAwareSampler([0, 10, 30], [10, 30, 40], shuffle=True, seed=3, permutation="feistel",
                                order="blocks", block_size=2, rank=1, world_size=2)  # fmt: skip
    with pytest.raises(ValueError, match="field 'fingerprint' differs"):
        gather_from(monkeypatch, [ranks[0], other])
    ranks[1].set_epoch(2)
    with pytest.raises(ValueError, match=r"'epoch' differs across ranks: 0 on rank \[0\]; 2 on rank \[1\]"):
        gather_from(monkeypatch, ranks)


def test_sampler_rank_and_world_must_match_the_group(monkeypatch) -> None:
    swapped = r"ranks \[0, 1\]: rank 0 has sampler rank 1, rank 1 has sampler rank 0"
    with pytest.raises(ValueError, match=swapped):
        gather_from(monkeypatch, [sampler(rank=1, world_size=2), sampler(rank=0, world_size=2)])
    with pytest.raises(ValueError, match=r"does not match the process group's 2 on ranks \[0, 1\]"):
        gather_from(monkeypatch, [sampler(rank=0, world_size=3), sampler(rank=1, world_size=3)])


def test_not_a_sampler() -> None:
    with pytest.raises(TypeError, match="EpisodeAwareSampler or an EpisodeSamplerNode"):
        check_consistent(object())


# ---------------------------------------------------------------- pipelines/train_loop.py, in-process
def load_train_loop() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_loop", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_loop_cli(capsys: pytest.CaptureFixture[str]) -> None:
    train_loop = load_train_loop()
    with pytest.raises(SystemExit) as info:
        train_loop.parse_args(["--help"])
    assert info.value.code == 0
    usage = capsys.readouterr().out
    for flag in ("--root", "--episodes", "--episode-lengths", "--batch-size", "--steps", "--checkpoint",
                 "--resume", "--permutation", "--order", "--log-indices"):  # fmt: skip
        assert flag in usage
    for bad in (["--resume"], ["--checkpoint-step", "3"], ["--order", "blocks"],
                ["--episode-lengths", "3,x"], ["--episode-lengths", "3", "--episodes", "4"],
                ["--min-length", "9", "--max-length", "3"]):  # fmt: skip
        with pytest.raises(SystemExit):
            train_loop.parse_args(bad)


def test_train_loop_single_process_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No process group: 5 steps (checkpoints at 3 and at the end), then --resume to the epoch's end."""
    for var in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    train_loop = load_train_loop()
    lengths = [5, 9, 2, 7]
    common = ["--episode-lengths", ",".join(map(str, lengths)), "--batch-size", "3",
              "--order", "episodes", "--permutation", "feistel", "--seed", "2",
              "--checkpoint", str(tmp_path / "c.json")]  # fmt: skip
    assert train_loop.main([*common, "--steps", "5", "--checkpoint-step", "3",
                            "--log-indices", str(tmp_path / "a.jsonl")]) == 0  # fmt: skip
    assert load_state(tmp_path / "c.json")["step"] == 5  # the checkpoint at the end of the run
    assert train_loop.main([*common, "--resume", "--log-indices", str(tmp_path / "b.jsonl")]) == 0
    before = [i for x in read_log(tmp_path / "a.jsonl") if x["step"] <= 5 for i in x["indices"]]
    after_lines = read_log(tmp_path / "b.jsonl")
    assert after_lines[0]["step"] == 6
    after = [i for x in after_lines for i in x["indices"]]
    ends = [sum(lengths[: i + 1]) for i in range(len(lengths))]
    starts = [e - n for e, n in zip(ends, lengths)]
    assert before + after == reference_epoch(episodes_lists(starts, ends), "episodes", None, "feistel", 2, 0)
