"""Conformance with Lago's OpenAPI document, operation by operation.

For every operation in scope: the SDK method exists, the request it builds (method, path,
query names and JSON body) is what the spec describes and validates against the operation's
request schema, and a response built from the spec's examples parses into the SDK's model.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from aioresponses import aioresponses
from yarl import URL

from lago_async import AsyncLago
from tests._spec import load_spec, resolve, schema_validator
from tests.conftest import BASE_URL

Call = Callable[[AsyncLago], Any]

EVENT = {
    "transaction_id": "tx_1",
    "external_subscription_id": "sub_1",
    "code": "storage",
    "timestamp": 1700000000,
    "properties": {"gb": 10, "ratio": 0.5, "region": "eu"},
    "precise_total_amount_cents": "12.5",
}

# operationId -> a call of the SDK method with every kind of argument it takes.
OPERATIONS: dict[str, Call] = {
    "createEvent": lambda c: c.events.create(**EVENT),
    "createBatchEvents": lambda c: c.events.create_batch([EVENT, {**EVENT, "transaction_id": "2"}]),
    "findEvent": lambda c: c.events.get("tx_1"),
    "findAllEvents": lambda c: c.events.list(
        external_subscription_id="sub_1",
        code="storage",
        timestamp_from_started_at=True,
        timestamp_from="2026-01-01T00:00:00Z",
        timestamp_to="2026-02-01T00:00:00Z",
        per_page=10,
    ).first_page(),
    "eventEstimateFees": lambda c: c.events.estimate_fees(
        code="storage", external_subscription_id="sub_1", properties={"gb": 1}
    ),
    "eventEstimateInstantFees": lambda c: c.events.estimate_instant_fees(
        code="storage",
        external_subscription_id="sub_1",
        properties={"gb": 1},
        transaction_id="tx_1",
    ),
    "eventBatchEstimateInstantFees": lambda c: c.events.batch_estimate_instant_fees(
        [{"code": "storage", "external_subscription_id": "sub_1", "properties": {"gb": 1}}]
    ),
    "createCustomer": lambda c: c.customers.create(
        external_id="acme",
        name="Acme",
        email="billing@acme.test",
        currency="EUR",
        country="FR",
        timezone="Europe/Paris",
        account_type="customer",
        customer_type="company",
        net_payment_term=30,
        finalize_zero_amount_invoice="inherit",
        tax_codes=["vat"],
        billing_configuration={"payment_provider": "stripe", "sync": True},
        shipping_address={"address_line1": "1 rue", "city": "Paris", "country": "FR"},
        metadata=[{"key": "tier", "value": "gold", "display_in_invoice": True}],
        invoice_custom_section_codes=["eu"],
    ),
    "findAllCustomers": lambda c: c.customers.list(
        account_type=["customer"],
        billing_entity_codes=["be"],
        search_term="acme",
        countries=["FR"],
        states=["Paris"],
        zipcodes=["75001"],
        currencies=["EUR"],
        has_tax_identification_number=True,
        customer_type="company",
        has_customer_type=True,
        per_page=5,
    ).first_page(),
    "findCustomer": lambda c: c.customers.get("acme"),
    "destroyCustomer": lambda c: c.customers.delete("acme"),
    "findCustomerCurrentUsage": lambda c: c.customers.current_usage(
        "acme",
        external_subscription_id="sub_1",
        apply_taxes=False,
        charge_code="storage",
        billable_metric_code="storage",
        full_usage=True,
        filter_by_presentation="[]",
    ),
    "findCustomerProjectedUsage": lambda c: c.customers.projected_usage(
        "acme", external_subscription_id="sub_1", apply_taxes=True
    ),
    "findAllCustomerPastUsage": lambda c: c.customers.past_usage(
        "acme", external_subscription_id="sub_1", billable_metric_code="cpu", periods_count=3
    ).first_page(),
    "generateCustomerCheckoutURL": lambda c: c.customers.checkout_url("acme"),
    "getCustomerPortalUrl": lambda c: c.customers.portal_url("acme"),
    "findAllCustomerAppliedCoupons": lambda c: c.customers.applied_coupons(
        "acme", status="active", coupon_code=["BF"]
    ).first_page(),
    "deleteAppliedCoupon": lambda c: c.customers.delete_applied_coupon(
        "acme", "1a901a90-1a90-1a90-1a90-1a901a901a90"
    ),
}

PATH_VALUES = {
    "external_customer_id": "acme",
    "transaction_id": "tx_1",
    "applied_coupon_id": "1a901a90-1a90-1a90-1a90-1a901a901a90",
}


def _operations() -> dict[str, tuple[str, str, dict[str, Any]]]:
    spec = load_spec()
    found = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and op.get("operationId") in OPERATIONS:
                found[op["operationId"]] = (method.upper(), path, op)
    return found


def example_of(schema: dict[str, Any], depth: int = 0) -> Any:
    """A value for ``schema`` built from its examples (or plain defaults where it has none)."""
    schema = resolve(schema)
    if "example" in schema and depth > 0:
        return schema["example"]
    for key in ("allOf",):
        if key in schema:
            merged: dict[str, Any] = {}
            for part in schema[key]:
                value = example_of(part, depth + 1)
                if isinstance(value, dict):
                    merged.update(value)
            return merged
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return example_of(schema[key][0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if kind == "null":
        return None
    if kind == "object" or "properties" in schema:
        value = {
            name: example_of(sub, depth + 1) for name, sub in schema.get("properties", {}).items()
        }
        for name in schema.get("required", []):
            value.setdefault(name, None)  # required but undeclared: any value is valid
        return value
    if kind == "array":
        return [example_of(schema.get("items", {}), depth + 1)]
    if "enum" in schema:
        return next(v for v in schema["enum"] if v is not None)
    return {"string": "x", "integer": 1, "number": 1.5, "boolean": True}.get(kind, "x")


def _response_schema(op: dict[str, Any]) -> dict[str, Any]:
    return resolve(op["responses"]["200"])["content"]["application/json"]["schema"]


@pytest.mark.parametrize("operation_id", sorted(OPERATIONS))
async def test_operation_conforms(operation_id: str) -> None:
    operations = _operations()
    assert operation_id in operations, f"{operation_id} is not in the spec any more"
    method, template, op = operations[operation_id]
    path = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], template)
    url = f"{BASE_URL}{path}"
    response = example_of(_response_schema(op))
    schema_validator(_response_schema(op)).validate(response)

    async with AsyncLago(api_key="k", base_url=BASE_URL) as client:
        with aioresponses() as mocked:
            mocked.add(re.compile(re.escape(url) + r"(\?.*)?$"), method, payload=response)
            result = await OPERATIONS[operation_id](client)
            ((seen_method, seen_url), calls) = next(iter(mocked.requests.items()))
    assert result is not None
    assert seen_method == method
    assert str(URL(str(seen_url)).with_query(None)) == url

    # Query: only names the operation declares, every required one present.
    params = [resolve(p) for p in op.get("parameters", []) + item_parameters(template)]
    declared = {p["name"] for p in params if p["in"] == "query"}
    required = {p["name"] for p in params if p["in"] == "query" and p.get("required")}
    sent_names = {
        re.sub(r"\[[^\]]+\]$", "[key]", k) if k.startswith(("metadata[", "group[")) else k
        for k in seen_url.query
    }
    assert sent_names <= declared, sent_names - declared
    assert required <= sent_names

    # Body: validates against the request schema; no body when the spec has none.
    data = calls[0].kwargs.get("data")
    if "requestBody" in op:
        schema = resolve(op["requestBody"])["content"]["application/json"]["schema"]
        schema_validator(schema).validate(orjson.loads(data))
    else:
        assert not data


def item_parameters(template: str) -> list[dict[str, Any]]:
    item = load_spec()["paths"][template]
    return list(item.get("parameters", []))


def test_every_operation_of_the_two_tags_is_covered() -> None:
    spec = load_spec()
    in_scope = set()
    out_of_scope = set()
    for item in spec["paths"].values():
        for op in item.values():
            if not isinstance(op, dict) or "tags" not in op:
                continue
            if op["tags"][0] in ("events", "customers"):
                (in_scope if op["operationId"] in OPERATIONS else out_of_scope).add(
                    op["operationId"]
                )
    # Customer sub-lists owned by other tags (invoices, payments...) come with those tags.
    assert out_of_scope <= {
        "findAllCustomerCreditNotes",
        "findAllCustomerInvoices",
        "findAllCustomerPayments",
        "findAllCustomerPaymentRequests",
        "findAllCustomerSubscriptions",
    }, out_of_scope
