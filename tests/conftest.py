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
