"""Structure hooks for the generated response models: what the server really sends parses.

Generated response models type timestamps as ``datetime | str | None`` and dates as
``date | str | None``: a well-formed value becomes an aware ``datetime`` (or a ``date``) by the
converter's usual rules, and a malformed one the server sent anyway (the peer fixtures hold a
``2025-02-00`` day) is kept as the string it was, rather than failing the whole answer.
Importing this module registers the hooks (the generated model modules do).
"""

from __future__ import annotations

import datetime
from typing import Any

from .._convert import converter

__all__ = ["LenientDate", "LenientDatetime"]

LenientDatetime = datetime.datetime | str | None
LenientDate = datetime.date | str | None


def _datetime_or_text(value: Any, _: Any) -> datetime.datetime | str | None:
    if value is None:
        return None
    try:
        return converter.structure(value, datetime.datetime)
    except (TypeError, ValueError):
        return str(value)


def _date_or_text(value: Any, _: Any) -> datetime.date | str | None:
    if value is None:
        return None
    try:
        return converter.structure(value, datetime.date)
    except (TypeError, ValueError):
        return str(value)


converter.register_structure_hook(LenientDatetime, _datetime_or_text)
converter.register_structure_hook(LenientDate, _date_or_text)
