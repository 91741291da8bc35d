"""The attrs models of the Events and Customers APIs against the spec and real payloads."""

from __future__ import annotations

import datetime as dt
import importlib
import types
import typing
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

import lago_async.types as lago_types
from lago_async._convert import loads, structure, unstructure
from lago_async.types import (
    Address,
    AppliedCoupon,
    ChargeUsage,
    Customer,
    CustomerBillingConfiguration,
    CustomerCheckoutUrl,
    CustomerInput,
    CustomerMetadataInput,
    CustomerPortalUrl,
    CustomerProjectedUsage,
    CustomerUsage,
    Event,
    EventInput,
    Fee,
    FeeEstimate,
    IntegrationCustomerInput,
    PaginationMeta,
)
from tests._spec import SHARED_DIR, resolve, schema_validator

FIXTURES_DIR = SHARED_DIR / "peer-fixtures" / "lago-python-client"
UTC = dt.timezone.utc
SCHEMAS = "#/components/schemas/"


def fixture(name: str) -> Any:
    """A peer fixture, decoded; skips the test when ../shared is not there."""
    path: Path = FIXTURES_DIR / name
    if not path.is_file():
        pytest.skip(f"peer fixture {path} not found (../shared is not checked out)")
    return loads(path.read_bytes())


# --- 1. real payloads --------------------------------------------------------------------------


def test_customer_fixture() -> None:
    customer = structure(fixture("customer.json")["customer"], Customer)
    assert customer.external_id == "5eb02857-a71e-4ea2-bcf9-57d3a41bc6ba"
    assert customer.created_at == dt.datetime(2022, 4, 29, 8, 59, 51, tzinfo=UTC)
    assert customer.created_at.tzinfo is not None
    assert customer.applicable_timezone == "Europe/Paris"
    assert customer.net_payment_term is None
    assert customer.sequential_id is None  # required by the spec, absent from the fixture
    config = customer.billing_configuration
    assert config is not None
    assert type(config.invoice_grace_period) is int
    assert config.invoice_grace_period == 3
    assert config.provider_payment_methods == ["card", "sepa_debit"]
    assert customer.shipping_address == Address(
        city="Paris",
        zipcode="123",
        country="FR",
        address_line1="Test Ave",
        state="XZ",
    )
    assert customer.integration_customers is not None
    assert customer.integration_customers[0].type == "netsuite"
    assert customer.integration_customers[0].sync_with_provider is True
    assert customer.metadata is not None
    assert customer.metadata[0].display_in_invoice is True
    assert customer.metadata[0].created_at is None
    assert customer.taxes is not None
    rate = customer.taxes[0].rate
    assert isinstance(rate, Decimal)
    assert rate == Decimal("15")
    assert customer.applicable_invoice_custom_sections is not None
    assert customer.applicable_invoice_custom_sections[0].code == "custom_section_code"
    assert customer.error_details is not None
    assert customer.error_details[0].error_code == "tax_error"
    assert isinstance(customer.error_details[0].details["tax_error"], list)


def test_customer_usage_fixture() -> None:
    usage = structure(fixture("customer_usage.json")["customer_usage"], CustomerUsage)
    assert usage.from_datetime == dt.datetime(2022, 7, 1, tzinfo=UTC)
    assert usage.to_datetime.tzinfo is not None
    assert usage.issuing_date == dt.date(2022, 8, 1)
    assert type(usage.amount_cents) is int
    assert usage.currency == "EUR"
    charge = usage.charges_usage[0]
    assert isinstance(charge.units, Decimal)
    assert str(charge.units) == "1.0"
    assert type(charge.events_count) is int
    assert charge.charge.charge_model == "graduated"
    assert charge.billable_metric.aggregation_type == "sum"  # not one of the spec's enum values
    assert charge.pricing_unit_details is not None
    assert charge.pricing_unit_details.conversion_rate == Decimal("1.0")
    assert charge.filters is not None
    assert charge.filters[0].values == {"country": ["france"]}
    assert charge.filters[0].presentation_breakdowns is not None
    assert charge.filters[0].presentation_breakdowns[0].presentation_by == {"team": "engineering"}
    assert charge.grouped_usage is not None
    group = charge.grouped_usage[0]
    assert group.grouped_by == {"agent_name": "aragorn"}
    assert group.pricing_unit_details is not None
    assert str(group.pricing_unit_details.conversion_rate) == "1.2"  # a float, kept exact
    assert group.filters is not None
    assert group.filters[0].pricing_unit_details is None
    assert charge.presentation_breakdowns is not None
    assert charge.presentation_breakdowns[0].units == Decimal("3.0")


