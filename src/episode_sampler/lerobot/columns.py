"""How a Parquet data column becomes numpy rows: supported Arrow types, per-row shape, conversion."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["Column", "describe", "leaf", "numeric_numpy", "signature", "to_numpy"]


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


def numeric_numpy(data: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Values of an Arrow array as numpy, without pyarrow's pandas-based converter for the usual types.

    ``Array.to_numpy`` goes through pyarrow's pandas conversion code, whose first use imports pandas
    when it is installed (0.3-1 s at start-up, for nothing). Integer and floating arrays without
    nulls are viewed from their data buffer instead (zero-copy for one chunk), booleans unpacked from
    their bits; any other type (or nulls) falls back to ``to_numpy``.
    """
    t = data.type
    numeric = pa.types.is_integer(t) or pa.types.is_floating(t)
    if data.null_count or not (numeric or pa.types.is_boolean(t)):
        return data.to_numpy(zero_copy_only=False)
    dtype = np.dtype(np.bool_) if pa.types.is_boolean(t) else np.dtype(t.to_pandas_dtype())
    chunks = data.chunks if isinstance(data, pa.ChunkedArray) else [data]
    parts = []
    for c in chunks:
        n, buf = len(c), c.buffers()[1]
        if n == 0 or buf is None:
            continue
        if numeric:
            parts.append(np.frombuffer(buf, dtype=dtype, count=n, offset=c.offset * dtype.itemsize))
        else:
            bits = np.unpackbits(np.frombuffer(buf, dtype=np.uint8), bitorder="little")
            parts.append(bits[c.offset : c.offset + n].astype(np.bool_))
    if not parts:
        return np.zeros(0, dtype=dtype)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def to_numpy(col: Column, data: pa.ChunkedArray, path: str | Path) -> np.ndarray:
    """Rows of one column as a numpy array ``[n, *shape]`` (object array of str for strings)."""
    if data.null_count:
        raise ValueError(f"column {col.name!r} of {str(path)!r} holds null values")
    if col.kind == "scalar":
        return numeric_numpy(data)
    if col.kind == "string":
        return data.to_numpy(zero_copy_only=False)
    arr = data.combine_chunks() if data.num_chunks != 1 else data.chunk(0)
    n = len(arr)
    # child values taken by slicing, not ``flatten()``: that imports pyarrow.compute (0.2 s at start-up)
    if col.kind == "fixed":
        for _ in col.shape:
            size = arr.type.list_size
            arr = arr.values.slice(arr.offset * size, len(arr) * size)
            if arr.null_count:
                raise ValueError(f"column {col.name!r} of {str(path)!r} holds null values")
        return numeric_numpy(arr).reshape(n, *col.shape)
    offsets = numeric_numpy(arr.offsets)
    sizes = np.diff(offsets)
    if sizes.size and (sizes != sizes[0]).any():
        raise ValueError(
            f"column {col.name!r} of {str(path)!r} holds lists of different lengths "
            f"({int(sizes.min())} and {int(sizes.max())}); they cannot be stacked"
        )
    values = arr.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0])) if offsets.size else arr.values
    if values.null_count:
        raise ValueError(f"column {col.name!r} of {str(path)!r} holds null values")
    return numeric_numpy(values).reshape(n, int(sizes[0]) if sizes.size else 0)
