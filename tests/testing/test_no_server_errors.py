"""FakeLago answers spec-valid requests as Lago would, never with a 5xx unless told to, and
refuses request values the spec forbids instead of storing and serving them back."""

from __future__ import annotations

from typing import Any

import pytest

from lago_async.testing import FakeLago
from tests.testing._api import Api, event


def lago_error(body: Any, status: int) -> None:
    assert isinstance(body, dict) and body["status"] == status
    assert isinstance(body.get("error"), str)


# --- no 5xx on extreme values -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/customers", "/events", "/customers/acme/applied_coupons"])
@pytest.mark.parametrize("page", [2**63, 2**64, 10**30])
async def test_huge_page_numbers(fake: FakeLago, api: Api, path: str, page: int) -> None:
    fake.add_customer("acme")
    answer = await api("GET", path, params={"page": str(page), "per_page": str(page)})
    assert answer.status < 500, answer.body
    if answer.status == 200:
        assert answer.body["meta"]["current_page"] == page
    else:
        lago_error(answer.body, answer.status)


async def test_usage_past_64_bits_is_not_a_server_error(fake: FakeLago, api: Api) -> None:
    fake.add_subscription("sub_1", "acme")
    for n in range(3):
        sent = await api.post("/events", {"event": event(n, properties={"x": 2**62})})
        assert sent.status == 200
    answer = await api.get("/customers/acme/current_usage", external_subscription_id="sub_1")
    assert answer.status < 500, answer.body
    if answer.status != 200:
        lago_error(answer.body, answer.status)
        assert answer.status == 422


@pytest.mark.parametrize(
    "path", ["/events/estimate_fees", "/events/estimate_instant_fees"], ids=["fees", "instant"]
)
@pytest.mark.parametrize("value", ["1e30", "1e300", "-1e30", "18446744073709551616"])
async def test_huge_estimate_properties(fake: FakeLago, api: Api, path: str, value: str) -> None:
    raw = b'{"event": {"code": "c", "external_subscription_id": "sub_1", "properties": {"x": %s}}}'
    answer = await api(
        "POST", path, raw=raw % value.encode(), headers={"Content-Type": "application/json"}
    )
    assert answer.status < 500, answer.body
    if answer.status != 200:
        lago_error(answer.body, answer.status)


async def test_huge_batch_estimate_properties(fake: FakeLago, api: Api) -> None:
    item = {"event": {"code": "c", "external_subscription_id": "s", "properties": {"x": 1e30}}}
    answer = await api.post("/events/batch_estimate_instant_fees", {"events": [item]})
    assert answer.status < 500, answer.body


@pytest.mark.parametrize(
    "stamp",
    [
        "0001-01-01T00:00:00+05:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-05:00",
        "9999-12-31T23:59:59Z",
        "2026-03-04T05:06:07.1234567+01:00",
    ],
)
@pytest.mark.parametrize("name", ["timestamp_from", "timestamp_to"])
async def test_extreme_timestamp_filters(fake: FakeLago, api: Api, stamp: str, name: str) -> None:
    assert (await api.post("/events", {"event": event(1)})).status == 200
    answer = await api.get("/events", **{name: stamp})
    assert answer.status == 200, answer.body
    # The event was stored now: every stamp but year 9999 is before it.
    before_the_event = not stamp.startswith("9999")
    expected = 1 if (name == "timestamp_from") == before_the_event else 0
    assert len(answer.body["events"]) == expected


async def test_an_unexpected_exception_is_a_loud_json_500(
    fake: FakeLago, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> Any:
        raise ZeroDivisionError("a bug in FakeLago")

    monkeypatch.setattr(fake._store, "list_customers", broken)
    fake._app = None  # rebuild the routes with the broken operation
    await fake.stop()
    await fake.start()
    answer = await api.get("/customers")
    assert answer.status == 500
    lago_error(answer.body, 500)
    assert answer.body["code"] == "fake_lago_internal_error"
    (error,) = fake.internal_errors
    assert "ZeroDivisionError" in error
    fake.reset()  # forget it: the fixture fails a test that leaves internal errors


# --- values the spec forbids are refused, not stored -----------------------------------------


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"city": ["Paris"]}, "city"),
        ({"name": 3}, "name"),
        ({"billing_configuration": {"sync_with_provider": {"a": 1}}}, "billing_configuration"),
        ({"billing_configuration": {"invoice_grace_period": "3"}}, "billing_configuration"),
        ({"billing_configuration": "stripe"}, "billing_configuration"),
        ({"integration_customers": [{"external_customer_id": "x"}]}, "integration_customers"),
        ({"integration_customers": [{"integration_type": "sap"}]}, "integration_customers"),
        ({"metadata": [{"key": "k"}]}, "metadata"),
        ({"metadata": {"key": "k"}}, "metadata"),
        ({"account_type": "robot"}, "account_type"),
        ({"customer_type": 1}, "customer_type"),
        ({"tax_codes": "vat"}, "tax_codes"),
        ({"net_payment_term": "30"}, "net_payment_term"),
        ({"net_payment_term": True}, "net_payment_term"),
        ({"shipping_address": {"city": 5}}, "shipping_address"),
        ({"skip_invoice_custom_sections": "yes"}, "skip_invoice_custom_sections"),
        ({"finalize_zero_amount_invoice": "maybe"}, "finalize_zero_amount_invoice"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"country": "France"}, "country"),
        ({"external_id": 12}, "external_id"),
    ],
)
async def test_invalid_customer_values_are_refused(
    fake: FakeLago, api: Api, fields: dict[str, Any], path: str
) -> None:
    answer = await api.post("/customers", {"customer": {"external_id": "acme", **fields}})
    assert answer.status == 422, answer.body
    lago_error(answer.body, 422)
    assert answer.body["code"] == "validation_errors"
    assert any(key.split(".")[0].split("[")[0] == path for key in answer.body["error_details"])
    assert "acme" not in fake.customers


async def test_a_valid_customer_with_integrations_round_trips(fake: FakeLago, api: Api) -> None:
    body = {
        "external_id": "acme",
        "city": None,
        "billing_configuration": {"sync_with_provider": True, "invoice_grace_period": 3},
        "integration_customers": [
            {"integration_type": "netsuite", "integration_code": "ns", "external_customer_id": "x"}
        ],
        "metadata": [{"key": "tier", "value": "gold", "display_in_invoice": True}],
    }
    answer = await api.post("/customers", {"customer": body})
    assert answer.status == 200, answer.body
    (integration,) = answer.body["customer"]["integration_customers"]
    assert integration["type"] == "netsuite"
    assert answer.body["customer"]["billing_configuration"]["sync_with_provider"] is True


@pytest.mark.parametrize(
    ("given", "applied"),
    [("America/Godthab", "America/Nuuk"), ("Europe/Kiev", "Europe/Kyiv"), ("UTC", "UTC")],
)
async def test_former_zone_names_are_applied_under_their_current_name(
    fake: FakeLago, api: Api, given: str, applied: str
) -> None:
    answer = await api.post("/customers", {"customer": {"external_id": "acme", "timezone": given}})
    assert answer.status == 200, answer.body
    assert answer.body["customer"]["timezone"] == given
    assert answer.body["customer"]["applicable_timezone"] == applied
