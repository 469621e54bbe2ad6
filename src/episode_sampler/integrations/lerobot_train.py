"""``lerobot-train`` with episode-sampler: patch LeRobot, then run its own training entry point.

``episode-sampler lerobot-train [lerobot-train flags]`` or, for several processes,
``torchrun --nproc-per-node N -m episode_sampler.integrations.lerobot_train [lerobot-train flags]``
(``accelerate launch -m episode_sampler.integrations.lerobot_train ...`` likewise).

Every argument is passed to LeRobot unchanged (``--resume=true --config_path=...`` included) except our
own, which start with ``--es.`` (LeRobot's config has no ``es`` field) and are removed first. Each can
also come from an environment variable; the flag wins. See :data:`HELP`.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from ..core.order import ORDERS
from ..core.permutation import PERMUTATIONS
from .lerobot import UnsupportedLeRobotVersion, patch

__all__ = ["LauncherUsageError", "main", "parse_args"]

PREFIX = "--es."
#: option -> (environment variable, help)
OPTIONS: dict[str, tuple[str, str]] = {
    "permutation": (
        "EPISODE_SAMPLER_PERMUTATION",
        f"one of {', '.join(PERMUTATIONS)}; default randperm (LeRobot's own order)",
    ),
    "order": ("EPISODE_SAMPLER_ORDER", f"shuffled unit, one of {', '.join(ORDERS)}; default frames"),
    "block_size": ("EPISODE_SAMPLER_BLOCK_SIZE", "frames per block, required with --es.order=blocks"),
    "force": ("EPISODE_SAMPLER_FORCE", "patch a LeRobot version other than the tested 0.6.1 (true/false)"),
}

HELP = """\
usage: {prog} [--es.OPTION=VALUE ...] [lerobot-train flags ...]

Run LeRobot's `lerobot-train` with episode-sampler's EpisodeAwareSampler: same order as LeRobot's by
default, sample-exact resumes (--resume=true) after a crash, at any step, with 1 or N processes.
Nothing of LeRobot is edited: the launcher patches it in this process, then runs its training entry
point with every other argument unchanged. Several processes:
  torchrun --nproc-per-node N -m episode_sampler.integrations.lerobot_train [flags ...]

Each checkpoint gets training_state/episode_sampler.json (the sampler's position); a resume uses it
(or LeRobot's arithmetic for checkpoints without it). Another batch size or number of processes
continues the global order exactly, or is refused with the reason.

episode-sampler options (removed before LeRobot parses the rest; or set the environment variable,
the flag wins):
{options}
  -h, --help            this help (LeRobot's flags: `lerobot-train --help`)
"""


class LauncherUsageError(ValueError):
    """An invalid ``--es.*`` option or environment variable (the message names it)."""


def help_text(prog: str = "episode-sampler lerobot-train") -> str:
    lines = []
    for name, (env, text) in OPTIONS.items():
        flag = f"--es.{name}" if name == "force" else f"--es.{name}=VALUE"
        lines.append(f"  {flag:<28}{text}\n  {'':<28}environment: {env}")
    return HELP.format(prog=prog, options="\n".join(lines))


def _bool(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise LauncherUsageError(f"{name} must be true or false, got {text!r}")


def parse_args(
    argv: Sequence[str], environ: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], list[str], bool]:
    """Split ``argv`` into (our options, LeRobot's arguments unchanged, whether help was asked).

    Our options are ``--es.NAME=VALUE`` or ``--es.NAME VALUE`` (``--es.force`` alone means true), then
    the environment (``EPISODE_SAMPLER_*``). Returned options are keyword arguments of
    :func:`~episode_sampler.integrations.lerobot.patch`.

    Raises:
        LauncherUsageError: an unknown ``--es.`` option, a missing or invalid value, naming it.
    """
    environ = os.environ if environ is None else environ
    given: dict[str, str] = {}
    rest: list[str] = []
    want_help = False
    i = 0
    args = list(argv)
    while i < len(args):
        arg = args[i]
        i += 1
        if arg in ("-h", "--help"):
            want_help = True
            continue
        if not arg.startswith(PREFIX):
            rest.append(arg)
            continue
        key, eq, value = arg[len(PREFIX) :].partition("=")
        key = key.replace("-", "_")
        if key not in OPTIONS:
            raise LauncherUsageError(
                f"unknown option {PREFIX}{key} (episode-sampler options: "
                f"{', '.join(PREFIX + k for k in OPTIONS)})"
            )
        if not eq:
            if key == "force":
                value = "true"
            elif i < len(args):
                value = args[i]
                i += 1
            else:
                raise LauncherUsageError(f"{PREFIX}{key} needs a value")
        given[key] = value
    for key, (env, _) in OPTIONS.items():
        if key not in given and environ.get(env, "") != "":
            given[key] = environ[env]
    options: dict[str, Any] = {}
    for key, value in given.items():
        name = f"{PREFIX}{key}"
        if key == "force":
            options["force"] = _bool(name, value)
        elif key == "block_size":
            try:
                options["block_size"] = int(value)
            except ValueError:
                raise LauncherUsageError(f"{name} must be an integer, got {value!r}") from None
        else:
            choices = PERMUTATIONS if key == "permutation" else ORDERS
            if value not in choices:
                raise LauncherUsageError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
            options[key] = value
    return options, rest, want_help


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Patch LeRobot and run ``lerobot.scripts.lerobot_train.main()`` with the remaining arguments.

    Returns the exit code: 0, or 2 for an invalid ``--es.*`` option (one line on stderr).
    """
    prog = prog or "python -m episode_sampler.integrations.lerobot_train"
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        options, rest, want_help = parse_args(argv)
        if want_help:
            sys.stdout.write(help_text(prog))
            return 0
        patch(set_epoch_log_level=logging.INFO, **options)
    except (ValueError, TypeError, UnsupportedLeRobotVersion) as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        return 2
    train = importlib.import_module("lerobot.scripts.lerobot_train")
    sys.argv = ["lerobot-train", *rest]  # LeRobot's parser reads sys.argv[1:]
    train.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
