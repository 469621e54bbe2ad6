"""Command line of the suite: ``python -m benchmarks [--quick] [--out DIR] [--docs]``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from .cases import BENCHES
from .config import SECTIONS, make_config
from .docs_page import write_docs
from .machine import load_average, machine_info
from .plots import plots
from .targets import evaluate_targets, format_info, format_target, informational_ratios
from .timing import Log

DOCS = Path(__file__).resolve().parents[1] / "docs"  # the checkout's docs/, whatever the cwd


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark suite: full-epoch index generation, iteration, restore latency, memory, "
        "end to end over LeRobotFrames and state size, each against its baselines, with PASS/FAIL targets "
        "(the sampler micro-benchmarks are reported as informational ratios).",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="fewer sizes and repetitions (one to three minutes on an idle 2-core machine)",
    )
    p.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # tiny sizes, for the test suite
    p.add_argument(
        "--out", default="bench-results", help="directory for bench.json and plots (default: %(default)s/)"
    )
    p.add_argument(
        "--docs", action="store_true", help="(re)write docs/performance.md and docs/img/perf_*.png"
    )
    p.add_argument(
        "--docs-dir", default=None, help="docs directory for --docs (default: this checkout's docs/)"
    )
    p.add_argument("--only", action="append", choices=SECTIONS, help="run only this section (repeatable)")
    p.add_argument(
        "--from-json", metavar="FILE", help="measure nothing: re-render plots/docs from a saved bench JSON"
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--strict", action="store_true", help="exit with status 1 when a target fails")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the targets")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.from_json:
        report = read_report(args.from_json, parser)
        try:
            lines = [format_target(t) for t in report["targets"]]
            lines += [format_info(i) for i in report.get("informational", [])]
            plots(report, Path(args.out))
            if args.docs:
                docs = Path(args.docs_dir) if args.docs_dir else DOCS
                write_docs(report, docs)
                lines.append(f"wrote {docs / 'performance.md'} and {docs / 'img'}/perf_*.png")
            print("\n".join(lines))
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            parser.error(
                f"--from-json {args.from_json!r}: not a bench report this version can render "
                f"({type(exc).__name__}: {exc})"
            )
        return 1 if (args.strict and any(t["pass"] is False for t in report["targets"])) else 0
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    cfg = make_config(mode)
    log = Log(args.quiet)
    sections = list(args.only) if args.only else list(SECTIONS)
    log(f"benchmarks ({mode}): sections {', '.join(sections)}")
    load_start = load_average()
    t0 = time.perf_counter()
    results: dict[str, Any] = {}
    for name in sections:
        results[name] = BENCHES[name](cfg, log)
    elapsed = time.perf_counter() - t0
    targets = evaluate_targets(cfg, results)
    informational = informational_ratios(cfg, results)
    report = {
        "schema": 1,
        "mode": mode,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "elapsed_s": elapsed,
        "machine": {**machine_info(), "load_start": load_start, "load_end": load_average()},
        "config": {"reps": cfg.reps, "latency_reps": cfg.latency_reps, "sections": sections},
        "sections": results,
        "targets": targets,
        "informational": informational,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / ("bench.json" if mode == "full" else f"bench-{mode}.json")
    json_path.write_text(json.dumps(report, indent=1, default=_json_default) + "\n")
    print(f"\nbenchmarks ({mode}) finished in {elapsed:.1f} s; results in {json_path}")
    for t in targets:
        print(format_target(t))
    for i in informational:
        print(format_info(i))
    if not args.no_plots or args.docs:
        plots(report, out)
        if args.docs:
            docs = Path(args.docs_dir) if args.docs_dir else DOCS
            write_docs(report, docs)
            print(f"wrote {docs / 'performance.md'} and {docs / 'img'}/perf_*.png")
    failed = any(t["pass"] is False for t in targets)
    return 1 if (failed and args.strict) else 0


REPORT_KEYS = ("schema", "mode", "sections", "targets")
TARGET_KEYS = ("name", "pass", "value", "unit", "threshold", "op", "description")
INFO_KEYS = {"name", "value", "unit", "description"}


def read_report(path: str, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The bench JSON at ``path``; any problem is a usage error (one line, exit 2) naming the file."""
    where = f"--from-json {path!r}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        parser.error(f"{where}: no such file")
    except IsADirectoryError:
        parser.error(f"{where} is a directory, not a bench JSON file")
    except (OSError, UnicodeDecodeError) as exc:
        parser.error(f"{where}: cannot read it ({exc})")
    if not text.strip():
        parser.error(f"{where} is empty")
    try:
        report = json.loads(text)
    except json.JSONDecodeError as exc:
        parser.error(f"{where} is not valid JSON ({exc}); is it truncated?")
    if not isinstance(report, dict):
        parser.error(f"{where} is not a bench report (a JSON {type(report).__name__}, not an object)")
    missing = [k for k in REPORT_KEYS if k not in report]
    if missing:
        parser.error(f"{where} is not a bench report: missing keys {missing}")
    if report["schema"] != 1:
        parser.error(f"{where}: unsupported bench report schema {report['schema']!r} (this version reads 1)")
    if not isinstance(report["sections"], dict) or not isinstance(report["targets"], list):
        parser.error(f"{where} is not a bench report: 'sections' must be an object, 'targets' a list")
    info = report.get("informational", [])  # absent from reports written before it existed
    if not isinstance(info, list) or not all(isinstance(i, dict) and INFO_KEYS <= set(i) for i in info):
        parser.error(f"{where}: 'informational' must be a list of objects with keys {sorted(INFO_KEYS)}")
    for i, t in enumerate(report["targets"]):
        bad = [k for k in TARGET_KEYS if not isinstance(t, dict) or k not in t]
        if bad:
            parser.error(f"{where}: target {i} lacks keys {bad}")
    return report


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


if __name__ == "__main__":
    raise SystemExit(main())
