"""accelerate: ``compute_sampler_state`` against its real ``BatchSamplerShard`` in every sharding mode,
and LeRobot's training flow under the real ``Accelerator``, killed and resumed.

Sharding modes. accelerate (a test dependency) shards a ``BatchSampler`` over each process's own
world-size-1 sampler with ``BatchSamplerShard`` (only when there is more than one process). The
uninterrupted run below is built from materialized LeRobot epoch lists (``reference.lerobot_epoch``) fed
through accelerate's own class; the resumed run is our sampler restored from
``compute_sampler_state(step, ...)`` fed through the same class. Per process, the resumed batches must
equal the uninterrupted ones from ``step`` on, except accelerate's padding: with ``even_batches=True``
the final round of an epoch is completed with samples from the first batches *of the pass*, and a resumed
pass starts elsewhere. Real samples (global position < num_frames) are compared everywhere;
padded slots only in number.

The flow, under the REAL accelerate (CPU, gloo; 1 and 2 processes), killed and resumed (slow).
``tests/helpers/accelerate_flow.py`` runs ``lerobot_train.py``'s data path: ``EpisodeAwareSampler`` ->
``DataLoader(sampler=...)`` -> ``accelerator.prepare`` -> ``cycle`` over it, one step per batch,
checkpointing LeRobot's fields ``{"step", "num_processes", "batch_size"}``. Four launches:

1. one process: an uninterrupted run, and a run SIGKILLed after its last checkpoint;
2. two processes (torchrun): uninterrupted runs in three accelerate modes, and a SIGKILLed run;
3. two processes: fresh processes resume every checkpoint (mid-epoch, right before the epoch's last
   partial batch, at epoch boundaries) by the plain flow (only the import swapped), the synced flow
   (``dataloader.set_epoch(epoch)``) and ``resume_dataloader``; plus 1 -> 2 resumes;
4. one process: the same for the one-process checkpoints, plus 2 -> 1 resumes.

(1, 2) and (3, 4) run concurrently. Oracles are independent of the library: LeRobot's epoch order
(``reference.lerobot_epoch``) and a walk over the recorded streams that marks accelerate's padding
(a sample seen earlier in the same epoch, only in the epoch's final round).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("accelerate")
from accelerate.data_loader import BatchSamplerShard  # noqa: E402
from torch.utils.data import BatchSampler  # noqa: E402

from episode_sampler import EpisodeAwareSampler, compute_sampler_state  # noqa: E402
from tests.helpers import accelerate_flow as flow_script  # noqa: E402
from tests.helpers.layouts import GAPS_FROM, GAPS_TO  # noqa: E402
from tests.helpers.procs import free_port  # noqa: E402
from tests.helpers.reference import lerobot_epoch, lerobot_indices  # noqa: E402

# ------------------------------------------------ every sharding mode of BatchSamplerShard
SEED = 11
INDICES = lerobot_indices(GAPS_FROM, GAPS_TO)
N = len(INDICES)  # 69
EPOCHS = 4


def shard(batch_sampler, procs: int, rank: int, split: bool, even: bool):
    if procs == 1:  # accelerate does not wrap the batch sampler of a single process
        return batch_sampler
    return BatchSamplerShard(batch_sampler, procs, rank, split_batches=split, even_batches=even)


def real_lengths(batch: int, procs: int, split: bool, rank: int, rounds: int) -> list[int]:
    """Real (non-padding) samples in each of ``rounds`` batches of ``rank`` in one full epoch."""
    out = []
    for k in range(rounds):
        if split:
            part = batch // procs
            lo = k * batch + rank * part
            out.append(max(0, min(part, N - lo)))
        else:
            lo = (k * procs + rank) * batch
            out.append(max(0, min(batch, N - lo)))
    return out


def uninterrupted(batch, procs, rank, split, even, drop_last):
    """[(epoch, real_len, batch)] of ``rank`` for EPOCHS epochs, from materialized epoch lists."""
    out = []
    for e in range(EPOCHS):
        order = lerobot_epoch(INDICES, SEED, e)
        batches = list(shard(BatchSampler(order, batch, drop_last), procs, rank, split, even))
        reals = real_lengths(batch, procs, split, rank, len(batches))
        out += [(e, r, b) for r, b in zip(reals, batches)]
    return out


def resumed(state, batch, procs, rank, split, even, drop_last, steps):
    sampler = EpisodeAwareSampler(GAPS_FROM, GAPS_TO, shuffle=True, seed=SEED)
    sampler.load_state_dict(state)
    out: list[list[int]] = []
    while len(out) < steps:
        out += list(shard(BatchSampler(sampler, batch, drop_last), procs, rank, split, even))
    return out[:steps]


MODES = [  # (split_batches, even_batches, drop_last)
    (False, True, False),
    (False, False, False),
    (True, True, False),
    (True, False, False),
    (False, True, True),
    (True, True, True),
]
SHAPES = [(4, 2), (5, 3), (6, 2), (7, 1), (9, 3), (23, 3), (64, 2), (3, 1)]  # (batch_size, processes)


@pytest.mark.parametrize(("split", "even", "drop_last"), MODES)
@pytest.mark.parametrize(("batch", "procs"), SHAPES)
def test_resume_is_exact_per_process_in_every_mode(split, even, drop_last, batch, procs) -> None:
    if split and batch % procs:
        with pytest.raises(ValueError, match="multiple of num_processes"):
            compute_sampler_state(0, N, batch, procs, split_batches=True)
        return
    for rank in range(procs):
        full = uninterrupted(batch, procs, rank, split, even, drop_last)
        if not full:
            with pytest.raises(ValueError, match="gets no batch"):
                compute_sampler_state(0, N, batch, procs, split_batches=split, even_batches=even,
                                      drop_last=drop_last, process_index=rank)  # fmt: skip
            continue
        per_epoch = len(full) // EPOCHS
        for step in sorted({0, 1, per_epoch - 1, per_epoch, per_epoch + 1, 2 * per_epoch - 1}):
            state = compute_sampler_state(
                step, N, batch, procs, split_batches=split, even_batches=even, drop_last=drop_last,
                process_index=rank,
            )  # fmt: skip
            want = full[step:]
            got = resumed(state, batch, procs, rank, split, even, drop_last, len(want))
            assert len(got) == len(want)
            for t, ((epoch, real, b), g) in enumerate(zip(want, got)):
                assert len(g) == len(b), (rank, step, t)
                assert g[:real] == b[:real], f"rank {rank}, resumed at step {step}, its step {step + t}"
                if epoch > want[0][0]:  # after the resumed epoch: identical, padding included
                    assert g == b, (rank, step, t)
                if not even or drop_last:
                    assert g == b  # no padding in these modes


def test_split_batches_consumes_one_global_batch_per_step() -> None:
    # the example: split_batches=True, batch 16 over 2 processes, step 4 -> (0, 64), not (0, 128)
    assert compute_sampler_state(4, 1000, 16, 2, split_batches=True) == {"epoch": 0, "start_index": 64}
    assert compute_sampler_state(4, 1000, 16, 2) == {"epoch": 0, "start_index": 128}


def test_even_batches_false_needs_the_process_index() -> None:
    with pytest.raises(ValueError, match="process_index is required with even_batches=False"):
        compute_sampler_state(5, N, 4, 2, even_batches=False)
    with pytest.raises(ValueError, match="process_index must be <= 1"):
        compute_sampler_state(5, N, 4, 2, even_batches=False, process_index=2)
    # 69 frames, batch 4: 18 batches -> 9 each; batch 5: 14 batches -> 7 each; batch 10: 7 -> 4 and 3
    assert compute_sampler_state(4, N, 10, 2, even_batches=False, process_index=0) == {
        "epoch": 1,
        "start_index": 0,
    }
    assert compute_sampler_state(4, N, 10, 2, even_batches=False, process_index=1) == {
        "epoch": 1,
        "start_index": 20,
    }
    with pytest.raises(TypeError, match="split_batches must be a bool"):
        compute_sampler_state(1, N, 4, 2, split_batches=1)


@pytest.mark.parametrize(("old", "new"), [(2, 1), (1, 2), (3, 2), (2, 3)])
@pytest.mark.parametrize("batch", [4, 5, 23])
def test_resume_with_another_number_of_processes_loses_and_repeats_nothing(old, new, batch) -> None:
    """Default mode: old processes consumed the epoch's prefix; the new world takes the rest."""
    full_old = [uninterrupted(batch, old, r, False, True, False) for r in range(old)]
    per_epoch = len(full_old[0]) // EPOCHS
    for step in range(1, 2 * per_epoch):
        state = compute_sampler_state(step, N, batch, old)
        epoch = state["epoch"]
        # what the old world trained on in this epoch before the checkpoint (real samples only)
        before = Counter()
        for r in range(old):
            for e, real, b in full_old[r][:step]:
                if e == epoch:
                    before.update(b[:real])
        # the new world from the restored state to the end of the epoch
        after = Counter()
        for r in range(new):
            sampler = EpisodeAwareSampler(GAPS_FROM, GAPS_TO, shuffle=True, seed=SEED)
            sampler.load_state_dict(state)
            batches = list(shard(BatchSampler(sampler, batch, False), new, r, False, True))
            real_total = N - state["start_index"]
            for k, b in enumerate(batches):  # real = global position inside the remaining epoch
                lo = (k * new + r) * batch
                after.update(b[: max(0, min(batch, real_total - lo))])
            nxt = list(itertools.islice(iter(sampler), N))
            assert nxt == lerobot_epoch(INDICES, SEED, epoch + 1)  # the next epoch is untouched
        assert before + after == Counter(lerobot_epoch(INDICES, SEED, epoch)), (old, new, step)


