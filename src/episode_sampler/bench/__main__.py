"""``python -m episode_sampler.bench``: the same as ``episode-sampler bench``."""

from .main import main

raise SystemExit(main())
