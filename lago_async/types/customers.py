"""Models of the Customers API: customers, their usage, coupons and portal links."""

from __future__ import annotations

import datetime
from decimal import Decimal

import attrs

from ._shared import (
    Credit,
    ErrorDetail,
    InvoiceCustomSection,
    PresentationBreakdown,
    Tax,
    UsagePricingUnitDetails,
)

__all__ = [
    "Address",
    "AppliedCoupon",
    "ChargeFilterUsage",
    "ChargeGroupedUsage",
    "ChargeUsage",
    "Customer",
    "CustomerBillingConfiguration",
    "CustomerCheckoutUrl",
    "CustomerInput",
    "CustomerMetadata",
    "CustomerMetadataInput",
    "CustomerPortalUrl",
    "CustomerProjectedUsage",
    "CustomerUsage",
    "IntegrationCustomer",
    "IntegrationCustomerInput",
    "ProjectedChargeFilterUsage",
    "ProjectedChargeGroupedUsage",
    "ProjectedChargeUsage",
    "UsageBillableMetric",
    "UsageCharge",
]


# --- shared by customers read and written -----------------------------------------------------


@attrs.frozen(kw_only=True)
class CustomerBillingConfiguration:
    """How a customer is invoiced and which payment provider collects from them."""

    invoice_grace_period: int | None = None
    subscription_invoice_issuing_date_anchor: str | None = None
    subscription_invoice_issuing_date_adjustment: str | None = None
    payment_provider: str | None = None
    payment_provider_code: str | None = None
    provider_customer_id: str | None = None
    sync: bool | None = None
    sync_with_provider: bool | None = None
    document_locale: str | None = None
    provider_payment_methods: list[str] | None = None


@attrs.frozen(kw_only=True)
class Address:
    """A postal address (used for shipping)."""

    address_line1: str | None = None
    address_line2: str | None = None
    city: str | None = None
    country: str | None = None
    state: str | None = None
    zipcode: str | None = None


# --- customers as returned ---------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CustomerMetadata:
    """A key/value pair attached to a customer."""

    lago_id: str
    key: str
    value: str
    display_in_invoice: bool
    created_at: datetime.datetime | None = None


@attrs.frozen(kw_only=True)
class IntegrationCustomer:
    """The link between a customer and their record in an integration (accounting, CRM...)."""

    lago_id: str
    type: str
    integration_code: str
    external_customer_id: str
    sync_with_provider: bool | None = None
    subsidiary_id: str | None = None
    targeted_object: str | None = None
    email: str | None = None


@attrs.frozen(kw_only=True)
class Customer:
    """A customer, with billing settings, integrations, taxes and metadata."""

    lago_id: str
    external_id: str
    applicable_timezone: str
    created_at: datetime.datetime
    sequential_id: int | None = None
    slug: str | None = None
    billing_entity_code: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    city: str | None = None
    country: str | None = None
    currency: str | None = None
    email: str | None = None
    legal_name: str | None = None
    legal_number: str | None = None
    logo_url: str | None = None
    name: str | None = None
    firstname: str | None = None
    lastname: str | None = None
    account_type: str | None = None
    customer_type: str | None = None
    phone: str | None = None
    state: str | None = None
    tax_identification_number: str | None = None
    timezone: str | None = None
    url: str | None = None
    zipcode: str | None = None
    net_payment_term: int | None = None
    updated_at: datetime.datetime | None = None
    finalize_zero_amount_invoice: str | None = None
    skip_invoice_custom_sections: bool | None = None
    billing_configuration: CustomerBillingConfiguration | None = None
    shipping_address: Address | None = None
    metadata: list[CustomerMetadata] | None = None
    integration_customers: list[IntegrationCustomer] | None = None
    taxes: list[Tax] | None = None
    applicable_invoice_custom_sections: list[InvoiceCustomSection] | None = None
    error_details: list[ErrorDetail] | None = None


# --- customers as sent -------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CustomerMetadataInput:
    """A key/value pair to attach to a customer (give ``id`` to update an existing one)."""

    key: str
    value: str
    display_in_invoice: bool
    id: str | None = None


@attrs.frozen(kw_only=True)
class IntegrationCustomerInput:
    """A link to create or update between a customer and an integration."""

    id: str | None = None
    integration_type: str | None = None
    integration_code: str | None = None
    external_customer_id: str | None = None
    sync_with_provider: bool | None = None
    subsidiary_id: str | None = None


@attrs.frozen(kw_only=True)
class CustomerInput:
    """A customer to create or update (Lago upserts on ``external_id``)."""

    external_id: str
    billing_entity_code: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    city: str | None = None
    country: str | None = None
    currency: str | None = None
    email: str | None = None
    legal_name: str | None = None
    legal_number: str | None = None
    logo_url: str | None = None
    name: str | None = None
    firstname: str | None = None
    lastname: str | None = None
    account_type: str | None = None
    customer_type: str | None = None
    phone: str | None = None
    state: str | None = None
    tax_codes: list[str] | None = None
    tax_identification_number: str | None = None
    timezone: str | None = None
    url: str | None = None
    zipcode: str | None = None
    net_payment_term: int | None = None
    finalize_zero_amount_invoice: str | None = None
    billing_configuration: CustomerBillingConfiguration | None = None
    shipping_address: Address | None = None
    integration_customers: list[IntegrationCustomerInput] | None = None
    metadata: list[CustomerMetadataInput] | None = None
    skip_invoice_custom_sections: bool | None = None
    invoice_custom_section_codes: list[str] | None = None


# --- usage -------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class UsageCharge:
    """The charge a usage line belongs to."""

    lago_id: str
    charge_model: str
    invoice_display_name: str | None = None


