"""LeRobot 0.6.1's item logic (``DatasetReader.get_item``, ``hf_transform_to_torch``, ``load_tasks``),
re-implemented over plain pyarrow/pandas as the test reference for LeRobotFrames (no video keys).

Differences from LeRobot are only in plumbing: the HF ``datasets.Dataset`` is the concatenation of
the data files in sorted path order (what ``load_nested_dataset`` builds), episodes likewise.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch


class LeRobotReference:
    def __init__(self, root: Path, delta_indices: dict[str, list[int]] | None = None) -> None:
        self.rows = pa.concat_tables(
            pq.read_table(p) for p in sorted((root / "data").glob("*/*.parquet"))
        ).to_pylist()
        episodes = pa.concat_tables(
            pq.read_table(p) for p in sorted((root / "meta" / "episodes").glob("*/*.parquet"))
        )
        self.episodes = episodes.to_pylist()  # meta.episodes[ep_idx]: positional, as LeRobot
        self.tasks = pd.read_parquet(root / "meta" / "tasks.parquet")  # io_utils.load_tasks
        self.tasks.index.name = "task"
        self.delta_indices = delta_indices

    def __len__(self) -> int:
        return len(self.rows)

    @staticmethod
    def _to_torch(row: dict) -> dict:  # hf_transform_to_torch
        return {k: v if isinstance(v, str) else torch.tensor(v) for k, v in row.items() if v is not None}

    def __getitem__(self, idx: int) -> dict:
        item = self._to_torch(self.rows[idx])
        ep_idx = item["episode_index"].item()
        abs_idx = item["index"].item()
        if self.delta_indices is not None:
            ep = self.episodes[ep_idx]
            ep_start, ep_end = ep["dataset_from_index"], ep["dataset_to_index"]
            query = {
                key: [max(ep_start, min(ep_end - 1, abs_idx + d)) for d in deltas]
                for key, deltas in self.delta_indices.items()
            }
            padding = {
                f"{key}_is_pad": torch.BoolTensor(
                    [(abs_idx + d < ep_start) | (abs_idx + d >= ep_end) for d in deltas]
                )
                for key, deltas in self.delta_indices.items()
            }
            item = {**item, **padding}
            for key, q_idx in query.items():  # absolute index == row for a whole dataset
                item[key] = torch.stack([self._to_torch(self.rows[i])[key] for i in q_idx])
        item["task"] = self.tasks.iloc[item["task_index"].item()].name
        return item
