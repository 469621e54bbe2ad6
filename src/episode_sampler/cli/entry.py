"""``main(argv)``: parse the command line, run the subcommand, turn failures into exit codes.

Exit codes: 0 on success, 1 when the demo fails (a mismatch, or its training process died), 2 for invalid
usage or unreadable input, reported as one line ``episode-sampler CMD: error: MESSAGE`` on stderr (no
usage: ``--help`` prints it), never a traceback. 130 on Ctrl-C.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .parser import PROG, UsageError, build_parser, subparser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["lerobot-train"]:  # every other argument is LeRobot's: no parsing here
        from ..integrations.lerobot_train import main as lerobot_train

        return lerobot_train(argv[1:], prog=f"{PROG} lerobot-train")
    parser = build_parser()
    command: str | None = None
    try:
        args, extra = parser.parse_known_args(argv)
        command = args.command
        sub = subparser(parser, command)
        if extra:
            sub.error(f"unrecognized arguments: {' '.join(extra)}")
        if command == "inspect":
            from . import inspect

            return inspect.run(args)
        if command == "bench":
            from . import bench

            return bench.run(args, sub)
        from . import demo

        return demo.run(args, sub)
    except SystemExit as exc:  # argparse: --help / --version (0) or a usage error (2)
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 2)
    except UsageError as exc:
        sys.stderr.write(f"{PROG} {command}: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"\n{PROG}{f' {command}' if command else ''}: interrupted\n")
        return 130