@pytest.mark.parametrize(("first", "second"), [((2, 4), (1, 4)), ((1, 4), (3, 5)), ((3, 5), (2, 4))])
def test_origin_maps_steps_after_a_resize(first, second) -> None:
    """(P, B) for steps [0, s1), then (P', B') from s1 on: a checkpoint at s2 with the origin is exact."""
    (p1, b1), (p2, b2) = first, second
    for s1, s2 in [(3, 9), (5, 20), (1, 2)]:
        state1 = compute_sampler_state(s1, N, b1, p1)
        origin = {"step": s1, **state1}
        # the resized run, uninterrupted from s1: every process's own sampler, all in lockstep
        samplers = [EpisodeAwareSampler(GAPS_FROM, GAPS_TO, shuffle=True, seed=SEED) for _ in range(p2)]
        for s in samplers:
            s.load_state_dict(state1)
        streams = []
        for r in range(p2):
            out = []
            while len(out) < s2 - s1 + 30:
                out += list(shard(BatchSampler(samplers[r], b2, False), p2, r, False, True))
            streams.append(out)
        # resume at s2 with the origin: every process continues with the same batches
        state2 = compute_sampler_state(s2, N, b2, p2, origin=origin)
        epoch_pass = math.ceil(math.ceil((N - state2["start_index"]) / b2) / p2)  # steps left in the epoch
        for r in range(p2):
            resumed = EpisodeAwareSampler(GAPS_FROM, GAPS_TO, shuffle=True, seed=SEED)
            resumed.load_state_dict(state2)
            got = []
            while len(got) < 20:
                got += list(shard(BatchSampler(resumed, b2, False), p2, r, False, True))
            want = streams[r][s2 - s1 : s2 - s1 + 20]
            for k, (g, w) in enumerate(zip(got, want)):
                real = (
                    max(0, min(b2, N - state2["start_index"] - (k * p2 + r) * b2)) if k < epoch_pass else b2
                )
                assert len(g) == len(w) and g[:real] == w[:real], (first, second, s1, s2, r, k)
        # without the origin the step means something else (unless nothing was resized)
        if (p1, b1) != (p2, b2) and compute_sampler_state(s2, N, b2, p2) == state2:
            pytest.fail("origin made no difference")
    with pytest.raises(ValueError, match=r"origin\['step'\] must be <= 3"):
        compute_sampler_state(3, N, 4, 2, origin={"step": 4, "epoch": 0, "start_index": 0})
    with pytest.raises(TypeError, match="origin must be a dict"):
        compute_sampler_state(3, N, 4, 2, origin={"step": 1})


