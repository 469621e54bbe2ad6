"""Argument checks shared by every constructor: a clear TypeError/ValueError that names the argument."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

_INT64_MAX = np.iinfo(np.int64).max
_INT64 = np.dtype(np.int64)


class ArgumentTypeError(TypeError, ValueError):
    """A wrong argument type. Subclasses both TypeError and ValueError so either ``except`` catches it."""


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as a Python int; TypeError for non-integers (bools included), ValueError for range."""
    if type(value) is not int:  # plain ints (the usual case) skip the tensor and ABC checks
        value = unwrap_tensor(value)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
            raise ArgumentTypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
        value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` as a bool; TypeError unless it is a real bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``; TypeError/ValueError otherwise."""
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be one of {choices}, got {type(value).__name__} {value!r}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def int_array(name: str, values: Any) -> np.ndarray:
    """Convert a 1-d sequence of integers to a fresh int64 array; TypeError for non-integer input."""
    if type(values) is np.ndarray and values.dtype == _INT64 and values.ndim == 1:
        return values.copy()  # the usual case (bounds read from a table): one copy, no other check
    if isinstance(values, (str, bytes)) or isinstance(values, dict):
        raise ArgumentTypeError(f"{name} must be a 1-d sequence of ints, got {type(values).__name__}")
    if hasattr(values, "detach") and hasattr(values, "cpu"):  # torch.Tensor without importing torch here
        values = values.detach().cpu().numpy()
    if isinstance(values, range):
        arr = np.arange(values.start, values.stop, values.step, dtype=np.int64)
    else:
        try:
            arr = np.asarray(values)
        except (ValueError, TypeError) as exc:
            raise ArgumentTypeError(f"{name} must be a 1-d sequence of ints: {exc}") from None
    if arr.ndim != 1:
        if arr.ndim == 0:
            raise ArgumentTypeError(f"{name} must be a 1-d sequence of ints, got a scalar {values!r}")
        raise ValueError(f"{name} must be 1-d, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype == np.bool_:
        raise ArgumentTypeError(f"{name} must hold ints, got bools")
    if arr.dtype == object:
        out = np.empty(arr.size, dtype=np.int64)
        for i, v in enumerate(arr.tolist()):
            out[i] = check_int(f"{name}[{i}]", v, minimum=-_INT64_MAX, maximum=_INT64_MAX)
        return out
    if not np.issubdtype(arr.dtype, np.integer):
        raise ArgumentTypeError(f"{name} must hold ints, got dtype {arr.dtype}")
    if arr.dtype == np.uint64 and arr.size and int(arr.max()) > _INT64_MAX:
        raise ValueError(f"{name} holds a value larger than int64 max: {int(arr.max())}")
    return arr.astype(np.int64, copy=True)


def unwrap_tensor(value: Any) -> Any:
    """A 0-d integer torch tensor as a Python int (LeRobot code often passes those); else unchanged."""
    if type(value).__name__ == "Tensor" and hasattr(value, "dim") and value.dim() == 0:
        if not value.dtype.is_floating_point and not value.dtype.is_complex and value.dtype != _torch_bool():
            return int(value.item())
    return value


def _torch_bool() -> Any:
    import torch

    return torch.bool
