"""Input checks that run before anything is sent, each naming the offending field."""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs
import orjson

from ._convert import dumps, unstructure
from ._convert import unix_timestamp as _unix_timestamp
from ._errors import LagoValidationError
from ._sentinel import NotGiven

__all__ = [
    "EVENT_REQUIRED",
    "as_body",
    "check_fields",
    "encode_event",
    "encode_json",
    "event_dict",
    "require_list",
    "require_str",
]

EVENT_REQUIRED = ("transaction_id", "code", "external_subscription_id")
_JSON_SCALARS = (str, int, float, bool, type(None), Decimal)
_PLAIN = frozenset({str, int, float, bool, dict, list})


def _plain(value: Any) -> Any:
    """A keyword argument's value as JSON-ready data (input models are unstructured)."""
    return unstructure(value) if attrs.has(type(value)) else value


def require_str(value: Any, field: str) -> str:
    """``value`` if it is a non-empty string, else :class:`LagoValidationError` naming ``field``."""
    if not isinstance(value, str):
        raise LagoValidationError(field, f"must be a string, got {type(value).__name__}")
    if not value:
        raise LagoValidationError(field, "must not be empty")
    return value


def require_list(value: Any, field: str, item: str, *, non_empty: bool = False) -> list[Any]:
    """``value`` as a list if it is a sequence (not a string or mapping) of ``item``s."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise LagoValidationError(
            field, f"must be a sequence of {item}s, got {type(value).__name__}"
        )
    if non_empty and not value:
        raise LagoValidationError(field, f"must hold at least one {item}")
    return list(value)


def as_body(
    given: Any,
    keywords: Mapping[str, Any],
    *,
    field: str,
    required: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Merge an input model or mapping with keyword arguments into a request body.

    ``given`` is an attrs input model, a mapping or ``None``; keyword arguments left at
    ``NOT_GIVEN`` are not sent, ``None`` is sent as ``null``, anything else is added (giving
    the same field both ways is an error). Nested models are unstructured. ``required`` string
    fields are checked here, before any request.
    """
    if given is None:
        body: dict[str, Any] = {}
    elif attrs.has(type(given)):
        body = unstructure(given)
    elif isinstance(given, Mapping):
        body = dict(given)
    else:
        raise LagoValidationError(
            field, f"must be an input model or a mapping, got {type(given).__name__}"
        )
    for key, value in keywords.items():
        if isinstance(value, NotGiven):
            continue
        if key in body:
            raise LagoValidationError(f"{field}.{key}", "given both in the object and as keyword")
        body[key] = value if type(value) in _PLAIN or value is None else _plain(value)
    for key in required:
        require_str(body.get(key), f"{field}.{key}")
    return body


def _is_decimal(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, Decimal)):
        return not isinstance(value, Decimal) or value.is_finite()
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        try:
            return Decimal(value).is_finite()
        except ArithmeticError:
            return False
    return False


_KIND_CHECKS: dict[str, tuple[str, Any]] = {
    "str": ("a string", lambda v: isinstance(v, str)),
    "int": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "decimal": ("a number or a numeric string", _is_decimal),
    "number": ("a number", _is_decimal),
    "bool": ("a boolean", lambda v: isinstance(v, bool)),
    "list": (
        "a sequence",
        lambda v: isinstance(v, Sequence) and not isinstance(v, (str, bytes, Mapping)),
    ),
    "object": (
        "a mapping or an input model",
        lambda v: isinstance(v, Mapping) or attrs.has(type(v)),
    ),
    "datetime": (
        "a datetime or an ISO 8601 string",
        lambda v: isinstance(v, (str, _dt.datetime)),
    ),
    "date": ("a date or an ISO 8601 string", lambda v: isinstance(v, (str, _dt.date))),
}


