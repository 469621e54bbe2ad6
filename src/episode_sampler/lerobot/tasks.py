"""Task strings of a LeRobot v3 dataset: ``meta/tasks.parquet``.

LeRobot writes the file with pandas (``DataFrame({"task_index": ...}, index=Index(tasks, name="task"))
.to_parquet``): an ``int64`` column ``task_index`` and a string column ``task`` that pandas metadata
marks as the index, which LeRobot reads back with ``pd.read_parquet`` and looks up by
``tasks.iloc[task_index].name``. This module writes that exact schema and metadata with pyarrow alone
(pandas is not a dependency) and reads it, plus the layouts other writers produce: a plain ``task``
column without pandas metadata, or an unnamed pandas index (``__index_level_0__``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .columns import is_string, numeric_numpy
from .parquet_io import read_table
from .storage import Store, as_store

__all__ = ["TASKS_PATH", "read_tasks", "write_tasks"]

TASKS_PATH = "meta/tasks.parquet"

# What pandas 2.x (LeRobot 0.6.1 requires pandas < 3) stores for a string index named "task".
_PANDAS_METADATA = {
    "index_columns": ["task"],
    "column_indexes": [
        {
            "name": None,
            "field_name": None,
            "pandas_type": "unicode",
            "numpy_type": "object",
            "metadata": {"encoding": "UTF-8"},
        }
    ],
    "columns": [
        {
            "name": "task_index",
            "field_name": "task_index",
            "pandas_type": "int64",
            "numpy_type": "int64",
            "metadata": None,
        },
        {
            "name": "task",
            "field_name": "task",
            "pandas_type": "unicode",
            "numpy_type": "object",
            "metadata": None,
        },
    ],
    "attributes": {},
    "creator": {"library": "pyarrow", "version": pa.__version__},
    "pandas_version": "2.2.3",
}


def write_tasks(root: str | os.PathLike[str], tasks: Sequence[str]) -> Path:
    """Write ``root/meta/tasks.parquet`` as LeRobot does: task ``i`` gets ``task_index`` ``i``.

    Raises:
        TypeError: ``tasks`` is not a sequence of str.
        ValueError: duplicate tasks (LeRobot's tasks are unique; it refuses duplicates too).
    """
    if isinstance(tasks, str) or not isinstance(tasks, Sequence):
        raise TypeError(f"tasks must be a sequence of str, got {type(tasks).__name__}")
    tasks = list(tasks)
    for t in tasks:
        if not isinstance(t, str):
            raise TypeError(f"tasks must hold str, got {type(t).__name__} {t!r}")
    if len(set(tasks)) != len(tasks):
        dup = next(t for t in tasks if tasks.count(t) > 1)
        raise ValueError(f"tasks lists {dup!r} twice; task strings must be unique")
    table = pa.table(
        {"task_index": pa.array(np.arange(len(tasks), dtype=np.int64)), "task": pa.array(tasks, pa.string())}
    )
    table = table.replace_schema_metadata({b"pandas": json.dumps(_PANDAS_METADATA).encode()})
    path = Path(root) / TASKS_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def read_tasks(root: str | os.PathLike[str] | Store) -> dict[int, str] | None:
    """``{task_index: task}`` from ``root/meta/tasks.parquet``; ``None`` if the file does not exist.

    The task string is the pandas index column named in the file's pandas metadata, else a column
    ``task``, else an unnamed pandas index ``__index_level_0__``.

    Raises:
        ValueError: no task string column, no integer ``task_index`` column, nulls, or a duplicate
            ``task_index`` (each message names the file).
    """
    store = as_store(root)
    if not store.exists(TASKS_PATH):
        return None
    path = store.name(TASKS_PATH)
    table = read_table(store, TASKS_PATH)
    name = _task_column(table, path)
    if "task_index" not in table.column_names:
        raise ValueError(f"{path!r} has no column 'task_index'")
    idx_col = table.column("task_index")
    if not pa.types.is_integer(idx_col.type):
        raise ValueError(f"column 'task_index' of {path!r} must hold integers, got {idx_col.type}")
    if idx_col.null_count or table.column(name).null_count:
        raise ValueError(f"{path!r} holds null task entries")
    indices = numeric_numpy(idx_col).astype(np.int64).tolist()
    strings = table.column(name).to_pylist()
    out: dict[int, str] = {}
    for i, s in zip(indices, strings):
        if i in out:
            raise ValueError(f"task_index {i} appears twice in {path!r}")
        out[i] = s
    return out


def _task_column(table: pa.Table, path: str) -> str:
    candidates: list[str] = []
    raw = (table.schema.metadata or {}).get(b"pandas")
    if raw is not None:
        try:
            index_columns = json.loads(raw).get("index_columns", [])
        except (json.JSONDecodeError, AttributeError):
            index_columns = []
        candidates += [c for c in index_columns if isinstance(c, str)]
    candidates += ["task", "__index_level_0__"]
    for name in candidates:
        if name in table.column_names and is_string(table.schema.field(name).type):
            return name
    raise ValueError(
        f"{path!r} has no task string column (looked for the pandas index, 'task' and "
        f"'__index_level_0__'); columns: {table.column_names}"
    )
