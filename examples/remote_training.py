#!/usr/bin/env python
"""Train from a dataset served over HTTP, survive a SIGKILL, resume exactly.

    python examples/remote_training.py

The example writes a small LeRobot v3 dataset with a camera and serves it over HTTP with byte ranges
(nginx when it is installed, else a small Range-capable server written below: Python's ``http.server``
ignores ``Range``). The training worker (this file run with ``--worker URL``) reads it with
``LeRobotFrames(url, cache_dir=...)``: only the byte ranges it needs, through an on-disk cache shared by
its two DataLoader workers. It trains a tiny torch model, logs the frame indices of every step and
saves ``{"step", "loader", "model", "optimizer"}`` atomically every few steps.

The parent kills the worker's whole process group (DataLoader workers included) with SIGKILL mid-epoch,
starts a new worker that resumes from the checkpoint (its cache still holds what was downloaded), and
checks that the steps up to the checkpoint plus the resumed steps equal an uninterrupted run over the
local directory: the same samples in the same order, the same batches bit for bit, the same losses.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import torch
from torchdata.stateful_dataloader import StatefulDataLoader

from episode_sampler import EpisodeAwareSampler, LeRobotFrames, write_lerobot_dataset

CAM = "observation.images.top"
EPOCHS, BATCH, CHECKPOINT_EVERY, KILL_AT = 2, 8, 4, 10


# ---------------------------------------------------------------------------------------- training


class Policy(torch.nn.Module):
    """A tiny policy: the camera's mean colour and the state -> the action."""

    def __init__(self, state_dim: int, action_dim: int) -> None:
        super().__init__()
        self.head = torch.nn.Linear(3 + state_dim, action_dim)

    def forward(self, image: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        colour = image.float().mean(dim=(2, 3)) / 255.0  # (B, 3, H, W) uint8 -> (B, 3)
        return self.head(torch.cat([colour, state], dim=1))


def digest(batch: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(batch):
        h.update(key.encode() + batch[key].contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def train(root: str, log_path: str, checkpoint: str | None, cache_dir: str | None) -> None:
    """Run EPOCHS epochs' worth of steps over ``root`` (a path or a URL), resuming from ``checkpoint``."""
    torch.manual_seed(0)
    frames = LeRobotFrames(
        root,
        columns=["index", "observation.state", "action", CAM],
        return_uint8=True,
        video_backend="pyav",  # PyAV reads remote video through a seekable file object
        cache_dir=cache_dir,  # remote roots only: the on-disk block cache (shared by the workers)
        cache_bytes=256 << 20,
    )
    sampler = EpisodeAwareSampler.from_index(
        frames.episodes, shuffle=True, seed=7, order="blocks", block_size=4
    )
    with warnings.catch_warnings():  # torchdata 0.11 + torch: a deprecation warning on construction
        warnings.filterwarnings("ignore", message=".*set_vital")
        loader = StatefulDataLoader(frames, batch_size=BATCH, sampler=sampler, num_workers=2)
    first = frames[0]
    model = Policy(first["observation.state"].numel(), first["action"].numel())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    step, total = 0, EPOCHS * -(-len(sampler) // BATCH)
    if checkpoint and os.path.exists(checkpoint):
        saved = torch.load(checkpoint, weights_only=True)
        loader.load_state_dict(saved["loader"])  # the sampler seeks: nothing is replayed or re-read
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        step = saved["step"]
    with open(log_path, "a") as log:
        while step < total:  # each pass over the loader is one epoch
            for batch in loader:
                loss = torch.nn.functional.mse_loss(
                    model(batch[CAM], batch["observation.state"]), batch["action"]
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                step += 1
                entry = {
                    "step": step,
                    "indices": batch["index"].tolist(),
                    "batch": digest(batch),
                    "loss": loss.item(),
                }
                log.write(json.dumps(entry) + "\n")
                log.flush()
                if checkpoint and step % CHECKPOINT_EVERY == 0:
                    state = {
                        "step": step,
                        "loader": loader.state_dict(),
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                    }
                    torch.save(state, checkpoint + ".tmp")
                    os.replace(checkpoint + ".tmp", checkpoint)  # atomic: a kill leaves the old or the new
                if step == total:
                    break


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines(keepends=True)
    return [json.loads(line) for line in lines if line.endswith("\n")]  # a kill may cut the last line


# ----------------------------------------------------------------------------------------- serving


class RangeHandler(BaseHTTPRequestHandler):
    """Serves files under ``self.server.directory`` with HEAD and ``Range: bytes=a-b`` (HTTP 206)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:  # noqa: N802
        self.answer(body=False)

    def do_GET(self) -> None:  # noqa: N802
        self.answer(body=True)

    def answer(self, body: bool) -> None:
        base = Path(self.server.directory)  # type: ignore[attr-defined]
        path = (base / self.path.split("?")[0].lstrip("/")).resolve()
        if not path.is_file() or base not in path.parents:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = path.stat().st_size
        start, stop = 0, size
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and "-" in rng and "," not in rng:
            a, b = rng[len("bytes=") :].split("-")
            start, stop = int(a), min(size, int(b) + 1) if b else size
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(stop - start))
        self.send_header("ETag", f'"{path.stat().st_mtime_ns}-{size}"')
        self.end_headers()
        if body:
            with open(path, "rb") as f:
                f.seek(start)
                self.wfile.write(f.read(stop - start))


def serve(directory: Path, work: Path) -> tuple[str, Any]:
    """Serve ``directory`` on 127.0.0.1; returns its URL and a function that stops the server."""
    nginx = shutil.which("nginx")
    with ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler) as probe:
        port = probe.server_address[1]  # a free port
    if nginx:
        conf = work / "nginx.conf"
        temps = "".join(
            f"{k}_temp_path {work / k}; " for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        conf.write_text(
            f"{'user root;' if os.geteuid() == 0 else ''} daemon off; pid {work / 'nginx.pid'};\n"
            f"error_log {work / 'error.log'}; events {{}}\n"
            f"http {{ access_log off; {temps}\n"
            f"  server {{ listen 127.0.0.1:{port}; root {directory.parent}; }} }}\n"
        )
        proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(work), "-e", str(work / "error.log")])
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.01)
        print("serving the dataset with nginx")
        return f"http://127.0.0.1:{port}/{directory.name}", lambda: (proc.terminate(), proc.wait())
    server = ThreadingHTTPServer(("127.0.0.1", port), RangeHandler)
    server.directory = str(directory)  # type: ignore[attr-defined]
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("serving the dataset with a small Range-capable server (nginx is not installed)")
    return f"http://127.0.0.1:{port}", lambda: (server.shutdown(), server.server_close())


# ------------------------------------------------------------------------------------------- main


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root = work / "dataset"
        write_lerobot_dataset(root, num_episodes=8, min_length=10, max_length=20, cameras={CAM: (64, 64)})
        url, stop = serve(root, work)
        try:
            run(url, root, work)
        finally:
            stop()
    return 0


def run(url: str, root: Path, work: Path) -> None:
    ref_log, crash_log, resume_log = (work / n for n in ("ref.jsonl", "crash.jsonl", "resume.jsonl"))
    checkpoint, cache = str(work / "checkpoint.pt"), str(work / "cache")

    train(str(root), str(ref_log), None, None)  # the uninterrupted reference: local files, this process
    reference = read_log(ref_log)
    print(f"reference (local directory, uninterrupted): {len(reference)} steps over {EPOCHS} epochs")

    cmd = [sys.executable, __file__, "--worker", url, "--checkpoint", checkpoint, "--cache", cache]
    proc = subprocess.Popen([*cmd, "--log", str(crash_log)], start_new_session=True)
    while proc.poll() is None and len(read_log(crash_log)) < KILL_AT:
        time.sleep(0.002)
    os.killpg(proc.pid, signal.SIGKILL)  # the worker and its DataLoader workers, mid-download or not
    proc.wait()
    crashed = read_log(crash_log)
    saved = torch.load(checkpoint, weights_only=True)["step"] if os.path.exists(checkpoint) else 0
    print(
        f"killed the HTTP training run (SIGKILL) after step {crashed[-1]['step']}; "
        f"last checkpoint: step {saved}"
    )

    subprocess.run([*cmd, "--log", str(resume_log)], check=True)
    resumed = read_log(resume_log)
    print(f"resumed over HTTP in a new process from step {saved}: {len(resumed)} more steps")

    effective = [s for s in crashed if s["step"] <= saved] + resumed
    assert [s["step"] for s in effective] == [s["step"] for s in reference]
    assert [s["indices"] for s in effective] == [s["indices"] for s in reference], "samples differ"
    assert [s["batch"] for s in effective] == [s["batch"] for s in reference], "batch contents differ"
    assert all(
        abs(a["loss"] - b["loss"]) <= 1e-6 * max(1.0, abs(b["loss"])) for a, b in zip(effective, reference)
    )
    samples = sum(len(s["indices"]) for s in effective)
    print(
        f"remote_training OK: {len(effective)} steps, {samples} samples read over HTTP equal the "
        "uninterrupted local run (same order, same bytes, same losses)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", metavar="URL", help="internal: run the training worker on URL")
    parser.add_argument("--checkpoint")
    parser.add_argument("--cache")
    parser.add_argument("--log")
    args = parser.parse_args()
    if args.worker:
        train(args.worker, args.log, args.checkpoint, args.cache)
        sys.exit(0)
    sys.exit(main())