def test_customer_past_usage_fixture() -> None:
    body = fixture("customer_past_usage.json")
    periods = structure(body["usage_periods"], list[CustomerUsage])
    meta = structure(body["meta"], PaginationMeta)
    assert len(periods) == 1
    assert periods[0].lago_invoice_id == "1a901a90-1a90-1a90-1a90-1a901a901a90"
    assert periods[0].charges_usage[0].grouped_usage is None
    assert periods[0].charges_usage[0].charge.invoice_display_name is None
    assert meta == PaginationMeta(
        current_page=1, next_page=2, prev_page=None, total_pages=2, total_count=49
    )


def test_customer_projected_usage_fixture() -> None:
    body = fixture("customer_projected_usage.json")["customer_projected_usage"]
    usage = structure(body, CustomerProjectedUsage)
    assert type(usage.projected_amount_cents) is int
    assert usage.projected_amount_cents == 256
    charge = usage.charges_usage[0]
    assert charge.projected_units == Decimal("2.0")
    assert charge.projected_presentation_breakdowns is not None
    assert charge.projected_presentation_breakdowns[0].units == Decimal("6.0")
    assert charge.grouped_usage is not None
    assert charge.grouped_usage[0].filters is not None
    assert charge.grouped_usage[0].filters[0].projected_amount_cents == 256


def test_customer_portal_url_fixture() -> None:
    portal = structure(fixture("customer_portal_url.json")["customer"], CustomerPortalUrl)
    assert portal.portal_url.startswith("https://")


@pytest.mark.parametrize("name", ["event.json", "event_without_ids.json"])
def test_event_fixtures(name: str) -> None:
    event = structure(fixture(name)["event"], Event)
    assert event.code == "test"
    assert event.timestamp == dt.datetime(2022, 4, 29, 8, 59, 51, tzinfo=UTC)
    assert event.timestamp.tzinfo is not None
    assert isinstance(event.precise_total_amount_cents, Decimal)
    assert str(event.precise_total_amount_cents) == "123.45"
    assert event.properties == {"custom_field": "custom"}
    assert event.lago_customer_id is None  # required by the spec, absent from both fixtures
    if name == "event.json":
        assert event.lago_id == "5eb02857-a71e-4ea2-bcf9-57d3a41bc6ba"
        assert event.created_at is not None
        assert event.created_at.tzinfo is not None
    else:
        assert event.lago_id is None
        assert event.created_at is None


def test_fees_fixture() -> None:
    fees = structure(fixture("fees.json")["fees"], list[Fee])
    assert len(fees) == 1
    fee = fees[0]
    assert type(fee.amount_cents) is int
    assert fee.amount_cents == 120
    assert fee.events_count == 1
    assert fee.taxes_rate == Decimal("20.0")  # a string in the payload, a number in the spec
    assert isinstance(fee.units, Decimal)
    assert str(fee.sub_total_excluding_taxes_precise_amount_cents) == "120.00"
    assert fee.item.type == "instant_charge"  # not one of the spec's enum values
    assert fee.item.grouped_by == {"agent_name": "aragorn"}
    assert fee.item.lago_item_id is None
    assert fee.pricing_unit_details is not None
    assert fee.pricing_unit_details.conversion_rate == Decimal("1")
    assert fee.presentation_breakdowns is not None
    assert fee.presentation_breakdowns[0].units == Decimal("1.0")
    assert fee.applied_taxes is not None
    tax = fee.applied_taxes[0]
    assert isinstance(tax.tax_rate, Decimal)
    assert tax.tax_rate == Decimal("20")
    assert tax.lago_fee_id == "1a901a90-1a90-1a90-1a90-1a901a901a90"
    assert tax.created_at.tzinfo is not None
    assert fee.payment_status is None  # required by the spec, absent from the fixture


