"""Dataset-level metadata of a LeRobot v3 dataset: ``meta/info.json``."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

__all__ = ["read_info"]


def read_info(root: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse ``root/meta/info.json`` of a LeRobot v3 dataset.

    Warns (``UserWarning``) when ``codebase_version`` is missing or not ``v3.x``.

    Raises:
        FileNotFoundError: ``root`` or ``meta/info.json`` does not exist.
        ValueError: invalid JSON, not a JSON object, or a v1/v2 dataset (convert it to v3 with LeRobot).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"LeRobot dataset root {str(root)!r} is not a directory")
    path = root / "meta" / "info.json"
    if not path.is_file():
        raise FileNotFoundError(f"LeRobot dataset {str(root)!r} has no {str(path)!r}")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{str(path)!r} is not valid JSON: {exc}") from None
    if not isinstance(info, dict):
        raise ValueError(f"{str(path)!r} must hold a JSON object, got {type(info).__name__}")
    version = info.get("codebase_version")
    if isinstance(version, str) and version.startswith(("v1", "v2")):
        raise ValueError(
            f"{str(path)!r} has codebase_version {version!r}: LeRobot {version} datasets store one file "
            "per episode and are not supported; convert the dataset to v3.0 with LeRobot's converter"
        )
    if not (isinstance(version, str) and version.startswith("v3")):
        warnings.warn(
            f"{str(path)!r} has codebase_version {version!r}, expected 'v3.x'; reading it as v3",
            UserWarning,
            stacklevel=2,
        )
    return info
