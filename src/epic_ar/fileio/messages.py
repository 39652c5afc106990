"""Pieces of error messages that several layers build the same way."""

from __future__ import annotations

import itertools
from collections.abc import Collection


def listed(items: Collection[object], limit: int = 5, *, count_more: bool = True) -> str:
    """The first `limit` of `items` (keys, ids, rows), comma-separated, for a message; when
    there are more, how many (" (+3 more)"), or just ", ..." without `count_more`.

    `items` may be a numpy array: only its first `limit` elements are turned into text.
    """
    shown = ", ".join(str(item) for item in itertools.islice(items, limit))
    more = len(items) - limit
    if more <= 0:
        return shown
    return f"{shown} (+{more} more)" if count_more else f"{shown}, ..."


def one_line(exc: BaseException) -> str:
    """`exc`'s message on one line (parsers' messages hold newlines), or its type's name
    when it has none."""
    return " ".join(str(exc).split()) or type(exc).__name__
