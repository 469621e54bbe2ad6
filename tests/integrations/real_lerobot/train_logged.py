"""``lerobot-train`` with each trained batch's frame indices logged (run in the LeRobot venv).

``python train_logged.py {ours|lerobot} LOG [lerobot-train flags]`` (or under ``torchrun``):

- ``ours``: ``episode_sampler.integrations.lerobot_train.main`` (the launcher) with the flags;
- ``lerobot``: LeRobot's own ``lerobot.scripts.lerobot_train.main``, unchanged.

Nothing in LeRobot's flow is changed except that ``update_policy`` (called once per step with the
batch it trains on) first appends ``{"rank", "index"}`` to ``LOG.<rank>`` (JSON lines). The log is
written by the trainer's own step loop, independently of episode-sampler's code.
"""

from __future__ import annotations

import json
import os
import sys

import lerobot.scripts.lerobot_train as train_module


def main() -> int:
    which, log = sys.argv[1], sys.argv[2]
    rank = int(os.environ.get("RANK", "0"))
    original = train_module.update_policy

    def update_policy(train_metrics, policy, batch, *args, **kwargs):
        with open(f"{log}.{rank}", "a") as f:
            f.write(json.dumps({"rank": rank, "index": batch["index"].tolist()}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return original(train_metrics, policy, batch, *args, **kwargs)

    train_module.update_policy = update_policy
    if which == "ours":
        from episode_sampler.integrations.lerobot_train import main as launcher

        return launcher(sys.argv[3:])
    sys.argv = ["lerobot-train", *sys.argv[3:]]
    train_module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
