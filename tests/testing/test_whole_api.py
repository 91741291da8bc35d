"""Every operation of Lago's API, answered by FakeLago as the spec says.

One FakeLago holds one of every resource (``tests/testing/_world.py``). Each operation is
then sent once, reads first, then writes, then deletions (deepest first), with a valid
body where it takes one, and must answer 2xx with a body valid under the spec's response
schema; an unknown identifier gets a 404 with Lago's ``<resource>_not_found`` code, and a
wrong key a 401, both valid under the spec too. The spec is read from ``../shared`` (the
tests skip without it).
"""

from __future__ import annotations

import copy
from typing import Any

import aiohttp
import pytest

from lago_async.testing import ROUTES, FakeLago
from tests._spec import load_spec, resolve, schema_validator
from tests.testing._api import Api
from tests.testing._world import GHOST, build_world, fill
from tests.testing.test_spec_conformance import FORMATS, operation

S = "/subscriptions/{external_id}"
W = "/customers/{external_customer_id}/wallets"
PLAN_CHARGE = "/plans/{code}/charges/{charge_code}"
FILTER_PROPS = {"values": {"region": ["us"]}, "properties": {"amount": "0.4"}}

#: A valid body for every operation that takes one.
BODIES: dict[str, Any] = {
    "POST /billing_entities": {"billing_entity": {"code": "second", "name": "Second"}},
    "PUT /billing_entities/{code}": {"name": "Main entity (renamed)"},
    "POST /add_ons": {"add_on": {"code": "support", "name": "Support", "amount_cents": 900}},
    "PUT /add_ons/{code}": {"add_on": {"amount_cents": 6000}},
    "POST /applied_coupons": {
        "applied_coupon": {"external_customer_id": "acme", "coupon_code": "welcome"}
    },
    "POST /billable_metrics": {
        "billable_metric": {"code": "calls", "name": "Calls", "aggregation_type": "count_agg"}
    },
    "POST /billable_metrics/evaluate_expression": {
        "expression": "event.properties.gb * 2",
        "event": {"code": "storage", "properties": {"gb": 3}},
    },
    "PUT /billable_metrics/{code}": {"billable_metric": {"description": "GB stored"}},
    "POST /features": {"feature": {"code": "sso", "name": "SSO"}},
    "PUT /features/{code}": {"feature": {"description": "Seats in the account"}},
    "POST /coupons": {
        "coupon": {
            "code": "tenoff",
            "name": "Ten off",
            "coupon_type": "percentage",
            "percentage_rate": "10.0",
            "frequency": "once",
            "expiration": "no_expiration",
        }
    },
    "PUT /coupons/{code}": {"coupon": {"name": "Welcome back"}},
    "POST /credit_notes": {
        "credit_note": {
            "invoice_id": "{invoice}",
            "reason": "duplicated_charge",
            "refund_amount_cents": 50,
            "items": [{"fee_id": "{fee}", "amount_cents": 50}],
        }
    },
    "DELETE /plans/{code}/charges/{charge_code}": {"charge": {"cascade_updates": False}},
    f"DELETE {PLAN_CHARGE}/filters/{{filter_id}}": {"filter": {"cascade_updates": False}},
    "DELETE /plans/{code}/fixed_charges/{fixed_charge_code}": {
        "fixed_charge": {"cascade_updates": False}
    },
    "PUT /credit_notes/{lago_id}": {"credit_note": {"refund_status": "succeeded"}},
    "POST /credit_notes/estimate": {
        "credit_note": {
            "invoice_id": "{invoice}",
            "items": [{"fee_id": "{fee}", "amount_cents": 50}],
        }
    },
    "POST /credit_notes/{lago_id}/metadata": {"metadata": {"team": "billing"}},
    "PATCH /credit_notes/{lago_id}/metadata": {"metadata": {"region": "eu"}},
    f"POST {W}": {
        "wallet": {
            "code": "promo",
            "rate_amount": "1.0",
            "currency": "USD",
            "external_customer_id": "acme",
            "granted_credits": "3.0",
        }
    },
    f"PUT {W}/{{code}}": {"wallet": {"name": "Prepaid credits"}},
    f"POST {W}/{{wallet_code}}/metadata": {"metadata": {"team": "billing"}},
    f"PATCH {W}/{{wallet_code}}/metadata": {"metadata": {"region": "eu"}},
    f"POST {W}/{{wallet_code}}/alerts": {
        "alert": {
            "alert_type": "wallet_credits_balance",
            "code": "very_low",
            "thresholds": [{"value": "1"}],
        }
    },
    f"PUT {W}/{{wallet_code}}/alerts/{{code}}": {"alert": {"name": "Low balance"}},
    "PUT /fees/{lago_id}": {"fee": {"payment_status": "succeeded"}},
    "POST /invoices": {
        "invoice": {"external_customer_id": "acme", "fees": [{"add_on_code": "setup"}]}
    },
    "PUT /invoices/{lago_id}": {"invoice": {"payment_status": "succeeded"}},
    "POST /invoices/preview": {"customer": {"external_id": "acme"}, "plan_code": "startup"},
    "POST /invoices/{lago_id}/retry_payment": {},
    "POST /invoices/{lago_id}/void": {},
    "PUT /organizations": {"organization": {"name": "Acme Holdings"}},
    "POST /payment_requests": {
        "payment_request": {
            "external_customer_id": "acme",
            "email": "billing@acme.example",
            "lago_invoice_ids": ["{invoice}"],
        }
    },
    "POST /payments": {
        "payment": {"invoice_id": "{invoice}", "amount_cents": 100, "reference": "wire-2"}
    },
    "POST /plans": {
        "plan": {
            "code": "scale",
            "name": "Scale",
            "interval": "yearly",
            "amount_cents": 100000,
            "amount_currency": "USD",
            "pay_in_advance": True,
        }
    },
    "PUT /plans/{code}": {"plan": {"name": "Startup (2027)"}},
    "POST /plans/{code}/entitlements": {"entitlements": {"seats": {"max": 20}}},
    "PATCH /plans/{code}/entitlements": {"entitlements": {"seats": {"max": 25}}},
    "POST /plans/{code}/metadata": {"metadata": {"team": "billing"}},
    "PATCH /plans/{code}/metadata": {"metadata": {"region": "eu"}},
    "POST /plans/{code}/charges": {
        "charge": {
            "billable_metric_id": "{metric}",
            "code": "storage_volume",
            "charge_model": "volume",
            "properties": {
                "volume_ranges": [
                    {"from_value": 0, "to_value": 100, "per_unit_amount": "1", "flat_amount": "0"},
                    {
                        "from_value": 101,
                        "to_value": None,
                        "per_unit_amount": "0.5",
                        "flat_amount": "0",
                    },
                ]
            },
        }
    },
    f"PUT {PLAN_CHARGE}": {"charge": {"invoice_display_name": "Storage (GB)"}},
    f"POST {PLAN_CHARGE}/filters": {"filter": FILTER_PROPS},
    f"PUT {PLAN_CHARGE}/filters/{{filter_id}}": {"filter": {"invoice_display_name": "EU"}},
    "POST /plans/{code}/fixed_charges": {
        "fixed_charge": {
            "add_on_code": "setup",
            "code": "onboarding",
            "charge_model": "standard",
            "units": "1",
            "properties": {"amount": "50"},
        }
    },
    "PUT /plans/{code}/fixed_charges/{fixed_charge_code}": {"fixed_charge": {"units": "2"}},
    "POST /subscriptions": {
        "subscription": {
            "external_customer_id": "acme",
            "plan_code": "startup",
            "external_id": "sub_2",
            "billing_time": "anniversary",
        }
    },
    f"PUT {S}": {"subscription": {"name": "Main subscription"}},
    f"PUT {S}/lifetime_usage": {"lifetime_usage": {"external_historical_usage_amount_cents": 0}},
    f"POST {S}/alerts": {
        "alerts": [
            {
                "alert_type": "billable_metric_current_usage_units",
                "code": "gb",
                "billable_metric_code": "storage",
                "thresholds": [{"value": "100"}],
            }
        ]
    },
    f"PUT {S}/alerts/{{code}}": {"alert": {"name": "Spend"}},
    f"PATCH {S}/entitlements": {"entitlements": {"seats": {"max": 12}}},
    f"PUT {S}/charges/{{charge_code}}": {"charge": {"properties": {"amount": "0.45"}}},
    f"POST {S}/charges/{{charge_code}}/filters": {"filter": FILTER_PROPS},
    f"PUT {S}/charges/{{charge_code}}/filters/{{filter_id}}": {
        "filter": {"invoice_display_name": "EU"}
    },
    f"PUT {S}/fixed_charges/{{fixed_charge_code}}": {"fixed_charge": {"units": "3"}},
    "POST /taxes": {"tax": {"code": "gst", "name": "GST", "rate": "5.0"}},
    "PUT /taxes/{code}": {"tax": {"rate": "21.0"}},
    "POST /wallets": {
        "wallet": {
            "external_customer_id": "acme",
            "code": "bonus",
            "rate_amount": "1.0",
            "currency": "USD",
        }
    },
    "PUT /wallets/{lago_id}": {"wallet": {"name": "Prepaid"}},
    "POST /wallets/{lago_id}/metadata": {"metadata": {"team": "billing"}},
    "PATCH /wallets/{lago_id}/metadata": {"metadata": {"region": "eu"}},
    "POST /wallet_transactions": {
        "wallet_transaction": {"wallet_id": "{wallet}", "paid_credits": "10.0"}
    },
}

