"""Render the pictures of docs/concepts.md by calling episode_sampler, so they show real behaviour.

    python docs/render_figures.py             # writes docs/img/concept_*.png
    python docs/render_figures.py --out DIR   # writes DIR/concept_*.png

Deterministic (fixed seeds, no timestamps in the PNG metadata), matplotlib Agg backend, a few seconds.
Every picture is computed with the library and cross-checked against the documented formulas with
``assert``: if the library's behaviour changes, rendering fails instead of drawing a stale picture.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

from episode_sampler import EpisodeAwareSampler, EpisodeIndex  # noqa: E402

DPI = 100
SEED = 0
# Within a figure every colour means one thing. Red is reserved for padding/clamping (wrap-around
# repeats, padded window entries) in every figure, so no episode or rank is red.
EP_COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f"]
RANK_COLORS = ["#4e79a7", "#f28e2b", "#9c755f"]  # old world in the elastic figure, too
NEW_RANK_COLORS = ["#b07aa1", "#76b7b2"]  # new world: none of the old ranks' colours
ONCE_COLOR = "#7f7f7f"  # elastic coverage: yielded exactly once (repeats are PAD_EDGE red)
GREY = "#c8c8c8"
PAD_EDGE = "#d62728"

RC = {"font.size": 8, "svg.hashsalt": "episode-sampler"}  # matplotlib settings of every figure

# One small dataset for the order, sharding and elastic pictures: 5 episodes, 46 frames.
LENGTHS = [9, 13, 6, 11, 7]


def _save(fig: plt.Figure, out: Path, name: str) -> Path:
    path = out / name
    # bbox_inches="tight": nothing drawn outside the figure (a title, a legend above the axes) is cut off
    fig.savefig(path, dpi=DPI, metadata={"Software": None}, bbox_inches="tight", pad_inches=0.05)
    plt.close(fig)
    return path


def _cells(
    ax: plt.Axes,
    y: float,
    colors: Sequence[str],
    labels: Sequence[object] | None = None,
    x0: int = 0,
    height: float = 0.8,
    fontsize: float = 6.5,
    text_color: str = "white",
) -> None:
    """One row of unit-width cells starting at x0, optionally labelled."""
    for i, c in enumerate(colors):
        ax.add_patch(Rectangle((x0 + i, y), 1, height, facecolor=c, edgecolor="white", linewidth=0.8))
        if labels is not None and labels[i] is not None:
            ax.text(
                x0 + i + 0.5,
                y + height / 2,
                str(labels[i]),
                ha="center",
                va="center",
                fontsize=fontsize,
                color=text_color,
            )


def _outline(ax: plt.Axes, x: float, y: float, w: float, h: float, color: str = PAD_EDGE) -> None:
    ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor=color, linewidth=1.8, zorder=5))


def _episode_sampler(**kw: object) -> EpisodeAwareSampler:
    index = EpisodeIndex.from_lengths(LENGTHS)
    return EpisodeAwareSampler(index.starts, index.ends, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- 1 layout
def fig_layout(out: Path) -> Path:
    """Episodes with gaps on the frame axis, drops shaded, an unselected episode greyed, positions."""
    from_idx = [0, 12, 30, 44, 60]
    to_idx = [10, 27, 38, 56, 74]
    use = [0, 1, 3, 4]
    drop_first, drop_last = 1, 2
    sampler = EpisodeAwareSampler(from_idx, to_idx, use, drop_first, drop_last)
    valid = np.asarray(sampler.indices)
    sel = EpisodeIndex.from_bounds(from_idx, to_idx).select(use, drop_first, drop_last)
    assert np.array_equal(valid, sel.frame_at(np.arange(sel.num_frames)))
    assert sampler.num_frames == sum(to_idx[e] - from_idx[e] - drop_first - drop_last for e in use)
    pos_of = {int(f): p for p, f in enumerate(valid)}

    fig, ax = plt.subplots(figsize=(11, 2.6))
    y = 1.0
    for e, (a, b) in enumerate(zip(from_idx, to_idx)):
        for f in range(a, b):
            if e not in use:
                fc, hatch = GREY, None
            elif f in pos_of:
                fc, hatch = EP_COLORS[e], None
            else:
                fc, hatch = "white", "////"
            ec = "white" if f in pos_of else (EP_COLORS[e] if e in use else "#999999")
            ax.add_patch(Rectangle((f, y), 1, 0.8, facecolor=fc, edgecolor=ec, hatch=hatch, linewidth=0.6))
        label = f"episode {e}" + ("" if e in use else "\n(not in subset)")
        ax.text((a + b) / 2, y + 1.0, label, ha="center", va="bottom", fontsize=8)
    for f, p in pos_of.items():  # the position of the first and last valid frame of each episode
        if f + 1 not in pos_of or f - 1 not in pos_of:
            ax.text(f + 0.5, y - 0.25, str(p), ha="center", va="top", fontsize=6.5, color="#333333")
    ax.text(-1, y - 0.25, "position", ha="right", va="top", fontsize=7.5, color="#333333")
    ax.text(-1, y + 0.4, "frame", ha="right", va="center", fontsize=7.5)
    ax.set_xlim(-8, max(to_idx) + 1)
    ax.set_ylim(0.2, 2.6)
    ax.set_yticks([])
    ax.set_xticks(range(0, max(to_idx) + 1, 5))
    ax.set_xlabel("frame index")
    for s in ("left", "right", "top"):
        ax.spines[s].set_visible(False)
    ax.legend(
        handles=[
            Patch(facecolor="white", edgecolor="#555555", label="valid frame (colour = episode)"),
            Patch(facecolor="white", edgecolor="#555555", hatch="////", label="dropped (first 1 / last 2)"),
            Patch(facecolor=GREY, label="episode not in episode_indices_to_use"),
        ],
        loc="upper right",
        fontsize=7,
        ncol=3,
        frameon=False,
        bbox_to_anchor=(1.0, 1.18),
    )
    ax.set_title(
        f"EpisodeAwareSampler({from_idx}, {to_idx}, episode_indices_to_use={use}, "
        f"drop_n_first_frames={drop_first}, drop_n_last_frames={drop_last}): "
        f"{sampler.num_frames} positions",
        fontsize=8,
        loc="left",
        pad=26,
    )
    fig.tight_layout()
    return _save(fig, out, "concept_layout.png")


# ---------------------------------------------------------------------------------------------- 2 windows
def _window(frame: int, lo: int, hi: int, offsets: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """LeRobot's definition: frames ``frame + d`` clamped to ``[lo, hi - 1]``, pad where clamped."""
    query = frame + np.asarray(offsets)
    return np.clip(query, lo, hi - 1), (query < lo) | (query > hi - 1)


