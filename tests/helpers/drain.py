"""Pulling items out of nodes, iterators and samplers until they stop."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def drain(it: Any) -> list:
    """Every item ``next(it)`` gives until ``StopIteration`` (a node's ``__next__``, an iterator's)."""
    return list(iter(it))


def drain_next(node: Any) -> list:
    """Every item ``node.next()`` gives until ``StopIteration`` (torchdata's ``next()``, not ``__next__``)."""
    out = []
    while True:
        try:
            out.append(node.next())
        except StopIteration:
            return out


def pull(it: Iterator, k: int) -> tuple[list, bool]:
    """Up to ``k`` items of ``it``; ``True`` if it stopped first."""
    out = []
    for _ in range(k):
        try:
            out.append(next(it))
        except StopIteration:
            return out, True
    return out, False


def epochs(iterable: Any, n: int) -> list[list]:
    """``n`` passes over ``iterable`` (a sampler: ``iter`` starts its next epoch)."""
    return [list(iter(iterable)) for _ in range(n)]


def node_epochs(node: Any, n: int) -> list[list]:
    """``n`` passes of a node, each started by ``reset(None)``."""
    out = []
    for _ in range(n):
        node.reset(None)
        out.append(list(node))
    return out
