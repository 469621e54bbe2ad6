"""Opt-in proof on the real LeRobot 0.6.1: ``lerobot-train`` SIGKILLed and resumed, ours vs LeRobot's sampler.

Not collected by pytest (no ``test_`` prefix). Run it from the repository root with any Python:

    python tests/integrations/real_lerobot/run.py [--venv DIR] [--work DIR]

It builds (if missing) a Python 3.12 venv with ``lerobot[training]==0.6.1`` and this checkout
(``pip install -e . --no-deps`` plus torchdata), writes a 99-frame dataset with LeRobot's own API
(``make_dataset.py``), then for LeRobot's sampler and for ours (the launcher), with 1 process and with 2
(``torchrun``, gloo, CPU):

1. runs ``lerobot-train`` (a tiny ACT, batch size 8) uninterrupted;
2. runs it again with a checkpoint every step and SIGKILLs it once the checkpoint of the last kill point
   is written;
3. for each kill point (mid epoch 0, the epoch boundary, mid epoch 1, right before epoch 1's last,
   short batch), resumes a copy of that checkpoint with ``--resume=true --config_path=...``;
4. compares, step by step and process by process, the frame indices each resumed step trained on
   with the uninterrupted run's (both read from the logs ``train_logged.py`` writes inside the
   trainer's step loop), and prints a table;
5. resized resumes (``RESIZED``): the mid-epoch-1 checkpoint written with batch size 8 resumed with
   ``--batch_size=5`` (1 process), the 2-process one resumed with 1 process and the 1-process one with
   2. For each, computed from the logs only: the frames of the epoch in progress trained before the
   checkpoint (the killed run's own log, every process) plus those trained after the resume until that
   epoch ends are exactly the epoch's 99 frames, but for accelerate's ``even_batches`` padding (with
   2 processes the resumed pass's last batches are filled up with the first frames of that pass; the
   count and the frames are checked, and reported), and the next epoch is a full permutation of the 99
   frames (likewise up to its padding). Prints a second table.

``--scenarios same`` or ``--scenarios resized`` runs one part only (``resized`` skips the uninterrupted
runs and the same-size resumes, and kills each run at the checkpoint it needs).

Exit code 0 when ours is exact at every point (resized resumes included: each of them can be exact, so a
refusal counts as a failure) and LeRobot's sampler is not exact past epoch 0 on the same-size resumes
(the failure the launcher fixes), 1 otherwise. LeRobot's sampler on the resized resumes is shown only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
BATCH = 8
FRAMES = 99  # make_dataset.LENGTHS
# processes -> (steps, kill points); 13 batches per epoch: 13 steps on 1 process, 7 on 2
PLAN = {
    1: (30, {"mid epoch 0": 5, "epoch boundary": 13, "mid epoch 1": 18, "before last short batch": 25}),
    2: (16, {"mid epoch 0": 3, "epoch boundary": 7, "mid epoch 1": 10, "before last short batch": 13}),
}
# resized resumes: (scenario, checkpoint's processes, its kill point, resumed processes, resumed batch size)
RESIZED = [
    ("batch size 8 → 5, 1 process", 1, "mid epoch 1", 1, 5),
    ("2 processes → 1", 2, "mid epoch 1", 1, BATCH),
    ("1 process → 2", 1, "mid epoch 1", 2, BATCH),
]
POLICY = [
    "--policy.type=act",
    "--policy.device=cpu",
    "--policy.push_to_hub=false",
    "--policy.dim_model=16",
    "--policy.n_heads=2",
    "--policy.dim_feedforward=32",
    "--policy.n_encoder_layers=1",
    "--policy.n_decoder_layers=1",
    "--policy.chunk_size=1",
    "--policy.n_action_steps=1",
    "--policy.use_vae=false",
]


def sh(cmd: list[str], **kw) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def ensure_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        base = shutil.which("python3.12") or "python3.12"
        sh([base, "-m", "venv", str(venv)])
        sh([str(python), "-m", "pip", "install", "lerobot[training]==0.6.1"])
    check = subprocess.run(
        [str(python), "-c", "import episode_sampler, torchdata"], capture_output=True, cwd="/"
    )
    if check.returncode != 0:
        sh([str(python), "-m", "pip", "install", "torchdata>=0.11,<0.12", "--no-deps"])
        sh([str(python), "-m", "pip", "install", "-e", str(REPO), "--no-deps"])
    return python


def launch(python: Path, which: str, procs: int, log: Path, flags: list[str], port: int) -> list[str]:
    script = [str(HERE / "train_logged.py"), which, str(log), *flags]
    if procs == 1:
        return [str(python), *script]
    torchrun = str(python.parent / "torchrun")
    return [torchrun, f"--nproc-per-node={procs}", f"--master-port={port}", *script]


def read_log(log: Path, procs: int) -> list[list[list[int]]]:
    """Per rank, the batches trained at each step."""
    out = []
    for rank in range(procs):
        path = Path(f"{log}.{rank}")
        lines = path.read_text().splitlines() if path.exists() else []
        out.append([json.loads(line)["index"] for line in lines])
    return out


def run_to_end(cmd: list[str], out: Path, check: bool = True) -> int:
    with open(out, "w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    if check and proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}); see {out}")
    return proc.returncode


def run_and_kill(cmd: list[str], out: Path, ready: list[Path], timeout: float = 900) -> str:
    with open(out, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not all(p.exists() for p in ready) or not _last_at_least(ready):
            if proc.poll() is not None:
                return f"finished before the kill ({proc.returncode})"
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return f"SIGKILL ({proc.returncode})"


def _last_at_least(ready: list[Path]) -> bool:
    link = ready[0].parent / "last"
    try:
        return int(os.readlink(link)) >= int(ready[0].name) - 1
    except (OSError, ValueError):
        return False


def compare(reference: list[list[list[int]]], resumed: list[list[list[int]]], step: int, steps: int) -> dict:
    """Step-by-step equality of each rank's batches from ``step`` on, and the samples repeated / missing."""
    want = [r[step:steps] for r in reference]
    got = [r[: steps - step] for r in resumed]
    differing = sorted(
        {i for r in range(len(want)) for i, (a, b) in enumerate(zip(want[r], got[r])) if a != b}
    )
    flat_want = Counter(x for r in want for b in r for x in b)
    flat_got = Counter(x for r in got for b in r for x in b)
    complete = all(len(w) == len(g) for w, g in zip(want, got))
    return {
        "exact": complete and not differing,
        "complete": complete,
        "steps_differing": len(differing),
        "repeated": sum((flat_got - flat_want).values()),
        "missing": sum((flat_want - flat_got).values()),
    }


