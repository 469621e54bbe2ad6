#!/usr/bin/env python
"""Mix three LeRobot datasets by weight, checkpoint mid-pass, restore into a fresh graph.

    python examples/mixture.py

One ``EpisodeSamplerNode`` per dataset (batched reads: one ``get_batch`` per batch) under torchdata's
``MultiNodeWeightedSampler``, built by ``episode_sampler.mixture.lerobot_mixture``. The loader state
goes through a JSON checkpoint (``state_to_json``: the mixer's RNG state is a tensor) and a freshly
built graph continues exactly where the first one stopped. ``pipelines/mixture.py`` is the full
training script (checkpoints, resume after SIGKILL).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

from torchdata.nodes import Loader, Prefetcher

from episode_sampler import check_exactness, write_lerobot_dataset
from episode_sampler.mixture import lerobot_mixture, state_from_json, state_to_json

WEIGHTS = {"pick": 3.0, "push": 1.0, "drawer": 1.0}
BATCH = 8


def build(roots: dict[str, str]) -> Loader:
    graph = lerobot_mixture(
        roots,
        WEIGHTS,
        batch_size=BATCH,
        columns=["index", "observation.state"],
        shuffle=True,
        seed=0,
        permutation="feistel",
        rank=0,
        world_size=1,
    )
    return Loader(Prefetcher(graph, prefetch_factor=2))


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        roots = {}
        for i, name in enumerate(WEIGHTS):
            roots[name] = str(Path(tmp) / name)
            write_lerobot_dataset(roots[name], num_episodes=6, min_length=10, max_length=30, seed=i)

        loader = build(roots)
        assert check_exactness(loader) == []
        assert check_exactness(loader, elastic=True, warn=False)  # a mixture: same world size only
        reference = [(b["dataset"], b["index"].tolist()) for b in loader]  # one uninterrupted pass
        counts = Counter(name for name, _ in reference)
        print(f"one pass: {len(reference)} batches, per dataset {dict(sorted(counts.items()))}")

        loader = build(roots)
        it = iter(loader)
        first = [(b["dataset"], b["index"].tolist()) for b in (next(it) for _ in range(10))]
        checkpoint = json.dumps(state_to_json(loader.state_dict()))  # what a checkpoint file holds
        print(f"checkpoint after 10 batches: {len(checkpoint)} bytes of JSON")

        restored = build(roots)  # a new process would build the graph again
        restored.load_state_dict(state_from_json(json.loads(checkpoint)))
        rest = [(b["dataset"], b["index"].tolist()) for b in restored]
        assert first + rest == reference, "the restored mixture differs from the uninterrupted pass"
        print(f"mixture OK: 10 + {len(rest)} batches identical to the uninterrupted pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