#: Operations the Store serves (customers, events, usage, webhooks), checked scenario by
#: scenario in test_spec_conformance.py.
STORE_ROUTES = {
    "POST /customers",
    "GET /customers",
    "GET /customers/{external_customer_id}",
    "DELETE /customers/{external_customer_id}",
    "GET /customers/{external_customer_id}/current_usage",
    "GET /customers/{external_customer_id}/projected_usage",
    "GET /customers/{external_customer_id}/past_usage",
    "POST /customers/{external_customer_id}/checkout_url",
    "GET /customers/{external_customer_id}/portal_url",
    "GET /customers/{external_customer_id}/applied_coupons",
    "DELETE /customers/{external_customer_id}/applied_coupons/{applied_coupon_id}",
    "POST /events",
    "GET /events",
    "POST /events/batch",
    "POST /events/estimate_fees",
    "POST /events/estimate_instant_fees",
    "POST /events/batch_estimate_instant_fees",
    "GET /events/{transaction_id}",
    "POST /webhook_endpoints",
    "GET /webhook_endpoints",
    "GET /webhook_endpoints/{lago_id}",
    "PUT /webhook_endpoints/{lago_id}",
    "DELETE /webhook_endpoints/{lago_id}",
    "GET /webhooks/json_public_key",
    "GET /webhooks/public_key",
}
GENERIC = [route for route in ROUTES if route not in STORE_ROUTES]
ORDER = {"GET": 0, "POST": 1, "PUT": 1, "PATCH": 1, "DELETE": 2}
#: Where the spec shows an answer unwrapped that Lago (and FakeLago) wraps in a key.
WRAPPED = {
    "GET /payments/{lago_id}": "payment",
    "GET /payment_requests/{lago_id}": "payment_request",
    "GET /wallet_transactions/{lago_id}": "wallet_transaction",
    "POST /billing_entities": "billing_entity",
    "PUT /billing_entities/{code}": "billing_entity",
}


