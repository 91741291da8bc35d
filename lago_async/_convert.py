"""The one cattrs converter: JSON bytes in and out, attrs models on our side.

Every response body is structured here and every request body unstructured here, so the rules
for timestamps, decimals and unknown data live in one place:

* unknown keys in a response are ignored (the server may add fields at any time);
* enum-like fields are typed ``str`` so a value the server adds tomorrow is kept, never refused;
* timestamps become aware ``datetime`` (a trailing ``Z`` is accepted on Python 3.10 too);
* precise amounts arrive as strings (or numbers) and become ``Decimal`` without a float detour;
* ``None`` attributes of input models are left out of request bodies.
"""

from __future__ import annotations

import datetime as _dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import attrs
import cattrs
import orjson
from cattrs.gen import make_dict_unstructure_fn

__all__ = ["converter", "dumps", "loads", "structure", "unix_timestamp", "unstructure"]

T = TypeVar("T")

converter = cattrs.Converter(forbid_extra_keys=False)
"""The converter shared by the whole SDK (responses and request bodies)."""


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?"
)


def _parse_rfc3339(text: str) -> _dt.datetime:
    """Parse the RFC 3339 forms ``fromisoformat`` refuses before Python 3.11.

    Any number of fractional digits (those past the microsecond are cut, not rounded), ``Z``
    or ``z``, and offsets with or without a colon.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    micro = int((fraction or "")[:6].ljust(6, "0"))
    tz: _dt.tzinfo | None = None
    if zulu:
        tz = _dt.timezone.utc
    elif sign:
        offset = _dt.timedelta(hours=int(off_h), minutes=int(off_m))
        tz = _dt.timezone(-offset if sign == "-" else offset)
    return _dt.datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz
    )


def _parse_datetime(value: Any, _: Any) -> _dt.datetime:
    if isinstance(value, _dt.datetime):
        result = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        return _dt.datetime.fromtimestamp(value, tz=_dt.timezone.utc)
    else:
        text = str(value)
        try:
            # The C parser is the fast path; before 3.11 it refuses "Z" and fractions that
            # are not 3 or 6 digits long, which the RFC 3339 parser then reads.
            result = _dt.datetime.fromisoformat(text)
        except ValueError:
            result = _parse_rfc3339(text)
    if result.tzinfo is None:
        result = result.replace(tzinfo=_dt.timezone.utc)
    return result


def _parse_date(value: Any, _: Any) -> _dt.date:
    if isinstance(value, _dt.date):
        return value
    return _dt.date.fromisoformat(str(value)[:10])


def _parse_decimal(value: Any, _: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        # repr() gives the shortest string that round-trips, so 0.1 stays 0.1.
        value = repr(value)
    try:
        return Decimal(value)
    except (InvalidOperation, TypeError) as exc:
        raise ValueError(f"not a decimal number: {value!r}") from exc


def _format_datetime(value: _dt.datetime) -> str:
    return value.isoformat()


def _format_decimal(value: Decimal) -> str:
    return str(value)


converter.register_structure_hook(_dt.datetime, _parse_datetime)
converter.register_structure_hook(_dt.date, _parse_date)
converter.register_structure_hook(Decimal, _parse_decimal)
converter.register_unstructure_hook(_dt.datetime, _format_datetime)
converter.register_unstructure_hook(_dt.date, lambda d: d.isoformat())
converter.register_unstructure_hook(Decimal, _format_decimal)


def _unstructure_without_none(cls: type[Any]) -> Any:
    base = make_dict_unstructure_fn(cls, converter)

    def unstructure_model(obj: Any) -> dict[str, Any]:
        return {k: v for k, v in base(obj).items() if v is not None}

    return unstructure_model


converter.register_unstructure_hook_factory(attrs.has, _unstructure_without_none)


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def unix_timestamp(
    value: int | float | str | _dt.datetime | None,
) -> int | float | str | None:
    """Turn a ``datetime`` into unix epoch seconds (naive means UTC); pass anything else on.

    Whole seconds give an int; fractional ones a decimal string such as ``"1651240791.123"``.
    """
    if not isinstance(value, _dt.datetime):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    delta = value - _EPOCH
    seconds = delta.days * 86_400 + delta.seconds
    if delta.microseconds == 0:
        return seconds
    # Exact decimal arithmetic, sent as a string (the API takes an integer or a string).
    return f"{seconds}.{delta.microseconds:06d}".rstrip("0")


def structure(data: Any, cls: type[T]) -> T:
    """Structure decoded JSON ``data`` into an instance of ``cls``.

    Raises :class:`~lago_async.APIResponseValidationError` (naming the class and the fields)
    when the data lacks a required field or holds a value of the wrong kind.
    """
    try:
        return converter.structure(data, cls)
    except (cattrs.BaseValidationError, KeyError, TypeError, ValueError) as exc:
        from ._errors import APIResponseValidationError

        name = (
            str(cls).replace("lago_async.types.", "") if hasattr(cls, "__args__") else cls.__name__
        )
        notes = (
            "; ".join(cattrs.transform_error(exc))
            if isinstance(exc, cattrs.BaseValidationError)
            else repr(exc)
        )
        raise APIResponseValidationError(f"unexpected {name} in the response: {notes}") from exc


def unstructure(obj: Any) -> Any:
    """Turn a model (or anything holding models) into JSON-ready builtins, dropping ``None``."""
    return converter.unstructure(obj)


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        if not obj.is_finite():
            raise TypeError(f"{obj} is not a finite number")
        return str(obj)
    if attrs.has(type(obj)):
        return unstructure(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def dumps(obj: Any) -> bytes:
    """Encode ``obj`` as JSON bytes (orjson); decimals become strings, models are unstructured."""
    return orjson.dumps(obj, default=_default)


loads = orjson.loads
"""Decode JSON bytes or str (orjson)."""
