"""A ``repr`` for error messages that never raises and never grows without bound.

Error messages name the value that was wrong; a value may be hostile (an integer of
5,000 digits, a list nested 100,000 deep, an object whose ``__repr__`` raises). This
writes at most ``limit`` characters of it, walking dicts, lists and tuples itself so
neither recursion depth nor size can make building an error fail.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

LIMIT = 300
"""Characters of a value shown in an error message."""

_DEPTH = 8
_BIG_INT_BITS = 256
_BRACKETS: dict[type[Any], tuple[str, str]] = {
    dict: ("{", "}"),
    list: ("[", "]"),
    tuple: ("(", ")"),
}


class _Full(Exception):
    pass


def short_repr(value: Any, limit: int = LIMIT) -> str:
    """``repr(value)``, cut to about ``limit`` characters; never raises.

    >>> short_repr({"n": 10**5000})
    "{'n': <int of about 5001 digits>}"
    >>> deep: list[object] = []
    >>> for _ in range(100_000):
    ...     deep = [deep]
    >>> short_repr(deep)
    '[[[[[[[[[...]]]]]]]]]'
    >>> len(short_repr("x" * 10_000)) <= 305
    True
    """
    out: list[str] = []
    size = 0

    def put(text: str) -> None:
        nonlocal size
        out.append(text)
        size += len(text)
        if size > limit:
            raise _Full

    def walk(item: Any, depth: int) -> None:
        kind: type[Any] = type(item)
        if kind in _BRACKETS:
            opening, closing = _BRACKETS[kind]
            if depth >= _DEPTH:
                put(f"{opening}...{closing}")
                return
            put(opening)
            entries = item.items() if kind is dict else ((None, v) for v in item)
            for index, (key, entry) in enumerate(entries):
                if index:
                    put(", ")
                if kind is dict:
                    walk(key, depth + 1)
                    put(": ")
                walk(entry, depth + 1)
            if kind is tuple and len(item) == 1:
                put(",")
            put(closing)
        elif kind is int and item.bit_length() > _BIG_INT_BITS:
            digits = int(item.bit_length() * math.log10(2)) + 1
            sign = "-" if item < 0 else ""
            put(f"<{sign}int of about {digits} digits>")
        elif kind is str:
            put(repr(item[: limit + 1]))
        else:
            try:
                text = repr(item)
            except Exception:  # a hostile __repr__ must not hide the real error
                text = f"<{kind.__name__} object>"
            put(text[: limit + 1])

    with contextlib.suppress(_Full):
        walk(value, 0)
    text = "".join(out)
    return text if len(text) <= limit else text[:limit] + "..."
