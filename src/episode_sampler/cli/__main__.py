"""``python -m episode_sampler.cli``: the ``episode-sampler`` command."""

import sys

from .entry import main

sys.exit(main())