def check_fields(
    body: Mapping[str, Any],
    field: str,
    *,
    required: tuple[str, ...] = (),
    kinds: Mapping[str, str] | None = None,
    nested: Mapping[str, tuple[str, ...]] | None = None,
    nullable: tuple[str, ...] = (),
) -> None:
    """Check a request body before it is sent, naming the first bad field.

    Each of ``required`` must be present and not ``None`` (a required string must not be
    empty), except that a field of ``nullable`` (required, but ``null`` is a meaning the API
    gives it, such as "no end date") may be given as ``None``; each field of ``kinds`` that
    is given and not ``None`` must be of its kind (``str``, ``int``, ``decimal``, ``number``,
    ``bool``, ``list``, ``object``, ``datetime``, ``date``). A decimal may be an int, a
    ``Decimal``, a finite float or a numeric string.
    ``nested`` names, for an object field or a list of objects, the keys each object needs
    (``{"charges": ("billable_metric_id", "charge_model")}`` checks ``charges[1]``...); input
    models are complete by construction and pass as they are.
    """
    for key in required:
        value = body.get(key)
        if value is None:
            if key in nullable and key in body:
                continue
            raise LagoValidationError(f"{field}.{key}", "is required")
        if isinstance(value, str) and not value:
            raise LagoValidationError(f"{field}.{key}", "must not be empty")
    for key, kind in (kinds or {}).items():
        value = body.get(key)
        if value is None or kind not in _KIND_CHECKS:
            continue
        label, check = _KIND_CHECKS[kind]
        if not check(value):
            raise LagoValidationError(
                f"{field}.{key}", f"must be {label}, got {type(value).__name__} {value!r}"
            )
    for key, keys in (nested or {}).items():
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, Mapping) or attrs.has(type(value)):
            _check_object(value, f"{field}.{key}", keys)
        elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
            for index, item in enumerate(value):
                _check_object(item, f"{field}.{key}[{index}]", keys)


def _check_object(value: Any, field: str, keys: tuple[str, ...]) -> None:
    if attrs.has(type(value)):
        return
    if not isinstance(value, Mapping):
        raise LagoValidationError(
            field, f"must be a mapping or an input model, got {type(value).__name__}"
        )
    for key in keys:
        if value.get(key) is None:
            raise LagoValidationError(f"{field}.{key}", "is required")


def event_dict(event: Any, field: str = "event") -> dict[str, Any]:
    """Check one event (an ``EventInput`` or a mapping) and return it as the JSON object to send.

    Required: non-empty string ``transaction_id``, ``code`` and ``external_subscription_id``.
    ``timestamp`` must be a unix time (int, float or numeric string) or a ``datetime`` (sent
    as unix seconds); ``properties`` must be a mapping with string keys. The caller's mapping
    is never modified; it is returned as is when nothing needs converting (the hot path of
    the event ingestor), so encode the result before the caller can change it.
    """
    if type(event) is dict:
        body: dict[str, Any] = event
    elif isinstance(event, Mapping):
        body = dict(event)
    elif attrs.has(type(event)):
        body = unstructure(event)
    else:
        raise LagoValidationError(
            field, f"must be an EventInput or a mapping, got {type(event).__name__}"
        )
    for key in EVENT_REQUIRED:
        value = body.get(key)
        if type(value) is not str or not value:
            require_str(value, f"{field}.{key}")
    timestamp = body.get("timestamp")
    if timestamp is not None and type(timestamp) is not int:
        if isinstance(timestamp, _dt.datetime):
            body = {**body, "timestamp": _unix_timestamp(timestamp)}
        elif type(timestamp) is float:
            if not math.isfinite(timestamp):
                raise LagoValidationError(
                    f"{field}.timestamp", f"must be a finite unix timestamp, got {timestamp!r}"
                )
            body = {**body, "timestamp": repr(timestamp)}
        elif isinstance(timestamp, bool) or not isinstance(timestamp, (int, float, str)):
            raise LagoValidationError(
                f"{field}.timestamp",
                f"must be a unix timestamp or a datetime, got {type(timestamp).__name__}",
            )
        elif isinstance(timestamp, str):
            try:
                finite = math.isfinite(float(timestamp))
            except ValueError:
                finite = False
            if not finite:
                raise LagoValidationError(
                    f"{field}.timestamp", f"must be a finite unix timestamp, got {timestamp!r}"
                )
    properties = body.get("properties")
    if properties is not None and not isinstance(properties, Mapping):
        raise LagoValidationError(
            f"{field}.properties", f"must be a mapping, got {type(properties).__name__}"
        )
    amount = body.get("precise_total_amount_cents")
    if amount is not None:
        text = _amount_text(amount, f"{field}.precise_total_amount_cents")
        if text is not amount:
            body = {**body, "precise_total_amount_cents": text}
    return body