#: Where the spec's ``required`` list names the fields of the object under the answer's
#: key at the top level (a defect of the spec): the check moves it down to that object.
MISPLACED_REQUIRED = {
    "POST /wallet_transactions/{lago_id}/payment_url": "wallet_transaction_payment_details",
}


def _ordered(routes: list[str]) -> list[str]:
    def key(route: str) -> tuple[int, int, str]:
        method, path = route.split(" ", 1)
        depth = path.count("/")
        # deletions: the deepest first (a charge's filter before the charge, before the plan)
        return ORDER[method], -depth if method == "DELETE" else depth, route

    return sorted(routes, key=key)


def _substituted(body: Any, ids: dict[str, str]) -> Any:
    if isinstance(body, dict):
        return {k: _substituted(v, ids) for k, v in body.items()}
    if isinstance(body, list):
        return [_substituted(v, ids) for v in body]
    if isinstance(body, str) and body.startswith("{") and body.endswith("}"):
        return ids[body[1:-1]]
    return body


def validate(route: str, status: int, body: Any) -> None:
    """``body`` is valid under the spec's schema for ``route`` answering ``status``."""
    documented = operation(route)["responses"]
    assert str(status) in documented, f"{route} answered {status}, undocumented: {body}"
    response = resolve(documented[str(status)])
    if "content" not in response:
        return
    if route in WRAPPED and status < 300:
        body = body[WRAPPED[route]]
    content = response["content"]
    schema = content.get("application/json", content.get("text/plain", {})).get("schema")
    if route in MISPLACED_REQUIRED and status < 300:
        schema = copy.deepcopy(resolve(schema))
        key = MISPLACED_REQUIRED[route]
        schema["properties"][key]["required"] = schema.pop("required")
        assert key not in schema["properties"][key]["required"]
    validator = schema_validator(schema).evolve(format_checker=FORMATS)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def test_every_body_route_has_a_body() -> None:
    spec = load_spec()
    takes_body = {
        route
        for route in GENERIC
        if "requestBody" in spec["paths"][route.split(" ", 1)[1]][route.split(" ")[0].lower()]
    }
    assert takes_body - set(BODIES) == set()
    assert set(BODIES) - takes_body == set()


