"""``python -m benchmarks [--quick] [--out DIR] [--docs]``, run from the repository root."""

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("episode_sampler") is None:  # not installed: measure the checkout's src/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from .main import main  # noqa: E402

raise SystemExit(main())