def _amount_text(amount: Any, field: str) -> str:
    """A decimal amount as the string the API takes: finite, exact (floats by their repr)."""
    if isinstance(amount, bool) or not isinstance(amount, (str, int, float, Decimal)):
        raise LagoValidationError(
            field, f"must be a number or a numeric string, got {type(amount).__name__}"
        )
    try:
        exact = Decimal(repr(amount) if isinstance(amount, float) else amount)
    except InvalidOperation:
        raise LagoValidationError(field, f"must be a number, got {amount!r}") from None
    if not exact.is_finite():
        raise LagoValidationError(field, f"must be a finite number, got {amount!r}")
    return amount if isinstance(amount, str) else str(amount)


def encode_json(value: Any, field: str = "") -> bytes:
    """Encode ``value`` as JSON, or raise naming the first part that cannot be (``field.a[2]``)."""
    try:
        data = dumps(value)
    except (TypeError, orjson.JSONEncodeError) as exc:
        path = _find_unencodable(value, field) or field or "body"
        raise LagoValidationError(path, f"cannot be encoded as JSON ({exc})") from None
    if b"null" in data:
        # orjson writes NaN and infinities as null: find whether that happened, and where.
        non_finite = _find_non_finite(value, field)
        if non_finite is not None:
            raise LagoValidationError(non_finite, "must be a finite number, not NaN or an infinity")
    return data


_NO_PROPERTIES: dict[str, Any] = {}


def encode_event(event: Any, field: str = "event", index: int | None = None) -> bytes:
    """Check one event and return its JSON encoding (what the event ingestor queues).

    A plain dict whose required fields are non-empty strings and that needs no conversion
    (integer or absent timestamp, no amount, dict or absent properties) is encoded directly:
    the ingestor's hot path. Anything else, or anything orjson refuses, takes the full
    checks of :func:`event_dict`, which name the offending field: under ``field``, or
    ``events[index]`` for the ``index``-th event of a bulk call (the name is only built on
    that path).
    """
    if type(event) is dict:
        # event.get(...) each time: cheaper than binding event.get once, on Python 3.11+
        tx = event.get("transaction_id")
        code = event.get("code")
        sub = event.get("external_subscription_id")
        if (
            type(tx) is str
            and tx
            and type(code) is str
            and code
            and type(sub) is str
            and sub
            and type(event.get("timestamp", 0)) is int  # absent, or an integer
            and type(event.get("properties", _NO_PROPERTIES)) is dict  # absent, or a dict
            and "precise_total_amount_cents" not in event
        ):
            try:
                data = orjson.dumps(event)
            except TypeError:
                pass  # e.g. a Decimal property: the full path encodes or explains it
            else:
                # A null may be a NaN or an infinity that orjson wrote as null: the full
                # path finds out (rare: no event with a null goes the fast way). ``find``, as
                # ``in`` on bytes first tries the needle as an integer and raises inside.
                if data.find(b"null") < 0:
                    return data
    if index is not None:
        field = f"events[{index}]"
    return encode_json(event_dict(event, field), field)


