"""The compiled kernel (``_kernel.c``) when it was built, else ``None``; and what is in use.

``episode_sampler._kernel`` runs the hot loops (the Feistel permutation, the position -> frame
lookup, the Python-int iterator) in C; every caller has a numpy path that computes the same values,
used when the extension was not built (no C compiler at install time) or when the environment
variable ``EPISODE_SAMPLER_KERNEL=0`` is set before the first import (to compare the two). Orders,
states and results never depend on which one runs.
"""

from __future__ import annotations

import os
import sys
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
    """Threads for a kernel call over ``size`` elements: 1 below :data:`PARALLEL_MIN`, else the limit.

    The limit is ``EPISODE_SAMPLER_THREADS`` when set, else torch's intra-op thread count when torch
    is imported (1 in DataLoader workers, or what ``torch.set_num_threads`` chose), else the CPUs
    this process may run on; never more than 16. Only whole-epoch calls (``frame_indices``, long
    ``Permutation`` arrays) are long enough: iteration and batches stay on one thread.
    """
    if size < PARALLEL_MIN:
        return 1
    env = os.environ.get("EPISODE_SAMPLER_THREADS", "").strip()
    if env:
        try:
            return max(1, min(16, int(env)))
        except ValueError:
            raise ValueError(f"EPISODE_SAMPLER_THREADS must be a positive int, got {env!r}") from None
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads"):
        return max(1, min(16, int(torch.get_num_threads())))
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(16, cpus))


def kernel_info() -> str:
    """``"compiled"`` when the C kernel is in use, else ``"numpy (<why>)"``."""
    return "compiled" if K is not None else f"numpy ({_REASON})"
