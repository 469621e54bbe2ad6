#!/usr/bin/env python
"""Quickstart: the sampler on its own, then the torchdata pipeline over a LeRobot v3 dataset.

python examples/quickstart.py
"""

from __future__ import annotations

import tempfile

from torchdata.nodes import Loader, Mapper, Prefetcher

from episode_sampler import EpisodeAwareSampler, LeRobotFrames, write_lerobot_dataset
from episode_sampler.node import EpisodeSamplerNode


def sampler_basics() -> None:
    # Three episodes, given as LeRobot's dataset_from_index / dataset_to_index.
    sampler = EpisodeAwareSampler(
        [0, 120, 300], [120, 300, 410], drop_n_last_frames=15, shuffle=True, seed=0, permutation="feistel"
    )
    print(f"sampler: {sampler.num_frames} valid frames per epoch (410 minus 3 x 15 dropped)")

    it = iter(sampler)
    first = [next(it) for _ in range(100)]
    state = sampler.state_dict()  # a small JSON dict
    print(
        f"after 100 samples: epoch {state['epoch']}, start_index {state['start_index']}, "
        f"fingerprint {state['fingerprint'][:8]}..."
    )

    resumed = EpisodeAwareSampler(
        [0, 120, 300], [120, 300, 410], drop_n_last_frames=15, shuffle=True, seed=0, permutation="feistel"
    )
    resumed.load_state_dict(state)  # O(1): nothing is replayed
    rest = list(iter(resumed))  # list(iter(...)), not list(sampler): see the README
    assert first + rest == sampler.frame_indices(0).tolist(), "resume must continue the same order"
    assert sorted(first + rest) == sorted(range(0, 105)) + list(range(120, 285)) + list(range(300, 395))
    print(f"resumed: {len(rest)} samples left, epoch 0 complete, no duplicates, no gaps")


def pipeline() -> None:
    with tempfile.TemporaryDirectory() as root:
        # one tiny camera, stored as LeRobot stores cameras: AV1 video, many episodes per MP4 file
        episodes = write_lerobot_dataset(root, num_episodes=12, cameras={"observation.images.top": (64, 64)})
        dataset = LeRobotFrames(
            root, columns=["index", "episode_index", "observation.state", "action", "observation.images.top"]
        )
        node = EpisodeSamplerNode.from_lerobot(
            root, batch_size=16, shuffle=True, seed=0, permutation="feistel", order="blocks", block_size=4
        )
        loader = Loader(Prefetcher(Mapper(node, dataset.get_batch), prefetch_factor=2))

        seen, images = [], []
        for batch in loader:  # one epoch
            seen += batch["index"].tolist()
            images.append(batch["observation.images.top"])
        image = images[0]
        print(
            f"pipeline: {episodes.num_episodes} episodes, {len(seen)} frames in one epoch, "
            f"batch keys {sorted(batch)}"
        )
        # as LeRobot returns camera frames: float32 CHW in [0, 1], decoded a batch at a time
        low, high = image.min().item(), image.max().item()
        print(f"camera batch: {tuple(image.shape)} {image.dtype}, values in [{low:.2f}, {high:.2f}]")
        assert sorted(seen) == list(range(episodes.num_frames))
        # order="blocks": whole blocks of 4 consecutive frames (cut from each episode's start) are shuffled
        blocks = {
            b: list(range(b, min(b + 4, end)))
            for start, end in zip(episodes.starts.tolist(), episodes.ends.tolist())
            for b in range(start, end, 4)
        }
        pos = 0
        while pos < len(seen):
            block = blocks[seen[pos]]  # every block starts a run of the stream...
            assert seen[pos : pos + len(block)] == block  # ...and is yielded whole, in order
            pos += len(block)
        print(
            f"first frames: {seen[:12]} (shuffled blocks of 4 consecutive frames: one video seek per block)"
        )


if __name__ == "__main__":
    sampler_basics()
    pipeline()
    print("quickstart OK")
