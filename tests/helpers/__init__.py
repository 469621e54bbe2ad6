"""Shared test helpers: references, harnesses, layouts, drains.

Imported as ``from tests.helpers.<module> import ...``.
"""
