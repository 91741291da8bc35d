"""Models of the Events API: usage events, and the fees they produce or would produce."""

from __future__ import annotations

import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from .._convert import unix_timestamp as _to_unix_timestamp
from ._shared import FeeAppliedTax, PresentationBreakdown, PricingUnitDetails

__all__ = [
    "Event",
    "EventInput",
    "Fee",
    "FeeAmountDetails",
    "FeeEstimate",
    "FeeItem",
    "GraduatedPercentageRange",
    "GraduatedRange",
]


def _to_decimal_string(value: Decimal | str | int | None) -> str | None:
    """Render an exact amount as the decimal string Lago expects."""
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


@attrs.frozen(kw_only=True)
class Event:
    """A usage event as stored by Lago."""

    transaction_id: str
    code: str
    timestamp: datetime.datetime
    external_subscription_id: str
    lago_id: str | None = None
    lago_customer_id: str | None = None
    lago_subscription_id: str | None = None
    precise_total_amount_cents: Decimal | None = None
    properties: dict[str, Any] | None = None
    created_at: datetime.datetime | None = None


@attrs.frozen(kw_only=True)
class EventInput:
    """A usage event to send to Lago.

    ``timestamp`` may be a ``datetime`` (naive means UTC), turned into unix epoch seconds;
    ``precise_total_amount_cents`` may be a ``Decimal``, ``str`` or ``int`` and is sent as a
    decimal string.
    """

    transaction_id: str
    external_subscription_id: str
    code: str
    timestamp: int | float | str | None = attrs.field(default=None, converter=_to_unix_timestamp)
    precise_total_amount_cents: str | None = attrs.field(default=None, converter=_to_decimal_string)
    properties: dict[str, Any] | None = None


@attrs.frozen(kw_only=True)
class FeeItem:
    """What a fee bills: a charge, an add-on, a subscription, a credit..."""

    type: str
    code: str
    name: str
    description: str | None = None
    invoice_display_name: str | None = None
    filter_invoice_display_name: str | None = None
    filters: dict[str, list[str]] | None = None
    lago_item_id: str | None = None
    item_type: str | None = None
    grouped_by: dict[str, str | None] | None = None
    #: Not in the spec's schema, but present in real payloads.
    charge_filter_invoice_display_name: str | None = None


@attrs.frozen(kw_only=True)
class GraduatedRange:
    """How one tier of a graduated charge contributed to a fee."""

    units: Decimal
    from_value: int
    to_value: int | None
    flat_unit_amount: Decimal
    per_unit_amount: Decimal
    per_unit_total_amount: Decimal
    total_with_flat_amount: Decimal


@attrs.frozen(kw_only=True)
class GraduatedPercentageRange:
    """How one tier of a graduated-percentage charge contributed to a fee."""

    units: Decimal
    from_value: int
    to_value: int | None
    flat_unit_amount: Decimal
    rate: Decimal
    per_unit_total_amount: Decimal
    total_with_flat_amount: Decimal


@attrs.frozen(kw_only=True)
class FeeAmountDetails:
    """Breakdown of how a fee amount was computed; which keys are set depends on the model."""

    plan_amount_cents: int | None = None
    graduated_ranges: list[GraduatedRange] | None = None
    graduated_percentage_ranges: list[GraduatedPercentageRange] | None = None
    free_units: Decimal | None = None
    paid_units: Decimal | None = None
    per_package_size: int | None = None
    per_package_unit_amount: Decimal | None = None
    per_unit_total_amount: Decimal | None = None
    units: Decimal | None = None
    free_events: int | None = None
    rate: Decimal | None = None
    paid_events: int | None = None
    fixed_fee_unit_amount: Decimal | None = None
    fixed_fee_total_amount: Decimal | None = None
    min_max_adjustment_total_amount: Decimal | None = None
    per_unit_amount: Decimal | None = None
    flat_unit_amount: Decimal | None = None


@attrs.frozen(kw_only=True)
class Fee:
    """A fee: an amount billed (or to be billed) for one item."""

    item: FeeItem
    taxes_amount_cents: int
    total_amount_cents: int
    units: Decimal
    amount_cents: int | None = None
    amount_currency: str | None = None
    taxes_rate: Decimal | None = None
    total_amount_currency: str | None = None
    lago_id: str | None = None
    lago_charge_id: str | None = None
    lago_charge_filter_id: str | None = None
    lago_fixed_charge_id: str | None = None
    lago_invoice_id: str | None = None
    lago_true_up_fee_id: str | None = None
    lago_true_up_parent_fee_id: str | None = None
    lago_subscription_id: str | None = None
    lago_customer_id: str | None = None
    external_customer_id: str | None = None
    external_subscription_id: str | None = None
    precise_amount: Decimal | None = None
    precise_total_amount: Decimal | None = None
    taxes_precise_amount: Decimal | None = None
    precise_unit_amount: Decimal | None = None
    total_aggregated_units: Decimal | None = None
    events_count: int | None = None
    pay_in_advance: bool | None = None
    invoiceable: bool | None = None
    from_date: datetime.datetime | None = None
    to_date: datetime.datetime | None = None
    payment_status: str | None = None
    created_at: datetime.datetime | None = None
    succeeded_at: datetime.datetime | None = None
    failed_at: datetime.datetime | None = None
    refunded_at: datetime.datetime | None = None
    event_transaction_id: str | None = None
    precise_coupons_amount_cents: Decimal | None = None
    sub_total_excluding_taxes_amount_cents: int | None = None
    sub_total_excluding_taxes_precise_amount_cents: Decimal | None = None
    amount_details: FeeAmountDetails | None = None
    self_billed: bool | None = None
    description: str | None = None
    applied_taxes: list[FeeAppliedTax] | None = None
    pricing_unit_details: PricingUnitDetails | None = None
    presentation_breakdowns: list[PresentationBreakdown] | None = None
    #: Not in the spec's schema, but present in real payloads.
    invoice_display_name: str | None = None
    #: Not in the spec's schema, but present in real payloads.
    billing_entity_code: str | None = None


@attrs.frozen(kw_only=True)
class FeeEstimate:
    """A fee that one event would produce right away (pay-in-advance charges)."""

    item: FeeItem
    amount_cents: int
    amount_currency: str
    taxes_amount_cents: int
    taxes_rate: Decimal
    total_amount_cents: int
    total_amount_currency: str
    pay_in_advance: bool
    invoiceable: bool
    units: Decimal
    precise_unit_amount: Decimal
    payment_status: str
    lago_id: str | None = None
    lago_charge_id: str | None = None
    lago_charge_filter_id: str | None = None
    lago_invoice_id: str | None = None
    lago_true_up_fee_id: str | None = None
    lago_true_up_parent_fee_id: str | None = None
    lago_subscription_id: str | None = None
    lago_customer_id: str | None = None
    external_customer_id: str | None = None
    external_subscription_id: str | None = None
    precise_amount: Decimal | None = None
    precise_total_amount: Decimal | None = None
    taxes_precise_amount: Decimal | None = None
    precise_coupons_amount_cents: Decimal | None = None
    events_count: int | None = None
    created_at: datetime.datetime | None = None
    succeeded_at: datetime.datetime | None = None
    failed_at: datetime.datetime | None = None
    refunded_at: datetime.datetime | None = None
    event_transaction_id: str | None = None
    amount_details: FeeAmountDetails | None = None
    description: str | None = None