async def test_every_operation_answers_2xx_within_the_spec() -> None:
    load_spec()
    async with FakeLago(api_key="whole-api") as fake, aiohttp.ClientSession() as session:
        api = Api(session, fake.base_url, fake.api_key)
        names = await build_world(api, fake)
        ids = {
            "invoice": names[("invoices", "lago_id")],
            "fee": names[("fees", "lago_id")],
            "metric": fake.state()["objects"]["billable_metrics"][0]["lago_id"],
            "wallet": names[("wallets", "lago_id")],
        }
        problems = []
        for route in _ordered(GENERIC):
            method, template = route.split(" ", 1)
            body = _substituted(BODIES.get(route), ids)
            answer = await api(method, fill(template, names), body)
            try:
                assert 200 <= answer.status < 300, answer.body
                validate(route, answer.status, answer.body)
            except AssertionError as exc:
                problems.append(f"{route}: {answer.status}: {str(exc)[:400]}")
        assert fake.internal_errors == []
    assert problems == [], "\n".join(problems)


async def test_unknown_identifiers_are_404_with_the_resource_code() -> None:
    load_spec()
    async with FakeLago(api_key="whole-api") as fake, aiohttp.ClientSession() as session:
        api = Api(session, fake.base_url, fake.api_key)
        names = await build_world(api, fake)
        problems = []
        checked = 0
        for route in GENERIC:
            method, template = route.split(" ", 1)
            if method != "GET" or not template.endswith("}") or "metadata" in template:
                continue
            answer = await api(method, fill(template, names, ghost=True))
            checked += 1
            try:
                assert answer.status == 404, answer.body
                assert answer.body["code"].endswith("_not_found"), answer.body
                validate(route, 404, answer.body)
            except AssertionError as exc:
                problems.append(f"{route}: {str(exc)[:300]}")
        assert checked > 25
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("key", ["not-the-key"])
async def test_every_operation_refuses_a_wrong_key(key: str) -> None:
    load_spec()
    async with FakeLago(api_key="whole-api") as fake, aiohttp.ClientSession() as session:
        api = Api(session, fake.base_url, key)
        names = await build_world(Api(session, fake.base_url, fake.api_key), fake)
        for route in GENERIC:
            method, template = route.split(" ", 1)
            answer = await api(method, fill(template, names), BODIES.get(route))
            assert answer.status == 401, route
            assert answer.body == {"status": 401, "error": "Unauthorized"}, route
    _ = GHOST


async def test_a_number_past_64_bits_never_breaks_an_answer() -> None:
    """A tax rate sent as a 24-digit decimal string is a number in the answer's schema: it
    must not come back as an integer JSON (and Lago's columns) cannot hold (found by the
    fuzz test as a 500)."""
    load_spec()
    async with FakeLago(api_key="whole-api") as fake, aiohttp.ClientSession() as session:
        api = Api(session, fake.base_url, fake.api_key)
        answer = await api.post(
            "/taxes", {"tax": {"code": "big", "name": "Big", "rate": "1" + "0" * 23}}
        )
        assert answer.status < 500, answer.body
        validate("POST /taxes", answer.status, answer.body)
        assert fake.internal_errors == []