def test_single_fee_fixture() -> None:
    fee = structure(fixture("fee.json")["fee"], Fee)
    assert fee.total_aggregated_units == Decimal("10.0")
    assert fee.billing_entity_code == "test-company"


def test_applied_coupon_fixtures() -> None:
    body = fixture("applied_coupon_index.json")
    coupons = structure(body["applied_coupons"], list[AppliedCoupon])
    meta = structure(body["meta"], PaginationMeta)
    assert len(coupons) == 2
    coupon = coupons[0]
    assert coupon.amount_cents == 123
    assert coupon.amount_cents_remaining == 12
    assert coupon.percentage_rate is None
    assert coupon.frequency == "once"
    assert coupon.expiration_at == dt.datetime(2022, 4, 29, 8, 59, 51, tzinfo=UTC)
    assert coupon.credits is None
    assert meta.next_page == 2
    assert meta.prev_page is None
    assert meta.total_count == 73

    single = structure(fixture("applied_coupon.json")["applied_coupon"], AppliedCoupon)
    assert single.status is None  # required by the spec, absent from this fixture


# --- 2. the spec's schemas ---------------------------------------------------------------------

PORTAL_URL = "#/paths/~1customers~1{external_customer_id}~1portal_url/get/responses/200"

SCHEMA_MODELS: list[tuple[str, type[Any]]] = [
    (SCHEMAS + "PaginationMeta", PaginationMeta),
    (SCHEMAS + "EventObject", Event),
    (SCHEMAS + "EventInputObject", EventInput),
    (SCHEMAS + "FeeObject", Fee),
    (SCHEMAS + "FeeEstimateObject", FeeEstimate),
    (SCHEMAS + "CustomerObjectExtended", Customer),
    (SCHEMAS + "CustomerCreateInput/properties/customer", CustomerInput),
    (SCHEMAS + "CustomerUsageObject", CustomerUsage),
    (SCHEMAS + "CustomerProjectedUsageObject", CustomerProjectedUsage),
    (SCHEMAS + "AppliedCouponObjectExtended", AppliedCoupon),
    (SCHEMAS + "CustomerCheckoutUrl", CustomerCheckoutUrl),
    (PORTAL_URL + "/content/application~1json/schema/properties/customer", CustomerPortalUrl),
]
INPUT_MODELS = {EventInput, CustomerInput}


