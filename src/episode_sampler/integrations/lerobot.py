"""Apply episode-sampler to LeRobot's trainer (``lerobot-train``) without editing LeRobot.

:func:`patch` replaces, in LeRobot's modules, the names ``lerobot_train`` resolves:

- ``EpisodeAwareSampler`` and ``compute_sampler_state`` in ``lerobot.datasets.sampler`` and
  ``lerobot.datasets`` (``lerobot_train`` imports them from there at module level);
- ``load_training_state`` and ``save_checkpoint`` in ``lerobot.common.train_utils`` and ``cycle`` in
  ``lerobot.utils.utils``: thin wrappers that write the sampler's position next to each checkpoint
  (``training_state/episode_sampler.json``) and resume from it;
- the same names in ``lerobot.scripts.lerobot_train`` if it is already imported, under its own name or as
  ``__main__`` (``python -m``, ``torchrun -m``, ``accelerate launch -m``).

So call it before ``lerobot_train`` runs (the launcher ``episode-sampler lerobot-train`` does), or
after: names already bound there are rebound. :func:`unpatch` restores LeRobot's objects everywhere.

The resume, in the wrapped ``cycle(dataloader)`` (``lerobot_train`` calls it on the dataloader
``accelerator.prepare`` returned, so accelerate's mode is known there):

- With the checkpoint's ``episode_sampler.json`` and the same ``batch_size``, number of processes and
  accelerate mode (``split_batches``, ``even_batches``, ``drop_last``): the resumed pass starts where the
  checkpointed pass started and skips this process's consumed batches at the batch-sampler level
  (``accelerate.skip_first_batches``: indices are drawn, no data is loaded). Every batch, accelerate's
  end-of-epoch padding included, is the uninterrupted run's.
- Another ``batch_size``, number of processes or mode: the run continues at the checkpoint's global
  position (no sample lost or repeated) and records it as the origin of its later checkpoints.
  Refused (``ValueError``, naming why) when the checkpoint has no single global position
  (``even_batches=False`` with processes in different epochs) or its sampler differs (frames,
  fingerprint, seed, shuffle, permutation, order, block size).
- A checkpoint without ``episode_sampler.json`` (written by LeRobot alone): LeRobot's arithmetic,
  :func:`~episode_sampler.compute_sampler_state` from its ``training_step.json``, in the dataloader's mode.

Only this module imports LeRobot; ``import episode_sampler`` does not.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import os
import sys
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ..core.checkpoint import load_state, save_state
from ..core.order import ORDERS
from ..core.permutation import PERMUTATIONS
from ..core.steps import accelerate_pass, compute_sampler_state
from ..core.validation import check_bool, check_choice, check_int
from ..sampler import EpisodeAwareSampler
from .accelerate import dataloader_mode

__all__ = [
    "SIDECAR",
    "TESTED_VERSIONS",
    "LeRobotTrainSampler",
    "UnsupportedLeRobotVersion",
    "is_patched",
    "patch",
    "unpatch",
]

logger = logging.getLogger(__name__)

#: LeRobot versions this integration was run against (``tests/integrations/real_lerobot/run.py``).
TESTED_VERSIONS = ("0.6.1",)
#: The file written next to each checkpoint, in its ``training_state/`` directory.
SIDECAR = "episode_sampler.json"
FORMAT = "episode-sampler/lerobot-train"
FORMAT_VERSION = 1
TRAIN_MODULE = "lerobot.scripts.lerobot_train"

#: name -> (the LeRobot module that defines it, the LeRobot modules that re-export it)
_TARGETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "EpisodeAwareSampler": ("lerobot.datasets.sampler", ("lerobot.datasets",)),
    "compute_sampler_state": ("lerobot.datasets.sampler", ("lerobot.datasets",)),
    "load_training_state": ("lerobot.common.train_utils", ()),
    "save_checkpoint": ("lerobot.common.train_utils", ()),
    "cycle": ("lerobot.utils.utils", ()),
}


class UnsupportedLeRobotVersion(RuntimeError):
    """The installed LeRobot is not a version this integration was tested with (see ``force``)."""


@dataclass
class _Options:
    """What :func:`patch` was given: the sampler options and the ignored-``set_epoch`` log level."""

    permutation: str = "randperm"
    order: str = "frames"
    block_size: int | None = None
    set_epoch_log_level: int = logging.WARNING


class _Patch:
    """The patch's state: LeRobot's original objects, our replacements and the run being tracked."""

    def __init__(self) -> None:
        self.options = _Options()
        self.originals: dict[str, Any] = {}
        self.replacements: dict[str, Any] = {}
        self.resume: tuple[Path, int] | None = None  # (checkpoint dir, step) from load_training_state
        self.run: _Run | None = None


_PATCH = _Patch()


# ---------------------------------------------------------------------------------------------- sampler
class LeRobotTrainSampler(EpisodeAwareSampler):
    """:class:`~episode_sampler.EpisodeAwareSampler` as LeRobot's trainer builds it under :func:`patch`.

    LeRobot passes its own arguments (frame ranges, episodes, ``drop_n_last_frames``, ``shuffle=True``,
    ``seed``, ``absolute_to_relative_idx``); the options given to :func:`patch` (``permutation``,
    ``order``, ``block_size``) fill in the rest, and an ignored ``set_epoch`` is logged at the level
    given to :func:`patch`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        options = _PATCH.options
        kwargs.setdefault("permutation", options.permutation)
        kwargs.setdefault("order", options.order)
        if kwargs["order"] == "blocks":
            kwargs.setdefault("block_size", options.block_size)
        super().__init__(*args, **kwargs)
        self.set_epoch_log_level = options.set_epoch_log_level


