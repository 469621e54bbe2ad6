"""PNG plots of a report (matplotlib, Agg), drawn to be read.

Every figure follows the same rules, checked by ``tests/benchmarks/test_plots.py`` on a fake report:

- no legend on top of data: legends sit outside the axes (below them), or lines are labelled directly;
- every bar carries its value as text, so a bar too short to see (Grain's) still says what it is;
- every reference line (a target, the decode limit, "as fast as ours") is named in the legend;
- nothing is cut off: constrained layout, and ``bbox_inches="tight"`` when saving.

:data:`FIGURES` maps each file name to the section it needs and the function that draws it;
:func:`figures` returns the drawn figures (for tests), :func:`plots` writes them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import BLOCK_SIZE, MiB
from .tables import fmt_n

NO_MATPLOTLIB = (
    "plots skipped: matplotlib is not installed (pip install 'episode-sampler[bench]' installs it "
    "with the peers)"
)
WIDTH = 6.4  # inches; every figure has this width
OURS, PEER, OURS_LIGHT, REF, TARGET = "tab:blue", "tab:gray", "lightsteelblue", "black", "tab:red"


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 8, "axes.titlesize": 9, "legend.fontsize": 7})
    return plt


def _figure(height: float) -> tuple[Any, Any]:
    return _plt().subplots(figsize=(WIDTH, height), layout="constrained")


def _legend_below(fig: Any, ax: Any, ncols: int = 2, extra: list[tuple[Any, str]] | None = None) -> None:
    """The axes' legend (plus ``extra`` (handle, label) pairs) below the plot, outside the data."""
    handles, labels = ax.get_legend_handles_labels()
    for h, lab in extra or []:
        handles.append(h)
        labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=ncols, frameon=False)


def _bar_values(ax: Any, bars: Any, fmt: Callable[[float], str]) -> None:
    """Each bar's value written past its end (also for bars too short to see), inside the axes."""
    values = [b.get_width() for b in bars]
    ax.bar_label(bars, labels=[fmt(v) for v in values], padding=3, fontsize=6.5)
    top = max(values, default=0.0)
    ax.set_xlim(0, top * 1.18 if top > 0 else 1.0)


