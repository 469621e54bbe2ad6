"""Normalization statistics as LeRobot 0.6.1 computes, aggregates and stores them.

Per episode and feature (``lerobot/datasets/compute_stats.py``): ``min``, ``max``, ``mean``, ``std``,
``count`` and the quantiles ``q01``, ``q10``, ``q50``, ``q90``, ``q99``, estimated from a
5000-bin histogram. Vectors are reduced over frames (shape ``[dim]``; 1-d features keep a length-1
axis); images and videos per channel (shape ``[C, 1, 1]``) over a sample of frames, divided by 255.
``count`` is ``[frames]`` (images: ``[sampled frames]``). The dataset's ``meta/stats.json`` is the
running aggregate LeRobot keeps while recording: episode by episode, count-weighted mean, pooled
variance, min of mins, max of maxes, count-weighted mean of quantiles. The episode table holds the
per-episode values as ``stats/<feature>/<stat>`` list columns.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from .storage import Store, as_store

__all__ = [
    "QUANTILES",
    "STATS_PATH",
    "aggregate_stats",
    "dataset_stats",
    "episode_stats",
    "feature_stats",
    "read_stats",
    "stats_columns",
    "write_stats",
]

STATS_PATH = "meta/stats.json"
QUANTILES: tuple[float, ...] = (0.01, 0.10, 0.50, 0.90, 0.99)
_QKEYS = tuple(f"q{int(q * 100):02d}" for q in QUANTILES)
_BINS = 5000


# ---------------------------------------------------------------------------------------------- one feature
def feature_stats(values: np.ndarray, image: bool = False) -> dict[str, np.ndarray]:
    """Stats of one feature over one episode, as ``compute_episode_stats`` gives them.

    Args:
        values: ``[frames]`` or ``[frames, dim]`` numbers; with ``image`` the sampled frames
            ``[n, C, H, W]`` (uint8 for RGB, as LeRobot loads them).
        image: per-channel stats of images (not yet divided by 255; see :func:`episode_stats`).
    """
    values = np.asarray(values)
    if image:
        n, c = values.shape[0], values.shape[1]
        rows, count = values.transpose(0, 2, 3, 1).reshape(-1, c), n
    else:
        rows = values.reshape(-1, 1) if values.ndim == 1 else values
        count = values.shape[0]
    if rows.shape[0] < 2:
        stats = {
            "min": np.min(rows, axis=0),
            "max": np.max(rows, axis=0),
            "mean": np.mean(rows, axis=0),
            "std": np.std(rows, axis=0),
            "count": np.array([count]),
        }
        for q in _QKEYS:
            stats[q] = stats["mean"].copy()
    else:
        stats = _histogram_stats(rows)
        stats["count"] = np.array([count])
    if image:  # keepdims over (0, 2, 3): [1, C, 1, 1]
        return {k: v if k == "count" else v.reshape(1, -1, 1, 1) for k, v in stats.items()}
    if values.ndim == 1:  # keepdims over axis 0 of a 1-d feature: [1]
        return {k: v if k == "count" else v.reshape(1) for k, v in stats.items()}
    return stats


def _histogram_stats(rows: np.ndarray) -> dict[str, np.ndarray]:
    """``RunningQuantileStats().update(rows).get_statistics()`` for a single batch, same values.

    LeRobot fills a 5000-bin ``np.histogram`` per dimension over ``np.linspace(min - 1e-10,
    max + 1e-10, 5001)`` and walks its cumulative counts. The cumulative count up to bin ``i`` is the
    number of values below edge ``i + 1`` (the last bin is closed), so the bin of quantile ``q`` is the
    one holding the ``ceil(q * n)``-th smallest value: only a few edges are needed, and they are
    computed with ``linspace``'s own arithmetic.
    """
    rows = rows.reshape(-1, rows.shape[-1])
    rows = rows.astype(np.result_type(rows.dtype, np.float32), copy=False)
    n, d = rows.shape
    mean = np.mean(rows, axis=0)
    mean_sq = np.mean(rows**2, axis=0)
    lo, hi = np.min(rows, axis=0), np.max(rows, axis=0)
    variance = mean_sq - mean**2
    stats = {
        "min": lo.copy(),
        "max": hi.copy(),
        "mean": mean.copy(),
        "std": np.sqrt(np.maximum(0, variance)),
        "count": np.array([n]),
    }
    start = np.array([lo[j] - 1e-10 for j in range(d)])
    stop = np.array([hi[j] + 1e-10 for j in range(d)])
    edges = _Edges(start, stop)
    ordered = np.sort(rows, axis=0)
    if (edges.at(np.zeros(d, np.int64)) > ordered[0]).any():  # values below the first edge
        full = np.stack([np.linspace(start[j], stop[j], _BINS + 1) for j in range(d)], axis=1)
        for key, q in zip(_QKEYS, QUANTILES):
            stats[key] = np.array([_histogram_quantile(rows[:, j], full[:, j], q * n) for j in range(d)])
        return stats
    targets = np.array([q * n for q in QUANTILES])[:, None]
    ranks = np.clip(np.ceil(targets).astype(np.int64), 1, n)  # the k-th smallest decides the bin
    kth = ordered[ranks[:, 0] - 1]  # [quantiles, d]
    # first bin whose cumulative count reaches target: the one holding the k-th smallest value,
    # that is the number of edges 1..bins at or below it (capped: the last bin is closed)
    idx = edges.count_at_or_below(kth)
    lower = edges.at(idx)
    upper = edges.at(np.minimum(idx + 1, _BINS))
    below = np.empty(idx.shape, np.float64)
    upto = np.empty(idx.shape, np.float64)
    for j in range(d):
        below[:, j] = np.searchsorted(ordered[:, j], lower[:, j], side="left")
        upto[:, j] = np.searchsorted(ordered[:, j], upper[:, j], side="left")
    upto[idx >= _BINS - 1] = n
    in_bin = upto - below
    with np.errstate(divide="ignore", invalid="ignore"):
        interp = lower + (targets - below) / in_bin * (upper - lower)
    first = edges.at(np.zeros_like(idx))
    for qi, key in enumerate(_QKEYS):
        plain = (idx[qi] == 0) | (in_bin[qi] == 0)  # LeRobot returns an edge itself: dtype of edges
        if plain.all():
            stats[key] = np.where(idx[qi] == 0, first[qi], lower[qi])
        else:
            stats[key] = np.where(idx[qi] == 0, first[qi], np.where(in_bin[qi] == 0, lower[qi], interp[qi]))
    return stats


class _Edges:
    """``np.linspace(start[j], stop[j], bins + 1)[i]`` for any ``i``, without building the edges."""

    def __init__(self, start: np.ndarray, stop: np.ndarray) -> None:
        self.dtype = np.result_type(start, stop)
        self.start = start.astype(self.dtype)
        self.stop = stop.astype(self.dtype)
        self.delta = np.subtract(self.stop, self.start, dtype=self.dtype)
        self.step = self.delta / _BINS
        self.flat = self.step == 0  # linspace's denormal path: (i / bins) * delta

    def at(self, i: np.ndarray) -> np.ndarray:
        y = np.asarray(i).astype(self.dtype)
        with np.errstate(invalid="ignore"):
            y = np.where(self.flat, (y / _BINS) * self.delta, y * self.step) + self.start
        return np.where(i >= _BINS, self.stop, y)

    def count_at_or_below(self, v: np.ndarray) -> np.ndarray:
        """``min(#{1 <= i <= bins: edge_i <= v}, bins - 1)`` per element (edges non-decreasing)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            guess = np.floor((v.astype(np.float64) - self.start) / self.step.astype(np.float64))
        guess = np.where(self.flat | ~np.isfinite(guess), _BINS - 1, guess)
        idx = np.clip(guess, 0, _BINS - 1).astype(np.int64)
        while True:  # exact correction against the true edges (a step or two at most)
            up = (idx < _BINS - 1) & (self.at(idx + 1) <= v)
            down = (idx > 0) & (self.at(idx) > v)
            if not (up.any() or down.any()):
                return idx
            idx = idx + up - down


def _histogram_quantile(col: np.ndarray, edges: np.ndarray, target: float) -> Any:
    hist = np.zeros(_BINS) + np.histogram(col, bins=edges)[0]
    return _quantile_from_cumsum(np.cumsum(hist), edges, target)


def _quantile_from_cumsum(cumsum: np.ndarray, edges: np.ndarray, target: float) -> Any:
    idx = np.searchsorted(cumsum, target)
    if idx == 0:
        return edges[0]
    if idx >= len(cumsum):
        return edges[-1]
    before = cumsum[idx - 1]
    in_bin = cumsum[idx] - before
    if in_bin == 0:
        return edges[idx]
    return edges[idx] + (target - before) / in_bin * (edges[idx + 1] - edges[idx])


# ---------------------------------------------------------------------------------------------- one episode
def episode_stats(
    data: Mapping[str, Any], features: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, np.ndarray]]:
    """Stats of every feature of one episode, as LeRobot's ``compute_episode_stats``.

    Args:
        data: per feature, the episode's values: ``[frames]`` or ``[frames, dim]`` numbers; for
            ``image``/``video`` features the frames as uint8 ``[C, H, W]`` arrays, given as anything
            with ``len()`` and integer indexing (only the sampled frames are read).
        features: ``info.json`` features (``dtype`` decides; ``string``/``language`` are skipped).
    """
    out: dict[str, dict[str, np.ndarray]] = {}
    for key, values in data.items():
        ft = features[key]
        if ft["dtype"] in ("string", "language"):
            continue
        if ft["dtype"] in ("image", "video"):
            stats = feature_stats(_sample_images(values), image=True)
            depth = (ft.get("info") or {}).get("is_depth_map", False)
            scale = 1.0 if depth else 255.0
            out[key] = {k: v if k == "count" else np.squeeze(v / scale, axis=0) for k, v in stats.items()}
        else:
            out[key] = feature_stats(np.asarray(values))
    return out