# ------------------------------------------------ LeRobot's flow under the real accelerate
# tests/helpers/accelerate_flow.py, run in one process or under torchrun; its layout is the script's own.
FLOW = Path(__file__).resolve().parents[1] / "helpers" / "accelerate_flow.py"
FLOW_INDICES = lerobot_indices(flow_script.FROM, flow_script.TO)
FLOW_N = len(FLOW_INDICES)  # 45

# name: (processes, mode, batch_size, steps, checkpoints)
D1 = (1, {}, 4, 30, [3, 11, 12, 17, 24])  # 12 steps per epoch; step 12 is the 1-sample batch
D2 = (2, {}, 4, 18, [2, 5, 6, 8, 12])  # 6 steps per epoch per process; step 6 is the padded round
S2 = (2, {"split_batches": True}, 4, 28, [5, 11, 12, 17])  # 12 steps per epoch
U2 = (2, {"even_batches": False}, 10, 12, [2, 3, 5, 7])  # 5 batches: rank 0 takes 3, rank 1 takes 2


def run_job(name, cfg, **extra):
    procs, mode, batch, steps, ckpts = cfg
    return {"kind": "run", "name": name, "mode": mode, "batch_size": batch, "steps": steps,
            "checkpoints": ckpts, **extra}  # fmt: skip


