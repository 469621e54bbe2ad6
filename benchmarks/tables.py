"""Markdown tables and number formatting for the report."""

from __future__ import annotations

from typing import Any

from .config import MiB
from .targets import find_row

BASELINES = {
    "feistel/<order>": "`EpisodeAwareSampler(permutation='feistel', order=...).frame_indices(epoch)`: our "
    "keyed Feistel permutation of the units, mapped to frame indices (episode lookup included).",
    "randperm/<order>": "the same with `permutation='randperm'` (LeRobot's exact order: `torch.randperm` "
    "of the units, then the same mapping).",
    "materialized": "`frames[np.random.default_rng(s).permutation(N)]` with the array of valid frames "
    "precomputed (what a sampler holding LeRobot's `indices` list does, vectorized).",
    "torch.randperm": "`torch.randperm(N)` alone: positions only, no frame mapping (a lower bound for "
    "any exact shuffle in torch).",
    "DistributedSampler list": "`list(DistributedSampler(ds, num_replicas=1, shuffle=True))`: torch's "
    "sharded sampler (randperm then `.tolist()` and padding).",
    "Loader(SamplerWrapper(RandomSampler))": "torchdata's `Loader(SamplerWrapper(RandomSampler(ds)))`, one "
    "index per `next()`.",
    "LeRobot-style per-item": "`torch.randperm(N)` then, per position, `np.searchsorted(cum_lengths, i, "
    "side='right')` and the episode's offset, one Python iteration per item (written in the benchmark; "
    "iterated from a list, which is faster than iterating the tensor).",
    "RandomSampler": "`for i in RandomSampler(ds)`: `yield from torch.randperm(n).tolist()`.",
    "StatefulDistributedSampler": "torchdata's `StatefulDistributedSampler` (DistributedSampler plus a "
    "`yielded` counter; a restore regenerates the epoch's `randperm` and skips the consumed prefix).",
    "Grain IndexSampler": "`grain.python.IndexSampler(N, shuffle=True, seed)`: `sampler[i]` runs Grain's "
    "`index_shuffle` (a 4-round cipher in C++) and builds the record's Philox generator; positions only, no "
    "episode layout. Its state is the index: a restore is `sampler[epoch * N + position]`.",
    "Mosaic py1e": "MosaicML Streaming's `get_shuffle('py1e', shard_sizes, 64 canonical nodes, seed, epoch, "
    "2**18)` over shards of 8,192 samples: the whole epoch's order, which a resume recomputes (O(N)).",
    "litdata FullShuffle": "litdata's `FullShuffle` for one process and worker over chunks of 8,192 samples: "
    "chunk order from its `_global_assign`, items from its `__call__` (blocks of 256, shuffled).",
    "DataLoader": "`DataLoader(LeRobotFrames, batch_size=B, sampler=RandomSampler, num_workers=0)`: "
    "`__getitems__` then `default_collate`.",
}


def fmt_s(x: float | None) -> str:
    if x is None:
        return "–"
    if x >= 1:
        return f"{x:.2f} s"
    if x >= 1e-3:
        return f"{x * 1e3:.1f} ms"
    return f"{x * 1e6:.0f} µs"


def fmt_n(n: int) -> str:
    if n >= 10 and n & (n - 1) != 0 and str(n).rstrip("0") == "1":
        return f"10^{len(str(n)) - 1}"
    return f"{n:,}"


def fmt_rate(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f} M/s"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k/s"
    return f"{x:.0f} /s"


def fullepoch_table(rows: list[dict[str, Any]]) -> list[str]:
    ours = [m for m in dict.fromkeys(r["method"] for r in rows if r["E"] is not None)]
    per_n = [m for m in dict.fromkeys(r["method"] for r in rows if r["E"] is None)]
    lines = []
    cols = ours
    lines.append(
        "| N | episodes | " + " | ".join(f"`{c}`" for c in cols) + " | ratio materialized / feistel |"
    )
    lines.append("|---|---|" + "---|" * len(cols) + "---|")
    for n, e in dict.fromkeys((r["N"], r["E"]) for r in rows if r["E"] is not None):
        cells = []
        for c in cols:
            r = find_row(rows, N=n, E=e, method=c)
            cells.append(fmt_s(r["median_s"]) if r else "–")
        f = find_row(rows, N=n, E=e, method="feistel/frames")
        m = find_row(rows, N=n, E=e, method="materialized")
        ratio = f"{m['median_s'] / f['median_s']:.2f}x" if f and m else "–"
        lines.append(f"| {fmt_n(n)} | {fmt_n(e)} | " + " | ".join(cells) + f" | {ratio} |")
    lines.append("")
    lines.append("Baselines that do not depend on the episode layout (same N):")
    lines.append("")
    lines.append("| N | " + " | ".join(f"`{c}`" for c in per_n) + " |")
    lines.append("|---|" + "---|" * len(per_n))
    for n in dict.fromkeys(r["N"] for r in rows if r["E"] is None):
        cells = []
        for c in per_n:
            r = find_row(rows, N=n, E=None, method=c)
            cells.append(("≈ " if r and r["estimated"] else "") + fmt_s(r["median_s"]) if r else "not run")
        lines.append(f"| {fmt_n(n)} | " + " | ".join(cells) + " |")
    notes = dict.fromkeys(f"`{r['method']}`: {r['note']}" for r in rows if r["estimated"])
    if notes:
        lines.append("")
        lines.append("≈ marks extrapolated figures: " + "; ".join(notes) + ".")
    if any(c == "not run" for line in lines for c in line.split(" | ")):
        lines += [
            "",
            "`not run`: `DistributedSampler list` and `Loader(SamplerWrapper(RandomSampler))` build a Python",
            "list of N ints (about 4 GB at 10^8) and are skipped there to keep the full run near 10 minutes.",
        ]
    return lines


