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
   trainer's step loop), and prints a table.

Exit code 0 when ours is exact at every point and LeRobot's sampler is not exact past epoch 0 (the
failure the launcher fixes), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
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


def run_to_end(cmd: list[str], out: Path) -> None:
    with open(out, "w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}); see {out}")


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=Path("/work/venv-lerobot"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/es_lerobot_train"))
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--samplers", nargs="+", default=["lerobot", "ours"])
    args = parser.parse_args()
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
        for which in args.samplers:
            tag = f"{which}-{procs}p"
            print(f"== {tag}", flush=True)
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
            last = max(kills.values())
            # LeRobot points checkpoints/last at a checkpoint once it is complete
            ready = [killed / "checkpoints" / f"{last + 1:06d}"]
            port += 1
            flags = [*common, f"--steps={steps}", "--save_freq=1", f"--output_dir={killed}"]
            how = run_and_kill(
                launch(python, which, procs, work / f"{tag}-killed.log", flags, port),
                work / f"{tag}-killed.out",
                ready,
            )
            time.sleep(0.5)
            saved = work / f"{tag}-saved"
            shutil.copytree(killed / "checkpoints", saved)  # before any resume writes into the output dirs
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
    lines = [
        "| processes | kill at (checkpoint step) | LeRobot's sampler | ours (launcher) |",
        "|---|---|---|---|",
    ]
    ok = True
    for procs in args.procs:
        for point, step in PLAN[procs][1].items():
            cells = []
            for which in ("lerobot", "ours"):
                c = results.get((procs, point, which))
                cells.append("not run" if c is None else verdict(c))
            lines.append(f"| {procs} | {point} ({step}) | {cells[0]} | {cells[1]} |")
            ours = results.get((procs, point, "ours"))
            ok &= ours is None or ours["exact"]
    past_epoch_0 = [c for (p, point, w), c in results.items() if w == "lerobot" and point != "mid epoch 0"]
    ok &= all(not c["exact"] for c in past_epoch_0)
    table = "\n".join(lines)
    print(table)
    (work / "table.md").write_text(table + "\n")
    (work / "results.json").write_text(
        json.dumps({f"{k[0]}|{k[1]}|{k[2]}": v for k, v in results.items()}, indent=1)
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
