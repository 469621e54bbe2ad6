"""Parquet reads that name the file when it cannot be read.

pyarrow's own errors do not say which file they are about (``Parquet file size is 0 bytes``, ``Parquet
magic bytes not found in footer``): in a dataset of many files, these wrappers add the path. Every read
of a dataset's Parquet files (data, episode table, tasks) goes through them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["read_chosen_columns", "read_metadata", "read_row_groups", "read_schema", "read_table"]


@contextmanager
def _naming(path: str | Path) -> Iterator[None]:
    try:
        yield
    except pa.ArrowInvalid as exc:  # an empty, truncated or non-Parquet file (a ValueError)
        raise ValueError(f"cannot read Parquet file {str(path)!r}: {exc}") from exc


def read_schema(path: str | Path) -> pa.Schema:
    """The file's Arrow schema (memory-mapped)."""
    with _naming(path):
        return pq.read_schema(path, memory_map=True)


def read_metadata(path: str | Path) -> pq.FileMetaData:
    """The file's Parquet metadata (row groups, column chunk sizes)."""
    with _naming(path):
        return pq.read_metadata(path)


def read_table(path: str | Path, columns: Sequence[str] | None = None) -> pa.Table:
    """``columns`` of the file (all without them), memory-mapped.

    Read through ``ParquetFile``, not ``pq.read_table``: that one goes through ``pyarrow.dataset``,
    whose import pulls in pandas (about 0.5 s of a fresh process's start-up).
    """
    with _naming(path), pq.ParquetFile(path, memory_map=True) as pf:
        return pf.read(columns=None if columns is None else list(columns), use_threads=False)


def read_chosen_columns(
    path: str | Path, choose: Callable[[list[str]], Sequence[str]]
) -> tuple[list[str], pa.Table]:
    """The file's column names and the columns ``choose(names)`` picks, memory-mapped.

    The file is opened and its footer parsed once (:func:`read_schema` then :func:`read_table` parse
    it twice, which dominates for small files with many columns such as LeRobot's episode table).
    """
    with _naming(path), pq.ParquetFile(path, memory_map=True) as pf:
        names = list(pf.schema_arrow.names)
        return names, pf.read(columns=list(choose(names)), use_threads=False)


def read_row_groups(path: str | Path, groups: Sequence[int], columns: Sequence[str]) -> pa.Table:
    """``columns`` of the row groups ``groups`` of the file, memory-mapped."""
    with _naming(path):
        return pq.ParquetFile(path, memory_map=True).read_row_groups(list(groups), columns=list(columns))
