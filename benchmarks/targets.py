"""The suite's targets (measured value, threshold, PASS/FAIL) and its informational ratios.

The sampler micro-benchmarks (full epoch vs ``torch.randperm``, ``blocks``/``episodes`` vs ``frames``
time, the ``Loader`` overhead ratio, per-item iteration vs ``DistributedSampler``, construct +
restore vs Grain) are still measured and reported, as informational ratios without a threshold:
they time the sampler alone, and are no longer PASS/FAIL targets.
"""

from __future__ import annotations

from typing import Any

from .config import Config, MiB


def find_row(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    for r in rows:
        if all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def evaluate_targets(cfg: Config, sections: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target: measured value, threshold, PASS/FAIL (``None`` when its section did not run)."""
    return _evaluate(cfg, sections)[0]


def informational_ratios(cfg: Config, sections: dict[str, Any]) -> list[dict[str, Any]]:
    """Each informational ratio: name, description, measured value (``None`` when not measured), unit."""
    return _evaluate(cfg, sections)[1]


def _evaluate(cfg: Config, sections: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    out: list[dict[str, Any]] = []
    infos: list[dict[str, Any]] = []

    def info(name: str, what: str, value: float | None, unit: str = "x") -> None:
        infos.append({"name": name, "description": what, "value": value, "unit": unit})

    def add(name: str, what: str, value: float | None, op: str, threshold: float, unit: str = "x") -> None:
        ok = (
            None
            if value is None
            else (
                value >= threshold if op == ">=" else value <= threshold if op == "<=" else value < threshold
            )
        )
        out.append(
            {
                "name": name,
                "description": what,
                "value": value,
                "op": op,
                "threshold": threshold,
                "unit": unit,
                "pass": ok,
            }
        )

    fe = sections.get("fullepoch")
    if fe is not None:
        n, e = cfg.targets["fullepoch"]
        ours = find_row(fe["rows"], N=n, E=e, method="feistel/frames")
        base = find_row(fe["rows"], N=n, E=e, method="materialized")
        value = base["median_s"] / ours["median_s"] if ours and base else None
        info(
            "fullepoch_vs_materialized",
            f"feistel full-epoch frame indices vs materialized permutation (speed-up), N={n:.0e}, E={e:.0e}",
            value,
        )
        rp = find_row(fe["rows"], N=n, E=None, method="torch.randperm")
        info(
            "fullepoch_vs_randperm",
            f"feistel full-epoch frame indices vs torch.randperm positions alone (speed-up), N={n:.0e}, "
            f"E={e:.0e}",
            rp["median_s"] / ours["median_s"] if ours and rp else None,
        )
        for order in ("blocks", "episodes"):
            other = find_row(fe["rows"], N=n, E=e, method=f"feistel/{order}")
            if other is None:  # orders run at the smaller size only in quick mode
                n2, e2 = next(iter(sorted(cfg.all_orders)))
                other = find_row(fe["rows"], N=n2, E=e2, method=f"feistel/{order}")
                frames = find_row(fe["rows"], N=n2, E=e2, method="feistel/frames")
            else:
                n2, e2, frames = n, e, ours
            info(
                f"{order}_vs_frames",
                f"feistel full epoch, order='{order}' time / order='frames' time, N={n2:.0e}, E={e2:.0e}",
                other["median_s"] / frames["median_s"] if other and frames else None,
            )
    it = sections.get("iteration")
    if it is not None:
        n = cfg.targets["iter"]
        ours = find_row(it["rows"], N=n, method="for i in sampler (feistel)")
        rs = find_row(it["rows"], N=n, method="for i in RandomSampler")
        lr = find_row(it["rows"], N=n, method="LeRobot-style per-item")
        info(
            "iter_vs_randomsampler",
            f"for i in sampler (feistel) vs RandomSampler iteration (speed-up), N={n:.0e}",
            rs["median_s"] / ours["median_s"] if ours and rs else None,
        )
        info(
            "iter_vs_lerobot",
            f"for i in sampler (feistel) vs LeRobot-style per-item loop (speed-up), N={n:.0e}",
            lr["median_s"] / ours["median_s"] if ours and lr else None,
        )
        node = next((r for r in it["rows"] if r["method"].startswith("Loader(EpisodeSamplerNode")), None)
        sw = next((r for r in it["rows"] if r["method"] == "Loader(SamplerWrapper(RandomSampler))"), None)
        info(
            "loader_vs_samplerwrapper",
            f"Loader(EpisodeSamplerNode) time / Loader(SamplerWrapper(RandomSampler)) time, "
            f"N={cfg.loader_n:.0e}",
            node["median_s"] / sw["median_s"] if node and sw else None,
        )
        ds = find_row(it["rows"], N=n, method="for i in DistributedSampler")
        info(
            "iter_vs_distributedsampler",
            f"for i in sampler (feistel) vs for i in DistributedSampler (speed-up), N={n:.0e}",
            ds["median_s"] / ours["median_s"] if ours and ds else None,
        )
    rs_ = sections.get("restore")
    if rs_ is not None:
        rows = [r for r in rs_["rows"] if r["permutation"] == "feistel"]
        big = [n for n in (10**9, 10**12) if n in cfg.restore_n]
        ratios = []
        for n in big:
            a = find_row(rows, N=n, fraction=0.999)
            b = find_row(rows, N=n, fraction=0.001)
            if a and b:
                ratios.append(
                    max(a["sampler_restore_s"], b["sampler_restore_s"])
                    / min(a["sampler_restore_s"], b["sampler_restore_s"])
                )
        add(
            "restore_position_ratio",
            "feistel restore latency, 99.9 % vs 0.1 % of the epoch (worst of N=1e9, 1e12)",
            max(ratios) if ratios else None,
            "<=",
            2.0,
        )
        ratios = []
        for frac in cfg.restore_fracs:
            a = find_row(rows, N=10**12, fraction=frac)
            b = find_row(rows, N=10**3, fraction=frac)
            if a and b:
                ratios.append(
                    max(a["sampler_restore_s"], b["sampler_restore_s"])
                    / min(a["sampler_restore_s"], b["sampler_restore_s"])
                )
        add(
            "restore_size_ratio",
            "feistel restore latency, N=1e12 vs N=1e3 (worst over positions)",
            max(ratios) if ratios else None,
            "<=",
            2.0,
        )
    rp_ = sections.get("peers_restore")
    if rp_ is not None:
        for key, case in (("restore_construct", "construct"), ("restore_built", "built")):
            n, e = cfg.targets[key]
            ours = find_row(rp_["rows"], N=n, E=e, method=f"ours {case}")
            grain = find_row(rp_["rows"], N=n, E=e, method=f"Grain {case}")
            what = (
                "construct from bounds + restore + first item"
                if case == "construct"
                else "restore + first item on a built sampler"
            )
            value = ours["median_s"] / grain["median_s"] if ours and grain else None
            what = f"{what}, ours time / Grain IndexSampler time, N={n:.0e}, E={e:.0e}"
            if case == "construct":
                info(f"{key}_vs_grain", what, value)
            else:
                add(f"{key}_vs_grain", what, value, "<=", 1.0)
    mem = sections.get("memory")
    if mem is not None:
        n, e = cfg.targets["memory"]
        row = find_row(mem["rows"], N=n, E=e)
        peaks = [
            row[k] for k in ("tracemalloc_peak_bytes", "rss_peak_bytes") if row and row.get(k) is not None
        ]
        add(
            "memory_peak",
            f"peak memory (max of tracemalloc and RSS) of a feistel sampler, N={n:.0e}, E={e:.0e}",
            max(peaks) / MiB if peaks else None,
            "<=",
            24.0,
            "MiB",
        )
        if "pss" in mem:
            from .cases.pss import pss_targets

            for target in pss_targets(mem["pss"]):
                add(*target)
    e2e = sections.get("e2e")
    if e2e is not None:
        worst = None
        for batch in cfg.e2e_batch:
            ours = find_row(
                e2e["rows"],
                batch_size=batch,
                method="Loader(Prefetcher(Mapper(EpisodeSamplerNode, get_batch)))",
            )
            dl = find_row(
                e2e["rows"], batch_size=batch, method="DataLoader(batch_size, RandomSampler, num_workers=0)"
            )
            if ours and dl:
                ratio = ours["samples_per_s"] / dl["samples_per_s"]
                worst = ratio if worst is None else min(worst, ratio)
        add(
            "e2e_vs_dataloader",
            "LeRobotFrames samples/s, our Loader pipeline vs DataLoader + RandomSampler "
            f"(worst of B={cfg.e2e_batch})",
            worst,
            ">=",
            1.0,
        )
    st = sections.get("state")
    if st is not None:
        add(
            "state_size",
            "state_dict() as JSON, any N",
            float(max(r["json_bytes"] for r in st["rows"])),
            "<=",
            512.0,
            "bytes",
        )
    vid = sections.get("video")
    if vid is not None:
        from .cases.video import video_informational, video_targets

        for name, what, value, op, threshold in video_targets(vid):
            add(name, what, value, op, threshold)
        for name, what, value in video_informational(vid):
            info(name, what, value)
    su = sections.get("startup")
    if su is not None:
        from .cases.startup import startup_targets

        for name, what, value, op, threshold, unit in startup_targets(su):
            add(name, what, value, op, threshold, unit)
    ov = sections.get("overhead")
    if ov is not None:
        from .cases.overhead import overhead_target

        add(*overhead_target(ov, sections.get("video")))
    return out, infos


def format_target(t: dict[str, Any]) -> str:
    status = "SKIP" if t["pass"] is None else "PASS" if t["pass"] else "FAIL"
    value = (
        "n/a"
        if t["value"] is None
        else (
            f"{t['value']:.2f}{t['unit']}"
            if t["unit"] == "x"
            else f"{t['value']:.1f} {t['unit']}"
            if abs(t["value"]) >= 10
            else f"{t['value']:.3g} {t['unit']}"
        )
    )
    thr = f"{t['threshold']:g}{t['unit']}" if t["unit"] == "x" else f"{t['threshold']:g} {t['unit']}"
    return f"{status}  {t['name']:<28} {value:>12}  (target {t['op']} {thr}): {t['description']}"


def format_info(i: dict[str, Any]) -> str:
    value = "n/a" if i["value"] is None else f"{i['value']:.2f}{i['unit']}"
    return f"INFO  {i['name']:<28} {value:>12}  (informational): {i['description']}"
