"""PNG plots of a report (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import BLOCK_SIZE, MiB
from .tables import fmt_n

NO_MATPLOTLIB = (
    "plots skipped: matplotlib is not installed (pip install 'episode-sampler[bench]' installs it "
    "with the peers)"
)


def plots(report: dict[str, Any], out: Path) -> list[Path]:
    """PNG plots (matplotlib, Agg) of the sections present in ``report``; returns the files written.

    Without matplotlib (a plain ``pip install``), prints a one-line note and writes nothing.
    """
    try:
        import matplotlib
    except ImportError:
        print(NO_MATPLOTLIB)
        return []

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 8, "axes.titlesize": 9, "legend.fontsize": 7})
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    sec = report["sections"]

    def save(fig: Any, name: str) -> None:
        path = out / name
        fig.tight_layout()
        fig.savefig(path, dpi=90, bbox_inches="tight")
        plt.close(fig)
        written.append(path)

    if "fullepoch" in sec:
        rows = sec["fullepoch"]["rows"]
        es = sorted({r["E"] for r in rows if r["E"] is not None})
        e_plot = 10**4 if 10**4 in es else es[len(es) // 2]
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        methods = ["feistel/frames", "randperm/frames", "materialized"]
        for m in methods:
            pts = sorted((r["N"], r["median_s"]) for r in rows if r["method"] == m and r["E"] == e_plot)
            if pts:
                ax.plot(*zip(*pts), marker="o", label=f"{m} (E={fmt_n(e_plot)})")
        for m in dict.fromkeys(r["method"] for r in rows if r["E"] is None):
            pts = sorted((r["N"], r["median_s"]) for r in rows if r["method"] == m)
            est = any(r["estimated"] for r in rows if r["method"] == m)
            ax.plot(
                *zip(*pts),
                marker=".",
                linestyle="--" if est else ":",
                label=m + (" (extrapolated)" if est else ""),
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("frames per epoch N")
        ax.set_ylabel("seconds per epoch (median)")
        ax.set_title("Full-epoch frame-index generation")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="upper left")
        save(fig, "perf_fullepoch.png")

    if "iteration" in sec:
        rows = sec["iteration"]["rows"]
        fig, ax = plt.subplots(figsize=(6.4, 1.0 + 0.22 * len(rows)))
        labels = [f"{r['method'].replace('for i in ', '')}, N={fmt_n(r['N'])}" for r in rows]
        vals = [r["items_per_s"] / 1e6 for r in rows]
        colors = [
            "tab:blue" if ("sampler (" in r["method"] or "EpisodeSamplerNode" in r["method"]) else "tab:gray"
            for r in rows
        ]
        ax.barh(range(len(rows)), vals, color=colors)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(labels, fontsize=6.5)
        ax.invert_yaxis()
        ax.set_xlabel("million items per second (linear; ours in blue)")
        ax.set_title("Python iteration throughput, whole epochs")
        ax.grid(True, axis="x", which="both", alpha=0.3)
        save(fig, "perf_iteration.png")

    if "restore" in sec:
        rows = [r for r in sec["restore"]["rows"] if r["permutation"] == "feistel"]
        fig, ax = plt.subplots(figsize=(6.4, 3.4))
        for frac in sorted({r["fraction"] for r in rows}):
            pts = sorted((r["N"], r["sampler_restore_s"] * 1e6) for r in rows if r["fraction"] == frac)
            ax.plot(*zip(*pts), marker="o", label=f"restore at {frac * 100:g} %")
        pts = sorted((r["N"], r["epoch_start_s"] * 1e6) for r in rows if "epoch_start_s" in r)
        if pts:
            ax.plot(*zip(*pts), marker="s", linestyle="--", color="k", label="fresh epoch, first sample")
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.set_xlabel("frames per epoch N")
        ax.set_ylabel("µs (median)")
        ax.set_title("feistel: load_state_dict + first sample")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        save(fig, "perf_restore.png")

    if "memory" in sec:
        rows = sec["memory"]["rows"]
        fig, ax = plt.subplots(figsize=(6.4, 3.4))
        ns = [r["N"] for r in rows]
        ax.plot(
            ns,
            [r["tracemalloc_peak_bytes"] / MiB for r in rows],
            marker="o",
            label="sampler, tracemalloc peak",
        )
        if all(r.get("rss_peak_bytes") is not None for r in rows):
            ax.plot(ns, [r["rss_peak_bytes"] / MiB for r in rows], marker="o", label="sampler, RSS peak")
        ax.plot(
            ns,
            [r["from_bounds_peak_bytes"] / MiB for r in rows],
            marker=".",
            linestyle="--",
            label="constructor from bounds (tracemalloc)",
        )
        ax.plot(
            ns,
            [r["layout_bytes"] / MiB for r in rows],
            linestyle=":",
            color="gray",
            label="layout arrays (input)",
        )
        ax.axhline(24, color="red", linewidth=0.8, label="24 MiB target")
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.set_xlabel(f"frames per epoch N ({fmt_n(rows[0]['E'])} episodes)")
        ax.set_ylabel("MiB")
        ax.set_title("Peak memory, feistel (build, iterate, save, restore, resume)")
        ax.set_ylim(top=max(30.0, ax.get_ylim()[1]))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
        save(fig, "perf_memory.png")

    if "peers_restore" in sec:
        rows = sec["peers_restore"]["rows"]
        sizes = list(dict.fromkeys((r["N"], r["E"]) for r in rows))
        peers = [m for m in dict.fromkeys(r["method"] for r in rows) if not m.startswith("ours")]
        fig, ax = plt.subplots(figsize=(6.4, 1.2 + 0.3 * len(peers)))
        for j, (n, e) in enumerate(sizes):
            xs, ys = [], []
            for i, m in enumerate(peers):
                case = "construct" if m.endswith("construct") else "built"
                ours = next((r for r in rows if r["N"] == n and r["method"] == f"ours {case}"), None)
                theirs = next((r for r in rows if r["N"] == n and r["method"] == m), None)
                if ours and theirs:
                    xs.append(theirs["median_s"] / ours["median_s"])
                    ys.append(i + 0.15 * (j - (len(sizes) - 1) / 2))
            ax.plot(xs, ys, "o", label=f"N = {fmt_n(n)}, {fmt_n(e)} episodes")
        ax.axvline(1.0, color="k", linewidth=0.8)
        ax.set_yticks(range(len(peers)))
        ax.set_yticklabels(peers, fontsize=6.5)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("peer's time / our time, same case (log scale; > 1: ours is faster)")
        ax.set_title("Restore + first sample, relative to ours (points, no bars)")
        ax.grid(True, axis="x", which="both", alpha=0.3)
        ax.legend(fontsize=6)
        save(fig, "perf_restore_peers.png")

    if "e2e" in sec:
        rows = sec["e2e"]["rows"]
        fig, ax = plt.subplots(figsize=(6.4, 1.2 + 0.3 * len(rows)))
        short = {  # first match wins
            "blocks": f"ours, order='blocks' ({BLOCK_SIZE}): not a like-for-like shuffle",
            "__getitems__": "ours: node → Mapper(__getitems__ + collate) → …",
            "get_batch": "ours: node → Mapper(get_batch) → Prefetcher → Loader",
            "DataLoader": "DataLoader + RandomSampler",
        }
        labels = [
            f"B={r['batch_size']}  " + next(v for k, v in short.items() if k in r["method"]) for r in rows
        ]
        ax.barh(
            range(len(rows)),
            [r["samples_per_s"] / 1e3 for r in rows],
            color=[
                "tab:gray"
                if r["method"].startswith("DataLoader")
                else "lightsteelblue"
                if "blocks" in r["method"]
                else "tab:blue"
                for r in rows
            ],
        )
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(labels, fontsize=6.5)
        ax.invert_yaxis()
        ax.set_xlabel("thousand samples per second")
        ax.set_title("End to end over LeRobotFrames (ours in blue)", loc="right")
        ax.grid(True, axis="x", alpha=0.3)
        save(fig, "perf_e2e.png")
    if "video" in sec and sec["video"]["sweep"]:
        from .cases.video import video_plot

        video_plot(sec["video"], out / "perf_video_blocks.png")
        written.append(out / "perf_video_blocks.png")
    return written