def resume_job(name, cfg, ckpt, flow, **extra):
    procs, mode, batch, steps, _ = cfg
    return {"kind": "resume", "name": name, "ckpt": str(ckpt), "mode": mode, "batch_size": batch,
            "steps": steps, "flow": flow, **extra}  # fmt: skip


def launch(tmp: Path, tag: str, procs: int, jobs: list[dict]) -> subprocess.Popen:
    spec = tmp / f"{tag}.json"
    spec.write_text(json.dumps({"out": str(tmp), "jobs": jobs}))
    if procs == 1:
        cmd = [sys.executable, str(FLOW), str(spec)]
    else:
        torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
        cmd = [torchrun, "--nproc-per-node", str(procs), "--master-addr", "127.0.0.1",
               "--master-port", str(free_port()), str(FLOW), str(spec)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}
    log = open(tmp / f"{tag}.log", "w")  # noqa: SIM115
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


def finish(tmp: Path, tag: str, proc: subprocess.Popen, killed: bool) -> str:
    rc = proc.wait(timeout=300)
    text = (tmp / f"{tag}.log").read_text()
    if killed:
        assert rc != 0 and ("SIGKILL" in text or rc == -9), (
            f"{tag} was not SIGKILLed (rc {rc}):\n{text[-3000:]}"
        )
    else:
        assert rc == 0, f"{tag} failed (rc {rc}):\n{text[-3000:]}"
    return text


def streams(tmp: Path, name: str, procs: int) -> list[list[tuple[int, list[int]]]]:
    out = []
    for r in range(procs):
        out.append(
            [tuple(json.loads(line)) for line in (tmp / f"{name}_rank{r}.jsonl").read_text().splitlines()]
        )
    return out


def walk(per_rank: list[list[tuple[int, list[int]]]], epoch: int = 0, seen_order: list[int] | None = None):
    """Replay the global stream (per step: rank 0's batch, rank 1's, ...) epoch by epoch.

    Returns ``(orders, padding, epoch_of_step)``: each epoch's real samples in global order (the first
    one may continue ``seen_order``), the padded slots ``{(step, rank, i)}``, and each step's epoch.
    A repeat is padding; it may only occur in the round that completes the epoch.
    """
    order = list(seen_order or [])
    seen = set(order)
    orders, padding, epoch_of_step = {}, set(), {}
    for t in range(len(per_rank[0])):
        step = per_rank[0][t][0]
        assert all(s[t][0] == step for s in per_rank), "processes out of lockstep"
        epoch_of_step[step] = epoch
        completed = False
        for r, s in enumerate(per_rank):
            for i, x in enumerate(s[t][1]):
                if x in seen or completed:
                    assert completed or len(seen) < FLOW_N, "a repeat before the epoch's final round"
                    padding.add((step, r, i))
                else:
                    seen.add(x)
                    order.append(x)
                    completed = len(seen) == FLOW_N
        if completed:
            orders[epoch] = order
            epoch, order, seen = epoch + 1, [], set()
    if order:
        orders[epoch] = order  # the last, unfinished epoch
    return orders, padding, epoch_of_step