def _check_windows_with_library(cases: list[tuple[int, str, Sequence[int]]], lo: int, hi: int) -> bool:
    """Load the same windows with LeRobotFrames from a synthetic dataset; True if checked."""
    try:
        from episode_sampler import LeRobotFrames, write_lerobot_dataset
    except ImportError:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        # lengths 12/11/11 for seed 0: episode 1 is [12, 23)
        index = write_lerobot_dataset(tmp, num_episodes=3, min_length=10, max_length=12, seed=0)
        shift = int(index.starts[1]) - lo  # map the picture's episode onto episode 1
        assert int(index.ends[1]) - int(index.starts[1]) == hi - lo, "synthetic layout changed"
        deltas = {key: list(offs) for _, key, offs in cases}
        ds = LeRobotFrames(tmp, columns=["index"], delta_indices=deltas)
        for frame, key, offs in cases:
            item = ds[frame + shift]
            want, pad = _window(frame, lo, hi, offs)
            col = item[key].numpy()[:, 0]
            got = (-col - 1) if key == "action" else col  # synthetic: state = i, action = -i - 1
            assert np.array_equal(np.rint(got).astype(int) - shift, want), (key, got, want)
            assert np.array_equal(item[f"{key}_is_pad"].numpy(), pad)
    return True


def fig_windows(out: Path) -> Path:
    lo, hi = 20, 31  # one episode: frames [20, 31)
    cases = [
        (27, "action", list(range(8))),
        (20, "observation.state", [-1, 0]),
    ]
    checked = _check_windows_with_library(cases, lo, hi)

    fig, axes = plt.subplots(1, 2, figsize=(11, 2.9), gridspec_kw={"width_ratios": [1.5, 1]})
    for ax, (frame, key, offs) in zip(axes, cases):
        got, pad = _window(frame, lo, hi, offs)
        query = frame + np.asarray(offs)
        x_min, x_max = min(lo, int(query.min())) - 2, max(hi, int(query.max()) + 1) + 1
        # episode row
        for f in range(x_min, x_max):
            inside = lo <= f < hi
            fc = EP_COLORS[0] if inside else "white"
            ec = "white" if inside else "#bbbbbb"
            ax.add_patch(Rectangle((f, 2.0), 1, 0.7, facecolor=fc, edgecolor=ec, linewidth=0.6))
            if inside:
                ax.text(f + 0.5, 2.35, str(f), ha="center", va="center", fontsize=6, color="white")
        _outline(ax, frame, 2.0, 1, 0.7, color="black")
        ax.text(frame + 0.5, 2.85, f"t={frame}", ha="center", fontsize=7.5)
        # requested offsets -> loaded frames
        for j, (q, g, p) in enumerate(zip(query, got, pad)):
            yq = 1.0
            ax.add_patch(
                Rectangle(
                    (q + 0.15, yq),
                    0.7,
                    0.5,
                    facecolor="#fde0dd" if p else "#e8f0f8",
                    edgecolor=PAD_EDGE if p else EP_COLORS[0],
                    linewidth=0.8,
                )
            )
            ax.text(q + 0.5, yq + 0.25, f"{offs[j]:+d}", ha="center", va="center", fontsize=6.5)
            if p:
                ax.annotate(
                    "",
                    xy=(g + 0.5, 1.98),
                    xytext=(q + 0.5, yq + 0.52),
                    arrowprops={"arrowstyle": "->", "color": PAD_EDGE, "lw": 0.7},
                )
        ax.text(x_min - 0.3, 1.25, f"{key}\noffsets", ha="right", va="center", fontsize=7)
        ax.text(x_min - 0.3, 2.35, "episode\n[20, 31)", ha="right", va="center", fontsize=7)
        # loaded frame and pad mask, one column per offset
        ax.text(x_min - 0.3, 0.55, "loaded frame", ha="right", va="center", fontsize=7)
        ax.text(x_min - 0.3, 0.12, f"{key}_is_pad", ha="right", va="center", fontsize=7)
        for q, g, p in zip(query, got, pad):
            ax.text(q + 0.5, 0.55, str(int(g)), ha="center", va="center", fontsize=7)
            ax.text(
                q + 0.5,
                0.12,
                "T" if p else "F",
                ha="center",
                va="center",
                fontsize=7,
                color=PAD_EDGE if p else "#333333",
                weight="bold" if p else "normal",
            )
        ax.set_xlim(x_min - 5.5, x_max)
        ax.set_ylim(-0.1, 3.1)
        ax.axis("off")
        ax.set_title(f"{key}: offsets {list(offs)} at t={frame}", fontsize=8.5, loc="left")
    note = "checked against LeRobotFrames" if checked else "from the definition"
    fig.suptitle(
        f"Episode windows: frames t+d clamped to [from, to-1]; <key>_is_pad marks the clamped ones ({note})",
        fontsize=9,
    )
    fig.tight_layout()
    return _save(fig, out, "concept_windows.png")


