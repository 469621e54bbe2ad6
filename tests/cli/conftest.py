"""Fixtures of tests/cli/."""

from tests.helpers.servers import nginx  # noqa: F401  (fixture: nginx on loopback, for inspect URL)
