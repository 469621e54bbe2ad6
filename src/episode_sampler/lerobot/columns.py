"""How a Parquet data column becomes numpy rows: supported Arrow types, per-row shape, conversion."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["Column", "describe", "leaf", "signature", "to_numpy"]


@dataclass(frozen=True)
class Column:
    """How a data column converts: ``kind`` in scalar | fixed | list | string; ``shape`` per row."""

    name: str
    kind: str
    arrow_type: pa.DataType
    shape: tuple[int, ...] = ()


def is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)


def is_string(t: pa.DataType) -> bool:
    is_view = getattr(pa.types, "is_string_view", lambda _: False)
    return pa.types.is_string(t) or pa.types.is_large_string(t) or is_view(t)


def describe(name: str, t: pa.DataType) -> Column | None:
    """Column conversion for an Arrow type, ``None`` if unsupported (images, structs, ...)."""
    if is_number(t):
        return Column(name, "scalar", t)
    if is_string(t):
        return Column(name, "string", t)
    if pa.types.is_fixed_size_list(t):
        shape, inner = [], t
        while pa.types.is_fixed_size_list(inner):
            shape.append(inner.list_size)
            inner = inner.value_type
        return Column(name, "fixed", t, tuple(shape)) if is_number(inner) else None
    if (pa.types.is_list(t) or pa.types.is_large_list(t)) and is_number(t.value_type):
        return Column(name, "list", t)
    return None


def leaf(t: pa.DataType) -> pa.DataType:
    """Element type of (nested) list types, ``t`` itself otherwise."""
    while hasattr(t, "value_type"):
        t = t.value_type
    return t


def signature(col: Column | None) -> tuple[Any, ...] | None:
    """What must agree between files for a column: kind, row shape and element type."""
    return None if col is None else (col.kind, col.shape, leaf(col.arrow_type))


def to_numpy(col: Column, data: pa.ChunkedArray, path: str | Path) -> np.ndarray:
    """Rows of one column as a numpy array ``[n, *shape]`` (object array of str for strings)."""
    if data.null_count:
        raise ValueError(f"column {col.name!r} of {str(path)!r} holds null values")
    if col.kind == "scalar":
        return data.to_numpy()
    if col.kind == "string":
        return data.to_numpy(zero_copy_only=False)
    arr = data.combine_chunks() if data.num_chunks != 1 else data.chunk(0)
    n = len(arr)
    if col.kind == "fixed":
        for _ in col.shape:
            arr = arr.flatten()
            if arr.null_count:
                raise ValueError(f"column {col.name!r} of {str(path)!r} holds null values")
        return arr.to_numpy(zero_copy_only=False).reshape(n, *col.shape)
    offsets = arr.offsets.to_numpy()
    sizes = np.diff(offsets)
    if sizes.size and (sizes != sizes[0]).any():
        raise ValueError(
            f"column {col.name!r} of {str(path)!r} holds lists of different lengths "
            f"({int(sizes.min())} and {int(sizes.max())}); they cannot be stacked"
        )
    values = arr.flatten()
    if values.null_count:
        raise ValueError(f"column {col.name!r} of {str(path)!r} holds null values")
    return values.to_numpy(zero_copy_only=False).reshape(n, int(sizes[0]) if sizes.size else 0)
