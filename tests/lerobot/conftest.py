"""Datasets shared by the tests of tests/lerobot/ (module-scoped: each test file writes its own copy;
test_tasks.py defines a smaller `synthetic` of its own)."""

from __future__ import annotations

from pathlib import Path

import pytest

from episode_sampler.lerobot import write_lerobot_dataset
from tests.helpers.lerobot_handmade import write_handmade


@pytest.fixture(scope="module")
def handmade(tmp_path_factory) -> Path:
    return write_handmade(tmp_path_factory.mktemp("handmade"))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    write_lerobot_dataset(root, 40, 5, 30, seed=3, episodes_per_file=3, files_per_chunk=4)
    return root


from tests.helpers.servers import moto_s3, nginx  # noqa: E402,F401  (fixtures: real servers on loopback)
