"""Bodies checked against, and answers shaped to, the API's schemas (``_api_table``).

Two halves of one idea, both reading the compact schemas the generator writes:

- :func:`check` looks at a request body the way Lago's validations do, and lists what is
  wrong per field (``value_is_mandatory`` for a missing required field, ``invalid_value``
  for a value of the wrong type or outside an enum), so that FakeLago answers 422 before it
  stores anything;
- :func:`conform` turns a stored object into an answer the spec's response schema accepts:
  fields the schema does not know are left out, a required field FakeLago has no value
  for gets a neutral one of its type (``null`` where the schema allows it), and a value of
  the wrong type is replaced the same way. A field the schema requires without declaring
  it (a defect of the spec) is answered as stored, else ``null``. Resources that FakeLago
  models in depth build their objects themselves; conforming is the safety net under them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from ._api_table import SCHEMAS
from ._store import _is_decimal

__all__ = ["check", "conform", "default_of", "resolve"]

MANDATORY = "value_is_mandatory"
INVALID = "invalid_value"

_MAX_DEPTH = 24
_EPOCH = "1970-01-01T00:00:00Z"


def resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """``schema`` with a named reference (``{"$": name}``) replaced by what it names."""
    seen = 0
    while "$" in schema and seen < 8:
        target = SCHEMAS.get(schema["$"], {})
        if schema.get("n") and not target.get("n"):
            target = {**target, "n": True}
        schema = target
        seen += 1
    return schema


def _nullable(schema: Mapping[str, Any]) -> bool:
    """Whether ``null`` is valid: a nullable type, and ``null`` among the enum's values if
    there is an enum (JSON Schema checks both)."""
    return bool(schema.get("n")) and ("e" not in schema or None in schema["e"])


def _types(schema: Mapping[str, Any]) -> tuple[str, ...]:
    kind = schema.get("t")
    if kind is None:
        return ()
    return (kind,) if isinstance(kind, str) else tuple(kind)


@lru_cache(maxsize=256)
def _pattern(text: str) -> re.Pattern[str] | None:
    try:
        return re.compile(text)
    except re.error:
        return None


def _datetime_text(value: str) -> bool:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in value or " " in value


def _date_text(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _uuid_text(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


_FORMATS = {
    "date-time": _datetime_text,
    "date": _date_text,
    "uuid": _uuid_text,
    "decimal": _is_decimal,
}


def _fits_scalar(value: Any, kind: str, schema: Mapping[str, Any]) -> bool:
    if kind == "string":
        if not isinstance(value, str):
            return False
        if "e" in schema and value not in schema["e"]:
            return False
        test = _FORMATS.get(schema.get("f", ""))
        if test is not None and not test(value):
            return False
        pattern = _pattern(schema["pat"]) if "pat" in schema else None
        return pattern is None or pattern.search(value) is not None
    if kind == "integer":
        return type(value) is int and -(2**63) <= value < 2**63
    if kind == "number":  # an integer as JSON sends it: within 64 bits, like Lago's columns
        return type(value) is float or (type(value) is int and -(2**63) <= value < 2**63)
    if kind == "boolean":
        return type(value) is bool
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    return True


def fits(value: Any, schema: Mapping[str, Any]) -> bool:
    """Whether ``value``'s own type (not what it holds) is one ``schema`` allows."""
    schema = resolve(schema)
    if value is None:
        return _nullable(schema) or not schema
    if "any" in schema:
        return any(fits(value, part) for part in schema["any"])
    kinds = _types(schema)
    if not kinds:
        if "p" in schema:
            return isinstance(value, dict)
        return True
    return any(_fits_scalar(value, kind, schema) for kind in kinds)


