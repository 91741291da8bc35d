"""FakeLago meters like Lago, end to end through the SDK: usage and fees computed from the
events of a subscription that follows a plan, over the billing period of FakeLago's clock.

The rules themselves (each aggregation type and charge model, against the worked examples
of Lago's documentation) are tested in test_metering*.py; these tests pin how they reach the
API: ``current_usage``, ``projected_usage``, ``estimate_fees``, and a crossed period
boundary.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from lago_async import AsyncLago
from lago_async.testing import FakeLago

JAN_15 = datetime(2026, 1, 15, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
async def lago() -> AsyncIterator[tuple[AsyncLago, FakeLago]]:
    async with FakeLago(api_key="metering") as fake:
        fake.set_time(JAN_15)
        async with AsyncLago(api_key=fake.api_key, base_url=fake.base_url) as client:
            await client.customers.create(external_id="acme", currency="EUR")
            yield client, fake
        assert fake.internal_errors == []


async def plan_with(
    lago: AsyncLago, metric: dict[str, Any], charge: dict[str, Any], **plan: Any
) -> None:
    created = await lago.billable_metrics.create(metric)
    await lago.plans.create(
        code="plan",
        name="Plan",
        interval=plan.pop("interval", "monthly"),
        amount_cents=0,
        amount_currency="EUR",
        pay_in_advance=False,
        charges=[{"billable_metric_id": created.lago_id, **charge}],
    )
    await lago.subscriptions.create(
        external_customer_id="acme", plan_code="plan", external_id="sub", **plan
    )


async def send(lago: AsyncLago, code: str, *properties: dict[str, Any]) -> None:
    await lago.events.create_batch(
        [
            {
                "transaction_id": f"{code}-{id(p)}-{i}",
                "code": code,
                "external_subscription_id": "sub",
                "properties": p,
            }
            for i, p in enumerate(properties)
        ]
    )


async def test_current_usage_prices_a_graduated_charge(lago: tuple[AsyncLago, FakeLago]) -> None:
    client, _ = lago
    await plan_with(
        client,
        {"code": "api_calls", "name": "Calls", "aggregation_type": "sum_agg", "field_name": "n"},
        {
            "charge_model": "graduated",
            "properties": {
                "graduated_ranges": [
                    {"from_value": 0, "to_value": 100, "per_unit_amount": "0", "flat_amount": "0"},
                    {
                        "from_value": 101,
                        "to_value": None,
                        "per_unit_amount": "0.02",
                        "flat_amount": "1",
                    },
                ]
            },
        },
    )
    await send(client, "api_calls", {"n": 60}, {"n": 90})  # 150 units: 50 past the free 100
    usage = await client.customers.current_usage("acme", external_subscription_id="sub")
    (charge,) = usage.charges_usage
    assert charge.units == Decimal(150)
    assert charge.events_count == 2
    assert charge.amount_cents == 200  # 1.00 flat + 50 x 0.02
    assert usage.amount_cents == 200
    assert usage.currency == "EUR"
    assert usage.from_datetime == JAN_15  # a calendar subscription started mid-month
    assert usage.to_datetime == datetime(2026, 1, 31, 23, 59, 59, tzinfo=timezone.utc)
    projected = await client.customers.projected_usage("acme", external_subscription_id="sub")
    assert projected.amount_cents == 200


async def test_charge_filters_price_each_dimension(lago: tuple[AsyncLago, FakeLago]) -> None:
    client, _ = lago
    await plan_with(
        client,
        {
            "code": "gb",
            "name": "Storage",
            "aggregation_type": "sum_agg",
            "field_name": "gb",
            "filters": [{"key": "region", "values": ["eu", "us"]}],
        },
        {
            "charge_model": "standard",
            "properties": {"amount": "1"},
            "filters": [{"values": {"region": ["eu"]}, "properties": {"amount": "2"}}],
        },
    )
    await send(client, "gb", {"gb": 3, "region": "eu"}, {"gb": 5, "region": "us"})
    usage = await client.customers.current_usage("acme", external_subscription_id="sub")
    (charge,) = usage.charges_usage
    assert charge.amount_cents == 1100  # 3 GB in eu at 2, 5 GB elsewhere at 1
    by_values = {str(f.values): (f.units, f.amount_cents) for f in charge.filters or []}
    assert by_values["{'region': ['eu']}"] == (Decimal(3), 600)


async def test_a_crossed_period_boundary_resets_metered_and_carries_recurring_metrics(
    lago: tuple[AsyncLago, FakeLago],
) -> None:
    """Seats (a recurring unique count) persist into February and lose the one removed
    there; gigabytes (a metered sum) start again from zero."""
    client, fake = lago
    gb = await client.billable_metrics.create(
        code="gb", name="GB", aggregation_type="sum_agg", field_name="gb"
    )
    seats = await client.billable_metrics.create(
        code="seats",
        name="Seats",
        aggregation_type="unique_count_agg",
        field_name="user",
        recurring=True,
    )
    await client.plans.create(
        code="plan",
        name="Plan",
        interval="monthly",
        amount_cents=0,
        amount_currency="EUR",
        pay_in_advance=False,
        charges=[
            {
                "billable_metric_id": gb.lago_id,
                "charge_model": "standard",
                "properties": {"amount": "0.5"},
            },
            {
                "billable_metric_id": seats.lago_id,
                "charge_model": "standard",
                "properties": {"amount": "10"},
            },
        ],
    )
    await client.subscriptions.create(
        external_customer_id="acme", plan_code="plan", external_id="sub"
    )
    await send(client, "gb", {"gb": 10}, {"gb": 30})
    await send(client, "seats", {"user": "ada"}, {"user": "bob"}, {"user": "cy"})

    def units(usage: Any) -> dict[str, tuple[Decimal, int]]:
        return {c.billable_metric.code: (c.units, c.amount_cents) for c in usage.charges_usage}

    january = await client.customers.current_usage("acme", external_subscription_id="sub")
    assert units(january) == {"gb": (Decimal(40), 2000), "seats": (Decimal(3), 3000)}

    fake.advance(timedelta(days=20))  # 4 February
    await send(client, "seats", {"user": "bob", "operation_type": "remove"})
    await send(client, "gb", {"gb": 4})
    february = await client.customers.current_usage("acme", external_subscription_id="sub")
    assert february.from_datetime == datetime(2026, 2, 1, tzinfo=timezone.utc)
    assert units(february) == {"gb": (Decimal(4), 200), "seats": (Decimal(2), 2000)}


async def test_anniversary_billing_follows_the_subscription_date(
    lago: tuple[AsyncLago, FakeLago],
) -> None:
    client, fake = lago
    await plan_with(
        client,
        {"code": "calls", "name": "Calls", "aggregation_type": "count_agg"},
        {"charge_model": "standard", "properties": {"amount": "1"}},
        billing_time="anniversary",
        subscription_at="2025-11-20T08:00:00Z",
    )
    usage = await client.customers.current_usage("acme", external_subscription_id="sub")
    assert usage.from_datetime == datetime(2026, 1, 20, tzinfo=timezone.utc) - timedelta(days=31)
    assert usage.to_datetime == datetime(2026, 1, 19, 23, 59, 59, tzinfo=timezone.utc)
    fake.set_time("2026-01-25T00:00:00Z")
    later = await client.customers.current_usage("acme", external_subscription_id="sub")
    assert later.from_datetime == datetime(2026, 1, 20, tzinfo=timezone.utc)


async def test_estimate_fees_prices_a_pay_in_advance_charge_at_the_margin(
    lago: tuple[AsyncLago, FakeLago],
) -> None:
    """A package of 10 units for 5.00: the first event opens a package, the next ones fill
    it for free, the one that crosses into a second package pays for it."""
    client, _ = lago
    await plan_with(
        client,
        {"code": "msgs", "name": "Messages", "aggregation_type": "sum_agg", "field_name": "n"},
        {
            "charge_model": "package",
            "pay_in_advance": True,
            "invoiceable": False,
            "properties": {"amount": "5", "package_size": 10, "free_units": 0},
        },
    )

    async def fee(n: int) -> tuple[Decimal, int]:
        (estimate,) = await client.events.estimate_fees(
            code="msgs", external_subscription_id="sub", properties={"n": n}
        )
        return Decimal(str(estimate.units)), estimate.amount_cents

    assert await fee(4) == (Decimal(4), 500)
    await send(client, "msgs", {"n": 4})
    assert await fee(5) == (Decimal(5), 0)
    await send(client, "msgs", {"n": 5})
    assert await fee(3) == (Decimal(3), 500)  # 12 units: a second package


async def test_a_subscription_without_a_plan_keeps_the_flat_price(
    lago: tuple[AsyncLago, FakeLago],
) -> None:
    """Subscriptions FakeLago attaches on its own (no plan) price every unit at
    ``unit_amount_cents``, as before plans existed."""
    client, fake = lago
    fake.add_subscription("loose", "acme")
    await client.events.create(
        transaction_id="t1", code="gb", external_subscription_id="loose", properties={"gb": 3}
    )
    usage = await client.customers.current_usage("acme", external_subscription_id="loose")
    assert [c.amount_cents for c in usage.charges_usage] == [300]
