"""Seeded permutations of ``[0, n)`` keyed by (seed, epoch), applied to int64 position arrays.

Two kinds:

* ``"randperm"`` -- ``torch.randperm(n)`` with a generator seeded exactly as LeRobot does
  (:func:`randperm_seed`). Uniform and bit-compatible with LeRobot; O(n) memory per epoch.
* ``"feistel"`` -- a keyed Feistel network on the smallest even-bit power-of-two domain ``>= n``
  with cycle walking (see ``docs/permutations.md``). A bijection for every ``n >= 1``; O(1)
  memory and O(1) seek; vectorized over uint64 numpy arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validate import ArgumentTypeError, check_choice, check_int

PERMUTATIONS = ("randperm", "feistel")
FEISTEL_ROUNDS = 4
_FEISTEL_TAG = 0x46656973746C  # "Feistl": separates Feistel keys from the randperm seed stream
_M1 = np.uint64(0xBF58476D1CE4E5B9)  # SplitMix64 multipliers
_M2 = np.uint64(0x94D049BB133111EB)
_CHUNK = 1 << 16  # elements per vectorized block: keeps the working set in L2 cache
_U64 = (1 << 64) - 1


def check_seed(seed: Any, name: str = "seed") -> int:
    """Return ``seed`` as a Python int in ``[0, 2**64)``.

    Raises:
        ValueError: not an int (also a TypeError), or outside ``[0, 2**64)``.
    """
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise ArgumentTypeError(f"{name} must be an int in [0, 2**64), got {type(seed).__name__} {seed!r}")
    seed = int(seed)
    if not 0 <= seed <= _U64:
        raise ValueError(f"{name} must be an int in [0, 2**64), got {seed}")
    return seed


def randperm_seed(seed: int, epoch: int) -> int:
    """The torch generator seed LeRobot derives for (seed, epoch).

    ``int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0])``.
    """
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0])


def feistel_keys(seed: int, epoch: int, rounds: int = FEISTEL_ROUNDS) -> np.ndarray:
    """The Feistel round keys for (seed, epoch): 64-bit words from a tagged ``SeedSequence``.

    ``np.random.SeedSequence([seed, epoch, 0x46656973746C]).generate_state(rounds, np.uint64)``.
    """
    return np.random.SeedSequence([seed, epoch, _FEISTEL_TAG]).generate_state(rounds, dtype=np.uint64)


class Permutation:
    """A bijection of ``[0, n)`` for one (seed, epoch). Call it on an int64 array of positions."""

    kind: str = ""

    def __init__(self, n: int, seed: int, epoch: int) -> None:
        self.n = check_int("n", n, minimum=1)
        self.seed = check_seed(seed)
        self.epoch = check_int("epoch", epoch, minimum=0)

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        """Permuted value of each position (int64 array in, int64 array out; unchecked range)."""
        raise NotImplementedError

    def inverse(self, values: np.ndarray) -> np.ndarray:
        """Position of each permuted value: ``inverse(self(p)) == p``."""
        raise NotImplementedError

    def materialize(self) -> np.ndarray:
        """The whole permutation as an int64 array (O(n) memory)."""
        return self(np.arange(self.n, dtype=np.int64))


class RandpermPermutation(Permutation):
    """LeRobot's shuffle: ``torch.randperm(n, generator=torch.Generator().manual_seed(randperm_seed(...)))``.

    Materialized once at construction (O(n) memory); the inverse is built on first use.
    """

    kind = "randperm"

    def __init__(self, n: int, seed: int, epoch: int) -> None:
        super().__init__(n, seed, epoch)
        import torch

        g = torch.Generator().manual_seed(randperm_seed(self.seed, self.epoch))
        self._order = torch.randperm(self.n, generator=g).numpy()
        self._inverse: np.ndarray | None = None

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        return self._order[positions]

    def inverse(self, values: np.ndarray) -> np.ndarray:
        if self._inverse is None:
            inv = np.empty(self.n, dtype=np.int64)
            inv[self._order] = np.arange(self.n, dtype=np.int64)
            self._inverse = inv
        return self._inverse[values]

    def materialize(self) -> np.ndarray:
        return self._order.copy()


class FeistelPermutation(Permutation):
    """Keyed Feistel network with cycle walking: O(1) memory, O(1) seek, any ``n >= 1``.

    Domain: ``2**(2h)`` with ``h = max(1, ceil(log2(n)) / 2 rounded up)``, so ``n > domain / 4`` and
    cycle walking takes fewer than 4 passes on average. Round ``i`` maps ``(L, R)`` to
    ``(R, L ^ F(R, k_i))`` with ``F(R, k) = top h bits of mix(R ^ k)``, where ``mix`` is the
    SplitMix64 finalizer (two 64-bit multiplies, xor-shifts). Values ``>= n`` are encrypted again
    until they land in ``[0, n)``; a bijection on the power-of-two domain makes this a bijection
    on ``[0, n)`` and always terminates (the cycle through the start value returns to it).
    """

    kind = "feistel"

    def __init__(self, n: int, seed: int, epoch: int, rounds: int = FEISTEL_ROUNDS) -> None:
        super().__init__(n, seed, epoch)
        rounds = check_int("rounds", rounds, minimum=4)
        bits = max(2, (self.n - 1).bit_length())
        bits += bits & 1
        self.half_bits = bits // 2
        self._h = np.uint64(self.half_bits)
        self._top = np.uint64(64 - self.half_bits)
        self._mask = np.uint64((1 << self.half_bits) - 1)
        self._n = np.uint64(self.n)
        self.keys = feistel_keys(self.seed, self.epoch, rounds)

    def _rounds(self, x: np.ndarray, decrypt: bool) -> np.ndarray:
        """One pass of the network over uint64 ``x`` (a fresh uint64 array is returned)."""
        h, top, mask = self._h, self._top, self._mask
        left = x >> h
        right = x & mask
        t = np.empty_like(x)
        u = np.empty_like(x)
        keys = self.keys[::-1] if decrypt else self.keys
        for k in keys:
            src = left if decrypt else right  # the half fed to F
            np.bitwise_xor(src, k, out=t)
            np.multiply(t, _M1, out=t)
            np.right_shift(t, 30, out=u)
            np.bitwise_xor(t, u, out=t)
            np.multiply(t, _M2, out=t)
            np.right_shift(t, top, out=t)
            if decrypt:
                np.bitwise_xor(right, t, out=right)
            else:
                np.bitwise_xor(left, t, out=left)
            left, right = right, left
        np.left_shift(left, h, out=left)
        np.bitwise_or(left, right, out=left)
        return left

    def _walk(self, x: np.ndarray, decrypt: bool) -> np.ndarray:
        y = self._rounds(x, decrypt)
        idx = np.flatnonzero(y >= self._n)
        while idx.size:
            z = self._rounds(y[idx], decrypt)
            y[idx] = z
            idx = idx[z >= self._n]
        return y

    def _apply(self, positions: np.ndarray, decrypt: bool) -> np.ndarray:
        flat = np.asarray(positions, dtype=np.int64).ravel()
        out = np.empty(flat.size, dtype=np.int64)
        for lo in range(0, flat.size, _CHUNK):
            chunk = flat[lo : lo + _CHUNK].astype(np.uint64)
            out[lo : lo + _CHUNK] = self._walk(chunk, decrypt).view(np.int64)
        return out.reshape(np.shape(positions))

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        return self._apply(positions, decrypt=False)

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return self._apply(values, decrypt=True)


def make_permutation(kind: str, n: int, seed: int, epoch: int) -> Permutation:
    """The permutation of ``[0, n)`` of the given kind for (seed, epoch).

    Raises:
        ValueError: unknown ``kind``; ``n < 1``; seed outside ``[0, 2**64)``; negative epoch.
    """
    kind = check_choice("permutation", kind, PERMUTATIONS)
    if kind == "randperm":
        return RandpermPermutation(n, seed, epoch)
    return FeistelPermutation(n, seed, epoch)
