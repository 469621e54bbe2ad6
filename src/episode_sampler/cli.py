"""The ``episode-sampler`` command: ``demo``, ``inspect`` and ``bench``.

``main(argv)`` returns the exit code: 0 on success, 1 when the demo finds a mismatch, 2 for invalid
usage or unreadable input (an argparse-style message on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from .order import ORDERS
from .permutation import PERMUTATIONS
from .state import READABLE_VERSIONS, state_keys

PROG = "episode-sampler"


class UsageError(Exception):
    """Invalid input: reported as ``episode-sampler CMD: error: MESSAGE`` with exit code 2."""


# ---------------------------------------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    """argparse, but ``error`` raises (caught in :func:`main`) instead of exiting the interpreter."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def _int_in(name: str, minimum: int, maximum: int | None = None) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
            raise argparse.ArgumentTypeError(f"{name} must be {bound}, got {value}")
        return value

    parse.__name__ = name
    return parse


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(
        prog=PROG,
        description="Episode-aware, deterministic, resumable shuffling for robot-learning datasets.",
        epilog="Run `episode-sampler COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    demo = sub.add_parser(
        "demo",
        help="train on a synthetic dataset, SIGKILL the run, resume it and check it sample for sample",
        description=(
            "Write a synthetic LeRobot v3 dataset, train a tiny linear model for 2 epochs through "
            "EpisodeSamplerNode -> Mapper(get_batch) -> Prefetcher -> Loader with atomic checkpoints, "
            "SIGKILL the training process mid-epoch, resume in a new process from the last checkpoint "
            "and compare the consumed stream with an uninterrupted run. Exit 0 on an exact match, "
            "1 on a mismatch."
        ),
    )
    demo.add_argument(
        "--root",
        help="dataset directory (written there if it holds no dataset; default: a temporary directory)",
    )
    demo.add_argument(
        "--episodes",
        type=_int_in("--episodes", 1, 100_000),
        default=120,
        help="episodes of the synthetic dataset (default: 120, about 4800 frames)",
    )
    demo.add_argument("--batch-size", type=_int_in("--batch-size", 1), default=32, help="default: 32")
    demo.add_argument("--seed", type=_int_in("--seed", 0, 2**64 - 1), default=0, help="shuffle seed")
    demo.add_argument("--epochs", type=_int_in("--epochs", 1, 1000), default=2, help="default: 2")
    demo.add_argument(
        "--checkpoint-every",
        type=_int_in("--checkpoint-every", 1),
        default=20,
        help="steps between checkpoints (default: 20)",
    )
    demo.add_argument(
        "--kill-at-step",
        type=_int_in("--kill-at-step", 1),
        default=None,
        help="SIGKILL the run once it reports this step (default: mid second epoch)",
    )
    demo.add_argument("--permutation", choices=PERMUTATIONS, default="feistel", help="default: feistel")
    demo.add_argument("--order", choices=ORDERS, default="frames", help="shuffle unit (default: frames)")
    demo.add_argument(
        "--block-size",
        type=_int_in("--block-size", 1),
        default=None,
        help="frames per block for --order blocks (default: 8)",
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bars, only the report")

    insp = sub.add_parser(
        "inspect",
        help="describe a saved sampler/loader state in words",
        description=(
            "Describe an episode-sampler state saved as JSON (or with torch.save): a sampler/node state, "
            "a bare LeRobot {'epoch', 'start_index'} state, or any checkpoint that nests one (a torchdata "
            "Loader or StatefulDataLoader state_dict, a training checkpoint)."
        ),
    )
    insp.add_argument("state_file", metavar="STATE_FILE", help="JSON file (or torch.save file)")

    sub.add_parser(
        "bench",
        add_help=False,
        help="run the benchmark suite (`episode-sampler bench --help` for its options)",
        description="Run the benchmark suite of episode_sampler.bench; arguments are passed through.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if args.command != "bench" and extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if args.command == "bench":
            return _bench(extra)
        if args.command == "inspect":
            return _inspect(args)
        return _demo(args, parser)
    except SystemExit as exc:  # argparse: --help / --version (0) or a usage error (2)
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 2)
    except UsageError as exc:
        sys.stderr.write(f"{PROG} {args.command}: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130


# ---------------------------------------------------------------------------------------------- bench
def _bench(argv: list[str]) -> int:
    import importlib

    try:
        bench = importlib.import_module(f"{__package__}.bench")
    except ImportError as exc:
        if getattr(exc, "name", None) != f"{__package__}.bench":
            sys.stderr.write(f"{PROG} bench: error: the benchmark suite failed to import: {exc}\n")
            return 2
        if any(a in ("-h", "--help") for a in argv):
            print(f"usage: {PROG} bench [--quick] [...]\n\nRuns episode_sampler.bench.main(argv).")
            print("\nThe benchmark module episode_sampler.bench is not installed in this build.")
            return 0
        sys.stderr.write(
            f"{PROG} bench: error: the benchmark suite (module episode_sampler.bench) is not available "
            "in this installation\n"
        )
        return 2
    code = bench.main(argv)
    return int(code) if code is not None else 0


# ---------------------------------------------------------------------------------------------- inspect
def find_states(obj: Any, path: str = "") -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """Every sampler state nested in ``obj``: ``(path, kind, state)``, kind ``"full"`` or ``"lerobot"``.

    A *full* candidate is a dict with ``version``, ``epoch``, ``start_index`` and ``fingerprint``; a
    *LeRobot* state is a dict with exactly the keys ``epoch`` and ``start_index``. Dicts and lists are
    searched depth-first, in order; a found state is not searched further.
    """
    if isinstance(obj, Mapping):
        keys = set(obj)
        if keys == {"epoch", "start_index"}:
            yield path, "lerobot", obj
            return
        if {"version", "epoch", "start_index", "fingerprint"} <= keys:
            yield path, "full", obj
            return
        for key, value in obj.items():
            yield from find_states(value, f"{path}[{json.dumps(key) if isinstance(key, str) else key}]")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from find_states(value, f"{path}[{i}]")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_full(state: Mapping[str, Any]) -> None:
    """Validate a full state's keys and types (the loader's rules); raise UsageError naming the field."""
    keys = set(state)
    if not _is_int(state["version"]) or state["version"] not in READABLE_VERSIONS:
        raise UsageError(
            f"unsupported state version {state['version']!r} "
            f"(this release reads versions {READABLE_VERSIONS})"
        )
    expected = state_keys(state["version"])
    missing = [k for k in expected if k not in keys]
    unknown = sorted(str(k) for k in keys - set(expected))
    if missing:
        raise UsageError(f"not a valid episode-sampler state: missing keys {missing}")
    if unknown:
        raise UsageError(f"not a valid episode-sampler state: unknown keys {unknown}")
    rules: dict[str, tuple[Any, str]] = {
        "epoch": (lambda v: _is_int(v) and v >= 0, "an int >= 0"),
        "start_index": (lambda v: _is_int(v) and v >= 0, "an int >= 0"),
        "global_start": (lambda v: _is_int(v) and v >= 0, "an int >= 0"),
        "world_size": (lambda v: _is_int(v) and v >= 1, "an int >= 1"),
        "rank": (
            lambda v: _is_int(v) and 0 <= v < max(1, int(state["world_size"] or 1)),
            "an int in [0, world_size)",
        ),
        "drop_last": (lambda v: isinstance(v, bool), "a bool"),
        "fingerprint": (lambda v: isinstance(v, str), "a string"),
        "num_frames": (lambda v: _is_int(v) and v >= 1, "an int >= 1"),
        "seed": (lambda v: _is_int(v) and 0 <= v < 2**64, "an int in [0, 2**64)"),
        "shuffle": (lambda v: isinstance(v, bool), "a bool"),
        "permutation": (lambda v: v in PERMUTATIONS, f"one of {list(PERMUTATIONS)}"),
        "order": (lambda v: v in ORDERS, f"one of {list(ORDERS)}"),
        "block_size": (lambda v: v is None or (_is_int(v) and v >= 1), "null or an int >= 1"),
    }
    for key in ("world_size", *[k for k in rules if k != "world_size"]):
        check, what = rules[key]
        if not check(state[key]):
            raise UsageError(f"invalid state field {key!r}: {state[key]!r} (expected {what})")
    if state["global_start"] > state["num_frames"]:
        raise UsageError(
            f"invalid state field 'global_start': {state['global_start']} > num_frames {state['num_frames']}"
        )
    if state["start_index"] > _per_rank(state):
        raise UsageError(
            f"invalid state field 'start_index': {state['start_index']} is beyond the {_per_rank(state)} "
            "samples of the rank's epoch"
        )


def _per_rank(state: Mapping[str, Any]) -> int:
    remaining = max(0, state["num_frames"] - state["global_start"])
    ws = state["world_size"]
    return remaining // ws if state["drop_last"] else -(-remaining // ws)


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "n/a"


def describe_state(state: Mapping[str, Any], kind: str) -> list[str]:
    """Lines describing one state in words."""
    if kind == "lerobot":
        e, k = state["epoch"], state["start_index"]
        bad = [f for f in ("epoch", "start_index") if not (_is_int(state[f]) and state[f] >= 0)]
        if bad:
            raise UsageError(
                f"invalid LeRobot state field {bad[0]!r}: {state[bad[0]]!r} (expected an int >= 0)"
            )
        return [
            "kind          bare LeRobot sampler state {'epoch', 'start_index'}",
            f"epoch         {e}",
            f"position      the next sample is this rank's #{k} of epoch {e} (counting from 0)",
            "progress      unknown: the state holds no dataset size",
            "layout        not recorded (no fingerprint): loads into any sampler, which takes it as",
            "              its own position with its own seed, permutation and world size",
        ]
    _check_full(state)
    n, ws, rank = state["num_frames"], state["world_size"], state["rank"]
    e, k, c = state["epoch"], state["start_index"], state["global_start"]
    per_rank = _per_rank(state)
    consumed = min(c + k * ws, n)
    order = state["order"] + (f" of {state['block_size']} frames" if state["order"] == "blocks" else "")
    lines = [
        f"kind          episode-sampler state, version {state['version']}",
        f"epoch         {e}",
        f"position      rank {rank} of {ws}: next sample is its #{k} of {per_rank} in this epoch "
        f"({_pct(k, per_rank)} of the rank's epoch done)",
        f"all ranks     {consumed} of {n} frames of the epoch consumed ({_pct(consumed, n)}); "
        + (
            "ranks started the epoch at its beginning"
            if c == 0
            else f"this world started at global position {c}"
        ),
        f"dataset       {n} valid frames, layout fingerprint {state['fingerprint']}",
        f"order         {'shuffled' if state['shuffle'] else 'unshuffled'} {order}, "
        f"permutation {state['permutation']}, seed {state['seed']}",
        f"world size    {ws} (any rank's state restores a run of any size)",
        "epoch tail    "
        + (
            "dropped (drop_last=True)"
            if state["drop_last"]
            else "padded by wrapping to the epoch's start (drop_last=False)"
        ),
    ]
    if k == per_rank:
        lines.append(f"note          the rank's epoch is finished: a restore starts epoch {e + 1}")
    return lines


def _load_any(path: Path) -> Any:
    if not path.exists():
        raise UsageError(f"{str(path)!r}: no such file")
    if path.is_dir():
        raise UsageError(f"{str(path)!r} is a directory, not a state file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    if data[:4] == b"PK\x03\x04":  # a torch.save zip archive
        try:
            import torch

            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is bad input
            raise UsageError(f"{str(path)!r} is not a readable torch.save file: {exc}") from None
    if not data.strip():
        raise UsageError(f"{str(path)!r} is empty")
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{str(path)!r} is not valid JSON ({exc}); is it truncated?") from None


def _inspect(args: argparse.Namespace) -> int:
    path = Path(args.state_file)
    obj = _load_any(path)
    found = list(find_states(obj))
    if not found:
        raise UsageError(
            f"{str(path)!r} holds no episode-sampler or LeRobot sampler state "
            "(looked for a dict with 'epoch' and 'start_index' at any depth)"
        )
    groups: dict[str, tuple[str, Mapping[str, Any], list[str]]] = {}  # equal states are shown once
    for where, kind, state in found:
        key = kind + json.dumps(state, sort_keys=True, default=repr)
        groups.setdefault(key, (kind, state, []))[2].append(where)
    out: list[str] = []
    for i, (kind, state, places) in enumerate(groups.values()):
        lines = describe_state(state, kind)
        if i:
            out.append("")
        header = str(path)
        if places[0]:
            header += f", at {places[0]}" + "".join(f" (also at {p})" for p in places[1:])
        if len(groups) > 1:
            header += f" (state {i + 1} of {len(groups)})"
        out += [header, *("  " + line for line in lines)]
    print("\n".join(out))
    return 0


# ---------------------------------------------------------------------------------------------- demo
def _human_bytes(n: int) -> str:
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} KiB"


def _child_env() -> dict[str, str]:
    """This environment, with this package importable in the child even when run from a source tree."""
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _child_io(err: IO[bytes], quiet: bool) -> dict[str, Any]:
    """How a worker runs: stdout piped as text, no stdin, stderr to ``err`` when ``quiet``, our env."""
    return {
        "stdout": subprocess.PIPE,
        "stderr": err if quiet else None,
        "stdin": subprocess.DEVNULL,
        "text": True,
        "env": _child_env(),
    }


def _run_until_kill(cmd: list[str], kill_at: int, quiet: bool, stderr_path: Path) -> tuple[int, bool]:
    """Run the worker, SIGKILL it once it reports step ``kill_at``; ``(returncode, killed)``."""
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(cmd, **_child_io(err, quiet))
        killed = False
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("step ") and int(line.split()[1]) >= kill_at:
                    os.kill(proc.pid, signal.SIGKILL)
                    killed = True
                    break
            proc.stdout.close()
            return proc.wait(), killed
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _run_to_end(cmd: list[str], quiet: bool, stderr_path: Path) -> tuple[int, dict[str, Any] | None]:
    with open(stderr_path, "wb") as err:
        proc = subprocess.run(cmd, **_child_io(err, quiet))
    summary = None
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            summary = json.loads(line)
    return proc.returncode, summary


def _compare(reference: list[dict[str, Any]], effective: list[dict[str, Any]]) -> str | None:
    """``None`` when the streams are equal, else a description of the first difference."""
    for a, b in zip(reference, effective):
        if a["step"] != b["step"] or a["indices"] != b["indices"]:
            return (
                f"step {a['step']}: reference {a['indices'][:6]}..., resumed stream has step {b['step']} "
                f"{b['indices'][:6]}..."
            )
    if len(reference) != len(effective):
        return f"the reference has {len(reference)} steps, the killed+resumed stream {len(effective)}"
    return None


def _demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import shutil

    t_start = time.perf_counter()
    if args.order != "blocks" and args.block_size is not None:
        parser.error("--block-size applies only to --order blocks")
    block_size = (args.block_size or 8) if args.order == "blocks" else None
    tmp = Path(tempfile.mkdtemp(prefix="episode-sampler-demo-"))
    try:
        return _demo_in(args, parser, tmp, block_size, t_start)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _demo_in(
    args: argparse.Namespace, parser: argparse.ArgumentParser, tmp: Path, block_size: int | None, t0: float
) -> int:
    from . import _demo as worker
    from .lerobot import read_episode_index
    from .synthetic import write_lerobot_dataset

    say = print
    root = Path(args.root) if args.root else tmp / "dataset"
    wrote = False
    if not (root / "meta" / "info.json").exists():
        if root.exists() and root.is_dir() and (root / "data").exists():
            raise UsageError(f"--root {str(root)!r} has data/ but no meta/info.json")
        if root.exists() and not root.is_dir():
            raise UsageError(f"--root {str(root)!r} exists and is not a directory")
        write_lerobot_dataset(root, num_episodes=args.episodes, seed=0)
        wrote = True
    try:
        episodes = read_episode_index(root)
        cfg = worker.TrainConfig(
            root=str(root),
            batch_size=args.batch_size,
            seed=args.seed,
            permutation=args.permutation,
            order=args.order,
            block_size=block_size,
            epochs=args.epochs,
            checkpoint_every=args.checkpoint_every,
        )
        _, node, _ = worker.build_pipeline(cfg)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot use the dataset at {str(root)!r}: {exc}") from None
    per_epoch = worker.steps_per_epoch(node.samples_per_epoch, args.batch_size)
    total = per_epoch * args.epochs
    if total < 2:
        parser.error(f"the run has only {total} step(s): use more --episodes or a smaller --batch-size")
    kill_at = args.kill_at_step
    if kill_at is None:
        kill_at = min(total - 1, per_epoch * (args.epochs - 1) + per_epoch // 2 + 3)
    if not 1 <= kill_at < total:
        parser.error(f"argument --kill-at-step: must be in [1, {total - 1}] for this run of {total} steps")

    say(f"{PROG} demo")
    where_ds = f"{root}" + ("" if args.root else " (temporary)")
    say(
        f"  dataset     {episodes.num_episodes} episodes, {episodes.num_frames} frames, LeRobot v3 "
        f"{'(synthetic, just written) ' if wrote else ''}at {where_ds}"
    )
    blocks = f", block_size={block_size}" if block_size else ""
    say(
        f"  pipeline    EpisodeSamplerNode(batch_size={args.batch_size}, shuffle=True, seed={args.seed}, "
        f"permutation={args.permutation!r}, order={args.order!r}{blocks})"
    )
    say("              -> Mapper(LeRobotFrames.get_batch) -> Prefetcher -> Loader")
    say(
        f"  training    linear model observation.state -> action, SGD with momentum; {args.epochs} epoch(s) "
        f"x {per_epoch} steps = {total} steps"
    )
    say(f"              atomic checkpoint (model + Loader.state_dict()) every {args.checkpoint_every} steps")
    sys.stdout.flush()

    # 1. the uninterrupted reference, in this process
    ref_log, ref_ck = tmp / "reference.jsonl", tmp / "reference-ckpt"
    reference = worker.train(
        cfg, ckpt_dir=ref_ck, log_path=ref_log, bar=None if args.quiet else "reference run"
    )
    ref_steps = worker.read_log(ref_log)
    rate = reference.samples / reference.seconds if reference.seconds > 0 else float("inf")

    # 2. the same run in a subprocess, SIGKILLed once it reports step kill_at
    ck = tmp / "checkpoints"
    base = [sys.executable, "-m", "episode_sampler._demo", *cfg.argv(), "--checkpoint-dir", str(ck)]
    crash_log, resume_log = tmp / "killed.jsonl", tmp / "resumed.jsonl"
    bar = [] if args.quiet else ["--bar", "run to be killed"]
    code, killed = _run_until_kill(
        [*base, "--log", str(crash_log), "--progress", *bar], kill_at, args.quiet, tmp / "killed.err"
    )
    if not args.quiet:
        sys.stderr.write("\n")
    if not killed:
        err = (tmp / "killed.err").read_text(errors="replace")[-2000:]
        sys.stderr.write(
            f"{PROG} demo: error: the training process exited ({code}) before step {kill_at}\n{err}"
        )
        return 1
    crashed = worker.read_log(crash_log)
    record = worker.load_checkpoint(ck)
    ck_step = record[0]["step"] if record else 0
    ck_bytes = (ck / worker.CHECKPOINT_NAME).stat().st_size if record else 0
    model_bytes = (ck / record[0]["model"]).stat().st_size if record else 0
    last = crashed[-1]["step"] if crashed else 0
    ep_k, in_k = divmod(last - 1, per_epoch) if last else (0, -1)

    # 3. a new process resumes from the checkpoint
    bar = [] if args.quiet else ["--bar", "resumed run"]
    code, summary = _run_to_end(
        [*base, "--log", str(resume_log), "--resume", *bar], args.quiet, tmp / "resumed.err"
    )
    if code != 0 or summary is None:
        err = (tmp / "resumed.err").read_text(errors="replace")[-2000:]
        sys.stderr.write(f"{PROG} demo: error: the resumed process failed (exit {code})\n{err}")
        return 1
    resumed = worker.read_log(resume_log)
    effective = [s for s in crashed if s["step"] <= ck_step] + resumed
    problem = _compare(ref_steps, effective)
    same_weights = summary["weights_sha256"] == reference.weights_sha256

    state = worker.find_sampler_state(record[0]["loader"]) if record else None
    where = (
        f"epoch {state['epoch']}, sample {state['start_index']} of {node.samples_per_epoch}"
        if state
        else "from scratch (no checkpoint yet)"
    )
    say(
        f"  reference   {reference.steps} steps, {reference.samples} samples in {reference.seconds:.2f} s "
        f"({rate:,.0f} samples/s: reading, training, checkpoints)"
    )
    say(
        f"  kill        SIGKILL after step {last} (epoch {ep_k}, step {in_k + 1} of {per_epoch}); "
        f"asked for step {kill_at}"
    )
    say(
        f"  checkpoint  last committed at step {ck_step}: checkpoint.json {_human_bytes(ck_bytes)} "
        f"(loader state), model {_human_bytes(model_bytes)}"
    )
    say(
        f"  resume      new process from step {ck_step} ({where}); redid steps {ck_step + 1}..{last}, "
        f"ran to step {summary['steps']}"
    )
    samples = sum(len(s["indices"]) for s in ref_steps)
    if problem is None and same_weights:
        say(
            f"  verdict     EXACT: {len(ref_steps)} steps, {samples} samples identical to the uninterrupted "
            "run; final weights bit-identical"
        )
    elif problem is None:
        say("  verdict     stream EXACT, but the final weights differ from the reference")
    else:
        say(f"  verdict     MISMATCH: {problem}")
    say(f"  time        {time.perf_counter() - t0:.1f} s")
    return 0 if problem is None and same_weights else 1


if __name__ == "__main__":
    sys.exit(main())
