"""``episode-sampler bench DATASET_DIR``: how fast this machine reads your dataset, and what to use.

For every setting (``order="frames"``, ``order="blocks"`` with each block size no longer than the
longest episode, times each DataLoader worker count) it builds ``LeRobotFrames`` + ``EpisodeAwareSampler``
+ ``DataLoader`` afresh, reads for ``--seconds`` (:mod:`.bench_measure`), then prints a table and the
recommendation (:mod:`.bench_report`): the smallest shuffled unit and the fewest workers within 90% of
the best samples/s, and what that unit costs in shuffle quality. The total budget is printed first;
progress goes to stderr (a spinner on a terminal, one plain line per setting elsewhere), the report to
stdout, ``--json`` writes the results (schema in :mod:`.bench_report`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from .bench_measure import Options, Setting
from .parser import PROG, UsageError
from .progress import Progress

DEFAULT_WORKERS = (0, 2)
#: a rough allowance per setting for set-up, worker start-up and the first batch, for the budget line
SETUP_ALLOWANCE_S = 1.0


def default_workers(cpu_count: int) -> tuple[int, ...]:
    """``--workers``'s default: 0 and 2, without counts above the CPU count."""
    return tuple(w for w in DEFAULT_WORKERS if w <= cpu_count) or (0,)


def settings_for(
    block_sizes: tuple[int, ...], workers: tuple[int, ...], longest_episode: int
) -> tuple[list[Setting], list[int]]:
    """The settings measured, in order, and the block sizes dropped (longer than every episode: such a
    block is a whole episode, the order ``"episodes"``)."""
    kept = [b for b in block_sizes if b <= longest_episode]
    dropped = [b for b in block_sizes if b > longest_episode]
    units: list[int | None] = [None, *kept]
    return [Setting("frames" if b is None else "blocks", b, w) for b in units for w in workers], dropped


def _columns(text: str | None, parser: argparse.ArgumentParser) -> tuple[str, ...] | None:
    if text is None:
        return None
    names = tuple(c.strip() for c in text.split(","))
    if not all(names):
        parser.error(f"--columns must be comma-separated column names, got {text!r}")
    return names


def _json_target(path: str | None, parser: argparse.ArgumentParser) -> Path | None:
    """``--json PATH`` checked before any measuring (``None`` for no file or ``-``)."""
    if path is None or path == "-":
        return None
    target = Path(path)
    if target.is_dir():
        parser.error(f"--json {path!r} is a directory: give a file name")
    if not target.parent.is_dir():
        parser.error(f"--json {path!r}: directory {str(target.parent)!r} does not exist")
    return target


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def _import_libraries() -> None:
    import torch  # noqa: F401

    from .. import lerobot, sampler  # noqa: F401


