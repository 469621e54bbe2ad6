"""Episode layouts (and option lists) shared by several test files, each defined once.

A layout is ``(from, to)``: LeRobot's ``episode_data_index`` bounds, ``to`` exclusive. A file with a
layout of its own keeps it; a layout used by two files lives here.
"""

from __future__ import annotations

import numpy as np

from episode_sampler import EpisodeIndex

# LeRobot-style bounds with gaps: frame 9 and frames 63..69 belong to no episode.
# 9 + 15 + 6 + 9 + 23 + 7 = 69 frames (= 3 * 23: some batch/world shapes divide it exactly).
GAPS_FROM = [0, 10, 25, 31, 40, 70]
GAPS_TO = [9, 25, 31, 40, 63, 77]

# Contiguous episodes of very different lengths (205 frames): short episodes vanish under drops.
NODE_LENGTHS = [17, 3, 40, 1, 25, 9, 33, 12, 5, 60]

# Both permutations; every kind of shuffle unit.
PERMUTATIONS = ["randperm", "feistel"]

# Named layouts as (episode lengths, gap after each episode), for the brute-force reference tests.
GAPPED_LAYOUTS = {
    "regular": ([50] * 40, [1] * 40),
    "no gaps": ([37] * 20, [0] * 20),  # the shared-offset path
    "tiny episodes in one bucket": ([1000] + [1] * 30 + [0] * 5 + [1000], [3] * 37),  # bisection
    "empty episodes": ([0, 5, 0, 0, 9, 0], [2, 0, 1, 4, 0, 3]),
    "one frame": ([1], [0]),
}


def contiguous(lengths) -> tuple[list[int], list[int]]:
    """``(from, to)`` of episodes of ``lengths`` laid end to end from frame 0."""
    to = np.cumsum(lengths).tolist()
    return [0, *to[:-1]], to


def gapped(lengths, gaps) -> tuple[list[int], list[int]]:
    """``(from, to)`` of episodes of ``lengths`` from frame 0, ``gaps[i]`` unused frames after episode i."""
    starts, ends, at = [], [], 0
    for length, gap in zip(lengths, gaps):
        starts.append(at)
        ends.append(at + length)
        at += length + gap
    return starts, ends


def gapped_index(lengths, gaps) -> EpisodeIndex:
    """:func:`gapped` as an :class:`EpisodeIndex`."""
    starts, ends = gapped(lengths, gaps)
    return EpisodeIndex(np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64))


def valid_frames(index: EpisodeIndex) -> list[int]:
    """Every valid frame of ``index``, in layout order (a materialized list)."""
    return [f for s, e in zip(index.starts.tolist(), index.ends.tolist()) for f in range(s, e)]
