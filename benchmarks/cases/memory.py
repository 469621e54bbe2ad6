"""Peak memory of a sampler's life (tracemalloc and RSS, each in a fresh subprocess) against N, and the
total PSS of a data pipeline with DataLoader workers, ours vs the real LeRobot (:mod:`.pss`)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..config import Config
from ..layouts import build_sampler, make_layout
from ..timing import Log, consume


def _current_rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM (peak RSS) on Linux
        return True
    except OSError:
        return False


def _peak_rss() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _memory_workload(index, iterate: int) -> None:
    """What a training run does with a sampler: build it, iterate, save, restore near the end, resume."""
    s = build_sampler(index, "feistel")
    consume(iter(s), iterate)
    state = s.state_dict()
    json.dumps(state)
    s.load_state_dict(dict(state, start_index=int(len(s) * 0.999)))
    consume(iter(s), 1000)


def memory_child(n: int, e: int, iterate: int, modes: tuple[str, ...]) -> dict[str, Any]:
    """Peak memory of the sampler workload, run in a fresh process by :func:`bench_memory`.

    Modes: ``"rss"`` (peak RSS above the RSS before, Linux ``VmHWM`` reset through ``clear_refs``),
    ``"tracemalloc"`` (peak of traced allocations; numpy's are traced) and ``"bounds"`` (tracemalloc
    peak of the LeRobot-compatible constructor from bounds, which validates and copies the layout
    itself). Each mode gets its own copy of the layout, without a lookup built yet. ``rss`` must come
    first (tracemalloc's own bookkeeping would inflate it).
    """
    import tracemalloc

    from episode_sampler import EpisodeAwareSampler, EpisodeIndex

    index = make_layout(n, e)
    out: dict[str, Any] = {
        "N": n,
        "E": e,
        "layout_bytes": int(index.starts.nbytes + index.ends.nbytes + index.episode_ids.nbytes),
    }
    for mode in modes:
        if mode == "bounds":
            starts, ends = index.starts.copy(), index.ends.copy()
            gc.collect()
            tracemalloc.start()
            s = EpisodeAwareSampler(starts, ends, shuffle=True, permutation="feistel")
            consume(iter(s), iterate)
            out["bounds"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            del s, starts, ends
            continue
        fresh = EpisodeIndex(index.starts, index.ends)  # shares the arrays, no lookup yet
        gc.collect()
        if mode == "rss":
            base = _current_rss()
            out["rss_reset"] = _reset_peak_rss()
            _memory_workload(fresh, iterate)
            out["rss"] = max(0, _peak_rss() - base)
        else:
            tracemalloc.start()
            _memory_workload(fresh, iterate)
            out["tracemalloc"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        del fresh
    return out


def _run_memory_child(
    n: int, e: int, iterate: int, modes: tuple[str, ...], subprocess_: bool
) -> dict[str, Any]:
    if not subprocess_:
        return memory_child(n, e, iterate, modes)
    code = (
        f"import json; from {__name__} import memory_child; "
        f"print(json.dumps(memory_child({n}, {e}, {iterate}, {modes!r})))"
    )
    import episode_sampler

    # the child imports this suite (repo root) and the same episode_sampler as this process
    paths = [
        str(Path(__file__).resolve().parents[2]),
        str(Path(episode_sampler.__file__).resolve().parents[1]),
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    for attempt in range(3):  # a checkout being edited can fail an import for a moment: retry
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
        )
        if proc.returncode == 0:
            break
        time.sleep(2.0 * (attempt + 1))
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed (N={n}, modes={modes}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_memory(cfg: Config, log: Log) -> dict[str, Any]:
    """Peak memory of a sampler's life (build, iterate, save, restore at 99.9 %, resume) against N.

    RSS is measured in its own fresh process; tracemalloc (and the from-bounds constructor) in another.
    """
    rows = []
    iterate = 10**5 if cfg.mode != "smoke" else 10**3
    for n in cfg.memory_n:
        log(f"memory N={n:.0e} E={cfg.memory_e:.0e}")
        res: dict[str, Any] = {}
        if cfg.memory_subprocess:
            res.update(_run_memory_child(n, cfg.memory_e, iterate, ("rss",), True))
        res.update(
            _run_memory_child(n, cfg.memory_e, iterate, ("tracemalloc", "bounds"), cfg.memory_subprocess)
        )
        rows.append(
            {
                "N": n,
                "E": cfg.memory_e,
                "layout_bytes": res["layout_bytes"],
                "tracemalloc_peak_bytes": res["tracemalloc"],
                "rss_peak_bytes": res.get("rss"),
                "from_bounds_peak_bytes": res["bounds"],
            }
        )
    from .pss import bench_pss

    return {"rows": rows, "iterated": iterate, "pss": bench_pss(cfg, log)}