# ---------------------------------------------------------------------------------------------- 3 orders
def _unit_starts(frames: np.ndarray, order: str, ep: np.ndarray, first: np.ndarray, k: int) -> list[int]:
    """Positions where a new unit (episode or block) begins, to draw separators."""
    cuts = []
    for p in range(1, frames.size):
        new_ep = ep[p] != ep[p - 1] or frames[p] != frames[p - 1] + 1
        new_block = order == "blocks" and (frames[p] - first[ep[p]]) % k == 0
        if new_ep or new_block:
            cuts.append(p)
    return cuts


def fig_orders(out: Path) -> Path:
    k = 4
    rows = [
        ("unshuffled (shuffle=False)", {"shuffle": False}),
        ('order="frames"', {"order": "frames"}),
        ('order="episodes"', {"order": "episodes"}),
        (f'order="blocks", block_size={k}', {"order": "blocks", "block_size": k}),
    ]
    index = EpisodeIndex.from_lengths(LENGTHS)
    n = index.num_frames
    fig, ax = plt.subplots(figsize=(11, 2.9))
    for r, (label, kw) in enumerate(rows):
        opts = {"shuffle": True, "seed": SEED, "permutation": "feistel", **kw}
        frames = _episode_sampler(**opts).frame_indices(0)
        assert sorted(frames.tolist()) == list(range(n)), label  # a permutation of the valid frames
        ep = index.episode_of(frames)
        y = len(rows) - 1 - r
        _cells(ax, y, [EP_COLORS[e] for e in ep], frames.tolist())
        if kw.get("order") in ("episodes", "blocks"):
            for c in _unit_starts(frames, kw["order"], ep, index.starts, k):
                ax.plot([c, c], [y - 0.05, y + 0.85], color="black", linewidth=1.6)
        ax.text(-0.6, y + 0.4, label, ha="right", va="center", fontsize=8)
    ax.set_xlim(-13, n + 0.2)
    ax.set_ylim(-0.3, len(rows))
    ax.set_yticks([])
    ax.set_xticks([0, 10, 20, 30, 40, n - 1])
    ax.set_xlabel("position in epoch 0 (cell text: frame index; colour: episode; bar: unit boundary)")
    for s in ("left", "right", "top"):
        ax.spines[s].set_visible(False)
    ax.legend(
        handles=[Patch(facecolor=EP_COLORS[e], label=f"ep {e} ({n_} fr)") for e, n_ in enumerate(LENGTHS)],
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=len(LENGTHS),
        fontsize=7,
        frameon=False,
    )
    ax.set_title(
        f'EpisodeAwareSampler(..., shuffle=True, seed={SEED}, permutation="feistel").frame_indices(0)',
        fontsize=8.5,
        pad=20,
    )
    fig.tight_layout()
    return _save(fig, out, "concept_orders.png")


