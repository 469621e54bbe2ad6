"""The camera layout of the small video datasets of tests/lerobot/ (two cameras of different shapes)."""

from __future__ import annotations

TOP, SIDE = "observation.images.top", "observation.images.side"
CAMERAS = {TOP: (64, 64), SIDE: (64, 96)}
FPS = 30