@attrs.frozen(kw_only=True)
class UsageBillableMetric:
    """The billable metric a usage line aggregates."""

    lago_id: str
    name: str
    code: str
    aggregation_type: str


@attrs.frozen(kw_only=True)
class ChargeFilterUsage:
    """Usage of a charge restricted to one filter (set of property values)."""

    units: Decimal
    total_aggregated_units: Decimal
    amount_cents: int
    events_count: int
    values: dict[str, list[str]]
    invoice_display_name: str | None = None
    pricing_unit_details: UsagePricingUnitDetails | None = None
    presentation_breakdowns: list[PresentationBreakdown] | None = None


@attrs.frozen(kw_only=True)
class ChargeGroupedUsage:
    """Usage of a charge for one group of ``grouped_by`` values."""

    amount_cents: int
    events_count: int
    units: Decimal
    total_aggregated_units: Decimal
    grouped_by: dict[str, str | None]
    pricing_unit_details: UsagePricingUnitDetails | None = None
    filters: list[ChargeFilterUsage] | None = None
    presentation_breakdowns: list[PresentationBreakdown] | None = None


@attrs.frozen(kw_only=True)
class ChargeUsage:
    """Usage and amount of one charge in the period."""

    units: Decimal
    total_aggregated_units: Decimal
    events_count: int
    amount_cents: int
    amount_currency: str
    charge: UsageCharge
    billable_metric: UsageBillableMetric
    pricing_unit_details: UsagePricingUnitDetails | None = None
    filters: list[ChargeFilterUsage] | None = None
    grouped_usage: list[ChargeGroupedUsage] | None = None
    presentation_breakdowns: list[PresentationBreakdown] | None = None


@attrs.frozen(kw_only=True)
class CustomerUsage:
    """A customer's usage and amounts over one billing period (current or past)."""

    from_datetime: datetime.datetime
    to_datetime: datetime.datetime
    issuing_date: datetime.date
    amount_cents: int
    taxes_amount_cents: int
    total_amount_cents: int
    charges_usage: list[ChargeUsage]
    lago_invoice_id: str | None = None
    currency: str | None = None


@attrs.frozen(kw_only=True)
class ProjectedChargeFilterUsage:
    """Usage of a charge for one filter, with its projection to the end of the period."""

    units: Decimal
    projected_units: Decimal
    amount_cents: int
    projected_amount_cents: int
    events_count: int
    values: dict[str, list[str]]
    invoice_display_name: str | None = None
    pricing_unit_details: UsagePricingUnitDetails | None = None
    presentation_breakdowns: list[PresentationBreakdown] | None = None
    projected_presentation_breakdowns: list[PresentationBreakdown] | None = None


@attrs.frozen(kw_only=True)
class ProjectedChargeGroupedUsage:
    """Usage of a charge for one group, with its projection to the end of the period."""

    amount_cents: int
    projected_amount_cents: int
    events_count: int
    units: Decimal
    projected_units: Decimal
    grouped_by: dict[str, str | None]
    pricing_unit_details: UsagePricingUnitDetails | None = None
    filters: list[ProjectedChargeFilterUsage] | None = None
    presentation_breakdowns: list[PresentationBreakdown] | None = None
    projected_presentation_breakdowns: list[PresentationBreakdown] | None = None


@attrs.frozen(kw_only=True)
class ProjectedChargeUsage:
    """Usage of one charge so far, with its projection to the end of the period."""

    units: Decimal
    projected_units: Decimal
    events_count: int
    amount_cents: int
    projected_amount_cents: int
    amount_currency: str
    charge: UsageCharge
    billable_metric: UsageBillableMetric
    pricing_unit_details: UsagePricingUnitDetails | None = None
    filters: list[ProjectedChargeFilterUsage] | None = None
    grouped_usage: list[ProjectedChargeGroupedUsage] | None = None
    presentation_breakdowns: list[PresentationBreakdown] | None = None
    projected_presentation_breakdowns: list[PresentationBreakdown] | None = None


@attrs.frozen(kw_only=True)
class CustomerProjectedUsage:
    """A customer's current usage, projected to the end of the billing period."""

    from_datetime: datetime.datetime
    to_datetime: datetime.datetime
    issuing_date: datetime.date
    amount_cents: int
    projected_amount_cents: int
    taxes_amount_cents: int
    total_amount_cents: int
    charges_usage: list[ProjectedChargeUsage]
    lago_invoice_id: str | None = None
    currency: str | None = None


# --- coupons and links -------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class AppliedCoupon:
    """A coupon applied to a customer, with what remains of it."""

    lago_id: str
    lago_coupon_id: str
    coupon_code: str
    external_customer_id: str
    lago_customer_id: str
    frequency: str
    created_at: datetime.datetime
    coupon_name: str | None = None
    status: str | None = None
    coupon_status: str | None = None
    coupon_deleted_at: datetime.datetime | None = None
    amount_cents: int | None = None
    amount_cents_remaining: int | None = None
    amount_currency: str | None = None
    percentage_rate: Decimal | None = None
    frequency_duration: int | None = None
    frequency_duration_remaining: int | None = None
    expiration_at: datetime.datetime | None = None
    terminated_at: datetime.datetime | None = None
    credits: list[Credit] | None = None


@attrs.frozen(kw_only=True)
class CustomerCheckoutUrl:
    """A payment-provider checkout link to collect a customer's payment method."""

    lago_customer_id: str
    external_customer_id: str
    payment_provider: str
    payment_provider_code: str | None = None
    checkout_url: str | None = None


@attrs.frozen(kw_only=True)
class CustomerPortalUrl:
    """An embeddable link to a customer's self-service portal."""

    portal_url: str
