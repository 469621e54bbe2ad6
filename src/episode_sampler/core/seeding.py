"""Per-sample seeds for augmentations: a pure function of (seed, epoch, frame), never of worker state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

import numpy as np

from .validation import check_int

__all__ = ["GOLDEN_GAMMA", "SPLITMIX_M1", "SPLITMIX_M2", "sample_seed", "splitmix64"]

_MASK = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
SPLITMIX_M1 = 0xBF58476D1CE4E5B9  # SplitMix64's finalizer multipliers (also the Feistel round function's)
SPLITMIX_M2 = 0x94D049BB133111EB
_M1 = np.uint64(SPLITMIX_M1)
_M2 = np.uint64(SPLITMIX_M2)
_G = np.uint64(GOLDEN_GAMMA)


def splitmix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output mix (a bijection of uint64), element-wise on a uint64 array (wrapping)::

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB
    return z ^ (z >> 31)
    """
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@overload
def sample_seed(seed: int, epoch: int, frame_index: int) -> int: ...
@overload
def sample_seed(seed: int, epoch: int, frame_index: np.ndarray | Sequence[int]) -> np.ndarray: ...
def sample_seed(seed: int, epoch: int, frame_index: Any) -> int | np.ndarray:
    """A 64-bit seed for the augmentation of one sample, independent of workers and restore points.

    With ``M = 2**64``, ``G = 0x9E3779B97F4A7C15`` and ``mix`` = :func:`splitmix64`, all arithmetic
    modulo ``M``::

        a = mix(seed + G)                   # first SplitMix64 output of state `seed`
        b = mix(a + (epoch + 1) * G)
        sample_seed = mix(b + (frame_index + 1) * G)

    For fixed ``(seed, epoch)`` the map ``frame_index -> sample_seed`` is injective (``G`` is odd and
    ``mix`` a bijection), and likewise ``epoch -> b`` for a fixed seed, so no two frames of an epoch
    share a seed; across epochs or seeds collisions are as unlikely as for random 64-bit values.

    Args:
        seed: base seed in ``[0, 2**64)``.
        epoch: epoch number in ``[0, 2**64)``.
        frame_index: a frame index (int) or an integer numpy array of them, each in ``[0, 2**64)``.

    Returns:
        A Python int in ``[0, 2**64)`` for an int ``frame_index``, else a ``uint64`` array of the same
        shape (usable as ``numpy.random.default_rng(int(s))`` or ``torch.manual_seed(int(s))``).

    Raises:
        TypeError: a non-integer argument (bools, floats and float arrays included).
        ValueError: an argument out of range (named in the message).
    """
    seed = check_int("seed", seed, minimum=0, maximum=_MASK)
    epoch = check_int("epoch", epoch, minimum=0, maximum=_MASK)
    scalar = isinstance(frame_index, (int, np.integer)) and not isinstance(frame_index, (bool, np.bool_))
    if scalar:
        frames = np.array([check_int("frame_index", frame_index, minimum=0, maximum=_MASK)], dtype=np.uint64)
    else:
        frames = _frame_array(frame_index)
    a = splitmix64(np.array([(seed + GOLDEN_GAMMA) & _MASK], dtype=np.uint64))
    with np.errstate(over="ignore"):
        b = splitmix64(a + np.uint64((epoch + 1) & _MASK) * _G)
        out = splitmix64(b + (frames + np.uint64(1)) * _G)
    return int(out[0]) if scalar else out


def _frame_array(frame_index: Any) -> np.ndarray:
    if isinstance(frame_index, (bool, np.bool_, float, str, bytes)):
        raise TypeError(f"frame_index must be an int or an integer array, got {type(frame_index).__name__}")
    arr = np.asarray(frame_index)
    if arr.dtype == object:
        raise TypeError("frame_index must be an int or an integer array, got an object array")
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"frame_index must be an int or an integer array, got dtype {arr.dtype}")
    if arr.size and np.issubdtype(arr.dtype, np.signedinteger) and arr.min() < 0:
        raise ValueError(f"frame_index must be >= 0, got {int(arr.min())}")
    return arr.astype(np.uint64)