# ---------------------------------------------------------------------------------------------- 4 sharding
def fig_sharding(out: Path) -> Path:
    world = 3
    opts = {"shuffle": True, "seed": SEED, "permutation": "feistel"}
    full = _episode_sampler(**opts).frame_indices(0)  # the global order (world_size 1)
    n = full.size
    ranks = [_episode_sampler(rank=r, world_size=world, **opts).frame_indices(0) for r in range(world)]
    per_rank = ranks[0].size
    assert all(x.size == per_rank == -(-n // world) for x in ranks)
    for r, x in enumerate(ranks):
        assert np.array_equal(x, full[(r + world * np.arange(per_rank)) % n])
    dropped = _episode_sampler(rank=0, world_size=world, drop_last=True, **opts)
    assert len(dropped) == n // world
    total = per_rank * world

    fig, ax = plt.subplots(figsize=(11, 2.8))
    g = np.arange(total)
    labels = [int(full[p % n]) for p in g]
    _cells(ax, world, [RANK_COLORS[p % world] for p in g], labels)
    for p in range(n, total):
        _outline(ax, p, world, 1, 0.8)
    wrapped = ", ".join(str(p) for p in range(n, total))
    ax.text(
        total,
        world + 0.95,
        f"positions {wrapped} wrap to {', '.join(str(p - n) for p in range(n, total))}",
        ha="right",
        fontsize=7,
        color=PAD_EDGE,
    )
    ax.text(-0.6, world + 0.4, "global order", ha="right", va="center", fontsize=8)
    for r in range(world):
        y = world - 1 - r
        _cells(ax, y, [RANK_COLORS[r]] * per_rank, ranks[r].tolist(), x0=0)
        last = (r + world * (per_rank - 1)) >= n
        if last:
            _outline(ax, per_rank - 1, y, 1, 0.8)
        ax.text(-0.6, y + 0.4, f"rank {r}", ha="right", va="center", fontsize=8)
    unused = list(range(n // world * world, n))
    unused_txt = f"position {unused[0]}" if len(unused) == 1 else f"positions {unused[0]}..{unused[-1]}"
    ax.text(
        per_rank + 1,
        1.4,
        f"{n} frames, world_size={world}\n"
        f"drop_last=False: ceil({n}/{world}) = {per_rank} per rank;\n"
        f"positions {n}..{total - 1} wrap to the start\nof the same epoch's order "
        f"({total - n} repeats, outlined in red)\n"
        f"drop_last=True: floor({n}/{world}) = {n // world} per rank,\n"
        f"{unused_txt} not yielded",
        fontsize=7.5,
        va="center",
    )
    ax.set_xlim(-6, total + 0.5)
    ax.set_ylim(-0.3, world + 1.8)
    ax.set_yticks([])
    ax.set_xlabel(
        "top row: global position g, colour = rank g mod W; rank rows: k, rank r's k-th sample is g = r + k·W"
    )
    for s in ("left", "right", "top"):
        ax.spines[s].set_visible(False)
    ax.set_title(
        f'Sharding: EpisodeAwareSampler(..., shuffle=True, permutation="feistel", rank=r, '
        f"world_size={world}).frame_indices(0)  (cell text: frame index)",
        fontsize=8.5,
        loc="left",
    )
    fig.tight_layout()
    return _save(fig, out, "concept_sharding.png")


# ---------------------------------------------------------------------------------------------- 5 elastic
def fig_elastic(out: Path) -> Path:
    old_w, new_w, steps = 3, 2, 5
    opts = {"shuffle": True, "seed": SEED, "permutation": "feistel"}
    full = _episode_sampler(**opts).frame_indices(0)
    n = full.size

    # Old world: every rank consumes `steps` samples in lockstep, then the job stops.
    consumed: list[list[int]] = []
    states = []
    for r in range(old_w):
        s = _episode_sampler(rank=r, world_size=old_w, **opts)
        it = iter(s)
        consumed.append([next(it) for _ in range(steps)])
        states.append(s.state_dict())
    state = states[1]  # any single rank's state restores every new rank
    # New world: two ranks restore from that one state and finish the epoch.
    resumed: list[list[int]] = []
    new_start = None
    for r in range(new_w):
        s = _episode_sampler(rank=r, world_size=new_w, **opts)
        s.load_state_dict(state)
        st = s.state_dict()
        new_start = st["global_start"]
        assert (st["epoch"], st["start_index"]) == (0, 0)
        resumed.append(list(iter(s)))
        assert s.state_dict()["epoch"] == 1
    c = steps * old_w
    assert new_start == state["global_start"] + state["start_index"] * state["world_size"] == c
    per_new = len(resumed[0])
    assert all(len(x) == per_new == -(-(n - c) // new_w) for x in resumed)
    for r in range(new_w):
        assert resumed[r] == full[(c + r + new_w * np.arange(per_new)) % n].tolist()
    counts = np.bincount(np.concatenate([np.ravel(consumed), np.ravel(resumed)]), minlength=n)
    pad = per_new * new_w - (n - c)
    assert counts.min() == 1 and counts.sum() == n + pad  # every frame at least once; only pads repeat
    repeated = np.flatnonzero(counts > 1)
    assert np.array_equal(np.sort(repeated), np.sort(full[:pad]))

    total = c + per_new * new_w
    fig, ax = plt.subplots(figsize=(11, 3.3))
    g = np.arange(total)
    labels = [int(full[p % n]) for p in g]
    # row 2: old world; row 1: new world; row 0: coverage
    old_colors = [RANK_COLORS[p % old_w] if p < c else "#eeeeee" for p in g[:n]]
    _cells(ax, 2, old_colors, [lab if p < c else None for p, lab in zip(g, labels)])
    ax.text(-0.6, 2.4, f"old world W={old_w}\n{steps} samples/rank", ha="right", va="center", fontsize=7.5)
    new_colors = ["#eeeeee" if p < c else NEW_RANK_COLORS[(p - c) % new_w] for p in g]
    _cells(ax, 1, new_colors, [None if p < c else lab for p, lab in zip(g, labels)])
    for p in range(n, total):
        _outline(ax, p, 1, 1, 0.8)
    ax.text(
        total + 0.3,
        1.4,
        f"wraps to\npos 0..{pad - 1}" if pad > 1 else "wraps to\npos 0",
        va="center",
        fontsize=7,
        color=PAD_EDGE,
    )
    ax.text(-0.6, 1.4, f"new world W'={new_w}\nfrom global_start={c}", ha="right", va="center", fontsize=7.5)
    ax.plot([c, c], [0.9, 3.0], color="black", linewidth=1.5, linestyle="--")
    ax.text(
        c + 0.2,
        2.95,
        f"checkpoint: rank 1's state  epoch=0, start_index={steps}, world_size={old_w}",
        fontsize=7.5,
        va="bottom",
    )
    # coverage per frame index (x = frame index here)
    cov_colors = [ONCE_COLOR if k == 1 else PAD_EDGE for k in counts]
    _cells(ax, -0.2, cov_colors, counts.tolist(), height=0.6)
    ax.text(-0.6, 0.1, "times yielded\n(x = frame index)", ha="right", va="center", fontsize=7.5)
    ax.text(
        n + 2.6,
        0.1,
        f"each of {n} frames once;\n{pad} padding repeat(s)",
        fontsize=7.5,
        va="center",
    )
    handles = [Patch(facecolor=RANK_COLORS[r], label=f"old rank {r}") for r in range(old_w)]
    handles += [Patch(facecolor=NEW_RANK_COLORS[r], label=f"new rank {r}") for r in range(new_w)]
    handles += [Patch(facecolor="white", edgecolor=PAD_EDGE, linewidth=1.8, label="padding (wrap-around)")]
    ax.legend(
        handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=3, fontsize=7, frameon=False
    )
    ax.set_xlim(-9, total + 6)
    ax.set_ylim(-0.4, 3.4)
    ax.set_yticks([])
    ax.set_xticks([0, 10, 20, 30, 40, n - 1])
    ax.set_xlabel("global position in epoch 0 (cell text: frame index); bottom row: frame index")
    for s in ("left", "right", "top"):
        ax.spines[s].set_visible(False)
    ax.set_title(
        "Elastic resume: new_sampler.load_state_dict(old_rank_1.state_dict())", fontsize=8.5, loc="left"
    )
    fig.tight_layout()
    return _save(fig, out, "concept_elastic.png")


FIGURES = (fig_layout, fig_windows, fig_orders, fig_sharding, fig_elastic)


def main(argv: Sequence[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "img")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    plt.rcParams.update(RC)
    paths = [fig(args.out) for fig in FIGURES]
    for p in paths:
        print(f"{p} ({p.stat().st_size // 1024} KiB)")
    return paths


if __name__ == "__main__":
    main()