def encode_plain_events(events: Sequence[Any]) -> bytes | None:
    """The JSON array of ``events`` in one orjson call, when every one of them is an event
    :func:`encode_event` would encode directly (its fast path), else ``None``.

    The array is exactly the events' own encodings joined by commas, so the caller may take
    it for what ``encode_event`` gives each. ``None`` means nothing: the caller falls back to
    :func:`encode_event` one event at a time, which checks and explains. The conditions are
    those of ``encode_event``'s fast path, repeated here so that the loop costs no call per
    event; ``tests/ingest/test_ingestor_entry_checks.py`` holds the two to the same answers.
    """
    # Local names: the loop below is the whole per-event cost of a bulk send.
    is_a, text, mapping, integer, no_properties = type, str, dict, int, _NO_PROPERTIES
    for event in events:
        if is_a(event) is not mapping:
            return None
        try:
            tx = event["transaction_id"]
            code = event["code"]
            sub = event["external_subscription_id"]
        except KeyError:
            return None
        if not (
            is_a(tx) is text
            and tx
            and is_a(code) is text
            and code
            and is_a(sub) is text
            and sub
            and is_a(event.get("timestamp", 0)) is integer
            and is_a(event.get("properties", no_properties)) is mapping
            and "precise_total_amount_cents" not in event
        ):
            return None
    try:
        data = orjson.dumps(events)
    except TypeError:
        return None
    # A null may be a NaN or an infinity written as null: encode_event finds out which.
    if data.find(b"null") >= 0:
        return None
    return data


def _find_non_finite(value: Any, path: str) -> str | None:
    """The path of the first NaN or infinite float in ``value`` (which orjson writes as null)."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    if isinstance(value, Mapping):
        for key, item in value.items():
            found = _find_non_finite(item, f"{path}.{key}" if path else str(key))
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _find_non_finite(item, f"{path}[{index}]")
            if found:
                return found
    elif attrs.has(type(value)):
        return _find_non_finite(unstructure(value), path)
    return None


_INT_RANGE = range(-(2**63), 2**64)
"""What JSON integers orjson (and Lago's parsers) take: signed and unsigned 64 bits."""


def _find_unencodable(value: Any, path: str) -> str | None:
    """The path of the first part of ``value`` that cannot be sent as what it means."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    if isinstance(value, int) and not isinstance(value, bool):
        return None if value in _INT_RANGE else path
    if isinstance(value, Decimal):
        return None if value.is_finite() else path
    if isinstance(value, _JSON_SCALARS):
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path}[{key!r}]"
            found = _find_unencodable(item, f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _find_unencodable(item, f"{path}[{index}]")
            if found:
                return found
        return None
    if isinstance(value, (_dt.datetime, _dt.date)) or attrs.has(type(value)):
        return None
    return path


def apply_extras(
    method: str,
    params: Mapping[str, Any] | None,
    body: bytes | None,
    extra_headers: Mapping[str, str] | None,
    extra_query: Mapping[str, Any] | None,
    extra_body: Mapping[str, Any] | None,
) -> tuple[Mapping[str, Any] | None, bytes | None, dict[str, str] | None]:
    """A call's ``extra_query`` and ``extra_body`` merged over what the SDK built, and its
    ``extra_headers`` checked: what the SDK does not model yet can still be sent.

    ``extra_body``'s keys go to the top level of the JSON body (beside the wrapper key such as
    ``plan``); each raises :class:`LagoValidationError` naming it when it is not a mapping of
    the right kind.
    """
    headers: dict[str, str] | None = None
    if extra_headers is not None:
        if not isinstance(extra_headers, Mapping):
            raise LagoValidationError("extra_headers", "must be a mapping of strings")
        headers = {}
        for name, value in extra_headers.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise LagoValidationError(
                    f"extra_headers[{name!r}]", "header names and values must be strings"
                )
            if any(c in name + value for c in "\r\n\0") or not name:
                raise LagoValidationError(
                    f"extra_headers[{name!r}]", "must be a non-empty name without line breaks"
                )
            headers[name] = value
    if extra_query is not None:
        if not isinstance(extra_query, Mapping):
            raise LagoValidationError("extra_query", "must be a mapping")
        params = {**(params or {}), **extra_query}
    if extra_body is not None:
        if not isinstance(extra_body, Mapping):
            raise LagoValidationError("extra_body", "must be a mapping")
        if method == "GET":
            raise LagoValidationError("extra_body", "a GET request carries no body")
        merged = orjson.loads(body) if body else {}
        if not isinstance(merged, dict):
            raise LagoValidationError("extra_body", "this request's body is not a JSON object")
        merged.update(extra_body)
        body = encode_json(merged, "extra_body")
    return params, body, headers
