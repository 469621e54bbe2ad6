"""Deprecated location of :func:`write_lerobot_dataset`: it lives in :mod:`episode_sampler.lerobot.writer`."""

from .lerobot.writer import TASKS, write_lerobot_dataset

__all__ = ["TASKS", "write_lerobot_dataset"]