def describe_dataset(root: Path, opts: Options) -> dict[str, Any]:
    """The dataset section of the output; checks that the dataset and ``opts.columns`` can be read."""
    from ..lerobot import LeRobotFrames

    frames = LeRobotFrames(
        root,
        columns=list(opts.columns) if opts.columns else None,
        return_uint8=opts.uint8,
        video_backend=opts.video_backend,
    )
    try:
        lengths = frames.episodes.lengths
        features = frames.info.get("features") or {}
        cameras = {k: list((features.get(k, {}).get("shape") or [])[:2]) for k in frames.video_keys}
        return {
            "root": str(root),
            "episodes": int(frames.episodes.num_episodes),
            "frames": len(frames),
            "min_episode_length": int(lengths.min()),
            "max_episode_length": int(lengths.max()),
            "cameras": cameras,
            "columns": [*frames.columns, *frames.delta_indices],
        }
    finally:
        frames.close()


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``episode-sampler bench DATASET_DIR``: see the module doc. ``parser``: the command's own."""
    root = Path(args.dataset)
    if not root.is_dir():
        raise UsageError(f"DATASET_DIR {args.dataset!r} is not a directory")
    if not (root / "meta" / "info.json").is_file():
        raise UsageError(f"DATASET_DIR {args.dataset!r} is not a LeRobot v3 dataset (no meta/info.json)")
    columns = _columns(args.columns, parser)
    json_path = _json_target(args.json, parser)
    cpu = os.cpu_count() or 1
    workers = args.workers if args.workers is not None else default_workers(cpu)
    progress = Progress(enabled=not args.quiet)
    report: IO[str] = sys.stderr if args.json == "-" else sys.stdout
    load_start = _load()

    with progress.status("loading torch, pyarrow and PyAV"):
        _import_libraries()
    from ..lerobot.video_decode import default_backend, torchcodec_available

    backend = args.video_backend or default_backend()
    if backend == "torchcodec" and not torchcodec_available():
        parser.error("--video-backend torchcodec: torchcodec is not installed or cannot load FFmpeg")
    opts = Options(str(root), args.batch_size, columns, args.uint8, args.seed, backend)
    try:
        dataset = describe_dataset(root, opts)
    except (OSError, ValueError, TypeError) as exc:
        if columns and isinstance(exc, ValueError) and "column" in str(exc):
            parser.error(f"--columns: {exc}")
        raise UsageError(f"cannot read DATASET_DIR {str(root)!r}: {exc}") from None
    settings, dropped = settings_for(args.block_sizes, workers, dataset["max_episode_length"])

    reading = len(settings) * args.seconds
    progress.line(
        f"{PROG} bench: {len(settings)} settings x {args.seconds:g} s = {reading:g} s of reading "
        f"(in {args.rounds} interleaved round{'s' * (args.rounds > 1)}), about "
        f"{reading + len(settings) * args.rounds * SETUP_ALLOWANCE_S:.0f} s with set-up and first batches"
        + (f" (block sizes {dropped} skipped: longer than every episode)" if dropped else "")
    )
    from ..lerobot import read_episode_index
    from .bench_measure import measure, order_share, summarize, uniform_same_episode_share

    uniform = uniform_same_episode_share(read_episode_index(root).lengths)
    shares: dict[int | None, float] = {}
    for setting in settings:  # the shuffle quality of each order: from the sampler's order, no reading
        if setting.block_size not in shares:
            shares[setting.block_size] = order_share(str(root), setting, args.batch_size, args.seed)
    rounds: dict[Setting, list[dict[str, Any]]] = {s: [] for s in settings}
    slice_s = args.seconds / args.rounds
    steps = len(settings) * args.rounds
    step = 0
    for rnd in range(args.rounds):
        # interleaved, every other round backwards: a drift of the machine's load hits every setting alike
        for setting in settings if rnd % 2 == 0 else settings[::-1]:
            step += 1
            label = f"[{step}/{steps}] {setting.label()}"
            if args.rounds > 1:
                label += f" (round {rnd + 1}/{args.rounds})"
            t0 = time.perf_counter()
            try:
                if progress.interactive:
                    with progress.status(label, report=False):  # the result line below replaces it
                        result = measure(opts, setting, slice_s)
                else:
                    result = measure(opts, setting, slice_s)
            except (OSError, ValueError, RuntimeError) as exc:
                raise UsageError(f"{setting.label()}: reading {str(root)!r} failed: {exc}") from None
            rounds[setting].append(result)
            rate = result["timed_samples"] / result["timed_seconds"] if result["timed_seconds"] > 0 else 0.0
            progress.line(
                f"{label}: {rate:,.0f} samples/s, first batch {result['first_batch_s']:.2f} s "
                f"({time.perf_counter() - t0:.1f} s)"
            )
    runs = []
    for setting in settings:
        run_record = summarize(setting, rounds[setting], backend)
        run_record["same_episode_share"] = shares[setting.block_size]
        runs.append(run_record)

    from .bench_report import THRESHOLD, document, noise_lines, recommend, recommendation_lines, table_lines

    try:
        rec = recommend(runs)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    fresh = None
    if args.fresh_process:
        best = Setting(rec["order"], rec["block_size"], rec["workers"])
        with progress.status(f"first batch of {best.label()} in a new Python process"):
            fresh = _fresh_process(opts, best)
    import torch

    from .. import __version__

    machine = {
        "cpu_count": cpu,
        "load_start": load_start,
        "load_end": _load(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "episode_sampler": __version__,
    }
    settings_doc = {
        "batch_size": args.batch_size,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "workers": list(workers),
        "block_sizes": sorted({s.block_size for s in settings if s.block_size is not None}),
        "dropped_block_sizes": dropped,
        "uint8": args.uint8,
        "video_backend": backend if dataset["cameras"] else None,
        "seed": args.seed,
        "threshold": THRESHOLD,
    }
    doc = document(dataset, settings_doc, machine, runs, uniform, fresh)

    cams = ", ".join(f"{k} {'x'.join(map(str, hw))}" for k, hw in dataset["cameras"].items())
    lines = [
        f"{PROG} bench  {root}",
        f"  dataset      {dataset['episodes']} episodes, {dataset['frames']} frames (episodes of "
        f"{dataset['min_episode_length']}..{dataset['max_episode_length']}), "
        + (f"cameras: {cams}" if cams else "no cameras (Parquet only: no decode counts)"),
        f"  reading      DataLoader(batch_sampler=BatchSampler(EpisodeAwareSampler, {args.batch_size}), "
        "LeRobotFrames.get_batch),",
        f"               {args.seconds:g} s per setting in {args.rounds} round{'s' * (args.rounds > 1)}"
        + (f", {'uint8' if args.uint8 else 'float32'} cameras decoded with {backend}" if cams else ""),
        f"  machine      {cpu} CPUs, load average {load_start} at the start, "
        f"{machine['load_end']} at the end",
        "",
        *("  " + ln for ln in table_lines(doc["runs"], bool(dataset["cameras"]))),
        "",
        "  samples/s from the first batch on, all rounds together (spread: the lowest and highest round);",
        "  per CPU-s: samples per CPU-second of this process and its workers (equal across worker counts:",
        "  the workers waste no CPU); first batch: set-up (dataset, sampler, loader) + first batch, median;",
        "  out/sample: bytes of the batch tensors;",
        *(
            [
                "  decoded/sample: compressed video bytes fed to the decoder; frames/cam: frames decoded per "
                "sample and camera"
                + (" (both counted with --video-backend pyav only)" if backend != "pyav" else ""),
            ]
            if cams
            else []
        ),
        f"  same-episode pairs: batch-mate pairs from one episode (a uniform shuffle: {uniform:.1%})",
        "",
        *("  " + ln for ln in recommendation_lines(doc["recommendation"], uniform, args.batch_size)),
        *("  " + ln for ln in noise_lines(doc["runs"], _load())),
    ]
    if fresh is not None:
        total = fresh["process_to_first_batch_s"]
        lines.append(
            "  new process  "
            + (f"{total:.2f} s from process start to first batch: " if total is not None else "")
            + f"imports {fresh['import_s']:.2f} s, set-up {fresh['setup_s']:.2f} s, "
            f"first batch {fresh['first_batch_s'] - fresh['setup_s']:.2f} s"
        )
    report.write("\n".join(lines) + "\n")
    report.flush()
    text = json.dumps(doc, indent=2) + "\n"
    if args.json == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    elif json_path is not None:
        try:
            json_path.write_text(text)
        except OSError as exc:
            raise UsageError(f"--json {args.json!r}: cannot write: {exc.strerror or exc}") from None
        progress.line(f"results written to {json_path}")
    return 0


def _fresh_process(opts: Options, setting: Setting) -> dict[str, Any]:
    """Time a new Python process from start to first batch of ``setting``."""
    from .bench_measure import child_env, fresh_process_command

    proc = subprocess.run(
        fresh_process_command(opts, setting),
        capture_output=True,
        text=True,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        check=False,
    )
    last = proc.stdout.strip().splitlines()[-1:] if proc.stdout else []
    if proc.returncode != 0 or not last:
        tail = (proc.stderr.strip().splitlines() or ["no error output"])[-1]
        raise UsageError(f"the new process failed (exit {proc.returncode}): {tail}")
    result = json.loads(last[0])
    return {"order": setting.order, "block_size": setting.block_size, "workers": setting.workers, **result}