def _sample_images(frames: Any) -> np.ndarray:
    """``sample_images``: evenly spaced frames (100 up to ~500 frames, then ``n**0.75``), each
    downsampled by an integer step when its larger side is >= 300 pixels."""
    n = len(frames)
    num = max(min(100, n), min(int(n**0.75), 10_000))
    picks = np.round(np.linspace(0, n - 1, num)).astype(int).tolist()
    images = None
    for i, p in enumerate(picks):
        img = np.asarray(frames[p])
        _, h, w = img.shape
        if max(w, h) >= 300:
            step = int(w / 150) if w > h else int(h / 150)
            img = img[:, ::step, ::step]
        if images is None:
            images = np.empty((len(picks), *img.shape), dtype=img.dtype)
        images[i] = img
    assert images is not None
    return images


# ---------------------------------------------------------------------------------------------- datasets
def aggregate_stats(
    stats_list: Sequence[Mapping[str, Mapping[str, np.ndarray]]],
) -> dict[str, dict[str, Any]]:
    """Combine several stats dicts (``aggregate_stats``): union of features, count-weighted.

    LeRobot's ``stats.json`` is the running aggregate while recording, that is
    ``reduce(lambda a, e: aggregate_stats([a, e]), episodes)``; :func:`dataset_stats` does that.
    """
    keys = list(dict.fromkeys(k for s in stats_list for k in s))
    return {k: _aggregate_feature([s[k] for s in stats_list if k in s]) for k in keys}