# ---------------------------------------------------------------------------------------------- patch
def patch(
    *,
    force: bool = False,
    permutation: str = "randperm",
    order: str = "frames",
    block_size: int | None = None,
    set_epoch_log_level: int = logging.WARNING,
) -> None:
    """Make LeRobot's trainer use episode-sampler's sampler, resume arithmetic and checkpoint state.

    Idempotent: a second call only updates the options (and binds names in ``lerobot_train`` if it
    was imported since). Reversible with :func:`unpatch`.

    Args:
        force: patch a LeRobot version that is not in :data:`TESTED_VERSIONS`.
        permutation: ``"randperm"`` (LeRobot's own order, the default) or ``"feistel"``.
        order: shuffled unit, ``"frames"`` (LeRobot's), ``"episodes"`` or ``"blocks"``.
        block_size: frames per block, required for (and only for) ``order="blocks"``.
        set_epoch_log_level: ``logging`` level of the sampler's message about an ignored backwards
            ``set_epoch`` after a restore (the launcher passes ``logging.INFO``).

    Raises:
        TypeError, ValueError: an invalid option, naming it.
        UnsupportedLeRobotVersion: the installed LeRobot is untested and ``force`` is false.
        ImportError: LeRobot (or one of the modules named above) cannot be imported.
    """
    force = check_bool("force", force)
    options = _Options(
        permutation=check_choice("permutation", permutation, PERMUTATIONS),
        order=check_choice("order", order, ORDERS),
        block_size=_check_block_size(order, block_size),
        set_epoch_log_level=check_int(
            "set_epoch_log_level", set_epoch_log_level, minimum=0, maximum=logging.CRITICAL
        ),
    )
    check_version(force=force)
    sources = {name: importlib.import_module(module) for name, (module, _) in _TARGETS.items()}
    if not _PATCH.originals:
        for name, module in sources.items():
            value = getattr(module, name)
            if value is _replacement(name):  # cannot happen unless someone copied our objects in
                raise RuntimeError(f"{module.__name__}.{name} is already episode-sampler's")
            _PATCH.originals[name] = value
        _PATCH.replacements = {name: _replacement(name) for name in _TARGETS}
        _PATCH.resume = None
        _PATCH.run = None
    _PATCH.options = options
    _rebind(_PATCH.originals, _PATCH.replacements)


def unpatch() -> None:
    """Restore LeRobot's own objects wherever :func:`patch` (or an import after it) put ours.

    A no-op when not patched.
    """
    if not _PATCH.originals:
        return
    _rebind(_PATCH.replacements, _PATCH.originals)
    _PATCH.originals = {}
    _PATCH.replacements = {}
    _PATCH.resume = None
    _PATCH.run = None
    _PATCH.options = _Options()


def is_patched() -> bool:
    """Whether :func:`patch` is in effect."""
    return bool(_PATCH.originals)


