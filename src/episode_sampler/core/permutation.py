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

from .seeding import SPLITMIX_M1, SPLITMIX_M2
from .validation import ArgumentTypeError, check_choice, check_int, unwrap_tensor

PERMUTATIONS = ("randperm", "feistel")
FEISTEL_ROUNDS = 4
_FEISTEL_TAG = 0x46656973746C  # "Feistl": separates Feistel keys from the randperm seed stream
_M1 = np.uint64(SPLITMIX_M1)
_M2 = np.uint64(SPLITMIX_M2)
_CHUNK = 1 << 16  # elements per vectorized block: keeps the working set in L2 cache
_WALK_DEFER = 1024  # cycle-walking values left per chunk below this are finished after the last chunk
_S30 = np.uint64(30)
_TABLE_MAX_BITS = 16  # tabulate the round function for half widths up to this (4 x 512 KiB at most)
_TABLE_MIN_SIZE = 1 << 14  # ... and only for calls at least this long (small calls: arithmetic is cheaper)
_U64 = (1 << 64) - 1


def check_seed(seed: Any, name: str = "seed") -> int:
    """Return ``seed`` as a Python int in ``[0, 2**64)``.

    Raises:
        ValueError: not an int (also a TypeError), or outside ``[0, 2**64)``.
    """
    seed = unwrap_tensor(seed)
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

    def __init__(self, n: int, seed: int, epoch: int) -> None:
        self.n = check_int("n", n, minimum=1)
        self.seed = check_seed(seed)
        self.epoch = check_int("epoch", epoch, minimum=0, maximum=2**62)

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        """Permuted value of each position (int64 array in, int64 array out; unchecked range)."""
        raise NotImplementedError

    def inverse(self, values: np.ndarray) -> np.ndarray:
        """Position of each permuted value: ``inverse(self(p)) == p``."""
        raise NotImplementedError

    def materialize(self) -> np.ndarray:
        """The whole permutation as an int64 array (O(n) memory)."""
        return self(np.arange(self.n, dtype=np.int64))

    def one(self, position: int) -> int:
        """Permuted value of one position (a Python int in ``[0, n)``); the same as ``self``'s arrays."""
        return int(self(np.array([position], dtype=np.int64))[0])


class RandpermPermutation(Permutation):
    """LeRobot's shuffle: ``torch.randperm(n, generator=torch.Generator().manual_seed(randperm_seed(...)))``.

    Materialized once at construction (O(n) memory); the inverse is built on first use.
    """

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

    def one(self, position: int) -> int:
        return int(self._order[position])