def flatten(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$ref`` followed and its ``allOf`` parts merged into one object."""
    node = dict(resolve(schema))
    properties: dict[str, Any] = {}
    required: list[str] = []
    for part in node.pop("allOf", []):
        flat = flatten(part)
        properties.update(flat.get("properties", {}))
        required += flat.get("required", [])
    properties.update(node.get("properties", {}))
    required += node.get("required", [])
    if properties:
        node["properties"] = properties
    if required:
        node["required"] = sorted(set(required))
    return node


def kinds(schema: Mapping[str, Any]) -> set[str]:
    kind = schema.get("type")
    names = set(kind) if isinstance(kind, list) else {kind} if kind else set()
    return names - {"null"}


def strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def element(schema: Mapping[str, Any], tp: Any) -> tuple[dict[str, Any], Any] | None:
    """For an array property mapped to ``list[X]``: the items schema and ``X``."""
    if "array" in kinds(schema) and typing.get_origin(tp) is list:
        items = flatten(schema.get("items", {}))
        if schema.get("required") and "required" not in items:
            # The usage schemas put the items' ``required`` on the array itself.
            items["required"] = schema["required"]
        return items, typing.get_args(tp)[0]
    return None


PRIMITIVES: dict[str, tuple[type, ...]] = {
    "integer": (int,),
    "number": (Decimal,),
    "boolean": (bool,),
}
FORMATS: dict[str, type] = {"date-time": dt.datetime, "date": dt.date}


def schema_problems(schema: Mapping[str, Any], cls: type[Any], where: str) -> list[str]:
    """Spec properties missing from ``cls`` (recursively), mistyped, or wrongly required."""
    flat = flatten(schema)
    hints = typing.get_type_hints(cls)
    fields = attrs.fields_dict(cls)
    problems: list[str] = []
    spec_required = set(flat.get("required", []))
    for name, field in fields.items():
        if field.default is attrs.NOTHING and name not in spec_required:
            problems.append(f"{where}.{name} is required by the model but not by the spec")
    for name, prop_schema in flat.get("properties", {}).items():
        if name not in fields:
            problems.append(f"{where}.{name} is in the spec but not a field of {cls.__name__}")
            continue
        prop = flatten(prop_schema)
        tp = strip_optional(hints[name])
        wanted = FORMATS.get(prop.get("format", ""))
        if wanted is not None and tp is not wanted:
            problems.append(f"{where}.{name}: format {prop['format']} but typed {tp}")
        for kind in kinds(prop) & set(PRIMITIVES):
            if len(kinds(prop)) == 1 and tp not in PRIMITIVES[kind]:
                problems.append(f"{where}.{name}: {kind} but typed {tp}")
        if attrs.has(tp) and "properties" in prop:
            problems += schema_problems(prop, tp, f"{where}.{name}")
        nested = element(prop, tp)
        if nested is not None and attrs.has(nested[1]) and "properties" in nested[0]:
            problems += schema_problems(nested[0], nested[1], f"{where}.{name}[]")
    return problems


@pytest.mark.parametrize(
    ("ref", "model"), SCHEMA_MODELS, ids=[m.__name__ for _, m in SCHEMA_MODELS]
)
def test_model_covers_schema(ref: str, model: type[Any]) -> None:
    assert schema_problems(resolve(ref), model, model.__name__) == []


_NO_EXAMPLE = object()


def example_of(schema: Mapping[str, Any]) -> Any:
    """A value built from the spec's examples, property by property where none is given whole."""
    if "example" in schema:
        return schema["example"]
    flat = flatten(schema)
    if "example" in flat:
        return flat["example"]
    if "properties" in flat or "object" in kinds(flat):
        out = {}
        for name, sub in flat.get("properties", {}).items():
            value = example_of(sub)
            if value is not _NO_EXAMPLE:
                out[name] = value
        return out
    if "array" in kinds(flat):
        item = example_of(flat.get("items", {}))
        return [] if item is _NO_EXAMPLE else [item]
    if flat.get("default") is not None:
        return flat["default"]
    enum = [value for value in flat.get("enum", []) if value is not None]
    if enum:
        return enum[0]
    if flat.get("type") == "null":
        return None
    return _NO_EXAMPLE


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


@pytest.mark.parametrize(
    ("ref", "model"), SCHEMA_MODELS, ids=[m.__name__ for _, m in SCHEMA_MODELS]
)
def test_spec_example_structures(ref: str, model: type[Any]) -> None:
    example = example_of(resolve(ref))
    assert isinstance(example, dict)
    instance = structure(example, model)
    assert isinstance(instance, model)
    if model in INPUT_MODELS:
        # What we would send back is what the spec showed, less the nulls.
        assert unstructure(instance) == without_nulls(example)
        schema_validator(ref).validate(unstructure(instance))


# --- 3. forward compatibility ------------------------------------------------------------------


def test_unknown_keys_and_enum_values_are_kept() -> None:
    customer = structure(
        {
            "lago_id": "c-1",
            "external_id": "acme",
            "applicable_timezone": "UTC",
            "created_at": "2024-01-01T00:00:00Z",
            "account_type": "reseller",
            "brand_new_field": {"nested": True},
            "billing_configuration": {"payment_provider": "paypal", "new_flag": 1},
        },
        Customer,
    )
    assert customer.account_type == "reseller"
    assert customer.billing_configuration == CustomerBillingConfiguration(payment_provider="paypal")
    assert not hasattr(customer, "brand_new_field")

    usage = structure(
        {
            "units": "2",
            "total_aggregated_units": "2",
            "events_count": 2,
            "amount_cents": 10,
            "amount_currency": "XTS",
            "charge": {"lago_id": "ch", "charge_model": "dynamic", "surprise": []},
            "billable_metric": {
                "lago_id": "bm",
                "name": "Storage",
                "code": "storage",
                "aggregation_type": "custom_agg",
            },
        },
        ChargeUsage,
    )
    assert usage.charge.charge_model == "dynamic"
    assert usage.billable_metric.aggregation_type == "custom_agg"
    assert usage.amount_currency == "XTS"


# --- 4. request bodies -------------------------------------------------------------------------

EVENT_SCHEMA = SCHEMAS + "EventInputObject"
CUSTOMER_SCHEMA = SCHEMAS + "CustomerCreateInput/properties/customer"


def test_event_input_minimal_body() -> None:
    body = unstructure(EventInput(transaction_id="tx-1", external_subscription_id="s", code="c"))
    assert body == {"transaction_id": "tx-1", "external_subscription_id": "s", "code": "c"}
    schema_validator(EVENT_SCHEMA).validate(body)


def test_event_input_full_body_validates() -> None:
    event = EventInput(
        transaction_id="tx-2",
        external_subscription_id="sub_1",
        code="storage",
        timestamp=dt.datetime(2022, 4, 29, 8, 59, 51, tzinfo=UTC),
        precise_total_amount_cents=Decimal("1234.56"),
        properties={"gb": 10, "region": "eu-west-1", "ratio": 0.5},
    )
    body = unstructure(event)
    assert body == {
        "transaction_id": "tx-2",
        "external_subscription_id": "sub_1",
        "code": "storage",
        "timestamp": 1651222791,
        "precise_total_amount_cents": "1234.56",
        "properties": {"gb": 10, "region": "eu-west-1", "ratio": 0.5},
    }
    # An integer property matches two branches of the spec's ``oneOf`` (known spec bug); the
    # validator relaxes it, the SDK still sends the integer.
    schema_validator(EVENT_SCHEMA).validate(body)
    schema_validator(SCHEMAS + "EventInput").validate({"event": body})
    schema_validator(SCHEMAS + "EventBatchInput").validate({"events": [body, body]})


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        (1651240791, 1651240791),
        (1651240791.5, 1651240791.5),
        ("1651240791.123", "1651240791.123"),
        (
            dt.datetime(2022, 4, 29, 13, 59, 51, tzinfo=dt.timezone(dt.timedelta(hours=5))),
            1651222791,
        ),
        (dt.datetime(2022, 4, 29, 8, 59, 51), 1651222791),  # naive means UTC
        (dt.datetime(2022, 4, 29, 8, 59, 51, 123000, tzinfo=UTC), "1651222791.123"),
    ],
)
def test_event_input_timestamp(given: Any, sent: Any) -> None:
    event = EventInput(transaction_id="t", external_subscription_id="s", code="c", timestamp=given)
    assert event.timestamp == sent
    assert type(event.timestamp) is type(sent)
    assert unstructure(event)["timestamp"] == sent


