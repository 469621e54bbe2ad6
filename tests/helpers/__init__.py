"""Shared test helpers: references, harnesses, layouts and drains (``from tests.helpers.<module> import ...``)."""