class FeistelPermutation(Permutation):
    """Keyed Feistel network with cycle walking: O(1) memory, O(1) seek, any ``n >= 1``.

    Domain: ``2**(2h)`` with ``h = max(1, ceil(log2(n)) / 2 rounded up)``, so ``n > domain / 4`` and
    cycle walking takes fewer than 4 passes on average. Round ``i`` maps ``(L, R)`` to
    ``(R, L ^ F(R, k_i))`` with ``F(R, k) = top h bits of mix(R ^ k)``, where ``mix`` is the
    SplitMix64 finalizer (two 64-bit multiplies, xor-shifts). Values ``>= n`` are encrypted again
    until they land in ``[0, n)``; a bijection on the power-of-two domain makes this a bijection
    on ``[0, n)`` and always terminates (the cycle through the start value returns to it).
    """

    def __init__(self, n: int, seed: int, epoch: int, rounds: int = FEISTEL_ROUNDS) -> None:
        super().__init__(n, seed, epoch)
        rounds = check_int("rounds", rounds, minimum=4)
        bits = max(2, (self.n - 1).bit_length())
        self.half_bits = (bits + (bits & 1)) // 2
        self.keys = feistel_keys(self.seed, self.epoch, rounds)
        self._ikeys = tuple(self.keys.tolist())  # the same keys as Python ints (scalar path)
        self._tables: tuple[np.ndarray, ...] | None = None
        self._h = np.uint64(self.half_bits)
        self._top = np.uint64(64 - self.half_bits)
        self._mask = np.uint64((1 << self.half_bits) - 1)
        self._n = np.uint64(self.n)
        self._ekeys = tuple(self.keys)  # numpy uint64 scalars, in round order
        self._dkeys = self._ekeys[::-1]

    def one(self, position: int) -> int:
        """``E(position)`` with cycle walking, on Python ints: the array path's value, without numpy.

        A single position costs a few microseconds this way against ~30 numpy calls per pass on a
        one-element array (what a restore's first sample needs).
        """
        h = self.half_bits
        mask = (1 << h) - 1
        top = 64 - h
        n = self.n
        keys = self._ikeys
        x = position
        while True:
            left, right = x >> h, x & mask
            for k in keys:
                z = ((right ^ k) * SPLITMIX_M1) & _U64
                z = ((z ^ (z >> 30)) * SPLITMIX_M2) & _U64
                left, right = right, left ^ (z >> top)
            x = (left << h) | right
            if x < n:
                return x

    def _f(self, r: np.ndarray, k: np.integer, out: np.ndarray, tmp: np.ndarray) -> None:
        """``out = F(r, k)``: top ``h`` bits of the SplitMix64 finalizer of ``r ^ k`` (uint64)."""
        np.bitwise_xor(r, k, out=out)
        np.multiply(out, _M1, out=out)
        np.right_shift(out, _S30, out=tmp)
        np.bitwise_xor(out, tmp, out=out)
        np.multiply(out, _M2, out=out)
        np.right_shift(out, self._top, out=out)

    def _round_tables(self) -> tuple[np.ndarray, ...]:
        """``F(., k_i)`` for every half value, one table per round (built once, for ``h <= 16``)."""
        tables = self._tables
        if tables is None:
            r = np.arange(1 << self.half_bits, dtype=np.uint64)
            tmp = np.empty_like(r)
            built = []
            for k in self._ekeys:
                tab = np.empty_like(r)
                self._f(r, k, tab, tmp)
                built.append(tab)
            tables = self._tables = tuple(built)
        return tables

    def _pass(
        self,
        x: np.ndarray,
        out: np.ndarray,
        work: tuple[np.ndarray, ...],
        decrypt: bool,
        tables: tuple[np.ndarray, ...] | None,
    ) -> None:
        """One pass of the network: ``out = E(x)`` (or ``D(x)``) over uint64 arrays; ``out`` may be ``x``.

        ``work`` holds four uint64 buffers at least as long as ``x``, so nothing is allocated. With
        ``tables``, ``F`` is one gather per round (the same values, tabulated) instead of six ops.
        """
        m = x.size
        left, right, t, u = (w[:m] for w in work[:4])
        np.right_shift(x, self._h, out=left)
        np.bitwise_and(x, self._mask, out=right)
        keys = self._dkeys if decrypt else self._ekeys
        if tables is not None:
            tabs = tables[::-1] if decrypt else tables
            for tab in tabs:
                src, dst = (left, right) if decrypt else (right, left)  # F reads src, xors into dst
                np.take(tab, src.view(np.int64), out=t, mode="wrap")  # src < len(tab): no wrapping
                np.bitwise_xor(dst, t, out=dst)
                left, right = right, left
        else:
            for k in keys:
                src, dst = (left, right) if decrypt else (right, left)
                self._f(src, k, t, u)
                np.bitwise_xor(dst, t, out=dst)
                left, right = right, left
        np.left_shift(left, self._h, out=left)
        np.bitwise_or(left, right, out=out)

    def _apply(self, positions: np.ndarray, decrypt: bool) -> np.ndarray:
        """Encrypt (or decrypt) every position with cycle walking, chunk by chunk.

        Per chunk, the first pass runs over all values and further passes only over those still
        ``>= n``; once fewer than ``_WALK_DEFER`` remain, they are set aside and finished together
        after the last chunk, so the long tail of short walks costs a few numpy calls per *call*
        instead of per chunk. Every value still walks to the first element of its cycle in
        ``[0, n)``: the result is exactly the element-by-element definition.
        """
        flat = np.asarray(positions, dtype=np.int64).ravel()
        size = flat.size
        out = np.empty(size, dtype=np.int64)
        if size == 0:
            return out.reshape(np.shape(positions))
        tables = None
        if self.half_bits <= _TABLE_MAX_BITS and size >= max(_TABLE_MIN_SIZE, 2 << self.half_bits):
            tables = self._round_tables()  # only when the call amortizes building them
        src = flat.view(np.uint64)  # positions are >= 0: same bits
        dst = out.view(np.uint64)
        n = self._n
        work = tuple(np.empty(min(size, _CHUNK), dtype=np.uint64) for _ in range(5))
        pending = []
        for lo in range(0, size, _CHUNK):
            y = dst[lo : lo + _CHUNK]
            self._pass(src[lo : lo + _CHUNK], y, work, decrypt, tables)
            idx = np.flatnonzero(y >= n)
            while idx.size > _WALK_DEFER:
                z = np.take(y, idx, out=work[4][: idx.size])  # take/compress: faster than fancy indexing
                self._pass(z, z, work, decrypt, tables)
                y[idx] = z
                idx = np.compress(z >= n, idx)
            if idx.size:
                pending.append(idx + lo if lo else idx)
        if pending:
            idx = np.concatenate(pending) if len(pending) > 1 else pending[0]
            tail = tuple(np.empty(idx.size, dtype=np.uint64) for _ in range(4))
            while idx.size:
                z = np.take(dst, idx)
                self._pass(z, z, tail, decrypt, tables)
                dst[idx] = z
                idx = np.compress(z >= n, idx)
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