def verdict(c: dict) -> str:
    if not c["complete"]:
        return "run incomplete"
    if c["exact"]:
        return "exact"
    differ, repeated, missing = c["steps_differing"], c["repeated"], c["missing"]
    return f"**not exact**: {differ} steps differ, {repeated} repeated / {missing} missing"


def steps_per_pass(frames: int, batch: int, procs: int) -> int:
    """Steps of one pass over ``frames`` samples under accelerate (``even_batches=True``, no ``drop_last``).

    The pass is cut into ``ceil(frames / batch)`` batches and every process takes
    ``ceil(batches / procs)`` of them (accelerate's ``BatchSamplerShard``).
    """
    return math.ceil(math.ceil(frames / batch) / procs)


def padding(frames: int, batch: int, procs: int) -> int:
    """Samples accelerate adds to a pass of ``frames`` (``even_batches=True``, no ``drop_last``).

    One process: none (the last batch is short). Several: every process's every batch of the pass is
    full, so ``steps * procs * batch - frames`` samples are added, taken from the pass's first ``procs``
    batches (in order, cycled if the pass is shorter than that).
    """
    return 0 if procs == 1 else steps_per_pass(frames, batch, procs) * procs * batch - frames


def global_order(log: list[list[list[int]]], start: int, stop: int) -> list[int]:
    """The frames of steps ``start..stop-1`` in the pass's batch order: at step k process r trains the
    batch sampler's batch ``k * procs + r`` (accelerate's ``BatchSamplerShard``)."""
    return [x for k in range(start, stop) for rank in log for x in rank[k]]


