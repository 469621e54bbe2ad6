"""Atomic checkpoint files for sampler/loader states (temp file, fsync, rename)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def save_state(path: str | os.PathLike[str], state: Any) -> int:
    """Write ``state`` as JSON to ``path`` atomically; return the number of bytes written.

    The data goes to a temporary file in the same directory, is flushed and fsynced, then renamed
    over ``path`` (and the directory fsynced), so a crash at any point leaves either the previous
    file or the new one, never a torn file.

    Raises:
        TypeError: ``state`` is not JSON-serializable.
        OSError: the directory is not writable.
    """
    path = Path(path)
    try:
        data = json.dumps(state, sort_keys=True, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise TypeError(f"state must be JSON-serializable: {exc}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories
        return len(data)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return len(data)


def load_state(path: str | os.PathLike[str]) -> Any:
    """Read a JSON state written by :func:`save_state`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not valid JSON (for example truncated), naming the file.
    """
    path = Path(path)
    text = path.read_bytes()
    try:
        return json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"checkpoint {str(path)!r} is not valid JSON ({exc}); is it truncated?") from None
