"""Parquet reads of a dataset's files that name the file when it cannot be read.

pyarrow's own errors do not say which file they are about (``Parquet file size is 0 bytes``, ``Parquet
magic bytes not found in footer``): in a dataset of many files, these wrappers add the path or URL.
Every read of a dataset's Parquet files (data, episode table, tasks) goes through them, addressed as
``(store, rel)`` (:mod:`.storage`): a local file is memory-mapped by path, a remote one read through
a seekable file object (only the footer and the column chunks asked for are fetched).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .storage import Store

__all__ = [
    "columns_uncompressed_bytes",
    "parquet_file",
    "read_metadata",
    "read_row_groups",
    "read_schema",
    "read_table",
]


@contextmanager
def _opened(store: Store, rel: str) -> Iterator[Any]:
    """The file's source for pyarrow (path or file object, closed afterwards), errors naming it."""
    source = store.parquet_source(rel)
    try:
        yield source
    except pa.ArrowInvalid as exc:  # an empty, truncated or non-Parquet file (a ValueError)
        raise ValueError(f"cannot read Parquet file {store.name(rel)!r}: {exc}") from exc
    finally:
        if not isinstance(source, str):
            source.close()


@contextmanager
def parquet_file(store: Store, rel: str) -> Iterator[pq.ParquetFile]:
    """The file opened once (footer parsed once): read its ``schema_arrow``, then ``read(columns=...)``
    inside the block; errors name the file."""
    with _opened(store, rel) as source:
        yield pq.ParquetFile(source, memory_map=True)


def read_schema(store: Store, rel: str) -> pa.Schema:
    """The file's Arrow schema."""
    with _opened(store, rel) as source:
        return pq.read_schema(source, memory_map=True)


def read_metadata(store: Store, rel: str) -> pq.FileMetaData:
    """The file's Parquet metadata (row groups, column chunk sizes)."""
    with _opened(store, rel) as source:
        return pq.read_metadata(source, memory_map=True)


def read_table(store: Store, rel: str, columns: Sequence[str] | None = None) -> pa.Table:
    """``columns`` of the file (all without them), memory-mapped when local.

    Read with ``ParquetFile.read``, not ``pq.read_table``: the latter goes through pyarrow's datasets
    layer, slower per file, and its first use imports pandas when it is installed (0.3-1 s)."""
    with parquet_file(store, rel) as pf:
        return pf.read(columns=None if columns is None else list(columns))


def read_row_groups(store: Store, rel: str, groups: Sequence[int], columns: Sequence[str]) -> pa.Table:
    """``columns`` of the row groups ``groups`` of the file, memory-mapped when local."""
    with _opened(store, rel) as source:
        return pq.ParquetFile(source, memory_map=True).read_row_groups(list(groups), columns=list(columns))


def columns_uncompressed_bytes(meta: pq.FileMetaData, names: Sequence[str]) -> int:
    """Uncompressed bytes of the columns ``names`` (and their nested leaves) over every row group."""
    nbytes = 0
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        for c in range(rg.num_columns):
            col = rg.column(c)
            path = col.path_in_schema
            if any(path == n or path.startswith(n + ".") for n in names):
                nbytes += col.total_uncompressed_size
    return nbytes