def fig_fullepoch(sec: dict[str, Any]) -> Any:
    rows = sec["rows"]
    es = sorted({r["E"] for r in rows if r["E"] is not None})
    if not es:
        return None
    e_plot = 10**4 if 10**4 in es else es[len(es) // 2]
    fig, ax = _figure(4.4)
    for m in ("feistel/frames", "randperm/frames", "materialized"):
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
    _legend_below(fig, ax)
    return fig


def fig_iteration(sec: dict[str, Any]) -> Any:
    rows = sec["rows"]
    fig, ax = _figure(1.2 + 0.24 * len(rows))
    labels = [f"{r['method'].replace('for i in ', '')}, N={fmt_n(r['N'])}" for r in rows]
    ours = [("sampler (" in r["method"] or "EpisodeSamplerNode" in r["method"]) for r in rows]
    bars = ax.barh(
        range(len(rows)), [r["items_per_s"] / 1e6 for r in rows], color=[OURS if o else PEER for o in ours]
    )
    _bar_values(ax, bars, lambda v: f"{v:.2f}" if v < 1 else f"{v:.1f}")
    ax.set_yticks(range(len(rows)), labels, fontsize=6.5)
    ax.invert_yaxis()
    ax.set_xlabel("million items per second\n(linear; ours in blue; value at each bar's end)")
    ax.set_title("Python iteration throughput, whole epochs")
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def fig_restore(sec: dict[str, Any]) -> Any:
    rows = [r for r in sec["rows"] if r["permutation"] == "feistel"]
    if not rows:
        return None
    fig, ax = _figure(3.8)
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
    _legend_below(fig, ax, ncols=3)
    return fig


def fig_memory(sec: dict[str, Any]) -> Any:
    rows = sec["rows"]
    fig, ax = _figure(4.0)
    ns = [r["N"] for r in rows]
    ax.plot(
        ns, [r["tracemalloc_peak_bytes"] / MiB for r in rows], marker="o", label="sampler, tracemalloc peak"
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
    ax.axhline(24, color=TARGET, linewidth=0.8, label="target: peak ≤ 24 MiB")
    ax.set_xscale("log")
    ax.set_xlabel(f"frames per epoch N ({fmt_n(rows[0]['E'])} episodes)")
    ax.set_ylabel("MiB")
    ax.set_title("Peak memory, feistel (build, iterate, save, restore, resume)")
    ax.set_ylim(0, max(30.0, ax.get_ylim()[1]))
    ax.grid(True, which="both", alpha=0.3)
    _legend_below(fig, ax)
    return fig


def fig_peers_restore(sec: dict[str, Any]) -> Any:
    rows = sec["rows"]
    sizes = list(dict.fromkeys((r["N"], r["E"]) for r in rows))
    peers = [m for m in dict.fromkeys(r["method"] for r in rows) if not m.startswith("ours")]
    if not peers:
        return None
    fig, ax = _figure(1.6 + 0.3 * len(peers))
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
    ax.axvline(1.0, color=REF, linewidth=0.8, label="1 = as fast as ours")
    ax.set_yticks(range(len(peers)), peers, fontsize=6.5)
    ax.set_ylim(len(peers) - 0.5, -0.5)
    ax.set_xscale("log")
    ax.set_xlabel("peer's time / our time, same case (log scale; > 1: ours is faster)")
    ax.set_title("Restore + first sample, relative to ours")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    _legend_below(fig, ax, ncols=3)
    return fig


def fig_e2e(sec: dict[str, Any]) -> Any:
    rows = sec["rows"]
    short = {  # first match wins
        "blocks": f"ours, order='blocks' ({BLOCK_SIZE}): not a like-for-like shuffle",
        "__getitems__": "ours: node → Mapper(__getitems__ + collate) → …",
        "get_batch": "ours: node → Mapper(get_batch) → Prefetcher → Loader",
        "DataLoader": "DataLoader + RandomSampler",
    }
    labels = [
        f"B={r['batch_size']}  " + next((v for k, v in short.items() if k in r["method"]), r["method"])
        for r in rows
    ]
    fig, ax = _figure(1.3 + 0.3 * len(rows))
    colors = [
        PEER if r["method"].startswith("DataLoader") else OURS_LIGHT if "blocks" in r["method"] else OURS
        for r in rows
    ]
    bars = ax.barh(range(len(rows)), [r["samples_per_s"] / 1e3 for r in rows], color=colors)
    _bar_values(ax, bars, lambda v: f"{v:.1f} k/s")
    ax.set_yticks(range(len(rows)), labels, fontsize=6.5)
    ax.invert_yaxis()
    ax.set_xlabel("thousand samples per second (ours in blue)")
    ax.set_title("End to end over LeRobotFrames")
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def fig_video_blocks(sec: dict[str, Any]) -> Any:
    """Decode cost (time and frames per sample) and same-episode share against block size."""
    sw = sec.get("sweep") or []
    if not sw:
        return None
    blocks = [r["block_size"] for r in sw]
    fig, ax = _figure(4.0)
    t0, f0 = sw[0]["us_per_sample"], sw[0]["frames_decoded_per_sample"]
    ax.plot(blocks, [r["us_per_sample"] / t0 for r in sw], "o-", color="tab:blue", label="time per sample")
    ax.plot(
        blocks,
        [r["frames_decoded_per_sample"] / f0 for r in sw],
        "^-",
        color="tab:cyan",
        label="frames decoded per sample",
    )
    ax.set_xscale("log", base=2)
    ax.set_xticks(blocks, [str(b) for b in blocks])
    ax.set_xlabel(f"block_size (1 = order='frames'), batch size {sec['batch_size']}")
    ax.set_ylabel(f"decode cost, relative to block_size={blocks[0]}", color="tab:blue")
    ax.set_ylim(0, 1.15)
    ax2 = ax.twinx()
    ax2.plot(
        blocks, [r["same_episode_share"] for r in sw], "s--", color="tab:red", label="same-episode pairs"
    )
    ax2.axhline(
        sec["random_same_episode_share"],
        color="tab:red",
        lw=0.8,
        ls=":",
        label="same-episode pairs of a uniform shuffle",
    )
    ax2.set_ylabel("share of batch-mate pairs\nfrom the same episode", color="tab:red")
    ax2.set_ylim(0, 1)
    cams = len(sec.get("cameras", {})) or 1
    ax.set_title(f"Block order: decode cost vs batch-mate similarity ({cams} AV1 camera{'s' * (cams > 1)})")
    _legend_below(fig, ax, extra=list(zip(*ax2.get_legend_handles_labels())))
    return fig


def _video_thresholds() -> dict[str, float]:
    """Reader name -> target fraction of the decode limit (``VIDEO_TARGETS`` of the video case, if any)."""
    from .cases import video

    return {reader: threshold for _, reader, threshold in getattr(video, "VIDEO_TARGETS", ())}


def _reader_label(row: dict[str, Any]) -> str:
    """A video reader's method name, short: ``ours, blocks of 8, uint8, 0 workers``."""
    import re

    name = row["method"]
    if "LeRobot-style" in name:
        name = "LeRobot-style per item"
    name = name.replace("LeRobotFrames, ", "ours, ").replace("order='frames'", "frames")
    name = re.sub(r"order='blocks' \(block_size=(\d+)\)", r"blocks of \1", name)
    name = name.replace("return_uint8=True", "uint8")
    name = name.replace("video_threads=None (one per camera)", "a thread per camera")
    name = name.replace("video_threads=1", "1 thread")
    if row.get("limit") == "uint8":
        name += " (/ uint8 limit)"
    workers = row["workers"]
    return f"{name}, {workers} worker{'s' * (workers != 1)}"


def fig_video_limit(sec: dict[str, Any]) -> Any:
    """Each reader's samples/s as a fraction of the decode limit, the limit at 1.0, the targets marked.

    Needs ``sec["limit"]`` (samples/s) and rows with ``fraction_of_limit``; ``None`` without them.
    """
    limit = sec.get("limit")
    rows = [r for r in sec.get("rows", []) if r.get("fraction_of_limit") is not None]
    if not limit or not rows:
        return None
    thresholds = _video_thresholds()
    fig, ax = _figure(1.5 + 0.3 * len(rows))
    labels = [_reader_label(r) for r in rows]
    colors = [PEER if "LeRobot-style" in r["method"] else OURS for r in rows]
    values = [r["fraction_of_limit"] for r in rows]
    ax.barh(range(len(rows)), values, color=colors)
    ax.set_xlim(0, max(1.15, max(values) * 1.08))
    for i, v in enumerate(values):  # at the bar's base: clear of the limit line and the target marks
        ax.text(
            ax.get_xlim()[1] * 0.01,
            i,
            f"{v:.2f}",
            va="center",
            ha="left",
            fontsize=6.5,
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
        )
    ax.axvline(
        1.0, color=REF, linewidth=1.0, label=f"decode limit = 1.0 ({limit:,.0f} samples/s, one thread)"
    )
    marked = False
    for i, r in enumerate(rows):
        threshold = thresholds.get(r["method"])
        if threshold is not None and r["workers"] == 0:
            ax.plot(
                [threshold, threshold],
                [i - 0.45, i + 0.45],
                color=TARGET,
                linewidth=2.0,
                label=None if marked else "target for this reader (num_workers=0)",
            )
            marked = True
    ax.set_yticks(range(len(rows)), labels, fontsize=6.5)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("samples/s / the decode limit's, same run\n(value at each bar's base)")
    cams = len(sec.get("cameras", {})) or 1
    ax.set_title(f"Readers vs the decode limit ({cams} AV1 camera{'s' * (cams > 1)})")
    ax.grid(True, axis="x", alpha=0.3)
    _legend_below(fig, ax, ncols=1)
    return fig


#: file name -> (report section, drawing function returning a Figure or None)
FIGURES: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {
    "perf_fullepoch.png": ("fullepoch", fig_fullepoch),
    "perf_iteration.png": ("iteration", fig_iteration),
    "perf_restore.png": ("restore", fig_restore),
    "perf_memory.png": ("memory", fig_memory),
    "perf_restore_peers.png": ("peers_restore", fig_peers_restore),
    "perf_e2e.png": ("e2e", fig_e2e),
    "perf_video_blocks.png": ("video", fig_video_blocks),
    "perf_video_limit.png": ("video", fig_video_limit),
}


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """The figures of the sections present in ``report``, by file name (the caller closes them)."""
    sec = report["sections"]
    out = {}
    for name, (section, draw) in FIGURES.items():
        if section in sec and sec[section].get("rows"):
            fig = draw(sec[section])
            if fig is not None:
                out[name] = fig
    return out


def plots(report: dict[str, Any], out: Path) -> list[Path]:
    """PNG plots (matplotlib, Agg) of the sections present in ``report``; returns the files written.

    Without matplotlib (a plain ``pip install``), prints a one-line note and writes nothing.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(NO_MATPLOTLIB)
        return []
    plt = _plt()
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, fig in figures(report).items():
        path = out / name
        fig.savefig(path, dpi=90, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written
