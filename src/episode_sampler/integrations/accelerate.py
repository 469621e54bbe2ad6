"""Resume an :class:`EpisodeAwareSampler` inside an accelerate-prepared ``DataLoader`` (LeRobot's flow).

accelerate stays optional: nothing here imports it at module import time; the functions read the
prepared dataloader's attributes (``DataLoaderShard``/``BatchSamplerShard``).
"""

from __future__ import annotations

from typing import Any

from ..core.steps import accelerate_steps, compute_sampler_state
from ..core.validation import check_int
from ..sampler import EpisodeAwareSampler


def dataloader_mode(dataloader: Any) -> dict[str, Any]:
    """How an accelerate-prepared dataloader shards batches: what ``compute_sampler_state`` needs.

    Returns ``{"num_processes", "process_index", "split_batches", "even_batches", "drop_last",
    "batch_size", "sampler"}`` (``batch_size``: the ``DataLoader``'s own, i.e. the global batch with
    ``split_batches=True``; ``sampler``: the sampler its batches are drawn from). A dataloader
    without ``BatchSamplerShard`` (one process, or a plain ``DataLoader``) is one process with
    accelerate's defaults.

    Raises:
        ValueError: a ``dispatch_batches=True`` dataloader (process 0 reads every batch and sends
            slices; not supported), or a dataloader without a ``batch_sampler``.
    """
    if type(dataloader).__name__ == "DataLoaderDispatcher":
        raise ValueError(
            "dataloader was prepared with dispatch_batches=True (accelerate's DataLoaderDispatcher): "
            "resuming its sampler is not supported; prepare the DataLoader with dispatch_batches=False"
        )
    shard = getattr(dataloader, "batch_sampler", None)
    if shard is None:
        raise ValueError(
            "dataloader has no batch_sampler: build it as DataLoader(dataset, batch_size, sampler=...)"
        )
    if all(hasattr(shard, a) for a in ("split_batches", "even_batches", "num_processes", "process_index")):
        inner = shard.batch_sampler
        mode: dict[str, Any] = {
            "num_processes": int(shard.num_processes),
            "process_index": int(shard.process_index),
            "split_batches": bool(shard.split_batches),
            "even_batches": bool(shard.even_batches),
        }
    else:
        inner = shard
        mode = {"num_processes": 1, "process_index": 0, "split_batches": False, "even_batches": True}
    mode["drop_last"] = bool(getattr(inner, "drop_last", False))
    mode["batch_size"] = getattr(inner, "batch_size", None)
    mode["sampler"] = getattr(inner, "sampler", None)
    return mode


def resume_dataloader(
    dataloader: Any,
    sampler: EpisodeAwareSampler,
    *,
    step: int,
    num_processes: int,
    batch_size: int,
    origin: Any = None,
) -> dict[str, int]:
    """Restore ``sampler`` and accelerate's pass counter after ``step`` steps of a checkpointed run.

    Call it at resume, after ``accelerator.prepare(dataloader)``, with the checkpoint's ``step`` and the
    ``num_processes`` and ``batch_size`` of the run that wrote it. It reads accelerate's sharding mode
    (``split_batches``, ``even_batches``, ``drop_last``) and this process's index from the prepared
    ``dataloader``, computes the state with :func:`compute_sampler_state`, loads it into ``sampler`` and
    sets the dataloader's epoch (accelerate's ``iteration``) to the state's epoch, so every later
    ``set_epoch`` accelerate makes is the sampler's own epoch. Returns the state loaded.

    The checkpointed run must have used the same sharding mode. Another ``num_processes`` or
    ``batch_size`` resumes at the same global position (no sample lost or repeated; the per-process
    split of the remaining batches changes), except with ``even_batches=False`` when the processes'
    epochs had drifted apart (refused). After such a resize, ``step`` no longer maps to a position by
    itself: store ``{"step": step, **state}`` as the run's ``origin`` with its later checkpoints and pass
    it back here (see :func:`compute_sampler_state`).

    Raises:
        TypeError, ValueError: bad arguments; ``sampler`` is not the dataloader's sampler or is
            itself sharded (``world_size > 1``: accelerate shards the batches); a ``dispatch_batches``
            dataloader; a refused change of ``num_processes`` (see above).
    """
    if not isinstance(sampler, EpisodeAwareSampler):
        raise TypeError(f"sampler must be an EpisodeAwareSampler, got {type(sampler).__name__}")
    step = check_int("step", step, minimum=0)
    num_processes = check_int("num_processes", num_processes, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    mode = dataloader_mode(dataloader)
    if mode["sampler"] is not sampler:
        raise ValueError("sampler is not the sampler of dataloader's batch sampler (DataLoader(sampler=...))")
    if sampler.world_size != 1:
        raise ValueError(
            f"sampler has world_size={sampler.world_size}: under accelerate every process keeps a "
            "world-size-1 sampler and accelerate shards its batches"
        )
    n = sampler.num_frames
    kw = {
        "split_batches": mode["split_batches"],
        "even_batches": mode["even_batches"],
        "drop_last": mode["drop_last"],
    }
    if num_processes == mode["num_processes"]:
        state = compute_sampler_state(
            step, n, batch_size, num_processes, process_index=mode["process_index"], origin=origin, **kw
        )
    else:
        per_rank = {
            accelerate_steps(
                n, batch_size, num_processes, kw["split_batches"], kw["even_batches"], kw["drop_last"], r
            )[1]
            for r in range(num_processes)
        }
        if len(per_rank) > 1 and step >= min(per_rank):
            raise ValueError(
                f"cannot resume with num_processes={mode['num_processes']} from a checkpoint written with "
                f"num_processes={num_processes} and even_batches=False: its processes took different numbers "
                "of batches per epoch, so they were at different positions; resume with the same number of "
                "processes, or train with even_batches=True"
            )
        state = compute_sampler_state(
            step, n, batch_size, num_processes, process_index=0, origin=origin, **kw
        )
    sampler.load_state_dict(state)
    if hasattr(dataloader, "set_epoch"):
        dataloader.set_epoch(state["epoch"])  # accelerate's pass counter = the sampler's epoch
    return state
