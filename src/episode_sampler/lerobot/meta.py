"""Dataset-level metadata of a LeRobot v3 dataset: ``meta/info.json``."""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

from .storage import LocalStore, Store, as_store

__all__ = ["INFO_PATH", "read_info"]


INFO_PATH = "meta/info.json"


def read_info(root: str | os.PathLike[str] | Store) -> dict[str, Any]:
    """Parse ``root/meta/info.json`` of a LeRobot v3 dataset (``root`` a path, URL or :class:`Store`).

    Warns (``UserWarning``) when ``codebase_version`` is missing or not ``v3.x``.

    Raises:
        FileNotFoundError: ``root`` or ``meta/info.json`` does not exist.
        ValueError: invalid JSON, not a JSON object, or a v1/v2 dataset (convert it to v3 with LeRobot).
    """
    store = as_store(root)
    path = store.name(INFO_PATH)
    if isinstance(store, LocalStore):
        if not store.is_dir():
            raise FileNotFoundError(f"LeRobot dataset root {store.root_name!r} is not a directory")
        if not store.exists(INFO_PATH):
            raise FileNotFoundError(f"LeRobot dataset {store.root_name!r} has no {path!r}")
    try:
        raw = store.read_bytes(INFO_PATH)
    except FileNotFoundError:
        raise FileNotFoundError(f"LeRobot dataset {store.root_name!r} has no {path!r}") from None
    try:
        info = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path!r} is not valid JSON: {exc}") from None
    if not isinstance(info, dict):
        raise ValueError(f"{path!r} must hold a JSON object, got {type(info).__name__}")
    version = info.get("codebase_version")
    if isinstance(version, str) and version.startswith(("v1", "v2")):
        raise ValueError(
            f"{path!r} has codebase_version {version!r}: LeRobot {version} datasets store one file "
            "per episode and are not supported; convert the dataset to v3.0 with LeRobot's converter"
        )
    if not (isinstance(version, str) and version.startswith("v3")):
        warnings.warn(
            f"{path!r} has codebase_version {version!r}, expected 'v3.x'; reading it as v3",
            UserWarning,
            stacklevel=2,
        )
    return info
