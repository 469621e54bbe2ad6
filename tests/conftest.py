"""Fixtures shared across tests/ (helpers that are plain functions live in tests/helpers/)."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture
def quiet_logs():
    """Silence warnings for one test (a layout that drops episodes on purpose logs each one)."""
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


# Slow tests in files that other branches are editing right now (they move into tests/<layer>/ in a later
# phase and then carry their own @pytest.mark.slow): subprocesses, worker processes, or > ~2 s.
_SLOW_ELSEWHERE = (
    "tests/test_examples.py::test_example_runs",
    "tests/test_pipelines_scripts.py::test_single_process_resume_is_exact",
    "tests/test_pipelines_scripts.py::test_help_and_usage_errors",
    "tests/test_docs.py::test_python_block_runs_and_prints_what_is_shown",
    "tests/test_docs.py::test_render_figures_writes_every_png",
    "tests/test_docs.py::test_mkdocs_strict_build",
    "tests/test_pipelines_matrix.py::test_pipeline_restores_exactly[node>ParallelMapper(",
    "tests/test_reliability.py::test_ten_thousand_epochs_distinct_and_resumable",
    "tests/test_cli.py::test_the_library_does_not_import_the_cli",
    "tests/test_synthetic.py::test_many_episodes",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.startswith(_SLOW_ELSEWHERE):
            item.add_marker(pytest.mark.slow)
