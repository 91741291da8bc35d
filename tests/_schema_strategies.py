"""Hypothesis strategies drawing JSON values that a (fully inlined) JSON Schema accepts.

Enough of JSON Schema for the spec's request bodies and query parameters: ``type`` (one or a
list), ``enum``/``const``, ``properties``/``required``, ``items``, ``allOf``/``anyOf``/
``oneOf``, string ``format`` (date-time, date, email, uuid) and ``pattern``, numeric bounds.
Integers stay within 64 bits, as JSON numbers do in Lago.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import strategies as st

_INT64 = (-(2**63), 2**63 - 1)


def from_schema(schema: Any) -> st.SearchStrategy[Any]:
    """A strategy for values valid under ``schema`` (no ``$ref`` left in it)."""
    if schema is True or schema == {}:
        return _any_json()
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "allOf" in schema:
        return from_schema(_merge(schema))
    for key in ("anyOf", "oneOf"):
        if key in schema:
            rest = {k: v for k, v in schema.items() if k != key}
            return st.one_of([from_schema({**rest, **branch}) for branch in schema[key]])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([from_schema({**schema, "type": one}) for one in kind])
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    return _BY_TYPE[kind](schema)


def _merge(schema: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema["allOf"]:
        part = _merge(part) if "allOf" in part else part
        for key, value in part.items():
            if key == "properties":
                merged.setdefault("properties", {}).update(value)
            elif key == "required":
                merged["required"] = sorted({*merged.get("required", []), *value})
            else:
                merged.setdefault(key, value)
    return merged


def _object(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    properties = schema.get("properties", {})
    required = [name for name in schema.get("required", []) if name in properties]
    optional = {name: from_schema(s) for name, s in properties.items() if name not in required}
    return st.fixed_dictionaries(
        {name: from_schema(properties[name]) for name in required}, optional=optional
    )


def _array(schema: dict[str, Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(
        from_schema(schema.get("items", {})),
        min_size=schema.get("minItems", 0),
        max_size=min(schema.get("maxItems", 4), 4),
    )


def _string(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    fmt = schema.get("format")
    if fmt == "date-time":
        moments = st.datetimes(dt.datetime(1970, 1, 2), dt.datetime(2100, 1, 1))
        return moments.map(lambda d: d.replace(tzinfo=dt.timezone.utc).isoformat())
    if fmt == "date":
        return st.dates(dt.date(1970, 1, 2), dt.date(2100, 1, 1)).map(dt.date.isoformat)
    if fmt == "email":
        return st.emails()
    if fmt == "uuid":
        return st.uuids().map(str)
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True)
    return st.text(
        min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 24), 24)
    )


def _integer(schema: dict[str, Any]) -> st.SearchStrategy[int]:
    low = schema.get("minimum", _INT64[0])
    high = schema.get("maximum", _INT64[1])
    return st.integers(max(low, _INT64[0]), min(high, _INT64[1]))


def _number(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    low, high = schema.get("minimum"), schema.get("maximum")
    floats = st.floats(low, high, allow_nan=False, allow_infinity=False)
    return floats | _integer(schema)


def _any_json() -> st.SearchStrategy[Any]:
    return st.none() | st.booleans() | st.integers(*_INT64) | st.text(max_size=10)


_BY_TYPE: dict[str, Any] = {
    "object": _object,
    "array": _array,
    "string": _string,
    "integer": _integer,
    "number": _number,
    "boolean": lambda schema: st.booleans(),
    "null": lambda schema: st.none(),
}


def example_of(schema: Any, *, full: bool, depth: int = 0) -> Any:
    """One value valid under ``schema`` (no ``$ref`` left in it), built without randomness.

    With ``full``, every property of every object is given; without, only the required ones.
    A cheap, deterministic companion to :func:`from_schema` for large schemas.
    """
    if schema is True or schema == {} or depth > 30:
        return "x"
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return next((v for v in schema["enum"] if v is not None), None)
    if "allOf" in schema:
        return example_of(_merge(schema), full=full, depth=depth + 1)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            rest = {k: v for k, v in schema.items() if k != key}
            branches = [b for b in schema[key] if b.get("type") != "null"] or schema[key]
            return example_of({**rest, **branches[0]}, full=full, depth=depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if kind == "object":
        properties = schema.get("properties", {})
        wanted = properties if full else set(schema.get("required", [])) & set(properties)
        return {name: example_of(properties[name], full=full, depth=depth + 1) for name in wanted}
    if kind == "array":
        return [example_of(schema.get("items", {}), full=full, depth=depth + 1)]
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    fmt = schema.get("format")
    if fmt == "date-time":
        return "2026-01-02T03:04:05Z"
    if fmt == "date":
        return "2026-01-02"
    if fmt == "uuid":
        return "1a901a90-1a90-1a90-1a90-1a901a901a90"
    if fmt == "email":
        return "billing@example.com"
    # a numeric string: valid for any plain string, and readable by the fields real answers
    # fill with decimal numbers as strings (amounts, units, rates) which the spec types loosely
    return "12.5"
