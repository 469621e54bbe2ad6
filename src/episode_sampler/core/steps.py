"""How far a run under accelerate's batch sharding got, from its step count alone.

LeRobot's trainer checkpoints only ``{step, num_processes, batch_size}``;
:func:`compute_sampler_state` turns that into the sampler state to resume from, for every sharding
mode accelerate has (``split_batches``, ``even_batches``, ``drop_last``). Pure arithmetic: no torch,
no accelerate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .state import MAX_EPOCH
from .validation import ArgumentTypeError, check_bool, check_int

__all__ = ["accelerate_pass", "accelerate_steps", "compute_sampler_state"]


def compute_sampler_state(
    step: int,
    num_frames: int,
    batch_size: int,
    num_processes: int,
    *,
    split_batches: bool = False,
    even_batches: bool = True,
    drop_last: bool = False,
    process_index: int | None = None,
    origin: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """The sampler state after ``step`` optimizer steps of a run under accelerate's batch sharding.

    With accelerate's defaults (``split_batches=False``, ``even_batches=True``) this is LeRobot's
    formula: one step consumes ``batch_size * num_processes`` positions and every process sees
    ``ceil(ceil(num_frames / batch_size) / num_processes)`` batches per epoch (the last round padded)::

        epoch, into = divmod(step, batches_per_epoch)
        start_index = min(into * batch_size * num_processes, num_frames)

    The keyword arguments describe the checkpointed run's other modes (pass what it used):

    - ``split_batches=True``: ``batch_size`` is the global batch, split across processes; a step
      consumes ``batch_size`` positions and an epoch has ``ceil(num_frames / batch_size)`` steps.
    - ``even_batches=False``: no padding; processes get different numbers of batches per epoch, so
      their epochs drift apart and each process has its own state: ``process_index`` is required.
    - ``drop_last=True`` (the ``DataLoader``'s): short batches and incomplete rounds are dropped.

    Every process keeps a world-size-1 sampler; the state is the same on every process except with
    ``even_batches=False``. ``len(sampler)`` is ``num_frames``.

    ``origin`` (``{"step", "epoch", "start_index"}``): where this mapping starts, for runs resumed with
    another ``num_processes`` or ``batch_size``: at step ``origin["step"]`` the sampler was at
    ``(epoch, start_index)`` and every later step used this ``batch_size`` and ``num_processes``.
    Default: step 0 at ``(0, 0)``.

    Raises:
        TypeError, ValueError: non-int arguments, negative ``step``, non-positive others, a
            ``batch_size`` not divisible by ``num_processes`` with ``split_batches``, a missing or
            out-of-range ``process_index`` with ``even_batches=False``.
    """
    step, num_frames, args, per_step, per_epoch = _checked(
        step, num_frames, batch_size, num_processes, split_batches, even_batches, drop_last, process_index
    )
    epoch, pass_start, into = _walk(step, num_frames, args, per_epoch, origin)
    return {"epoch": epoch, "start_index": min(pass_start + into * per_step, num_frames)}


def accelerate_pass(
    step: int,
    num_frames: int,
    batch_size: int,
    num_processes: int,
    *,
    split_batches: bool = False,
    even_batches: bool = True,
    drop_last: bool = False,
    process_index: int | None = None,
    origin: Mapping[str, int] | None = None,
) -> tuple[int, int, int]:
    """``(epoch, pass_start, steps_into_pass)`` after ``step`` steps: the pass a resume continues.

    The same walk as :func:`compute_sampler_state` (same arguments, same checks), reported as the
    pass in progress -- its epoch, the position it started at (0, or ``origin``'s ``start_index``
    for the pass that resumed there) and how many steps this process took of it -- rather than as
    the position reached (``pass_start + steps_into_pass * positions_per_step``, capped).
    """
    step, num_frames, args, _, per_epoch = _checked(
        step, num_frames, batch_size, num_processes, split_batches, even_batches, drop_last, process_index
    )
    return _walk(step, num_frames, args, per_epoch, origin)


def _checked(
    step: Any,
    num_frames: Any,
    batch_size: Any,
    num_processes: Any,
    split_batches: Any,
    even_batches: Any,
    drop_last: Any,
    process_index: Any,
) -> tuple[int, int, tuple[Any, ...], int, int]:
    """Validated ``(step, num_frames, the other accelerate_steps arguments, per step, per epoch)``."""
    step = check_int("step", step, minimum=0)
    num_frames = check_int("num_frames", num_frames, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    num_processes = check_int("num_processes", num_processes, minimum=1)
    split_batches = check_bool("split_batches", split_batches)
    even_batches = check_bool("even_batches", even_batches)
    drop_last = check_bool("drop_last", drop_last)
    rank = 0
    if process_index is not None:
        rank = check_int("process_index", process_index, minimum=0, maximum=num_processes - 1)
    elif not even_batches and not drop_last and num_processes > 1:
        raise ValueError(
            "process_index is required with even_batches=False: the processes get different numbers of "
            "batches per epoch, so each one resumes at its own epoch and position"
        )
    args = (batch_size, num_processes, split_batches, even_batches, drop_last, rank)
    per_step, per_epoch = accelerate_steps(num_frames, *args)
    if per_epoch == 0:
        raise ValueError(
            f"process {rank} gets no batch in an epoch of num_frames={num_frames} with batch_size="
            f"{batch_size}, num_processes={num_processes}, split_batches={split_batches}, "
            f"even_batches={even_batches}, drop_last={drop_last}: a training loop would never get a step"
        )
    return step, num_frames, args, per_step, per_epoch


def _walk(
    step: int, num_frames: int, args: tuple[Any, ...], per_epoch: int, origin: Mapping[str, int] | None
) -> tuple[int, int, int]:
    """(epoch, pass start, steps into the pass) after ``step`` steps of ``args``' sharding (checked)."""
    epoch = 0
    if origin is not None:
        step, epoch, start = _check_origin(origin, step, num_frames)
        if start > 0:  # the pass that resumed at ``start`` is a pass over the rest of that epoch
            partial = accelerate_steps(num_frames - start, *args)[1]
            if step < partial:
                return epoch, start, step
            step, epoch = step - partial, epoch + 1
    epochs, into = divmod(step, per_epoch)
    return epoch + epochs, 0, into


def _check_origin(origin: Any, step: int, num_frames: int) -> tuple[int, int, int]:
    """(steps since the origin, its epoch, its start_index), validated."""
    if not isinstance(origin, Mapping) or set(origin) != {"step", "epoch", "start_index"}:
        raise ArgumentTypeError(
            f"origin must be a dict with keys 'step', 'epoch', 'start_index', got {origin!r}"
        )
    since = check_int("origin['step']", origin["step"], minimum=0, maximum=step)
    epoch = check_int("origin['epoch']", origin["epoch"], minimum=0, maximum=MAX_EPOCH)
    start = check_int("origin['start_index']", origin["start_index"], minimum=0, maximum=num_frames)
    return step - since, epoch, start


def accelerate_steps(
    n: int, batch: int, procs: int, split: bool, even: bool, drop_last: bool, rank: int
) -> tuple[int, int]:
    """(positions one step consumes, steps process ``rank`` takes per epoch) under accelerate's sharding.

    ``n`` frames, global or per-process ``batch`` (see ``split``), ``procs`` processes; arguments unchecked.

    Mirrors accelerate's ``BatchSamplerShard`` over ``BatchSampler(sampler, batch, drop_last)``.
    """
    batches = n // batch if drop_last else -(-n // batch)  # integer ceils: exact at any size
    if split:
        if batch % procs:
            raise ValueError(
                f"batch_size={batch} must be a multiple of num_processes={procs} with split_batches=True "
                "(accelerate refuses it too)"
            )
        if even or drop_last or n % batch == 0:
            return batch, batches
        # the short last batch goes only to the processes whose slice of it is not empty
        return batch, n // batch + (1 if n % batch > (batch // procs) * rank else 0)
    if drop_last:
        return batch * procs, batches // procs
    if even:
        return batch * procs, -(-batches // procs)
    return batch * procs, -(-(batches - rank) // procs)
