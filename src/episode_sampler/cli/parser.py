"""Argument parsing of the ``episode-sampler`` command: the parser, its subcommands and their checks.

Every usage error is reported by the parser of the subcommand it concerns, as one line
``episode-sampler CMD: error: MESSAGE`` (no usage: ``--help`` prints it), that names the flag once; the
command then exits with code 2. An error that is not about one flag's value (a missing or unknown
argument) ends with where to look: ``(see 'episode-sampler CMD --help')``.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any, NoReturn

from ..core.order import ORDERS
from ..core.permutation import PERMUTATIONS

PROG = "episode-sampler"
COMMANDS = ("demo", "inspect", "bench", "lerobot-train")


class UsageError(Exception):
    """Invalid input: reported as ``episode-sampler CMD: error: MESSAGE`` with exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse, with errors that print one line (:func:`one_line`), then exit 2."""

    #: the subcommands' parsers by name (set on the top-level parser by :func:`build_parser`)
    commands: dict[str, Parser]

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {one_line(message, self.prog)}\n")
        raise SystemExit(2)


_ARGUMENT = re.compile(r"argument (?P<name>[^:]+): (?P<rest>.*)", re.DOTALL)
_INVALID_CHOICE = re.compile(r"invalid choice: (?P<rest>.*)", re.DOTALL)


def one_line(message: str, prog: str) -> str:
    """argparse's ``message`` as we print it: the flag named once, and a pointer to ``--help`` when the
    message is about the command line's shape rather than a value.

    ``argument --episodes: --episodes must be >= 1, got 0`` -> ``--episodes must be >= 1, got 0``;
    ``argument --order: invalid choice: 'x' (...)`` -> ``--order: invalid choice: 'x' (...)``;
    ``argument COMMAND: invalid choice: 'x' (...)`` -> ``unknown command 'x' (...)``.
    """
    m = _ARGUMENT.fullmatch(message)
    if m is not None:
        name, rest = m["name"], m["rest"]
        choice = _INVALID_CHOICE.fullmatch(rest)
        if name == "COMMAND" and choice is not None:
            message = f"unknown command {choice['rest']}"
        elif any(rest.startswith(n) for n in name.split("/")):  # our own messages name the flag
            message = rest
        else:
            message = f"{name}: {rest}"
    if message == "the following arguments are required: COMMAND":
        message = f"missing COMMAND: one of {', '.join(COMMANDS)}"
    if message.startswith(
        (
            "missing COMMAND",
            "unrecognized arguments",
            "the following arguments are required",
            "unknown command",
        )
    ):
        message += f" (see '{prog} --help')"
    return message


def int_in(name: str, minimum: int, maximum: int | None = None) -> Any:
    """An argparse ``type``: an integer (decimal, 0x.., 0o.., 0b..) in ``[minimum, maximum]``."""

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


def int_list(name: str, minimum: int) -> Any:
    """An argparse ``type``: comma-separated integers ``>= minimum``, sorted, without repeats."""

    def parse(text: str) -> tuple[int, ...]:
        values = []
        for part in text.split(","):
            try:
                value = int(part.strip(), 0)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"{name} must be comma-separated integers, got {text!r}"
                ) from None
            if value < minimum:
                raise argparse.ArgumentTypeError(f"{name} values must be >= {minimum}, got {value}")
            values.append(value)
        return tuple(sorted(set(values)))

    parse.__name__ = name
    return parse


def positive_float(name: str) -> Any:
    """An argparse ``type``: a finite number > 0."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"{name} must be > 0, got {text}")
        return value

    parse.__name__ = name
    return parse


