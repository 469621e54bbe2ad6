"""Run documentation code blocks, each in its own process, several at a time (for tests/docs/test_pages.py).

    python tests/helpers/doc_runner.py JOBS.json [--fresh] [--jobs N] [--timeout S]

``JOBS.json`` lists ``{"id", "dir", "script"}``. Every block runs as ``python script`` would: its own
process, ``cwd = dir``, ``__name__ == "__main__"``, a fresh global namespace, stdout and stderr
(file descriptors 1 and 2, so subprocesses it starts are captured too) written to ``dir/stdout`` and
``dir/stderr``.

By default the runner imports numpy, torch, torchdata and episode_sampler once and ``fork()``s a
child per block (importing torch costs ~1.5 s per process; forking costs milliseconds). The runner
itself never computes anything, so the children start from an untouched interpreter that merely has
those modules in ``sys.modules``: a block that forgets an import still fails with ``NameError``.
``--fresh`` ``exec``s a brand-new interpreter per block instead (slower; what a user pasting does).

Prints one JSON object ``{id: {"returncode": int, "timed_out": bool, "seconds": float}}``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import traceback

PRELOAD = ("numpy", "torch", "torchdata.nodes", "pyarrow", "pyarrow.parquet", "episode_sampler")


def _child(job: dict, fresh: bool) -> None:
    """In the forked child: become ``python script`` in ``dir``. Never returns."""
    code = 1
    try:
        os.chdir(job["dir"])
        for fd, name in ((1, "stdout"), (2, "stderr")):
            out = os.open(os.path.join(job["dir"], name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(out, fd)
            os.close(out)
        os.setpgid(0, 0)  # own process group: a timeout kills whatever the block started
        if fresh:
            os.execv(sys.executable, [sys.executable, job["script"]])
        import runpy

        sys.argv = [job["script"]]
        sys.path[0] = job["dir"]
        try:
            runpy.run_path(job["script"], run_name="__main__")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if not isinstance(exc.code, int) and exc.code is not None:
                print(exc.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
            code = 1
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("jobs_file")
    ap.add_argument("--fresh", action="store_true", help="exec a new interpreter per block")
    ap.add_argument("--jobs", type=int, default=max(2, os.cpu_count() or 1))
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args(argv)
    with open(args.jobs_file, encoding="utf-8") as f:
        jobs = json.load(f)
    if not args.fresh:
        for name in PRELOAD:
            try:
                __import__(name)
            except ImportError:
                pass
    sys.stdout.flush()
    sys.stderr.flush()
    pending = list(jobs)
    running: dict[int, tuple[dict, float]] = {}
    results: dict[str, dict] = {}
    while pending or running:
        while pending and len(running) < args.jobs:
            job = pending.pop(0)
            pid = os.fork()
            if pid == 0:
                _child(job, args.fresh)
            running[pid] = (job, time.monotonic())
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            now = time.monotonic()
            for cpid, (job, start) in list(running.items()):
                if now - start > args.timeout and not results.get(job["id"], {}).get("timed_out"):
                    results[job["id"]] = {"timed_out": True}
                    try:
                        os.killpg(cpid, signal.SIGKILL)
                    except OSError:  # not yet its own group leader
                        os.kill(cpid, signal.SIGKILL)
            time.sleep(0.01)
            continue
        job, start = running.pop(pid)
        result = results.setdefault(job["id"], {"timed_out": False})
        result["returncode"] = os.waitstatus_to_exitcode(status)
        result["seconds"] = round(time.monotonic() - start, 3)
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
