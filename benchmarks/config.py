"""Sizes and repetitions of a run (``--quick``, full, ``--smoke``) and the suite's constants."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SECTIONS = (
    "fullepoch",
    "iteration",
    "restore",
    "peers_restore",
    "memory",
    "quality",
    "e2e",
    "state",
    "video",
    "startup",
    "overhead",
)
MiB = 1 << 20
ORDERS = (("frames", None), ("episodes", None), ("blocks", 16))
BLOCK_SIZE = 16


@dataclass
class Config:
    """Sizes and repetitions of one run (``--quick``, full, or the tiny ``--smoke`` used by tests)."""

    mode: str
    reps: int
    latency_reps: int
    fullepoch: list[tuple[int, int]]  # (N, E) pairs
    all_orders: set[tuple[int, int]]  # (N, E) pairs also run with order episodes / blocks
    no_randperm: set[tuple[int, int]]  # (N, E) pairs without randperm/frames (time budget)
    list_baselines_max_n: int  # DistributedSampler-as-list and Loader baselines up to this N (N Python ints)
    loader_prefix: int  # items of Loader(SamplerWrapper(RandomSampler)) timed before extrapolating
    lerobot_prefix: int  # items of the LeRobot-style loop timed before extrapolating
    iter_n: list[int]
    loader_n: int
    restore_n: list[int]
    restore_e: int
    restore_fracs: list[float]
    memory_n: list[int]
    memory_e: int
    memory_subprocess: bool
    e2e_episodes: int
    e2e_lengths: tuple[int, int]
    e2e_batch: list[int]
    restore_peers: list[tuple[int, int]] = field(default_factory=list)  # (N, E) of restore vs peers
    restore_peer_max_n: int = 10**7  # peers that materialize the epoch run up to this N
    quality_n: int = 10**5  # positions per order in the shuffle-quality table
    collect: bool = True  # a garbage collection before every timed call (off in --smoke: ~0.1 s each)
    targets: dict[str, Any] = field(default_factory=dict)


def make_config(mode: str) -> Config:
    if mode == "smoke":
        return Config(
            mode=mode,
            reps=3,
            latency_reps=3,
            fullepoch=[(10**4, 10**2)],
            all_orders={(10**4, 10**2)},
            no_randperm=set(),
            list_baselines_max_n=10**4,
            loader_prefix=2000,
            lerobot_prefix=500,
            iter_n=[10**4],
            loader_n=10**4,
            restore_n=[10**3, 10**12],
            restore_e=10**2,
            restore_fracs=[0.001, 0.999],
            memory_n=[10**6, 10**12],
            memory_e=10**3,
            memory_subprocess=False,
            e2e_episodes=6,
            e2e_lengths=(20, 40),
            e2e_batch=[32],
            restore_peers=[(10**4, 10**2), (10**12, 10**3)],
            restore_peer_max_n=10**4,
            quality_n=2000,
            collect=False,
            targets={
                "fullepoch": (10**4, 10**2),
                "iter": 10**4,
                "memory": (10**12, 10**3),
                "restore_construct": (10**4, 10**2),
                "restore_built": (10**12, 10**3),
            },
        )
    if mode == "quick":
        return Config(
            mode=mode,
            reps=3,
            latency_reps=9,
            fullepoch=[(10**6, 10**4), (10**7, 10**4)],
            all_orders={(10**6, 10**4)},
            no_randperm=set(),
            list_baselines_max_n=10**6,
            loader_prefix=2 * 10**5,
            lerobot_prefix=2 * 10**4,
            iter_n=[10**6],
            loader_n=10**6,
            restore_n=[10**3, 10**9, 10**12],
            restore_e=10**3,
            restore_fracs=[0.0, 0.001, 0.5, 0.999],
            memory_n=[10**6, 10**12],
            memory_e=10**6,
            memory_subprocess=True,
            e2e_episodes=60,
            e2e_lengths=(50, 150),
            e2e_batch=[32],
            restore_peers=[(10**6, 10**3), (10**12, 10**6)],
            restore_peer_max_n=10**6,
            quality_n=2 * 10**4,
            targets={
                "fullepoch": (10**7, 10**4),
                "iter": 10**6,
                "memory": (10**12, 10**6),
                "restore_construct": (10**6, 10**3),
                "restore_built": (10**12, 10**6),
            },
        )
    sizes = [(n, e) for n in (10**6, 10**7, 10**8) for e in (10**3, 10**4, 10**5)]
    return Config(
        mode="full",
        reps=5,
        latency_reps=21,
        fullepoch=sizes,
        all_orders={(10**6, 10**4), (10**7, 10**4)},
        no_randperm={(10**8, 10**3), (10**8, 10**5)},
        list_baselines_max_n=10**7,
        loader_prefix=5 * 10**5,
        lerobot_prefix=5 * 10**4,
        iter_n=[10**6, 10**7],
        loader_n=10**6,
        restore_n=[10**3, 10**6, 10**9, 10**12],
        restore_e=10**3,
        restore_fracs=[0.0, 0.001, 0.5, 0.999],
        memory_n=[10**6, 10**8, 10**10, 10**12],
        memory_e=10**6,
        memory_subprocess=True,
        e2e_episodes=200,
        e2e_lengths=(50, 150),
        e2e_batch=[32, 256],
        restore_peers=[(10**6, 10**3), (10**8, 10**4), (10**10, 10**5), (10**12, 10**6)],
        restore_peer_max_n=10**8,
        quality_n=10**5,
        targets={
            "fullepoch": (10**7, 10**4),
            "iter": 10**7,
            "memory": (10**12, 10**6),
            "restore_construct": (10**6, 10**3),
            "restore_built": (10**12, 10**6),
        },
    )
