"""Every peer fixture (real bodies from the official client's tests) through its real method.

Each body in ../shared/peer-fixtures/lago-python-client/ is served over HTTP (aioresponses)
to the SDK method of the operation that returns it; the method must give back models (never
raw dicts) holding the identifiers of the objects answered. Two fixtures belong to endpoints
the spec no longer has (``applied_tax``, ``plan_applied_tax``) and one is an error body; they
are checked for what they are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from aioresponses import aioresponses

from lago_async import AsyncLago, AsyncPager, UnprocessableEntityError
from tests._spec import SHARED_DIR
from tests.conftest import BASE_URL

FIXTURES = SHARED_DIR / "peer-fixtures" / "lago-python-client"

Call = Callable[[AsyncLago], Any]

# fixture -> the call whose answer it is
CALLS: dict[str, Call] = {
    "activity_log": lambda c: c.activity_logs.get("x"),
    "activity_log_index": lambda c: c.activity_logs.list(),
    "add_on": lambda c: c.add_ons.get("x"),
    "add_on_index": lambda c: c.add_ons.list(),
    "api_log": lambda c: c.api_logs.get("x"),
    "api_log_index": lambda c: c.api_logs.list(),
    "applied_coupon": lambda c: c.applied_coupons.create(external_customer_id="c", coupon_code="x"),
    "applied_coupon_index": lambda c: c.applied_coupons.list(),
    "billable_metric": lambda c: c.billable_metrics.get("x"),
    "billable_metric_evaluate_expression": lambda c: c.billable_metrics.evaluate_expression(
        {"expression": "1", "event": {"code": "x", "timestamp": 1, "properties": {}}}
    ),
    "billable_metric_index": lambda c: c.billable_metrics.list(),
    "billing_entity": lambda c: c.billing_entities.get("x"),
    "billing_entity_index": lambda c: c.billing_entities.list(),
    "charge": lambda c: c.plans.charges.get("p", "x"),
    "charge_filter": lambda c: c.plans.charges.filters.get("p", "c", "x"),
    "charge_filters": lambda c: c.plans.charges.filters.list("p", "c"),
    "charges": lambda c: c.plans.charges.list("p"),
    "coupon": lambda c: c.coupons.get("x"),
    "coupon_index": lambda c: c.coupons.list(),
    "credit_note": lambda c: c.credit_notes.get("x"),
    "credit_note_estimated": lambda c: c.credit_notes.estimate(invoice_id="i", items=[]),
    "credit_note_index": lambda c: c.credit_notes.list(),
    "credit_note_with_customer": lambda c: c.credit_notes.get("x"),
    "customer": lambda c: c.customers.get("x"),
    "customer_past_usage": lambda c: c.customers.past_usage("x", external_subscription_id="s"),
    "customer_portal_url": lambda c: c.customers.portal_url("x"),
    "customer_projected_usage": lambda c: c.customers.projected_usage(
        "x", external_subscription_id="s"
    ),
    "customer_usage": lambda c: c.customers.current_usage("x", external_subscription_id="s"),
    "event": lambda c: c.events.get("x"),
    "event_without_ids": lambda c: c.events.get("x"),
    "fee": lambda c: c.fees.get("x"),
    "fees": lambda c: c.events.estimate_fees(code="x", external_subscription_id="s"),
    "fixed_charge": lambda c: c.plans.fixed_charges.get("p", "x"),
    "fixed_charges": lambda c: c.plans.fixed_charges.list("p"),
    "graduated_plan": lambda c: c.plans.get("x"),
    "gross_revenue_index": lambda c: c.analytics.gross_revenue(),
    "invoice": lambda c: c.invoices.get("x"),
    "invoice_collection_index": lambda c: c.analytics.invoice_collection(),
    "invoice_index": lambda c: c.invoices.list(),
    "invoiced_usage_index": lambda c: c.analytics.invoiced_usage(),
    "lifetime_usage": lambda c: c.subscriptions.lifetime_usage("x"),
    "mrr_index": lambda c: c.analytics.mrr(),
    "one_off_invoice": lambda c: c.invoices.create(external_customer_id="c", fees=[]),
    "organization": lambda c: c.organization.update(country="FR"),
    "overdue_balance_index": lambda c: c.analytics.overdue_balance(),
    "payment": lambda c: c.payments.get("x"),
    "payment_index": lambda c: c.payments.list(),
    "payment_method": lambda c: c.customers.payment_methods.set_as_default("c", "x"),
    "payment_method_index": lambda c: c.customers.payment_methods.list("c"),
    "payment_receipt": lambda c: c.payment_receipts.get("x"),
    "payment_receipt_index": lambda c: c.payment_receipts.list(),
    "payment_request": lambda c: c.payment_requests.get("x"),
    "payment_request_index": lambda c: c.payment_requests.list(),
    "payment_url": lambda c: c.invoices.payment_url("x"),
    "pending_subscription": lambda c: c.subscriptions.get("x"),
    "plan": lambda c: c.plans.get("x"),
    "plan_index": lambda c: c.plans.list(),
    "subscription": lambda c: c.subscriptions.get("x"),
    "subscription_alerts": lambda c: c.subscriptions.alerts.list("x"),
    "subscription_index": lambda c: c.subscriptions.list(),
    "tax": lambda c: c.taxes.get("x"),
    "tax_index": lambda c: c.taxes.list(),
    "update_lifetime_usage": lambda c: c.subscriptions.update_lifetime_usage(
        "x", external_historical_usage_amount_cents=1
    ),
    "usage_index": lambda c: c.analytics.usage(),
    "voided_invoice": lambda c: c.invoices.void("x", {}),
    "wallet": lambda c: c.wallets.get("x"),
    "wallet_alert": lambda c: c.customers.wallets.alerts.get("c", "w", "x"),
    "wallet_alert_index": lambda c: c.customers.wallets.alerts.list("c", "w"),
    "wallet_index": lambda c: c.wallets.list(external_customer_id="c"),
    "wallet_transaction": lambda c: c.wallets.transactions.create(wallet_id="w"),
    "wallet_transaction_consumptions": lambda c: c.wallets.transactions.consumptions("x"),
    "wallet_transaction_fundings": lambda c: c.wallets.transactions.fundings("x"),
    "wallet_transaction_index": lambda c: c.wallets.transactions.list("w"),
    "wallet_transaction_payment_url": lambda c: c.wallets.transactions.payment_url("x"),
    "webhook": lambda c: c.webhooks.json_public_key(),
    "webhook_endpoint": lambda c: c.webhook_endpoints.get("x"),
    "webhook_endpoint_index": lambda c: c.webhook_endpoints.list(),
}
NO_ENDPOINT = {"applied_tax", "plan_applied_tax"}
ERROR_BODIES = {"event_unprocessable_entity"}


def fixture_names() -> list[str]:
    if not FIXTURES.is_dir():
        return ["absent"]
    return sorted(path.stem for path in FIXTURES.glob("*.json"))


def test_every_fixture_is_mapped() -> None:
    if not FIXTURES.is_dir():
        pytest.skip(f"peer fixtures not found at {FIXTURES} (../shared is not beside the repo)")
    names = set(fixture_names())
    assert len(names) == 80
    assert names == set(CALLS) | NO_ENDPOINT | ERROR_BODIES


def identifiers(body: Any) -> set[str]:
    """The ``lago_id`` values in a body, at any depth."""
    found: set[str] = set()
    if isinstance(body, dict):
        for key, value in body.items():
            if key == "lago_id" and isinstance(value, str):
                found.add(value)
            found |= identifiers(value)
    elif isinstance(body, list):
        for value in body:
            found |= identifiers(value)
    return found


def model_identifiers(value: Any) -> set[str]:
    found: set[str] = set()
    if attrs.has(type(value)):
        for field in attrs.fields(type(value)):
            item = getattr(value, field.name)
            if field.name == "lago_id" and isinstance(item, str):
                found.add(item)
            found |= model_identifiers(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            found |= model_identifiers(item)
    elif isinstance(value, dict):
        found |= identifiers(value)
    return found


@pytest.mark.parametrize("name", fixture_names())
async def test_fixture_parses_through_its_method(name: str, mocked: aioresponses) -> None:
    path = FIXTURES / f"{name}.json"
    if not path.exists():
        pytest.skip(f"peer fixture {path} is absent (../shared is not beside the repository)")
    body = json.loads(path.read_text())
    if name in NO_ENDPOINT:
        # the answer of an endpoint the spec no longer has: there is no method to call
        assert set(body) == {"applied_tax"}
        return
    status = 422 if name in ERROR_BODIES else 200
    mocked.add(
        re.compile(re.escape(BASE_URL) + r"/.*"),
        repeat=True,
        status=status,
        payload=body,
        method="GET",
    )
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        mocked.add(
            re.compile(re.escape(BASE_URL) + r"/.*"),
            method,
            repeat=True,
            status=status,
            payload=body,
        )
    async with AsyncLago(api_key="k", base_url=BASE_URL, max_retries=0) as lago:
        if name in ERROR_BODIES:
            with pytest.raises(UnprocessableEntityError) as info:
                await lago.events.create(transaction_id="t", code="c", external_subscription_id="s")
            assert info.value.error_details == body["error_details"]
            return
        result = CALLS[name](lago)
        if isinstance(result, AsyncPager):
            page = await result.first_page()
            value: Any = page.items
        else:
            value = await result
    if name == "customer_portal_url":
        assert value == body["customer"]["portal_url"]
        return
    items = value if isinstance(value, list) else [value]
    assert items, f"{name}: nothing parsed"
    assert all(attrs.has(type(item)) for item in items), f"{name}: not models: {value!r:.200}"
    # the identifiers of the objects answered are the models' (nested keys the spec does not
    # declare are ignored, by design, so only the answered objects' own ids are compared)
    top = next(iter(body.values()))
    answered = top if isinstance(top, list) else [top]
    ids = {item["lago_id"] for item in answered if isinstance(item, dict) and "lago_id" in item}
    assert ids <= model_identifiers(value)
    assert len(model_identifiers(value)) >= len(ids)
