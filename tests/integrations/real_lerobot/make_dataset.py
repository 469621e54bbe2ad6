"""Write the integration run's dataset with LeRobot's own API (run in the LeRobot venv).

``python make_dataset.py ROOT``: 9 episodes of 7..15 frames (99 frames), no video. Each frame's
``observation.state`` is ``[global frame index, episode index]``, so the trained order can be read back
from a batch (its ``index`` column holds the same number).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from lerobot.datasets.lerobot_dataset import LeRobotDataset

LENGTHS = [7, 15, 9, 13, 8, 11, 14, 10, 12]


def main(root: Path) -> None:
    features = {
        "observation.state": {"dtype": "float32", "shape": (2,), "names": ["frame", "episode"]},
        # ACT needs an image or an environment state among its inputs
        "observation.environment_state": {"dtype": "float32", "shape": (2,), "names": ["frame", "episode"]},
        "action": {"dtype": "float32", "shape": (2,), "names": ["a0", "a1"]},
    }
    dataset = LeRobotDataset.create("local/es_order", fps=10, features=features, root=root, use_videos=False)
    frame = 0
    for episode, length in enumerate(LENGTHS):
        for _ in range(length):
            state = np.array([frame, episode], dtype=np.float32)
            dataset.add_frame(
                {
                    "observation.state": state,
                    "observation.environment_state": state,
                    "action": state * 0.5,
                    "task": "order",
                }
            )
            frame += 1
        dataset.save_episode()
    dataset.finalize()
    print(f"wrote {frame} frames in {len(LENGTHS)} episodes to {root}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
