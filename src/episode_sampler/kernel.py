"""The compiled kernel (``_kernel.c``) when it was built, else ``None``; and what is in use.

``episode_sampler._kernel`` runs the hot loops (the Feistel permutation, the position -> frame
lookup, the Python-int iterator) in C; every caller has a numpy path that computes the same values,
used when the extension was not built (no C compiler at install time) or when the environment
variable ``EPISODE_SAMPLER_KERNEL=0`` is set before the first import (to compare the two). Orders,
states and results never depend on which one runs.
"""

from __future__ import annotations

import os
from types import ModuleType

K: ModuleType | None = None
_REASON = "built"
if os.environ.get("EPISODE_SAMPLER_KERNEL", "1").strip() in ("0", "false", "no", "off"):
    _REASON = "disabled by EPISODE_SAMPLER_KERNEL=0"
else:
    try:
        from . import _kernel as K  # noqa: N812
    except ImportError as exc:  # not built: numpy fallback
        _REASON = f"not built ({exc})"


def kernel_info() -> str:
    """``"compiled"`` when the C kernel is in use, else ``"numpy (<why>)"``."""
    return "compiled" if K is not None else f"numpy ({_REASON})"
