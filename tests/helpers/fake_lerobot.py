"""A minimal fake ``lerobot`` package, written into a directory, with LeRobot 0.6.1's import structure.

``lerobot/scripts/lerobot_train.py`` imports ``EpisodeAwareSampler, compute_sampler_state`` from
``lerobot.datasets`` and ``save_checkpoint``/``load_training_state``/``cycle`` at module level, as the
real one does, and ``train(argv)`` runs LeRobot's data path (sampler, resume arithmetic, ``DataLoader``,
``accelerator.prepare``, ``cycle``, checkpoints every ``save_freq`` steps) over ``range(num_frames)``,
logging each step's batch to ``steplog`` (JSON lines). Its own sampler is sequential, so a test can tell
which sampler ran.
"""

from __future__ import annotations

from pathlib import Path

FILES = {
    "lerobot/__init__.py": '__version__ = "{version}"\n',
    "lerobot/datasets/__init__.py": "from .sampler import EpisodeAwareSampler, compute_sampler_state\n",
    "lerobot/datasets/sampler.py": '''
class EpisodeAwareSampler:
    """Sequential stand-in for LeRobot's sampler (shuffle ignored)."""

    def __init__(self, from_idx, to_idx, episode_indices_to_use=None, drop_n_first_frames=0,
                 drop_n_last_frames=0, shuffle=False, seed=0, absolute_to_relative_idx=None):
        self.indices = [i for a, b in zip(from_idx, to_idx) for i in range(a, b - drop_n_last_frames)]
        self.epoch = 0
        self.start_index = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def state_dict(self):
        return {"epoch": self.epoch, "start_index": self.start_index}

    def load_state_dict(self, state):
        self.epoch, self.start_index = state["epoch"], state["start_index"]

    def __iter__(self):
        start, self.start_index = self.start_index, 0
        self.epoch += 1
        return iter(self.indices[start:])

    def __len__(self):
        return len(self.indices)


def compute_sampler_state(step, num_frames, batch_size, num_processes):
    import math
    batches = math.ceil(num_frames / batch_size)
    per_epoch = math.ceil(batches / num_processes)
    epoch, into = divmod(step, per_epoch)
    return {"epoch": epoch, "start_index": min(into * batch_size * num_processes, num_frames)}
''',
    "lerobot/common/__init__.py": "",
    "lerobot/common/train_utils.py": """
import json
from pathlib import Path


def save_checkpoint(checkpoint_dir, step, cfg, policy, optimizer, scheduler=None, preprocessor=None,
                    postprocessor=None, num_processes=None, batch_size=None, model_state_dict=None,
                    optim_state_dict=None):
    state_dir = Path(checkpoint_dir) / "training_state"
    state_dir.mkdir(parents=True, exist_ok=True)
    state = {"step": step, "num_processes": num_processes, "batch_size": batch_size}
    (state_dir / "training_step.json").write_text(json.dumps(state))


def load_training_state(checkpoint_dir, optimizer, scheduler, load_optimizer=True):
    state = json.loads((Path(checkpoint_dir) / "training_state" / "training_step.json").read_text())
    return state["step"], optimizer, scheduler


def load_training_num_processes(checkpoint_dir):
    path = Path(checkpoint_dir) / "training_state" / "training_step.json"
    return json.loads(path.read_text()).get("num_processes")


def load_training_batch_size(checkpoint_dir):
    path = Path(checkpoint_dir) / "training_state" / "training_step.json"
    return json.loads(path.read_text()).get("batch_size")
""",
    "lerobot/utils/__init__.py": "",
    "lerobot/utils/utils.py": """
def cycle(iterable):
    iterator = iter(iterable)
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            iterator = iter(iterable)
""",
    "lerobot/scripts/__init__.py": "",
    "lerobot/scripts/lerobot_train.py": '''
import json
import sys
from pathlib import Path

from lerobot.common.train_utils import (
    load_training_batch_size,
    load_training_num_processes,
    load_training_state,
    save_checkpoint,
)
from lerobot.datasets import EpisodeAwareSampler, compute_sampler_state
from lerobot.utils.utils import cycle

SEEN = {}


def train(argv=None):
    """argv: --key=value: output_dir, steplog, steps, batch_size, save_freq, resume_from, ends, ..."""
    args = dict(a[2:].split("=", 1) for a in (sys.argv[1:] if argv is None else argv))
    SEEN["argv"] = list(sys.argv[1:] if argv is None else argv)
    ends = [int(x) for x in args.get("ends", "10,25,31").split(",")]
    starts = [0, *ends[:-1]]
    sampler = EpisodeAwareSampler(starts, ends, drop_n_last_frames=int(args.get("drop_last_frames", 0)),
                                  shuffle=True, seed=int(args.get("seed", 0)))
    SEEN["sampler"] = sampler
    if "dry" in args:
        return sampler
    import torch
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration

    accelerator = Accelerator(cpu=True, dataloader_config=DataLoaderConfiguration(
        split_batches=args.get("split_batches") == "true", even_batches=args.get("even_batches") != "false"))
    step = 0
    batch_size = int(args["batch_size"])
    if "resume_from" in args:
        step, _, _ = load_training_state(Path(args["resume_from"]), None, None)
        if step > 0:
            nproc = load_training_num_processes(Path(args["resume_from"])) or accelerator.num_processes
            bs = load_training_batch_size(Path(args["resume_from"])) or batch_size
            sampler.load_state_dict(compute_sampler_state(step, len(sampler), bs, nproc))
    dataloader = torch.utils.data.DataLoader(range(ends[-1]), batch_size=batch_size, sampler=sampler,
                                             drop_last=False)
    dataloader = accelerator.prepare(dataloader)
    dl_iter = cycle(dataloader)
    steps, save_freq = int(args["steps"]), int(args.get("save_freq", 0))
    log = Path(args["steplog"] + f".{accelerator.process_index}")
    for _ in range(step, steps):
        batch = next(dl_iter)
        with open(log, "a") as f:
            f.write(json.dumps(batch.tolist()) + "\\n")
        step += 1
        if save_freq and step % save_freq == 0 and accelerator.is_main_process:
            save_checkpoint(checkpoint_dir=Path(args["output_dir"]) / f"{step:06d}", step=step, cfg=None,
                            policy=None, optimizer=None, num_processes=accelerator.num_processes,
                            batch_size=batch_size)
        accelerator.wait_for_everyone()
    return sampler


def main():
    train()


if __name__ == "__main__":
    main()
''',
}


def write_fake_lerobot(root: Path, version: str = "0.6.1") -> Path:
    """Write the package under ``root`` (put ``root`` on ``sys.path``); return ``root``."""
    for rel, text in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("{version}", version) if rel == "lerobot/__init__.py" else text)
    return root
