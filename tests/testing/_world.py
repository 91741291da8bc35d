"""A FakeLago holding one of every resource, built through its HTTP API (raw JSON).

``build_world(api, fake)`` creates, in dependency order, a billable metric, a plan with a
charge and a filter, a customer, a subscription, add-ons, coupons, taxes, a feature,
a billing entity, wallets, a one-off invoice with its fee, a credit note, a payment, a
payment request and alerts; what no call creates (payment methods, receipts, logs) comes
from ``fake.add_object``. :func:`fill` turns a route's path template into a path naming
those objects.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from lago_async.testing import FakeLago
from tests.testing._api import Api

GHOST = "00000000-0000-4000-8000-000000000000"


async def created(api: Api, path: str, body: Any, key: str) -> dict[str, Any]:
    """POST ``body`` to ``path``; the object under ``key`` of a 2xx answer."""
    answer = await api.post(path, body)
    assert answer.status == 200, (path, answer.body)
    value: dict[str, Any] = answer.body[key]
    return value


async def build_world(api: Api, fake: FakeLago) -> dict[tuple[str, str], str]:
    """Create one of every resource; returns ``{(collection, path parameter): value}``."""
    metric = await created(
        api,
        "/billable_metrics",
        {
            "billable_metric": {
                "name": "Storage",
                "code": "storage",
                "aggregation_type": "sum_agg",
                "field_name": "gb",
                "filters": [{"key": "region", "values": ["eu", "us"]}],
            }
        },
        "billable_metric",
    )
    plan = await created(
        api,
        "/plans",
        {
            "plan": {
                "name": "Startup",
                "code": "startup",
                "interval": "monthly",
                "amount_cents": 10000,
                "amount_currency": "USD",
                "pay_in_advance": False,
                "charges": [
                    {
                        "billable_metric_id": metric["lago_id"],
                        "code": "storage_charge",
                        "charge_model": "standard",
                        "properties": {"amount": "0.5"},
                        "filters": [
                            {"values": {"region": ["eu"]}, "properties": {"amount": "0.7"}}
                        ],
                    }
                ],
            }
        },
        "plan",
    )
    charge = plan["charges"][0]
    await created(
        api,
        "/add_ons",
        {
            "add_on": {
                "code": "setup",
                "name": "Setup",
                "amount_cents": 5000,
                "amount_currency": "USD",
            }
        },
        "add_on",
    )
    fixed = await created(
        api,
        "/plans/startup/fixed_charges",
        {
            "fixed_charge": {
                "add_on_code": "setup",
                "code": "setup_fee",
                "charge_model": "standard",
                "units": "1",
                "properties": {"amount": "10"},
            }
        },
        "fixed_charge",
    )
    fake.add_customer("acme", name="Acme", currency="USD", email="billing@acme.example")
    await created(
        api,
        "/subscriptions",
        {
            "subscription": {
                "external_customer_id": "acme",
                "plan_code": "startup",
                "external_id": "sub_1",
            }
        },
        "subscription",
    )
    await created(
        api,
        "/coupons",
        {
            "coupon": {
                "code": "welcome",
                "name": "Welcome",
                "coupon_type": "fixed_amount",
                "amount_cents": 1000,
                "amount_currency": "USD",
                "frequency": "once",
                "expiration": "no_expiration",
            }
        },
        "coupon",
    )
    await created(api, "/taxes", {"tax": {"code": "vat", "name": "VAT", "rate": "20.0"}}, "tax")
    await created(
        api,
        "/features",
        {
            "feature": {
                "code": "seats",
                "name": "Seats",
                "privileges": [{"code": "max", "name": "Max", "value_type": "integer"}],
            }
        },
        "feature",
    )
    assert (
        await api.post("/plans/startup/entitlements", {"entitlements": {"seats": {"max": 10}}})
    ).status == 200
    await created(
        api,
        "/billing_entities",
        {"billing_entity": {"code": "main", "name": "Main entity"}},
        "billing_entity",
    )
    wallet = await created(
        api,
        "/wallets",
        {
            "wallet": {
                "external_customer_id": "acme",
                "code": "prepaid",
                "rate_amount": "1.0",
                "currency": "USD",
                "paid_credits": "20.0",
            }
        },
        "wallet",
    )
    reserve = await created(
        api,
        "/wallets",
        {
            "wallet": {
                "external_customer_id": "acme",
                "code": "reserve",
                "rate_amount": "1.0",
                "currency": "USD",
                "granted_credits": "1.0",
            }
        },
        "wallet",
    )
    transactions = await api.post(
        "/wallet_transactions",
        {"wallet_transaction": {"wallet_id": wallet["lago_id"], "granted_credits": "5.0"}},
    )
    assert transactions.status == 200, transactions.body
    transaction = transactions.body["wallet_transactions"][0]
    invoice = await created(
        api,
        "/invoices",
        {
            "invoice": {
                "external_customer_id": "acme",
                "fees": [{"add_on_code": "setup", "units": "2"}],
            }
        },
        "invoice",
    )
    fee = invoice["fees"][0]
    credit_note = await created(
        api,
        "/credit_notes",
        {
            "credit_note": {
                "invoice_id": invoice["lago_id"],
                "reason": "other",
                "credit_amount_cents": 100,
                "items": [{"fee_id": fee["lago_id"], "amount_cents": 100}],
            }
        },
        "credit_note",
    )
    payment = await created(
        api,
        "/payments",
        {
            "payment": {
                "invoice_id": invoice["lago_id"],
                "amount_cents": 500,
                "reference": "wire-1",
            }
        },
        "payment",
    )
    payment_request = await created(
        api,
        "/payment_requests",
        {
            "payment_request": {
                "external_customer_id": "acme",
                "email": "billing@acme.example",
                "lago_invoice_ids": [invoice["lago_id"]],
            }
        },
        "payment_request",
    )
    alert = {"alert_type": "current_usage_amount", "code": "spend", "thresholds": [{"value": "10"}]}
    assert (await api.post("/subscriptions/sub_1/alerts", {"alert": alert})).status == 200
    wallet_alert = {
        "alert_type": "wallet_balance_amount",
        "code": "low",
        "thresholds": [{"value": "5"}],
    }
    answer = await api.post("/customers/acme/wallets/prepaid/alerts", {"alert": wallet_alert})
    assert answer.status == 200, answer.body
    method = fake.add_object("payment_methods", external_customer_id="acme", is_default=True)
    receipt = fake.add_object("payment_receipts", number="R-1")
    activity = fake.add_object("activity_logs", activity_type="plan.created")
    api_log = fake.add_object("api_logs", http_method="post", http_status=200)
    filters = await api.get(f"/plans/startup/charges/{charge['code']}/filters")
    assert filters.status == 200, filters.body
    charge_filter = filters.body["filters"][0]
    return {
        ("add_ons", "code"): "setup",
        ("billable_metrics", "code"): "storage",
        ("billing_entities", "code"): "main",
        ("coupons", "code"): "welcome",
        ("features", "code"): "seats",
        ("privileges", "privilege_code"): "max",
        ("taxes", "code"): "vat",
        ("plans", "code"): "startup",
        ("charges", "charge_code"): charge["code"],
        ("filters", "filter_id"): charge_filter["lago_id"],
        ("fixed_charges", "fixed_charge_code"): fixed["code"],
        ("entitlements", "feature_code"): "seats",
        ("subscriptions", "external_id"): "sub_1",
        ("alerts", "code"): "spend",
        ("customers", "external_customer_id"): "acme",
        ("wallets", "code"): "prepaid",
        ("wallets", "wallet_code"): "prepaid",
        ("wallets", "lago_id"): reserve["lago_id"],
        ("wallet_alerts", "code"): "low",
        ("metadata", "key"): "team",
        ("wallet_transactions", "lago_id"): transaction["lago_id"],
        ("invoices", "lago_id"): invoice["lago_id"],
        ("credit_notes", "lago_id"): credit_note["lago_id"],
        ("fees", "lago_id"): fee["lago_id"],
        ("payments", "lago_id"): payment["lago_id"],
        ("payment_requests", "lago_id"): payment_request["lago_id"],
        ("payment_receipts", "lago_id"): receipt["lago_id"],
        ("payment_methods", "lago_id"): method["lago_id"],
        ("activity_logs", "activity_id"): activity["activity_id"],
        ("api_logs", "request_id"): api_log["request_id"],
        ("applied_coupons", "applied_coupon_id"): GHOST,
        ("events", "transaction_id"): "tx-none",
        ("webhook_endpoints", "lago_id"): GHOST,
    }


def fill(
    template: str, names: dict[tuple[str, str], str], *, ghost: bool = False, odd: str = ""
) -> str:
    """``template`` with each ``{param}`` replaced by the world's object it names.

    A parameter is looked up by the collection segment before it; a wallet's alerts use
    ``wallet_alerts``. With ``ghost``, the last parameter names nothing that exists; with
    ``odd``, it is that text (percent-encoded).
    """
    parts = template.strip("/").split("/")
    params = [i for i, part in enumerate(parts) if part.startswith("{")]
    for index in params:
        name = parts[index][1:-1]
        collection = parts[index - 1]
        if collection == "alerts" and "wallets" in parts:
            collection = "wallet_alerts"
        value = names[(collection, name)]
        if ghost and index == params[-1]:
            value = GHOST if "lago_id" in name or name.endswith("_id") else "ghost"
        if odd and index == params[-1]:
            value = quote(odd, safe="")
        parts[index] = value
    return "/" + "/".join(parts)