def check_epoch(before: list[int], after: list[int], batch: int, procs: int) -> dict:
    """Do ``before`` (trained before the resume) and ``after`` (the resumed pass, in batch order) make
    up one epoch of the FRAMES frames, with accelerate's padding of the resumed pass and nothing else?

    Returns ``{"lost", "repeated", "padding"}``: frames of the epoch never trained, frames trained more
    often than once plus the padding, and the padding accounted for (its count and frames as accelerate
    adds them: the first samples of the resumed pass).
    """
    remaining = FRAMES - len(before)
    pad = padding(remaining, batch, procs)
    initial = after[: min(remaining, procs * batch)]
    padded = (initial * (pad // max(len(initial), 1) + 1))[:pad]
    want = Counter(range(FRAMES)) + Counter(padded)
    got = Counter(before) + Counter(after)
    return {
        "lost": sum((want - got).values()),
        "repeated": sum((got - want).values()),
        "padding": pad,
    }


def resized_resume(
    python: Path,
    which: str,
    work: Path,
    saved: Path,
    killed: list[list[list[int]]],
    step: int,
    procs: tuple[int, int],
    batch: int,
    port: int,
) -> dict:
    """Resume checkpoint ``step`` (written with ``procs[0]`` processes and batch size BATCH) with
    ``procs[1]`` processes and ``batch``; check the epoch in progress and the next one from the logs."""
    old, new = procs
    per_epoch = steps_per_pass(FRAMES, BATCH, old)
    epoch = step // per_epoch
    before = global_order(killed, epoch * per_epoch, step)  # the killed run's own log, every process
    rest = steps_per_pass(FRAMES - len(before), batch, new)
    following = steps_per_pass(FRAMES, batch, new)
    steps = step + rest + following
    tag = f"{which}-{old}p-to-{new}p-b{batch}-{step}"
    out = work / tag
    (out / "checkpoints").mkdir(parents=True)
    shutil.copytree(saved / f"{step:06d}", out / "checkpoints" / f"{step:06d}")
    (out / "checkpoints" / "last").symlink_to(f"{step:06d}")
    config = out / "checkpoints" / f"{step:06d}" / "pretrained_model" / "train_config.json"
    log = work / f"{tag}.log"
    flags = [
        f"--config_path={config}",
        "--resume=true",
        f"--output_dir={out}",
        f"--steps={steps}",
        f"--save_freq={steps}",
    ]
    if batch != BATCH:
        flags.append(f"--batch_size={batch}")  # draccus: a CLI flag overrides the checkpoint's config
    result: dict = {"epoch": epoch, "step": step, "steps": steps, "out": str(work / f"{tag}.out")}
    code = run_to_end(launch(python, which, new, log, flags, port), work / f"{tag}.out", check=False)
    if code != 0:
        text = (work / f"{tag}.out").read_text(errors="replace").splitlines()
        errors = [line for line in text if "Error:" in line]
        result.update(status="refused" if errors else "failed", message=(errors or [f"exit {code}"])[-1])
        return result
    resumed = read_log(log, new)
    if any(len(r) != rest + following for r in resumed):
        result.update(status="incomplete", message=f"logged steps {[len(r) for r in resumed]}")
        return result
    current = check_epoch(before, global_order(resumed, 0, rest), batch, new)
    nxt = check_epoch([], global_order(resumed, rest, rest + following), batch, new)
    exact = not any(c["lost"] or c["repeated"] for c in (current, nxt))
    result.update(status="exact" if exact else "not exact", current=current, next=nxt)
    return result


def resized_verdict(r: dict | None) -> str:
    if r is None:
        return "not run"
    if r["status"] in ("refused", "failed"):
        return f"{r['status']}: `{r['message']}`"
    if r["status"] == "incomplete":
        return f"run incomplete ({r['message']})"
    e, cur, nxt = r["epoch"], r["current"], r["next"]
    pads = [f"{c['padding']} in epoch {n}" for n, c in ((e, cur), (e + 1, nxt)) if c["padding"]]
    if r["status"] == "exact":
        return f"exact (accelerate's padding: {', '.join(pads)})" if pads else "exact (no padding)"
    counts = "; ".join(
        f"epoch {n}: {c['lost']} lost / {c['repeated']} repeated"
        for n, c in ((e, cur), (e + 1, nxt))
        if c["lost"] or c["repeated"]
    )
    return f"**not exact**: {counts}" + (
        f" (accelerate's padding accounted for: {', '.join(pads)})" if pads else ""
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=Path("/work/venv-lerobot"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/es_lerobot_train"))
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--samplers", nargs="+", default=["lerobot", "ours"])
    parser.add_argument(
        "--scenarios",
        nargs="+",
        choices=["same", "resized"],
        default=["same", "resized"],
        help="same: same-size resumes at every kill point (first table); resized: RESIZED (second table)",
    )
    args = parser.parse_args()
    same = "same" in args.scenarios
    resized = [r for r in RESIZED if "resized" in args.scenarios and r[1] in args.procs]
    python = ensure_venv(args.venv)
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    data = work / "data"
    sh([str(python), str(HERE / "make_dataset.py"), str(data)], stdout=subprocess.DEVNULL, cwd=work)
    common = [
        "--dataset.repo_id=local/es_order",
        f"--dataset.root={data}",
        *POLICY,
        f"--batch_size={BATCH}",
        "--log_freq=1000",
        "--num_workers=0",
        "--seed=1000",
        "--wandb.enable=false",
    ]
    port = 29600
    results: dict = {}
    for procs in args.procs:
        steps, kills = PLAN[procs]
        needed = [kills[r[2]] for r in resized if r[1] == procs]
        if same:
            needed += kills.values()
        if not needed:
            continue
        for which in args.samplers:
            tag = f"{which}-{procs}p"
            print(f"== {tag}", flush=True)
            if same:
                port += 1
                full_log = work / f"{tag}-full.log"
                flags = [
                    *common,
                    f"--steps={steps}",
                    f"--save_freq={steps}",
                    f"--output_dir={work / (tag + '-full')}",
                ]
                run_to_end(launch(python, which, procs, full_log, flags, port), work / f"{tag}-full.out")
                reference = read_log(full_log, procs)
            killed = work / f"{tag}-killed"
            last = max(needed)
            # LeRobot points checkpoints/last at a checkpoint once it is complete
            ready = [killed / "checkpoints" / f"{last + 1:06d}"]
            port += 1
            flags = [*common, f"--steps={steps}", "--save_freq=1", f"--output_dir={killed}"]
            how = run_and_kill(
                launch(python, which, procs, work / f"{tag}-killed.log", flags, port),
                work / f"{tag}-killed.out",
                ready,
            )
            print(f"   killed run: {how}", flush=True)
            time.sleep(0.5)
            saved = work / f"{tag}-saved"
            shutil.copytree(killed / "checkpoints", saved)  # before any resume writes into the output dirs
            if not same:
                continue
            for point, step in kills.items():
                out = work / f"{tag}-resume{step}"
                (out / "checkpoints").mkdir(parents=True)
                shutil.copytree(saved / f"{step:06d}", out / "checkpoints" / f"{step:06d}")
                (out / "checkpoints" / "last").symlink_to(f"{step:06d}")
                config = out / "checkpoints" / f"{step:06d}" / "pretrained_model" / "train_config.json"
                log = work / f"{tag}-resume{step}.log"
                port += 1
                flags = [
                    f"--config_path={config}",
                    "--resume=true",
                    f"--output_dir={out}",
                    f"--steps={steps}",
                    f"--save_freq={steps}",
                ]
                run_to_end(launch(python, which, procs, log, flags, port), work / f"{tag}-resume{step}.out")
                c = compare(reference, read_log(log, procs), step, steps)
                results[(procs, point, which)] = c
                print(f"   {point} (step {step}): {verdict(c)}; killed run: {how}", flush=True)
    resized_results: dict = {}
    for name, old, point, new, batch in resized:
        step = PLAN[old][1][point]
        for which in args.samplers:
            tag = f"{which}-{old}p"
            print(f"== {which}: {name}, from the {point} checkpoint (step {step})", flush=True)
            port += 1
            r = resized_resume(
                python,
                which,
                work,
                work / f"{tag}-saved",
                read_log(work / f"{tag}-killed.log", old),
                step,
                (old, new),
                batch,
                port,
            )
            resized_results[(name, which)] = r
            print(f"   {resized_verdict(r)}", flush=True)
    ok = True
    tables = []
    if same:
        lines = [
            "| processes | kill at (checkpoint step) | LeRobot's sampler | ours (launcher) |",
            "|---|---|---|---|",
        ]
        for procs in args.procs:
            for point, step in PLAN[procs][1].items():
                cells = []
                for which in ("lerobot", "ours"):
                    c = results.get((procs, point, which))
                    cells.append("not run" if c is None else verdict(c))
                lines.append(f"| {procs} | {point} ({step}) | {cells[0]} | {cells[1]} |")
                ours = results.get((procs, point, "ours"))
                ok &= ours is None or ours["exact"]
        past_epoch_0 = [
            c for (p, point, w), c in results.items() if w == "lerobot" and point != "mid epoch 0"
        ]
        ok &= all(not c["exact"] for c in past_epoch_0)
        tables.append("\n".join(lines))
    if resized:
        lines = [
            "| resized resume (checkpoint step) | LeRobot's sampler | ours (launcher) |",
            "|---|---|---|",
        ]
        for name, old, point, _new, _batch in resized:
            step = PLAN[old][1][point]
            cells = [resized_verdict(resized_results.get((name, which))) for which in ("lerobot", "ours")]
            lines.append(f"| {name}, {point} ({step}) | {cells[0]} | {cells[1]} |")
            ours = resized_results.get((name, "ours"))
            ok &= ours is None or ours["status"] == "exact"
        tables.append("\n".join(lines))
    table = "\n\n".join(tables)
    print(table)
    (work / "table.md").write_text(table + "\n")
    (work / "results.json").write_text(
        json.dumps(
            {
                **{f"{k[0]}|{k[1]}|{k[2]}": v for k, v in results.items()},
                **{f"resized|{k[0]}|{k[1]}": v for k, v in resized_results.items()},
            },
            indent=1,
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