def check_version(*, force: bool = False) -> str:
    """The installed ``lerobot.__version__``; :class:`UnsupportedLeRobotVersion` if untested (unless forced).

    Raises:
        ImportError: LeRobot is not installed.
        UnsupportedLeRobotVersion: the version is not in :data:`TESTED_VERSIONS` and ``force`` is false.
    """
    lerobot = importlib.import_module("lerobot")
    version = str(getattr(lerobot, "__version__", "unknown"))
    if version.split("+")[0] not in TESTED_VERSIONS and not force:
        raise UnsupportedLeRobotVersion(
            f"episode_sampler.integrations.lerobot was tested with LeRobot {', '.join(TESTED_VERSIONS)}; "
            f"the installed lerobot is {version} ({getattr(lerobot, '__file__', '?')}). Its trainer may "
            "resolve the sampler differently. Pass patch(force=True) (launcher: --es.force or "
            "EPISODE_SAMPLER_FORCE=1) to patch it anyway."
        )
    return version


def _check_block_size(order: str, block_size: Any) -> int | None:
    if order == "blocks":
        if block_size is None:
            raise ValueError("block_size is required with order='blocks'")
        return check_int("block_size", block_size, minimum=1)
    if block_size is not None:
        raise ValueError(f"block_size is only for order='blocks', got block_size={block_size!r}")
    return None


def _replacement(name: str) -> Any:
    return {
        "EpisodeAwareSampler": LeRobotTrainSampler,
        "compute_sampler_state": compute_sampler_state,
        "load_training_state": _load_training_state,
        "save_checkpoint": _save_checkpoint,
        "cycle": _cycle,
    }[name]


def _consumers(name: str) -> list[ModuleType]:
    """The loaded modules that may hold ``name``: its source, its re-exporters, ``lerobot_train``."""
    source, reexports = _TARGETS[name]
    found = [sys.modules[m] for m in (source, *reexports) if m in sys.modules]
    return found + _train_modules()


def _train_modules() -> list[ModuleType]:
    """``lerobot.scripts.lerobot_train`` as loaded: under its name, and as ``__main__`` if it runs so."""
    found = []
    module = sys.modules.get(TRAIN_MODULE)
    if module is not None:
        found.append(module)
    main = sys.modules.get("__main__")
    if main is not None and main is not module and _is_train_script(main):
        found.append(main)
    return found


def _is_train_script(module: ModuleType) -> bool:
    spec = getattr(module, "__spec__", None)
    if spec is not None and spec.name == TRAIN_MODULE:
        return True
    path = getattr(module, "__file__", None)
    if not path:
        return False
    try:
        origin = importlib.util.find_spec(TRAIN_MODULE)
    except (ImportError, ValueError):
        return False
    if origin is None or origin.origin is None:
        return False
    try:
        return os.path.samefile(path, origin.origin)
    except OSError:
        return False


def _rebind(old: dict[str, Any], new: dict[str, Any]) -> None:
    """In every consumer module, set ``name`` to ``new[name]`` where it is ``old[name]``."""
    for name in _TARGETS:
        for module in _consumers(name):
            if module.__dict__.get(name) is old[name]:
                setattr(module, name, new[name])


# ---------------------------------------------------------------------------------------------- run
@dataclass(frozen=True)
class _Segment:
    """How steps map to positions since ``origin``: at step ``origin_step`` the sampler was at
    ``(origin_epoch, origin_start)`` and every later step used this batch size, world and mode."""

    batch_size: int
    num_processes: int
    split_batches: bool
    even_batches: bool
    drop_last: bool
    origin_step: int = 0
    origin_epoch: int = 0
    origin_start: int = 0

    def mode(self) -> tuple[int, int, bool, bool, bool]:
        return (self.batch_size, self.num_processes, self.split_batches, self.even_batches, self.drop_last)

    def origin(self) -> dict[str, int] | None:
        if (self.origin_step, self.origin_epoch, self.origin_start) == (0, 0, 0):
            return None
        return {"step": self.origin_step, "epoch": self.origin_epoch, "start_index": self.origin_start}

    def state(self, step: int, num_frames: int, rank: int) -> dict[str, int]:
        """Process ``rank``'s ``{"epoch", "start_index"}`` after ``step`` steps."""
        return compute_sampler_state(
            step,
            num_frames,
            self.batch_size,
            self.num_processes,
            split_batches=self.split_batches,
            even_batches=self.even_batches,
            drop_last=self.drop_last,
            process_index=rank,
            origin=self.origin(),
        )

    def pass_position(self, step: int, num_frames: int, rank: int) -> tuple[int, int, int]:
        """(epoch, where its pass started, batches process ``rank`` took of it) after ``step`` steps."""
        return accelerate_pass(
            step,
            num_frames,
            self.batch_size,
            self.num_processes,
            split_batches=self.split_batches,
            even_batches=self.even_batches,
            drop_last=self.drop_last,
            process_index=rank,
            origin=self.origin(),
        )


