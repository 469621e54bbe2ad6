"""Independent, deliberately naive reference implementations used as test oracles."""

from __future__ import annotations

import numpy as np
import torch

MASK64 = (1 << 64) - 1


def lerobot_indices(from_idx, to_idx, episodes=None, drop_first=0, drop_last=0) -> list[int]:
    """LeRobot's materialized list of valid frames, written out as its loop does it."""
    indices: list[int] = []
    for ep, (a, b) in enumerate(zip(from_idx, to_idx)):
        if episodes is not None and ep not in episodes:
            continue
        if drop_first + drop_last >= b - a:
            continue
        indices.extend(range(a + drop_first, b - drop_last))
    return indices


def lerobot_generator(seed: int, epoch: int) -> torch.Generator:
    s = int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0])
    return torch.Generator().manual_seed(s)


def lerobot_epoch(indices: list[int], seed: int, epoch: int, shuffle: bool = True) -> list[int]:
    """LeRobot's order of one epoch: ``indices[torch.randperm(n, generator=g)]``."""
    if not shuffle:
        return list(indices)
    order = torch.randperm(len(indices), generator=lerobot_generator(seed, epoch))
    return [indices[int(i)] for i in order]


def _mix(x: int, key: int, half_bits: int) -> int:
    t = (x ^ key) & MASK64
    t = (t * 0xBF58476D1CE4E5B9) & MASK64
    t ^= t >> 30
    t = (t * 0x94D049BB133111EB) & MASK64
    return t >> (64 - half_bits)


def feistel_reference(n: int, seed: int, epoch: int, position: int, rounds: int = 4) -> int:
    """The documented Feistel construction on Python ints, one position at a time."""
    keys = [
        int(k)
        for k in np.random.SeedSequence([seed, epoch, 0x46656973746C]).generate_state(rounds, dtype=np.uint64)
    ]
    bits = max(2, (n - 1).bit_length())
    bits += bits & 1
    h = bits // 2
    mask = (1 << h) - 1
    x = position
    while True:
        left, right = x >> h, x & mask
        for k in keys:
            left, right = right, left ^ _mix(right, k, h)
        x = (left << h) | right
        if x < n:
            return x


def units_of(indices_by_episode: list[list[int]], order: str, block_size: int | None) -> list[list[int]]:
    """The shuffle units: single frames, whole episodes, or blocks cut at each episode's first frame."""
    if order == "frames":
        return [[f] for ep in indices_by_episode for f in ep]
    if order == "episodes":
        return [list(ep) for ep in indices_by_episode if ep]
    out = []
    for ep in indices_by_episode:
        for i in range(0, len(ep), block_size):
            out.append(ep[i : i + block_size])
    return out


def episodes_lists(from_idx, to_idx, episodes=None, drop_first=0, drop_last=0) -> list[list[int]]:
    out = []
    for ep, (a, b) in enumerate(zip(from_idx, to_idx)):
        if episodes is not None and ep not in episodes:
            continue
        if b - drop_last > a + drop_first:
            out.append(list(range(a + drop_first, b - drop_last)))
    return out


def reference_epoch(
    eps: list[list[int]],
    order: str,
    block_size,
    permutation: str,
    seed: int,
    epoch: int,
    shuffle: bool = True,
) -> list[int]:
    """An epoch's full order from a materialized unit list and a materialized permutation."""
    units = units_of(eps, order, block_size)
    n = len(units)
    if not shuffle:
        perm = list(range(n))
    elif permutation == "randperm":
        perm = [int(i) for i in torch.randperm(n, generator=lerobot_generator(seed, epoch))]
    else:
        perm = [feistel_reference(n, seed, epoch, p) for p in range(n)]
    return [f for slot in range(n) for f in units[perm[slot]]]


def shard(full: list[int], rank: int, world: int, drop_last: bool, global_start: int = 0) -> list[int]:
    """Rank ``rank``'s samples: global positions c + r + k*W, wrapping past the end (drop_last=False)."""
    n = len(full)
    remaining = n - global_start
    count = remaining // world if drop_last else -(-remaining // world)
    return [full[(global_start + rank + k * world) % n] for k in range(count)]


class LeRobotSamplerModel:
    """LeRobot 0.6.1's ``EpisodeAwareSampler`` epoch/position logic, written out from its source.

    ``__iter__`` binds (epoch, start_index) eagerly and moves to (epoch + 1, 0); ``set_epoch`` sets the
    epoch and keeps ``start_index``; ``load_state_dict`` sets both.
    """

    def __init__(self, indices: list[int], seed: int) -> None:
        self.indices, self.seed = list(indices), seed
        self.epoch, self.start_index = 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "start_index": self.start_index}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.start_index = state["epoch"], state["start_index"]

    def __iter__(self):
        epoch, start = self.epoch, self.start_index
        self.epoch, self.start_index = epoch + 1, 0
        return iter(lerobot_epoch(self.indices, self.seed, epoch)[start:])


# ---------------------------------------------------------------- per-sample seeds (docs/api.md, seeding.py)
GOLDEN = 0x9E3779B97F4A7C15


def ref_mix(z: int) -> int:
    """SplitMix64's finalizer on Python ints."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def ref_sample_seed(seed: int, epoch: int, frame: int) -> int:
    """The documented per-sample seed: mix(mix(mix(seed + G) + (epoch + 1) G) + (frame + 1) G)."""
    b = ref_mix((ref_mix((seed + GOLDEN) & MASK64) + (epoch + 1) * GOLDEN) & MASK64)
    return ref_mix((b + (frame + 1) * GOLDEN) & MASK64)
