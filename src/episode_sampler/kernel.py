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


PARALLEL_MIN = 1 << 20  # elements: shorter calls run on the calling thread only


def threads_for(size: int) -> int:
    """Threads for a kernel call over ``size`` elements: 1 unless ``EPISODE_SAMPLER_THREADS`` asks for more.

    Only calls of at least :data:`PARALLEL_MIN` elements (whole-epoch ``frame_indices``, long
    ``Permutation`` arrays) are split; iteration and batches always run on the calling thread. One
    thread is the default because it is the predictable choice: measured on 2 cores, two threads
    halved the median time of a 10^7-frame epoch but their slowest runs (page faults on the fresh
    output array, a busy second core) took longer than one thread ever did. Capped at 16.
    """
    if size < PARALLEL_MIN:
        return 1
    env = os.environ.get("EPISODE_SAMPLER_THREADS", "").strip()
    if not env:
        return 1
    try:
        threads = int(env)
    except ValueError:
        raise ValueError(f"EPISODE_SAMPLER_THREADS must be a positive int, got {env!r}") from None
    if threads < 1:
        raise ValueError(f"EPISODE_SAMPLER_THREADS must be a positive int, got {env!r}")
    return min(16, threads)


def kernel_info() -> str:
    """``"compiled"`` when the C kernel is in use, else ``"numpy (<why>)"``."""
    return "compiled" if K is not None else f"numpy ({_REASON})"
