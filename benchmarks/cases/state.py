"""Size of a sampler's state as JSON."""

from __future__ import annotations

import json
from typing import Any

from ..config import Config
from ..layouts import build_sampler, make_layout
from ..timing import Log


def bench_state(cfg: Config, log: Log) -> dict[str, Any]:
    """Bytes of ``json.dumps(state_dict())`` for small and huge N, mid-epoch at a late epoch."""
    log("state size")
    rows = []
    for n, e in ((10**3, 10), (10**9, 10**3), (10**12, 10**3), (10**18, 10)):
        index = make_layout(n, e)
        for perm, order, k in (
            ("feistel", "frames", None),
            ("feistel", "blocks", 10**6),
            ("randperm", "frames", None),
        ):
            if perm == "randperm" and n > 10**6:
                continue
            s = build_sampler(index, perm, order, k, seed=2**64 - 1)
            state = dict(s.state_dict(), epoch=2**40, start_index=len(s) - 1, global_start=0)
            s.load_state_dict(state)
            it = iter(s)
            next(it)
            size = len(json.dumps(s.state_dict()))
            rows.append({"N": n, "E": e, "permutation": perm, "order": order, "json_bytes": size})
    return {"rows": rows}
