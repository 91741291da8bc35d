"""Real-shaped bodies (the official client's fixtures, read from ../shared) through the methods.

Each fixture is served by aioresponses for the operation that returns it, and the SDK method
must give back the typed model with the fixture's values.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any

import pytest
from aioresponses import aioresponses

from lago_async import (
    AppliedCoupon,
    AsyncLago,
    Customer,
    CustomerProjectedUsage,
    CustomerUsage,
    Event,
    Fee,
    UnprocessableEntityError,
)
from tests._spec import SHARED_DIR
from tests.conftest import BASE_URL

FIXTURES = SHARED_DIR / "peer-fixtures" / "lago-python-client"


def fixture(name: str) -> Any:
    path = FIXTURES / f"{name}.json"
    if not path.exists():
        pytest.skip(f"peer fixture {path} is absent (../shared is not beside the repository)")
    return json.loads(path.read_text())


def serve(mocked: aioresponses, method: str, path: str, body: Any, status: int = 200) -> None:
    url = re.compile(re.escape(f"{BASE_URL}{path}") + r"(\?.*)?$")
    mocked.add(url, method, status=status, payload=body)


async def test_customer(lago: AsyncLago, mocked: aioresponses) -> None:
    body = fixture("customer")
    serve(mocked, "POST", "/customers", body)
    serve(mocked, "GET", "/customers/x", body)
    created = await lago.customers.create(external_id="x")
    fetched = await lago.customers.get("x")
    assert isinstance(created, Customer) and created == fetched
    assert created.external_id == body["customer"]["external_id"]
    assert created.created_at.tzinfo is not None


async def test_customer_usage(lago: AsyncLago, mocked: aioresponses) -> None:
    body = fixture("customer_usage")
    serve(mocked, "GET", "/customers/x/current_usage", body)
    usage = await lago.customers.current_usage("x", external_subscription_id="s")
    assert isinstance(usage, CustomerUsage)
    assert usage.amount_cents == body["customer_usage"]["amount_cents"]
    first = body["customer_usage"]["charges_usage"][0]
    assert usage.charges_usage[0].units == Decimal(str(first["units"]))


async def test_customer_past_usage(lago: AsyncLago, mocked: aioresponses) -> None:
    body = fixture("customer_past_usage")
    serve(mocked, "GET", "/customers/x/past_usage", body)
    page = await lago.customers.past_usage("x", external_subscription_id="s").first_page()
    periods = page.items
    assert len(periods) == len(body["usage_periods"])
    assert page.meta.total_count == body["meta"]["total_count"]
    assert all(isinstance(p, CustomerUsage) for p in periods)


async def test_customer_projected_usage(lago: AsyncLago, mocked: aioresponses) -> None:
    body = fixture("customer_projected_usage")
    serve(mocked, "GET", "/customers/x/projected_usage", body)
    usage = await lago.customers.projected_usage("x", external_subscription_id="s")
    assert isinstance(usage, CustomerProjectedUsage)
    expected = body["customer_projected_usage"]["projected_amount_cents"]
    assert usage.projected_amount_cents == expected


async def test_customer_portal_url(lago: AsyncLago, mocked: aioresponses) -> None:
    body = fixture("customer_portal_url")
    serve(mocked, "GET", "/customers/x/portal_url", body)
    assert await lago.customers.portal_url("x") == body["customer"]["portal_url"]


@pytest.mark.parametrize("name", ["event", "event_without_ids"])
async def test_event(lago: AsyncLago, mocked: aioresponses, name: str) -> None:
    body = fixture(name)
    serve(mocked, "GET", "/events/x", body)
    serve(mocked, "POST", "/events", body)
    event = await lago.events.get("x")
    assert isinstance(event, Event)
    assert event.transaction_id == body["event"]["transaction_id"]
    assert isinstance(event.timestamp, dt.datetime) and event.timestamp.tzinfo is not None
    created = await lago.events.create(transaction_id="x", code="c", external_subscription_id="s")
    assert created == event


async def test_fees(lago: AsyncLago, mocked: aioresponses) -> None:
    body = fixture("fees")
    serve(mocked, "POST", "/events/estimate_fees", body)
    fees = await lago.events.estimate_fees(code="c", external_subscription_id="s")
    assert len(fees) == len(body["fees"])
    assert isinstance(fees[0], Fee)
    assert fees[0].amount_cents == body["fees"][0]["amount_cents"]
    assert fees[0].taxes_rate == Decimal(body["fees"][0]["taxes_rate"])


async def test_applied_coupons(lago: AsyncLago, mocked: aioresponses) -> None:
    body = fixture("applied_coupon_index")
    serve(mocked, "GET", "/customers/x/applied_coupons", body)
    page = await lago.customers.applied_coupons("x").first_page()
    coupons = page.items
    assert page.meta.current_page == body["meta"]["current_page"]
    assert len(coupons) == len(body["applied_coupons"])
    assert all(isinstance(c, AppliedCoupon) for c in coupons)


async def test_event_unprocessable_entity(lago: AsyncLago, mocked: aioresponses) -> None:
    body = fixture("event_unprocessable_entity")
    serve(mocked, "POST", "/events", body, status=422)
    with pytest.raises(UnprocessableEntityError) as info:
        await lago.events.create(transaction_id="x", code="c", external_subscription_id="s")
    assert info.value.code == body["code"]
    assert info.value.error_details == body["error_details"]
    assert info.value.body == body
