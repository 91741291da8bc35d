"""What FakeLago accepts in request bodies: small declarative shapes, checked before storing.

Lago refuses a value of the wrong type with 422 ``validation_errors`` naming the field; so
does FakeLago, so that it never stores (and serves back) a value its answers may not hold.
The shapes state facts of the API (field names, types, allowed values); fields they do not
name are ignored, as Lago ignores parameters it does not know.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

__all__ = ["CUSTOMER", "Shape", "check"]

MANDATORY = "value_is_mandatory"
INVALID = "invalid_value"


class Shape:
    """Checks one value; ``errors`` collects ``{path: [code]}`` for what does not fit."""

    nullable = False

    def check(self, value: Any, path: str, errors: dict[str, list[str]]) -> None:
        if value is None:
            if not self.nullable:
                errors[path] = [INVALID]
            return
        if not self.fits(value):
            errors[path] = [INVALID]
            return
        self.check_inside(value, path, errors)

    def fits(self, value: Any) -> bool:
        """Whether a non-null ``value`` has this shape's type (and allowed value)."""
        raise NotImplementedError

    def check_inside(self, value: Any, path: str, errors: dict[str, list[str]]) -> None:
        """Check what a container holds (nothing for scalars)."""


class Text(Shape):
    """A string, optionally one of ``choices`` or accepted by ``test``."""

    def __init__(
        self,
        *,
        nullable: bool = False,
        choices: frozenset[str] | None = None,
        test: Any = None,
    ) -> None:
        self.nullable = nullable
        self.choices = choices
        self.test = test

    def fits(self, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        if self.choices is not None and value not in self.choices:
            return False
        return self.test is None or bool(self.test(value))


class Integer(Shape):
    """An integer (not a bool) within 64 bits."""

    def __init__(self, *, nullable: bool = False) -> None:
        self.nullable = nullable

    def fits(self, value: Any) -> bool:
        return type(value) is int and -(2**63) <= value < 2**63


class Boolean(Shape):
    """``true`` or ``false``."""

    def __init__(self, *, nullable: bool = False) -> None:
        self.nullable = nullable

    def fits(self, value: Any) -> bool:
        return isinstance(value, bool)


class Array(Shape):
    """A list whose items all have the ``item`` shape."""

    def __init__(self, item: Shape, *, nullable: bool = False) -> None:
        self.item = item
        self.nullable = nullable

    def fits(self, value: Any) -> bool:
        return isinstance(value, list)

    def check_inside(self, value: Any, path: str, errors: dict[str, list[str]]) -> None:
        for index, item in enumerate(value):
            self.item.check(item, f"{path}[{index}]", errors)


class Object(Shape):
    """A JSON object: its known ``fields`` are checked, ``required`` ones must be there."""

    def __init__(
        self,
        fields: Mapping[str, Shape],
        *,
        required: tuple[str, ...] = (),
        nullable: bool = False,
    ) -> None:
        self.fields = dict(fields)
        self.required = required
        self.nullable = nullable

    def fits(self, value: Any) -> bool:
        return isinstance(value, dict)

    def check_inside(self, value: Any, path: str, errors: dict[str, list[str]]) -> None:
        prefix = f"{path}." if path else ""
        for name in self.required:
            if value.get(name) in (None, ""):
                errors[prefix + name] = [MANDATORY]
        for name, shape in self.fields.items():
            if name in value and prefix + name not in errors:
                shape.check(value[name], prefix + name, errors)


def check(value: Any, shape: Shape) -> dict[str, list[str]]:
    """The errors of ``value`` against ``shape``, keyed by dotted path (empty: it fits)."""
    errors: dict[str, list[str]] = {}
    shape.check(value, "", errors)
    return errors


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


_ZONE_NAME = re.compile(r"[A-Za-z_]+(?:/[A-Za-z0-9_+\-]+)*")


def _is_time_zone(name: str) -> bool:
    """An IANA time zone name (or Lago's ``GMT+12``-style offsets).

    Without a time zone database on the machine, any well-formed name is taken.
    """
    if name == "UTC" or name.startswith("GMT"):
        return True
    zones = _known_zones()
    if zones:
        return name in zones
    return _ZONE_NAME.fullmatch(name) is not None


def _is_country(code: str) -> bool:
    return len(code) == 2 and code.isascii() and code.isalpha() and code.isupper()


def _is_currency(code: str) -> bool:
    return len(code) == 3 and code.isascii() and code.isalpha() and code.isupper()


_TEXT_OR_NULL = Text(nullable=True)

ADDRESS = Object(
    {
        "address_line1": _TEXT_OR_NULL,
        "address_line2": _TEXT_OR_NULL,
        "city": _TEXT_OR_NULL,
        "country": Text(nullable=True, test=_is_country),
        "state": _TEXT_OR_NULL,
        "zipcode": _TEXT_OR_NULL,
    },
    nullable=True,
)

BILLING_CONFIGURATION = Object(
    {
        "invoice_grace_period": Integer(nullable=True),
        "subscription_invoice_issuing_date_anchor": Text(
            nullable=True, choices=frozenset({"current_period_end", "next_period_start"})
        ),
        "subscription_invoice_issuing_date_adjustment": Text(
            nullable=True, choices=frozenset({"align_with_finalization_date", "keep_anchor"})
        ),
        "payment_provider": Text(
            nullable=True, choices=frozenset({"stripe", "adyen", "gocardless"})
        ),
        "payment_provider_code": _TEXT_OR_NULL,
        "provider_customer_id": _TEXT_OR_NULL,
        "sync": Boolean(nullable=True),
        "sync_with_provider": Boolean(nullable=True),
        "document_locale": _TEXT_OR_NULL,
        "provider_payment_methods": Array(Text(), nullable=True),
    },
    nullable=True,
)

INTEGRATION_CUSTOMER = Object(
    {
        "id": _TEXT_OR_NULL,
        # Lago finds the integration by its type: without one there is nothing to attach.
        "integration_type": Text(choices=frozenset({"netsuite", "anrok", "xero"})),
        "integration_code": _TEXT_OR_NULL,
        "external_customer_id": _TEXT_OR_NULL,
        "sync_with_provider": Boolean(nullable=True),
        "subsidiary_id": _TEXT_OR_NULL,
    },
    required=("integration_type",),
)

METADATA = Object(
    {
        "id": _TEXT_OR_NULL,
        "key": Text(),
        "value": Text(),
        "display_in_invoice": Boolean(),
    },
    required=("key", "value", "display_in_invoice"),
)

CUSTOMER = Object(
    {
        "external_id": Text(),
        "billing_entity_code": _TEXT_OR_NULL,
        "address_line1": _TEXT_OR_NULL,
        "address_line2": _TEXT_OR_NULL,
        "city": _TEXT_OR_NULL,
        "country": Text(nullable=True, test=_is_country),
        "currency": Text(nullable=True, test=_is_currency),
        "email": _TEXT_OR_NULL,
        "legal_name": _TEXT_OR_NULL,
        "legal_number": _TEXT_OR_NULL,
        "logo_url": _TEXT_OR_NULL,
        "name": _TEXT_OR_NULL,
        "firstname": _TEXT_OR_NULL,
        "lastname": _TEXT_OR_NULL,
        "account_type": Text(nullable=True, choices=frozenset({"customer", "partner"})),
        "customer_type": Text(nullable=True, choices=frozenset({"company", "individual"})),
        "phone": _TEXT_OR_NULL,
        "state": _TEXT_OR_NULL,
        "tax_codes": Array(Text(), nullable=True),
        "tax_identification_number": _TEXT_OR_NULL,
        "timezone": Text(nullable=True, test=_is_time_zone),
        "url": _TEXT_OR_NULL,
        "zipcode": _TEXT_OR_NULL,
        "net_payment_term": Integer(nullable=True),
        "finalize_zero_amount_invoice": Text(
            nullable=True, choices=frozenset({"inherit", "skip", "finalize"})
        ),
        "billing_configuration": BILLING_CONFIGURATION,
        "shipping_address": ADDRESS,
        "integration_customers": Array(INTEGRATION_CUSTOMER, nullable=True),
        "metadata": Array(METADATA, nullable=True),
        "skip_invoice_custom_sections": Boolean(nullable=True),
        "invoice_custom_section_codes": Array(Text(), nullable=True),
    },
    required=("external_id",),
)
"""The ``customer`` object of ``POST /customers``."""
