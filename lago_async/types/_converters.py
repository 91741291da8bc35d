"""Hand-written converters the generated input models use (``FIELD_CONVERTERS`` in
``tools/generate_api.py`` says which field takes which): what a schema cannot express."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from .._convert import unix_timestamp

__all__ = ["decimal_string", "unix_timestamp"]


def decimal_string(value: Decimal | str | int | None) -> str | None:
    """An exact amount as the decimal string Lago expects (``Decimal``, ``str`` or ``int``)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("precise_total_amount_cents must be a Decimal, str or int, not bool")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"precise_total_amount_cents is not a finite number: {value!r}")
        return format(value, "f")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        try:
            parsed = Decimal(value)
        except InvalidOperation:
            parsed = None
        if parsed is None or not parsed.is_finite():
            raise ValueError(f"precise_total_amount_cents is not a decimal number: {value!r}")
        return value
    raise TypeError(
        f"precise_total_amount_cents must be a Decimal, str or int, not {type(value).__name__}"
    )