def dataset_stats(per_episode: Sequence[Mapping[str, Mapping[str, np.ndarray]]]) -> dict[str, dict[str, Any]]:
    """``meta/stats.json`` of episodes recorded in this order (LeRobot's running aggregate)."""
    total: dict[str, dict[str, Any]] | None = None
    for ep in per_episode:
        if total is None:
            total = {k: dict(v) for k, v in ep.items()}
        else:
            total = {
                k: (
                    _aggregate_two(total[k], ep[k]) if k in total and k in ep else dict(total.get(k) or ep[k])
                )
                for k in dict.fromkeys([*total, *ep])
            }
    return total or {}


def _aggregate_two(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """:func:`_aggregate_feature` of ``[a, b]`` without stacking: the same operations on two rows
    (a sum over an axis of length 2 is one addition), so the same values, several times faster."""
    ca, cb = np.asarray(a["count"]), np.asarray(b["count"])
    total = ca + cb
    ma, mb = np.asarray(a["mean"]), np.asarray(b["mean"])
    dtype = np.result_type(ma, mb)
    ma, mb = ma.astype(dtype, copy=False), mb.astype(dtype, copy=False)
    shape = (1,) * (ma.ndim - ca.ndim)
    wa, wb = ca.reshape(ca.shape + shape), cb.reshape(cb.shape + shape)
    mean = (ma * wa + mb * wb) / total
    va = np.asarray(a["std"]) ** 2
    vb = np.asarray(b["std"]) ** 2
    vdtype = np.result_type(va, vb)
    va, vb = va.astype(vdtype, copy=False), vb.astype(vdtype, copy=False)
    variance = ((va + (ma - mean) ** 2) * wa + (vb + (mb - mean) ** 2) * wb) / total
    out = {
        "min": np.minimum(a["min"], b["min"]),
        "max": np.maximum(a["max"], b["max"]),
        "mean": mean,
        "std": np.sqrt(variance),
        "count": total,
    }
    for q in [k for k in a if k.startswith("q") and k[1:].isdigit()]:
        if q in b:
            qa, qb = np.asarray(a[q]), np.asarray(b[q])
            qdtype = np.result_type(qa, qb)
            out[q] = (qa.astype(qdtype, copy=False) * wa + qb.astype(qdtype, copy=False) * wb) / total
    return out


def _aggregate_feature(items: list[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    means = np.stack([s["mean"] for s in items])
    variances = np.stack([s["std"] ** 2 for s in items])
    counts = np.stack([s["count"] for s in items])
    total = counts.sum(axis=0)
    while counts.ndim < means.ndim:
        counts = np.expand_dims(counts, axis=-1)
    mean = (means * counts).sum(axis=0) / total
    variance = ((variances + (means - mean) ** 2) * counts).sum(axis=0) / total
    out = {
        "min": np.min(np.stack([s["min"] for s in items]), axis=0),
        "max": np.max(np.stack([s["max"] for s in items]), axis=0),
        "mean": mean,
        "std": np.sqrt(variance),
        "count": total,
    }
    for q in [k for k in items[0] if k.startswith("q") and k[1:].isdigit()]:
        if all(q in s for s in items):
            out[q] = (np.stack([s[q] for s in items]) * counts).sum(axis=0) / total
    return out


# ---------------------------------------------------------------------------------------------- files
def stats_columns(
    per_episode: Sequence[Mapping[str, Mapping[str, np.ndarray]]],
) -> dict[str, pa.Array]:
    """The episode table's ``stats/<feature>/<stat>`` columns for these episodes, typed as LeRobot's
    ``pa.Table.from_pydict`` of ``array.tolist()`` makes them (``list<double>``, ``list<int64>``)."""
    pairs: dict[tuple[str, str], None] = {}
    for ep in per_episode:
        for feat, stats in ep.items():
            for stat in stats:
                pairs[(feat, stat)] = None
    cols: dict[str, pa.Array] = {}
    for feat, stat in pairs:
        values = [np.asarray(ep[feat][stat]).tolist() if feat in ep else None for ep in per_episode]
        cols[f"stats/{feat}/{stat}"] = pa.array(values)
    return cols


def write_stats(root: str | os.PathLike[str], stats: Mapping[str, Mapping[str, Any]]) -> Path:
    """Write ``root/meta/stats.json`` as LeRobot's ``write_stats`` (nested lists, indent 4)."""
    out = {f: {k: np.asarray(v).tolist() for k, v in s.items()} for f, s in stats.items()}
    path = Path(root) / STATS_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=4, ensure_ascii=False)
    return path


def read_stats(root: str | os.PathLike[str] | Store) -> dict[str, dict[str, np.ndarray]] | None:
    """``root/meta/stats.json`` as LeRobot's ``load_stats``: ``{feature: {stat: np.ndarray}}`` (at
    least 1-d), ``None`` when the file does not exist.

    Feature names may contain ``/``: the last path component is the stat, as LeRobot splits them.

    Raises:
        ValueError: invalid JSON, or not an object of objects (the message names the file).
    """
    store = as_store(root)
    path = store.name(STATS_PATH)
    if not store.exists(STATS_PATH):
        return None
    try:
        raw = json.loads(store.read_bytes(STATS_PATH).decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path!r} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path!r} must hold a JSON object, got {type(raw).__name__}")
    out: dict[str, dict[str, np.ndarray]] = {}
    for key, value in _flatten(raw, path).items():
        feat, _, stat = key.rpartition("/")
        out.setdefault(feat, {})[stat] = np.atleast_1d(np.array(value))
    return out


def _flatten(d: Mapping[str, Any], path: str, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}/{k}" if prefix else k
        if isinstance(v, dict):
            out.update(_flatten(v, path, key))
        elif not prefix:
            raise ValueError(f"{path!r}: feature {k!r} must map to an object of stats, got {v!r}")
        else:
            out[key] = v
    return out
