"""Tools for testing code that uses crmkit.

- :class:`StoreContract`: the pytest class every store passes (subclass it with a
  ``store`` fixture to check your own backend);
- ``crmkit.testing.strategies``: hypothesis strategies for every record type and for
  criteria;
- ``crmkit.testing.builders``: :func:`~crmkit.testing.builders.build` for valid records
  with sensible defaults;
- the pytest plugin (``crmkit.testing.plugin``, loaded automatically): the
  ``crmkit_store`` and ``crmkit_clock`` fixtures.

Importing this package imports neither pytest nor hypothesis; ``StoreContract`` and
``strategies`` load them when first used (``pip install crmkit[testing]``).

>>> import crmkit.testing
>>> crmkit.testing.build.__module__
'crmkit.testing.builders'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmkit.testing.builders import build

if TYPE_CHECKING:
    from crmkit.testing import strategies
    from crmkit.testing.contract import StoreContract

__all__ = ["StoreContract", "build", "strategies"]


def __getattr__(name: str) -> Any:
    import importlib

    if name == "StoreContract":
        return importlib.import_module("crmkit.testing.contract").StoreContract
    if name == "strategies":
        return importlib.import_module("crmkit.testing.strategies")
    raise AttributeError(f"module 'crmkit.testing' has no attribute {name!r}")