def build_parser() -> Parser:
    """The top-level parser; ``subparser(parser, name)`` returns a subcommand's own parser."""
    from .. import __version__

    parser = Parser(
        prog=PROG,
        description="Episode-aware, deterministic, resumable shuffling for robot-learning datasets.",
        epilog="Run `episode-sampler COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    _add_demo(sub)
    _add_inspect(sub)
    _add_bench(sub)
    _add_lerobot_train(sub)
    parser.commands = dict(sub.choices)  # the subcommands' own parsers, by name
    return parser


def subparser(parser: Parser, command: str) -> Parser:
    """The parser of subcommand ``command`` of ``parser`` (from :func:`build_parser`)."""
    return parser.commands[command]


def _add_demo(sub: Any) -> None:
    demo = sub.add_parser(
        "demo",
        help="train on a synthetic dataset, SIGKILL the run, resume it and check it sample for sample",
        description=(
            "Write a synthetic LeRobot v3 dataset, train a tiny linear model for 2 epochs through "
            "EpisodeSamplerNode -> Mapper(get_batch) -> Prefetcher -> Loader with atomic checkpoints, "
            "SIGKILL the training process mid-epoch, resume in a new process from the last checkpoint "
            "and compare the consumed stream with an uninterrupted run. Exit 0 on an exact match, "
            "1 on a mismatch or a failed training process, 2 on invalid usage."
        ),
    )
    demo.add_argument(
        "--root",
        help="dataset directory: written there if it holds no dataset, else used as it is, and "
        "--episodes must then match it (default: a temporary directory)",
    )
    demo.add_argument(
        "--episodes",
        type=int_in("--episodes", 1, 100_000),
        default=None,
        help="episodes of the synthetic dataset (default: 120, about 4800 frames; with an existing "
        "--root: the dataset's own)",
    )
    demo.add_argument("--batch-size", type=int_in("--batch-size", 1), default=32, help="default: 32")
    demo.add_argument("--seed", type=int_in("--seed", 0, 2**64 - 1), default=0, help="shuffle seed")
    demo.add_argument("--epochs", type=int_in("--epochs", 1, 1000), default=2, help="default: 2")
    demo.add_argument(
        "--checkpoint-every",
        type=int_in("--checkpoint-every", 1),
        default=20,
        help="steps between checkpoints (default: 20)",
    )
    demo.add_argument(
        "--kill-at-step",
        type=int_in("--kill-at-step", 1),
        default=None,
        help="SIGKILL the run once it reports this step (default: mid second epoch)",
    )
    demo.add_argument("--permutation", choices=PERMUTATIONS, default="feistel", help="default: feistel")
    demo.add_argument("--order", choices=ORDERS, default="frames", help="shuffle unit (default: frames)")
    demo.add_argument(
        "--block-size",
        type=int_in("--block-size", 1),
        default=None,
        help="frames per block for --order blocks (default: 8)",
    )
    demo.add_argument(
        "--keep",
        metavar="DIR",
        default=None,
        help="keep the run directory in DIR (new or empty): DIR/killed-checkpoint.json (the checkpoint "
        "the resumed run started from: try `episode-sampler inspect DIR/killed-checkpoint.json`), the "
        "step logs, checkpoints and worker logs, and the dataset unless --root is given (default: a "
        "temporary directory, deleted at the end)",
    )
    demo.add_argument("--quiet", action="store_true", help="no progress output, only the report")


def _add_inspect(sub: Any) -> None:
    insp = sub.add_parser(
        "inspect",
        help="describe a saved sampler/loader state (or a LeRobot dataset) in words",
        description=(
            "Describe an episode-sampler state saved as JSON (or with torch.save): a sampler/node state, "
            "a bare LeRobot {'epoch', 'start_index'} state, or any checkpoint that nests one (a torchdata "
            "Loader or StatefulDataLoader state_dict, a training checkpoint). "
            "`episode-sampler demo --keep DIR` leaves one in DIR/killed-checkpoint.json. "
            "Given a LeRobot v3 dataset directory instead, describe the dataset: episodes, files, "
            "features, cameras (video keys with their encoding), tasks and stats."
        ),
    )
    insp.add_argument(
        "state_file",
        metavar="STATE_OR_DATASET",
        help="a state: JSON file (or torch.save file) holding a sampler/loader state or a checkpoint "
        "that nests one; or a LeRobot v3 dataset directory",
    )


def _add_bench(sub: Any) -> None:
    bench = sub.add_parser(
        "bench",
        help="measure reading your LeRobot v3 dataset on this machine and recommend a setting",
        description=(
            "Measure how fast this machine reads the LeRobot v3 dataset DATASET_DIR through "
            "EpisodeAwareSampler -> DataLoader(LeRobotFrames.get_batch): samples/s, decoded bytes per "
            "sample and time to first batch, for order='frames' and order='blocks' (several block "
            "sizes) and several DataLoader worker counts, each for --seconds. Then recommend the "
            "smallest block size and fewest workers within 90%% of the best samples/s, with the "
            "shuffle-quality trade-off. Progress goes to stderr, the table to stdout."
        ),
    )
    bench.add_argument("dataset", metavar="DATASET_DIR", help="a LeRobot v3 dataset directory")
    bench.add_argument(
        "--seconds",
        type=positive_float("--seconds"),
        default=2.0,
        help="seconds of reading per setting, after its first batches (default: 2)",
    )
    bench.add_argument(
        "--rounds",
        type=int_in("--rounds", 1, 100),
        default=2,
        help="rounds over the settings, interleaved, each with --seconds/ROUNDS per setting, so that a "
        "change of load hits every setting alike (default: 2)",
    )
    bench.add_argument(
        "--workers",
        type=int_list("--workers", 0),
        default=None,
        help="DataLoader worker counts, comma-separated (default: 0,2, capped at the CPU count)",
    )
    bench.add_argument("--batch-size", type=int_in("--batch-size", 1), default=32, help="default: 32")
    bench.add_argument(
        "--block-sizes",
        type=int_list("--block-sizes", 2),
        default=(4, 8, 16, 32),
        help="block sizes of order='blocks', comma-separated; those longer than every episode are "
        "skipped (default: 4,8,16,32)",
    )
    bench.add_argument(
        "--columns",
        default=None,
        help="columns read per sample, comma-separated (default: every column and camera)",
    )
    bench.add_argument(
        "--uint8", action="store_true", help="camera frames as uint8 (LeRobotFrames(return_uint8=True))"
    )
    bench.add_argument(
        "--video-backend",
        choices=("pyav", "torchcodec"),
        default=None,
        help="camera decoder (default: as LeRobotFrames picks, torchcodec when it loads, else PyAV); "
        "decode counts (packets, bytes, frames decoded) are measured with pyav only",
    )
    bench.add_argument("--seed", type=int_in("--seed", 0, 2**64 - 1), default=0, help="shuffle seed")
    bench.add_argument(
        "--fresh-process",
        action="store_true",
        help="also time process start to first batch of the recommended setting in a new Python process",
    )
    bench.add_argument(
        "--json",
        metavar="PATH",
        default=None,
        help="write the results as JSON to PATH ('-': stdout, the table then goes to stderr)",
    )
    bench.add_argument("--quiet", action="store_true", help="no progress lines")


def _add_lerobot_train(sub: Any) -> None:
    # Parsed by episode_sampler.integrations.lerobot_train (entry.main hands it every argument): listed
    # here for `episode-sampler --help`.
    sub.add_parser(
        "lerobot-train",
        add_help=False,
        help="run LeRobot's lerobot-train with episode-sampler's sampler and exact resumes "
        "(every lerobot-train flag passes through; `episode-sampler lerobot-train --help`)",
    )
