"""Fixtures shared by the test folders: durable stores that several processes open."""

from __future__ import annotations

from ._stores import postgres_factory, store_factory

__all__ = ["postgres_factory", "store_factory"]