@pytest.mark.parametrize(
    ("given", "sent"),
    [(Decimal("12.50"), "12.50"), (Decimal("1E+3"), "1000"), (7, "7"), ("0.001", "0.001")],
)
def test_event_input_precise_amount_is_a_string(given: Any, sent: str) -> None:
    event = EventInput(
        transaction_id="t", external_subscription_id="s", code="c", precise_total_amount_cents=given
    )
    assert event.precise_total_amount_cents == sent
    schema_validator(EVENT_SCHEMA).validate(unstructure(event))


@pytest.mark.parametrize(
    ("given", "error"), [("ten", ValueError), (Decimal("NaN"), ValueError), (True, TypeError)]
)
def test_event_input_rejects_bad_amounts(given: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="precise_total_amount_cents"):
        EventInput(
            transaction_id="t",
            external_subscription_id="s",
            code="c",
            precise_total_amount_cents=given,
        )


def test_event_input_from_a_mapping() -> None:
    event = structure(
        {"transaction_id": "t", "external_subscription_id": "s", "code": "c", "timestamp": 5},
        EventInput,
    )
    assert event.timestamp == 5


def test_customer_input_body_validates() -> None:
    customer = CustomerInput(
        external_id="acme",
        name="Acme",
        currency="EUR",
        country="FR",
        customer_type="company",
        net_payment_term=30,
        tax_codes=["french_standard_vat"],
        billing_configuration=CustomerBillingConfiguration(
            invoice_grace_period=3,
            payment_provider="stripe",
            payment_provider_code="stripe-eu-1",
            sync_with_provider=True,
            provider_payment_methods=["card"],
        ),
        shipping_address=Address(address_line1="1 rue de Rivoli", city="Paris", country="FR"),
        integration_customers=[
            IntegrationCustomerInput(
                integration_type="netsuite",
                integration_code="netsuite-eu-1",
                external_customer_id="cus_1",
                sync_with_provider=False,
            )
        ],
        metadata=[CustomerMetadataInput(key="PO", value="42", display_in_invoice=True)],
        invoice_custom_section_codes=["eu_bank_details"],
    )
    body = unstructure(customer)
    assert body == {
        "external_id": "acme",
        "name": "Acme",
        "currency": "EUR",
        "country": "FR",
        "customer_type": "company",
        "net_payment_term": 30,
        "tax_codes": ["french_standard_vat"],
        "billing_configuration": {
            "invoice_grace_period": 3,
            "payment_provider": "stripe",
            "payment_provider_code": "stripe-eu-1",
            "sync_with_provider": True,
            "provider_payment_methods": ["card"],
        },
        "shipping_address": {"address_line1": "1 rue de Rivoli", "city": "Paris", "country": "FR"},
        "integration_customers": [
            {
                "integration_type": "netsuite",
                "integration_code": "netsuite-eu-1",
                "external_customer_id": "cus_1",
                "sync_with_provider": False,
            }
        ],
        "metadata": [{"key": "PO", "value": "42", "display_in_invoice": True}],
        "invoice_custom_section_codes": ["eu_bank_details"],
    }
    schema_validator(CUSTOMER_SCHEMA).validate(body)
    schema_validator(SCHEMAS + "CustomerCreateInput").validate({"customer": body})
    minimal = unstructure(CustomerInput(external_id="acme"))
    assert minimal == {"external_id": "acme"}
    schema_validator(CUSTOMER_SCHEMA).validate(minimal)


# --- model hygiene -----------------------------------------------------------------------------

ALL_MODELS = [getattr(lago_types, name) for name in lago_types.__all__]


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.__name__)
def test_models_are_frozen_slotted_keyword_only(model: type[Any]) -> None:
    assert attrs.has(model)
    assert "__slots__" in model.__dict__
    assert model.__doc__ and model.__doc__.strip()
    assert all(field.kw_only for field in attrs.fields(model))
    assert model.__setattr__ is not object.__setattr__  # frozen
    typing.get_type_hints(model)  # every annotation resolves


def test_every_model_is_exported() -> None:
    modules = {
        importlib.import_module(name, lago_types.__name__) for name in lago_types._MODULES.values()
    }
    defined = {
        name
        for module in modules
        for name, value in vars(module).items()
        if isinstance(value, type) and attrs.has(value) and value.__module__ == module.__name__
    }
    assert defined == set(lago_types.__all__)
