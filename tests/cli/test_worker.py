"""The demo's training worker (``episode_sampler.cli.worker``) as shipped: no test hooks in it; the
fault-injection runs that kill it are in test_worker_checkpoint.py."""

from __future__ import annotations


def test_the_worker_carries_no_test_hooks() -> None:
    """The fault-injection kill points live in tests/helpers/pausing_worker.py, not in the package."""
    from episode_sampler.cli import worker, worker_checkpoint

    usage = worker.build_parser().format_help()
    assert "--pause-at" not in usage and "--status" not in usage
    assert not hasattr(worker_checkpoint, "Pauser") and not hasattr(worker_checkpoint, "PHASES")