def check_lerobot_order(
    orders: dict[int, list[int]], first: int = 0, prefix: list[int] | None = None
) -> None:
    for e, order in orders.items():
        want = lerobot_epoch(FLOW_INDICES, flow_script.SEED, e)
        got = (prefix or []) + order if e == first else order
        assert got == want[: len(got)], f"epoch {e} is not LeRobot's order"
        if e != max(orders):
            assert len(got) == FLOW_N, f"epoch {e} lost samples"


def check_same_world(full, resumed, ckpt_step: int, padding: set, epoch_of_step: dict) -> None:
    """Per process, the resumed stream is the uninterrupted one from the checkpoint on, except the
    padding of the resumed epoch's final round."""
    resumed_epoch = epoch_of_step[ckpt_step + 1]
    for r, (f, g) in enumerate(zip(full, resumed)):
        want = f[ckpt_step:]
        assert [s for s, _ in g] == [s for s, _ in want]
        for (step, a), (_, b) in zip(want, g):
            assert len(a) == len(b)
            for i, (x, y) in enumerate(zip(a, b)):
                if (step, r, i) in padding and epoch_of_step[step] == resumed_epoch:
                    continue  # accelerate pads from the first batches of the *resumed* pass
                assert x == y, f"process {r}, step {step}, slot {i}: {a} != {b}"


def check_other_world(old, ckpt_step: int, new) -> None:
    """Resumed with another number of processes: the old run's part of the epoch plus the new run's
    part is the epoch exactly (nothing lost, nothing repeated); later epochs are LeRobot's."""
    before = [[entry for entry in s if entry[0] <= ckpt_step] for s in old]
    orders, _, epoch_of_step = walk(before)
    epoch = max(orders)
    prefix = orders[epoch]
    if len(prefix) == FLOW_N:  # the checkpoint sits on an epoch boundary
        epoch, prefix = epoch + 1, []
    new_orders, _, _ = walk(new, epoch, prefix)
    assert new_orders[epoch][: len(prefix)] == prefix
    check_lerobot_order(new_orders)
    assert Counter(new_orders[epoch]) == Counter(
        lerobot_epoch(FLOW_INDICES, flow_script.SEED, epoch)
    ) or epoch == max(new_orders)


def check_drifting(full, resumed, ckpt_step: int, batch: int, procs: int) -> None:
    """even_batches=False: per process, LeRobot's epochs batched and dealt round robin, no padding."""
    for r, (f, g) in enumerate(zip(full, resumed)):
        want: list[list[int]] = []
        e = 0
        while len(want) < len(f):
            order = lerobot_epoch(FLOW_INDICES, flow_script.SEED, e)
            want += [order[i : i + batch] for i in range(0, FLOW_N, batch)][r::procs]
            e += 1
        assert [b for _, b in f] == want[: len(f)], f"process {r}: uninterrupted stream"
        assert g == f[ckpt_step:], f"process {r}: resumed at step {ckpt_step}"


