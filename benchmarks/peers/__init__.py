"""Other samplers measured side by side with ours, one module per peer.

Each optional peer module has ``available() -> str | None``: ``None`` when the package imports,
otherwise the note printed in place of its rows (install it with ``pip install .[bench]``, see
``docs/performance.md``). A missing peer never fails a run: its rows and targets are skipped.
"""

from __future__ import annotations

from . import grain_peer, litdata_peer, mosaic_peer

OPTIONAL = {"grain": grain_peer, "mosaicml-streaming": mosaic_peer, "litdata": litdata_peer}


def missing() -> dict[str, str]:
    """Peer name -> why it is skipped, for every optional peer that cannot be imported."""
    out = {}
    for name, mod in OPTIONAL.items():
        note = mod.available()
        if note is not None:
            out[name] = note
    return out