def _identity(sampler: EpisodeAwareSampler) -> dict[str, Any]:
    """What a checkpoint's sampler must share with the resuming one."""
    return {
        "num_frames": sampler.num_frames,
        "fingerprint": sampler.fingerprint,
        "seed": sampler.seed,
        "shuffle": sampler.shuffle,
        "permutation": sampler.permutation,
        "order": sampler.order,
        "block_size": sampler.block_size,
    }


class _Run:
    """The training run of this process: its sampler and how its steps map to positions."""

    def __init__(self, sampler: LeRobotTrainSampler, segment: _Segment) -> None:
        self.sampler_ref = weakref.ref(sampler)
        self.identity = _identity(sampler)
        self.segment = segment

    def record(self, step: int) -> dict[str, Any]:
        """The JSON written next to the checkpoint of ``step``."""
        n, seg = self.identity["num_frames"], self.segment
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "step": step,
            "segment": asdict(seg),
            "sampler": self.identity,
            # informational (the resume recomputes them): each process's position after ``step``
            "states": [seg.state(step, n, r) for r in range(seg.num_processes)],
        }


def _segment_from_record(record: Any, path: Path) -> _Segment:
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError(f"{path} is not an episode-sampler lerobot-train state (format {FORMAT!r})")
    if record.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path} has version {record.get('version')!r}; this episode-sampler reads 1")
    try:
        return _Segment(**record["segment"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: invalid 'segment' ({exc})") from None


def _resume_plan(
    sampler: LeRobotTrainSampler, current: _Segment, rank: int, checkpoint_dir: Path, step: int
) -> tuple[_Segment, int, int, int]:
    """(this run's segment, epoch, pass start, batches to skip) to resume ``step`` of ``checkpoint_dir``."""
    n = sampler.num_frames
    path = checkpoint_dir / "training_state" / SIDECAR
    if path.is_file():
        record = load_state(path)
        old = _segment_from_record(record, path)
        if record.get("step") != step:
            raise ValueError(
                f"{path} is for step {record.get('step')!r} but the checkpoint's training_step.json says "
                f"step {step}: refusing a state from another checkpoint"
            )
        mine = _identity(sampler)
        for key, theirs in dict(record.get("sampler", {})).items():
            if key in mine and mine[key] != theirs:
                raise ValueError(
                    f"cannot resume from {checkpoint_dir}: its sampler had {key}={theirs!r}, this run's has "
                    f"{key}={mine[key]!r} (same dataset, episodes, seed and sampler options are required)"
                )
        source = SIDECAR
    else:
        saved = _training_step(checkpoint_dir)
        old = _Segment(
            batch_size=int(saved.get("batch_size") or current.batch_size),
            num_processes=int(saved.get("num_processes") or current.num_processes),
            split_batches=current.split_batches,
            even_batches=current.even_batches,
            drop_last=current.drop_last,
        )
        source = "training_step.json (LeRobot's arithmetic; no episode_sampler.json in this checkpoint)"
    if old.mode() == current.mode():
        epoch, start, skip = old.pass_position(step, n, rank)
        logger.info(
            "episode-sampler: resuming step %d from %s: epoch %d, pass from position %d, skipping %d "
            "batches of this process",
            step,
            source,
            epoch,
            start,
            skip,
        )
        return old, epoch, start, skip
    states = [old.state(step, n, r) for r in range(old.num_processes)]
    if any(s != states[0] for s in states):
        raise ValueError(
            f"cannot resume step {step} with batch_size={current.batch_size}, num_processes="
            f"{current.num_processes}, split_batches={current.split_batches}, even_batches="
            f"{current.even_batches}, drop_last={current.drop_last}: the checkpoint was written with "
            f"even_batches=False and num_processes={old.num_processes}, and its processes were at different "
            f"positions ({states}); resume with the checkpoint's batch_size={old.batch_size}, "
            f"num_processes={old.num_processes} and accelerate mode"
        )
    state = states[0]
    logger.info(
        "episode-sampler: resuming step %d from %s with another batch size, number of processes or mode "
        "(checkpoint: %s; now: %s): continuing at the global position %s",
        step,
        source,
        old.mode(),
        current.mode(),
        state,
    )
    new = _Segment(
        *current.mode(), origin_step=step, origin_epoch=state["epoch"], origin_start=state["start_index"]
    )
    return new, state["epoch"], state["start_index"], 0


def _training_step(checkpoint_dir: Path) -> dict[str, Any]:
    path = checkpoint_dir / "training_state" / "training_step.json"
    try:
        saved = load_state(path)
    except FileNotFoundError:
        return {}
    return saved if isinstance(saved, dict) else {}


# ---------------------------------------------------------------------------------------------- wrappers
def _bound(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    return dict(inspect.signature(original).bind_partial(*args, **kwargs).arguments)


def _load_training_state(*args: Any, **kwargs: Any) -> Any:
    """LeRobot's ``load_training_state``, remembering which checkpoint and step the run resumes."""
    original = _PATCH.originals["load_training_state"]
    result = original(*args, **kwargs)
    checkpoint_dir = _bound(original, args, kwargs).get("checkpoint_dir", args[0] if args else None)
    if checkpoint_dir is not None:
        _PATCH.resume = (Path(checkpoint_dir), int(result[0]))
    return result


def _save_checkpoint(*args: Any, **kwargs: Any) -> Any:
    """LeRobot's ``save_checkpoint``, then ``training_state/episode_sampler.json`` (atomic)."""
    original = _PATCH.originals["save_checkpoint"]
    result = original(*args, **kwargs)
    run = _PATCH.run
    if run is not None:
        bound = _bound(original, args, kwargs)
        step = check_int("step", bound["step"], minimum=0)
        save_state(Path(bound["checkpoint_dir"]) / "training_state" / SIDECAR, run.record(step))
    return result


def _cycle(iterable: Any) -> Iterator[Any]:
    """LeRobot's ``cycle``; for a dataloader over our sampler, resumed exactly first (see the module)."""
    original = _PATCH.originals["cycle"]
    try:
        mode = dataloader_mode(iterable)
    except ValueError:
        return original(iterable)
    sampler = mode["sampler"]
    if not isinstance(sampler, LeRobotTrainSampler) or mode["batch_size"] is None:
        return original(iterable)
    current = _Segment(
        batch_size=int(mode["batch_size"]),
        num_processes=mode["num_processes"],
        split_batches=mode["split_batches"],
        even_batches=mode["even_batches"],
        drop_last=mode["drop_last"],
    )
    resume, _PATCH.resume = _PATCH.resume, None
    if resume is None or resume[1] == 0:
        _PATCH.run = _Run(sampler, current)
        return original(iterable)
    segment, epoch, start, skip = _resume_plan(sampler, current, mode["process_index"], *resume)
    _PATCH.run = _Run(sampler, segment)
    sampler.load_state_dict({"epoch": epoch, "start_index": start})
    if skip == 0:
        if hasattr(iterable, "set_epoch"):
            iterable.set_epoch(epoch)  # accelerate's pass counter = the sampler's epoch
        return original(iterable)
    from accelerate import skip_first_batches  # type: ignore[import-untyped]

    first = skip_first_batches(iterable, skip)
    if hasattr(first, "set_epoch"):
        first.set_epoch(epoch)
    return _resumed(first, iterable, epoch, original)


def _resumed(
    first: Iterable[Any], dataloader: Any, epoch: int, original: Callable[..., Any]
) -> Iterator[Any]:
    """The rest of the resumed pass (its consumed batches skipped), then LeRobot's cycle from the next."""
    yield from first
    if hasattr(dataloader, "set_epoch"):
        dataloader.set_epoch(epoch + 1)
    yield from original(dataloader)