def default_of(schema: Mapping[str, Any], depth: int = 0) -> Any:
    """A neutral value ``schema`` accepts: ``null`` where allowed, else an empty one of its type."""
    schema = resolve(schema)
    if _nullable(schema):
        return None
    if "any" in schema:
        return default_of(schema["any"][0], depth + 1) if schema["any"] else None
    if "d" in schema and fits(schema["d"], schema):
        return schema["d"]
    choices = [v for v in schema.get("e", ()) if v is not None]
    if choices:
        return choices[0]
    kinds = _types(schema) or (("object",) if "p" in schema else ())
    kind = kinds[0] if kinds else "object"
    if kind == "string":
        fmt = schema.get("f")
        if fmt == "date-time":
            return _EPOCH
        if fmt == "date":
            return "1970-01-01"
        if fmt == "uuid":
            return str(uuid.UUID(int=0))
        if fmt == "decimal" or "pat" in schema:
            return "0"
        return ""
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    if depth > _MAX_DEPTH:
        return {}
    return conform({}, schema, depth + 1)


def _converted(value: Any, kinds: tuple[str, ...]) -> Any:
    """``value`` as the JSON type a schema wants, where it means the same (``"7.5"`` and
    ``7.5``, ``2.0`` and ``2``); ``None`` when it cannot be."""
    if isinstance(value, bool):
        return None
    if "integer" in kinds:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    if "number" in kinds and isinstance(value, str) and _is_decimal(value):
        number = Decimal(value)
        return (
            int(number)
            if number == number.to_integral_value() and "." not in value
            else float(number)
        )
    if "string" in kinds and isinstance(value, int | float):
        return str(value)
    return None


def conform(value: Any, schema: Mapping[str, Any], depth: int = 0) -> Any:
    """``value`` shaped to ``schema``: unknown fields dropped, missing required ones filled."""
    schema = resolve(schema)
    if not schema:
        return value
    if value is None:
        return None if _nullable(schema) else default_of(schema, depth)
    if "any" in schema:
        for part in schema["any"]:
            if fits(value, part):
                return conform(value, part, depth + 1)
        return default_of(schema, depth)
    if not fits(value, schema):
        converted = _converted(value, _types(schema))
        if converted is not None and fits(converted, schema):
            return converted
        return default_of(schema, depth)
    if isinstance(value, dict):
        props = schema.get("p")
        if props is None:
            extra = schema.get("ap")
            if extra is None or depth > _MAX_DEPTH:
                return value
            return {k: conform(v, extra, depth + 1) for k, v in value.items()}
        out: dict[str, Any] = {}
        required = schema.get("r", ())
        for key, part in props.items():
            if key in value:
                out[key] = conform(value[key], part, depth + 1)
            elif key in required:
                out[key] = default_of(part, depth + 1)
        for key in required:
            if key not in out:  # required, but the schema never says what it holds
                out[key] = value.get(key)
        return out
    if isinstance(value, list):
        items = schema.get("i")
        if items is None or depth > _MAX_DEPTH:
            return value
        return [conform(item, items, depth + 1) for item in value]
    return value


def check(
    value: Any,
    schema: Mapping[str, Any],
    errors: dict[str, list[str]],
    path: str = "",
    *,
    required: bool = True,
    depth: int = 0,
) -> None:
    """Add to ``errors`` (``{field: [code]}``) what in ``value`` does not fit ``schema``.

    ``required=False`` skips the required-field rule at this level and below (updates send
    only what changes). Fields the schema does not name are ignored, as Lago ignores them.
    """
    schema = resolve(schema)
    if not schema or depth > _MAX_DEPTH:
        return
    if value is None:
        if not _nullable(schema) and path:
            errors.setdefault(path, [INVALID])
        return
    if "any" in schema:
        if not any(fits(value, part) for part in schema["any"]):
            errors.setdefault(path or "body", [INVALID])
        return
    if not fits(value, schema):
        errors.setdefault(path or "body", [INVALID])
        return
    if isinstance(value, dict):
        for key, part in (schema.get("p") or {}).items():
            where = f"{path}.{key}" if path else key
            if key in value:
                check(value[key], part, errors, where, required=required, depth=depth + 1)
            elif required and key in schema.get("r", ()):
                errors.setdefault(where, [MANDATORY])
        extra = schema.get("ap")
        if extra is not None and "p" not in schema:
            for key, item in value.items():
                where = f"{path}.{key}" if path else key
                check(item, extra, errors, where, required=required, depth=depth + 1)
    elif isinstance(value, list) and "i" in schema:
        for index, item in enumerate(value):
            check(item, schema["i"], errors, f"{path}.{index}", required=required, depth=depth + 1)
