"""Optional dependencies, imported when a feature first needs them."""

from __future__ import annotations

import importlib
from types import ModuleType

from crmkit.errors import MissingDependencyError


def require(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra.

    >>> require("json", extra="none", feature="reading JSON").__name__
    'json'
    >>> require("no_such_module_here", extra="plot", feature="draw()")
    Traceback (most recent call last):
    ...
    crmkit.errors.MissingDependencyError: draw() needs no_such_module_here; install it with: ...
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(module.split(".")[0], extra, feature) from err