@pytest.mark.slow
def test_lerobot_flow_under_real_accelerate_killed_and_resumed(tmp_path: Path) -> None:
    t = tmp_path
    # ---- launches 1 and 2: uninterrupted runs and SIGKILLed runs
    p1 = launch(t, "run1", 1, [run_job("d1", D1), run_job("d1v", D1, kill_at=D1[4][-1] + 1)])
    p2 = launch(t, "run2", 2, [run_job("d2", D2), run_job("s2", S2), run_job("u2", U2),
                               run_job("d2v", D2, kill_at=D2[4][-1] + 1)])  # fmt: skip
    finish(t, "run1", p1, killed=True)
    finish(t, "run2", p2, killed=True)
    for name, cfg in (("d1v", D1), ("d2v", D2)):
        for s in cfg[4]:
            assert json.loads((t / f"{name}_ckpt{s}.json").read_text()) == {
                "step": s, "num_processes": cfg[0], "batch_size": cfg[2]}  # fmt: skip

    # ---- launches 3 and 4: fresh processes resume
    jobs2, jobs1 = [], []
    for s in D2[4]:
        for flow in ("plain", "synced", "helper"):
            extra = {"workers": 2} if (s, flow) == (8, "plain") else {}
            jobs2.append(resume_job(f"d2_{flow}_{s}", D2, t / f"d2v_ckpt{s}.json", flow, **extra))
        for flow in ("plain", "helper"):
            jobs1.append(
                resume_job(f"d2to1_{flow}_{s}", (1, {}, 4, D2[3] * 2, []), t / f"d2v_ckpt{s}.json", flow)
            )
    for s in S2[4]:
        for flow in ("plain", "helper"):
            jobs2.append(resume_job(f"s2_{flow}_{s}", S2, t / f"s2_ckpt{s}.json", flow))
    for s in U2[4]:
        for flow in ("plain", "helper"):
            jobs2.append(resume_job(f"u2_{flow}_{s}", U2, t / f"u2_ckpt{s}.json", flow))
    for s in D1[4]:
        for flow in ("plain", "synced", "helper"):
            jobs1.append(resume_job(f"d1_{flow}_{s}", D1, t / f"d1v_ckpt{s}.json", flow))
        for flow in ("plain", "helper"):
            jobs2.append(resume_job(f"d1to2_{flow}_{s}", (2, {}, 4, 30, []), t / f"d1v_ckpt{s}.json", flow))
    p3, p4 = launch(t, "resume2", 2, jobs2), launch(t, "resume1", 1, jobs1)
    log2 = finish(t, "resume2", p3, killed=False)
    log1 = finish(t, "resume1", p4, killed=False)
    # the plain flow is exact because the sampler ignored accelerate's set_epoch(0) after the restore
    assert "ignoring set_epoch(0) after a restore" in log1 + log2

    # ---- uninterrupted runs are LeRobot's order, and the killed runs trained the same batches
    full = {name: streams(t, name, cfg[0]) for name, cfg in (("d1", D1), ("d2", D2), ("s2", S2), ("u2", U2))}
    walks = {name: walk(full[name]) for name in ("d1", "d2", "s2")}
    for name in walks:
        check_lerobot_order(walks[name][0])
    for name, cfg in (("d1v", D1), ("d2v", D2)):
        killed = streams(t, name, cfg[0])
        for r, s in enumerate(killed):
            assert s == full[name[:2]][r][: len(s)] and len(s) >= cfg[4][-1] + 1

    # ---- same number of processes: exact per process, except the resumed epoch's padding
    all_flows = ("plain", "synced", "helper")
    for name, cfg, flows in (("d2", D2, all_flows), ("d1", D1, all_flows), ("s2", S2, ("plain", "helper"))):
        _, padding, epoch_of_step = walks[name]
        for s in cfg[4]:
            for flow in flows:
                check_same_world(
                    full[name], streams(t, f"{name}_{flow}_{s}", cfg[0]), s, padding, epoch_of_step
                )
    for s in U2[4]:
        for flow in ("plain", "helper"):
            check_drifting(full["u2"], streams(t, f"u2_{flow}_{s}", 2), s, U2[2], 2)

    # ---- another number of processes: nothing lost, nothing repeated
    for s in D2[4]:
        for flow in ("plain", "helper"):
            check_other_world(full["d2"], s, streams(t, f"d2to1_{flow}_{s}", 1))
    for s in D1[4]:
        for flow in ("plain", "helper"):
            check_other_world(full["d1"], s, streams(t, f"d1to2_{flow}_{s}", 2))
