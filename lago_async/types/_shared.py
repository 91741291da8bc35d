"""Models reused by several API tags: pagination, taxes, credits, pricing units, breakdowns."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import attrs

__all__ = [
    "AppliedTax",
    "Credit",
    "CreditInvoice",
    "CreditItem",
    "ErrorDetail",
    "FeeAppliedTax",
    "InvoiceCustomSection",
    "PaginationMeta",
    "PresentationBreakdown",
    "PricingUnitDetails",
    "Tax",
    "UsagePricingUnitDetails",
]


@attrs.frozen(kw_only=True)
class PaginationMeta:
    """Position of one page within a paginated list."""

    current_page: int
    next_page: int | None = None
    prev_page: int | None = None
    #: Absent from some real answers (payments, payment receipts and requests).
    total_pages: int | None = None
    #: Absent from some real answers (payments, payment receipts and requests).
    total_count: int | None = None


@attrs.frozen(kw_only=True)
class AppliedTax:
    """A tax applied to a billed object, with the amount it added."""

    lago_id: str
    lago_tax_id: str | None
    tax_name: str
    tax_code: str
    tax_rate: Decimal
    tax_description: str | None
    amount_cents: int
    amount_currency: str
    created_at: datetime.datetime


@attrs.frozen(kw_only=True)
class FeeAppliedTax(AppliedTax):
    """A tax applied to one fee."""

    lago_fee_id: str | None = None


@attrs.frozen(kw_only=True)
class Tax:
    """A tax rate defined in the organization."""

    lago_id: str
    name: str
    code: str
    rate: Decimal
    created_at: datetime.datetime
    applied_to_organization: bool | None = None
    description: str | None = None


@attrs.frozen(kw_only=True)
class PricingUnitDetails:
    """Amounts of a fee expressed in a custom pricing unit, with its conversion rate."""

    lago_pricing_unit_id: str
    pricing_unit_code: str
    short_name: str
    amount_cents: int
    precise_amount_cents: Decimal
    unit_amount_cents: int
    precise_unit_amount: Decimal
    conversion_rate: Decimal


@attrs.frozen(kw_only=True)
class UsagePricingUnitDetails:
    """Usage amount in a custom pricing unit, with its conversion rate."""

    amount_cents: int
    short_name: str
    conversion_rate: Decimal


@attrs.frozen(kw_only=True)
class PresentationBreakdown:
    """Units attributed to one combination of presentation properties."""

    presentation_by: dict[str, str | None] | None = None
    units: Decimal | None = None


@attrs.frozen(kw_only=True)
class CreditItem:
    """What a credit comes from: a coupon, a credit note or an invoice."""

    type: str
    code: str
    name: str
    lago_item_id: str | None = None


@attrs.frozen(kw_only=True)
class CreditInvoice:
    """The invoice a credit was applied to."""

    lago_id: str
    payment_status: str


@attrs.frozen(kw_only=True)
class Credit:
    """An amount credited on an invoice."""

    item: CreditItem
    amount_cents: int
    amount_currency: str
    before_taxes: bool
    lago_id: str | None = None
    invoice: CreditInvoice | None = None


@attrs.frozen(kw_only=True)
class ErrorDetail:
    """An error recorded on an object by an integration (tax provider, etc.)."""

    lago_id: str | None
    error_code: str
    details: dict[str, Any]


@attrs.frozen(kw_only=True)
class InvoiceCustomSection:
    """A custom section printed on invoices."""

    lago_id: str
    name: str
    code: str
    details: str | None = None
    display_name: str | None = None
    applied_to_organization: bool | None = None
    organization_id: str | None = None
    created_at: datetime.datetime | None = None
    description: str | None = None