def iteration_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| N | method | items/s | one epoch |", "|---|---|---|---|"]
    for r in rows:
        est = "≈ " if r["estimated"] else ""
        lines.append(
            f"| {fmt_n(r['N'])} | `{r['method']}` | {est}{fmt_rate(r['items_per_s'])} "
            f"| {est}{fmt_s(r['median_s'])} |"
        )
    notes = dict.fromkeys(f"`{r['method']}`: {r['note']}" for r in rows if r["note"])
    if notes:
        lines += ["", "≈ marks extrapolated figures: " + "; ".join(notes) + "."]
    return lines


def restore_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| N | permutation | position | sampler: load state + first sample | node: reset(state) + next() "
        "| fresh epoch: first sample |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        pos = f"{r['fraction'] * 100:g} %"
        lines.append(
            f"| {fmt_n(r['N'])} | {r['permutation']} | {pos} | {fmt_s(r['sampler_restore_s'])} | "
            f"{fmt_s(r['node_restore_s'])} | {fmt_s(r['epoch_start_s']) if 'epoch_start_s' in r else ''} |"
        )
    return lines


def memory_table(rows: list[dict[str, Any]], iterated: int) -> list[str]:
    lines = [
        "| N | episodes | tracemalloc peak | RSS peak | layout arrays (input) "
        "| constructor from bounds (tracemalloc) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        rss = "–" if r.get("rss_peak_bytes") is None else f"{r['rss_peak_bytes'] / MiB:.1f} MiB"
        lines.append(
            f"| {fmt_n(r['N'])} | {fmt_n(r['E'])} | {r['tracemalloc_peak_bytes'] / MiB:.1f} MiB | {rss} | "
            f"{r['layout_bytes'] / MiB:.1f} MiB | {r['from_bounds_peak_bytes'] / MiB:.1f} MiB |"
        )
    return lines


def e2e_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| batch size | pipeline | samples/s | one epoch |", "|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['batch_size']} | `{r['method']}` | {fmt_rate(r['samples_per_s'])} "
            f"| {fmt_s(r['median_s'])} |"
        )
    return lines


def targets_table(targets: list[dict[str, Any]]) -> list[str]:
    lines = ["| target | measured | threshold | result |", "|---|---|---|---|"]
    for t in targets:
        status = "skipped" if t["pass"] is None else "**PASS**" if t["pass"] else "**FAIL**"
        if t["value"] is None:
            value = "–"
        elif t["unit"] == "x":
            value = f"{t['value']:.2f}x"
        else:
            value = f"{t['value']:.1f} {t['unit']}"
        thr = f"{t['op']} {t['threshold']:g}" + ("x" if t["unit"] == "x" else f" {t['unit']}")
        lines.append(f"| {t['description']} | {value} | {thr} | {status} |")
    return lines


def informational_table(infos: list[dict[str, Any]]) -> list[str]:
    lines = ["| ratio | measured |", "|---|---|"]
    for i in infos:
        value = "–" if i["value"] is None else f"{i['value']:.2f}{i['unit']}"
        lines.append(f"| {i['description']} | {value} |")
    return lines


def peers_restore_table(rows: list[dict[str, Any]]) -> list[str]:
    """One column per (N, E), one row per method: median latency of restore + first item."""
    sizes = list(dict.fromkeys((r["N"], r["E"]) for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines = [
        "| method | " + " | ".join(f"N = {fmt_n(n)}, {fmt_n(e)} episodes" for n, e in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for m in methods:
        cells = []
        for n, e in sizes:
            r = find_row(rows, N=n, E=e, method=m)
            cells.append(fmt_s(r["median_s"]) if r else "not run")
        name = f"**{m}**" if m.startswith("ours") else m
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def quality_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| order | position correlation | gap KS distance | first 1 %: chi² (19 dof) | p-value |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        name = f"**{r['method']}**" if r["method"].startswith("ours") else r["method"]
        lines.append(
            f"| {name} | {r['position_correlation']:+.4f} | {r['gap_ks']:.3f} | "
            f"{r['first_percent_chi2']:.1f} | {r['first_percent_p']:.3f} |"
        )
    return lines


def skipped_lines(skipped: dict[str, str]) -> list[str]:
    """``- peer: why it was skipped`` for every peer that was not installed."""
    return [f"- skipped {name}: {why}" for name, why in skipped.items()]
