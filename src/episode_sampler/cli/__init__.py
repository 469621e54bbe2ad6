"""The ``episode-sampler`` command line: ``demo``, ``inspect``, ``bench`` and ``lerobot-train``.

Modules: :mod:`.parser` (arguments and usage errors), :mod:`.entry` (``main``: dispatch and exit codes),
:mod:`.inspect` (describe a saved state), :mod:`.demo` (the kill-and-resume demo, run from this
process), :mod:`.progress` (status lines and step bars), :mod:`.worker` (the demo's training process,
``python -m episode_sampler.cli.worker``) and :mod:`.worker_checkpoint` (its crash-consistent
checkpoints). :mod:`.bench` measures a user's dataset (:mod:`.bench_measure`: one setting;
:mod:`.bench_report`: the recommendation, the table, the JSON schema). ``lerobot-train`` runs
:mod:`episode_sampler.integrations.lerobot_train`.
"""

from .entry import main

__all__ = ["main"]
