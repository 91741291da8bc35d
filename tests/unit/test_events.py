"""lago.events: each operation's method, path, query, body and typed result."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from aioresponses import aioresponses

from lago_async import (
    AsyncLago,
    Event,
    EventInput,
    Fee,
    FeeEstimate,
    LagoError,
    LagoValidationError,
    UnprocessableEntityError,
)
from tests.conftest import API_KEY, BASE_URL, sent

EVENTS = f"{BASE_URL}/events"


def stored(tx: str = "tx-1", **extra: Any) -> dict[str, Any]:
    return {
        "lago_id": "1a901a90-1a90-1a90-1a90-1a901a901a90",
        "transaction_id": tx,
        "lago_customer_id": None,
        "code": "storage",
        "timestamp": "2026-11-01T10:00:00Z",
        "precise_total_amount_cents": None,
        "properties": {"gb": 10},
        "lago_subscription_id": None,
        "external_subscription_id": "sub_1",
        "created_at": "2026-11-01T10:00:01Z",
        **extra,
    }


async def test_create_sends_the_event_and_returns_it(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.post(EVENTS, payload={"event": stored()})
    event = await lago.events.create(
        transaction_id="tx-1",
        code="storage",
        external_subscription_id="sub_1",
        properties={"gb": 10, "region": "eu"},
        timestamp=dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.timezone.utc),
        precise_total_amount_cents=Decimal("12.5"),
    )
    (call,) = sent(mocked, "POST", EVENTS)
    assert call["json"] == {
        "event": {
            "transaction_id": "tx-1",
            "code": "storage",
            "external_subscription_id": "sub_1",
            "properties": {"gb": 10, "region": "eu"},
            "timestamp": 1793527200,
            "precise_total_amount_cents": "12.5",
        }
    }
    assert isinstance(event, Event)
    assert event.transaction_id == "tx-1"
    assert event.timestamp == dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(
    "given",
    [
        EventInput(transaction_id="tx-1", code="storage", external_subscription_id="sub_1"),
        {"transaction_id": "tx-1", "code": "storage", "external_subscription_id": "sub_1"},
    ],
)
async def test_create_takes_a_model_or_a_mapping(
    lago: AsyncLago, mocked: aioresponses, given: Any
) -> None:
    mocked.post(EVENTS, payload={"event": stored()})
    await lago.events.create(given)
    (call,) = sent(mocked, "POST", EVENTS)
    assert call["json"] == {
        "event": {"transaction_id": "tx-1", "code": "storage", "external_subscription_id": "sub_1"}
    }


async def test_persisted_event_operation_type(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.post(EVENTS, payload={"event": stored("seat-1", code="seats")})
    await lago.events.create(
        transaction_id="seat-1",
        code="seats",
        external_subscription_id="sub_1",
        properties={"user_id": "42", "operation_type": "add"},
    )
    (call,) = sent(mocked, "POST", EVENTS)
    assert call["json"]["event"]["properties"] == {"user_id": "42", "operation_type": "add"}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"code": "storage", "external_subscription_id": "s"}, "event.transaction_id"),
        ({"transaction_id": "t", "external_subscription_id": "s"}, "event.code"),
        ({"transaction_id": "t", "code": "c"}, "event.external_subscription_id"),
        (
            {"transaction_id": 12, "code": "c", "external_subscription_id": "s"},
            "event.transaction_id",
        ),
        (
            {"transaction_id": "t", "code": "c", "external_subscription_id": "s", "timestamp": "x"},
            "event.timestamp",
        ),
        (
            {
                "transaction_id": "t",
                "code": "c",
                "external_subscription_id": "s",
                "properties": {"when": object()},
            },
            "event.properties.when",
        ),
    ],
)
async def test_bad_input_raises_before_sending(
    lago: AsyncLago, mocked: aioresponses, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(LagoValidationError) as info:
        await lago.events.create(**kwargs)
    assert info.value.field == field
    assert field in str(info.value)
    assert not mocked.requests


async def test_create_after_lost_answer_returns_the_stored_event(
    lago: AsyncLago, mocked: aioresponses, sleeps: list[float]
) -> None:
    mocked.post(EVENTS, status=502)
    duplicate = {
        "status": 422,
        "error": "Unprocessable Entity",
        "code": "validation_errors",
        "error_details": {"transaction_id": ["value_already_exist"]},
    }
    mocked.post(EVENTS, status=422, payload=duplicate)
    mocked.get(f"{EVENTS}/tx-1", payload={"event": stored()})
    event = await lago.events.create(
        transaction_id="tx-1", code="storage", external_subscription_id="sub_1"
    )
    assert event.transaction_id == "tx-1"
    assert len(sent(mocked, "POST", EVENTS)) == 2


async def test_duplicate_on_first_attempt_raises(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.post(
        EVENTS,
        status=422,
        payload={
            "status": 422,
            "error": "Unprocessable Entity",
            "code": "validation_errors",
            "error_details": {"transaction_id": ["value_already_exist"]},
        },
    )
    with pytest.raises(UnprocessableEntityError) as info:
        await lago.events.create(transaction_id="tx-1", code="c", external_subscription_id="s")
    assert info.value.error_details == {"transaction_id": ["value_already_exist"]}


async def test_create_batch(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.post(f"{EVENTS}/batch", payload={"events": [stored("a"), stored("b")]})
    events = await lago.events.create_batch(
        [
            {"transaction_id": "a", "code": "storage", "external_subscription_id": "sub_1"},
            EventInput(transaction_id="b", code="storage", external_subscription_id="sub_1"),
        ]
    )
    (call,) = sent(mocked, "POST", f"{EVENTS}/batch")
    assert [e["transaction_id"] for e in call["json"]["events"]] == ["a", "b"]
    assert [e.transaction_id for e in events] == ["a", "b"]


async def test_create_batch_over_the_limit_points_to_the_ingestor(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    events = [
        {"transaction_id": f"t{i}", "code": "c", "external_subscription_id": "s"}
        for i in range(101)
    ]
    with pytest.raises(LagoValidationError, match="ingestor") as info:
        await lago.events.create_batch(events)
    assert info.value.field == "events"
    with pytest.raises(LagoValidationError, match="at least one"):
        await lago.events.create_batch([])
    assert not mocked.requests


async def test_batch_limit_is_configurable(mocked: aioresponses) -> None:
    mocked.post(f"{EVENTS}/batch", payload={"events": [stored(f"t{i}") for i in range(150)]})
    async with AsyncLago(api_key=API_KEY, base_url=BASE_URL, batch_limit=500) as lago:
        events = [
            {"transaction_id": f"t{i}", "code": "c", "external_subscription_id": "s"}
            for i in range(150)
        ]
        assert len(await lago.events.create_batch(events)) == 150


async def test_create_batch_names_the_bad_index(lago: AsyncLago, mocked: aioresponses) -> None:
    events = [
        {"transaction_id": "a", "code": "c", "external_subscription_id": "s"},
        {"transaction_id": "b", "external_subscription_id": "s"},
    ]
    with pytest.raises(LagoValidationError) as info:
        await lago.events.create_batch(events)
    assert info.value.field == "events[1].code"
    assert not mocked.requests


async def test_get_url_encodes_the_transaction_id(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.get(f"{EVENTS}/tx%2F1%20%3F%23", payload={"event": stored("tx/1 ?#")})
    event = await lago.events.get("tx/1 ?#")
    assert event.transaction_id == "tx/1 ?#"
    ((_, url),) = mocked.requests
    assert url.raw_path == "/api/v1/events/tx%2F1%20%3F%23"


async def test_list_pages_and_filters(lago: AsyncLago, mocked: aioresponses) -> None:
    meta1 = {
        "current_page": 1,
        "next_page": 2,
        "prev_page": None,
        "total_pages": 2,
        "total_count": 3,
    }
    meta2 = {
        "current_page": 2,
        "next_page": None,
        "prev_page": 1,
        "total_pages": 2,
        "total_count": 3,
    }
    query = (
        "external_subscription_id=sub_1&code=storage&timestamp_from_started_at=true"
        "&timestamp_from=2026-11-01T00:00:00%2B00:00&per_page=2"
    )
    mocked.get(
        f"{EVENTS}?{query}&page=1", payload={"events": [stored("a"), stored("b")], "meta": meta1}
    )
    mocked.get(f"{EVENTS}?{query}&page=2", payload={"events": [stored("c")], "meta": meta2})
    pager = lago.events.list(
        external_subscription_id="sub_1",
        code="storage",
        timestamp_from_started_at=True,
        timestamp_from=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc),
        per_page=2,
    )
    assert [e.transaction_id async for e in pager] == ["a", "b", "c"]


async def test_pages_carry_meta(lago: AsyncLago, mocked: aioresponses) -> None:
    meta = {
        "current_page": 1,
        "next_page": None,
        "prev_page": None,
        "total_pages": 1,
        "total_count": 1,
    }
    mocked.get(f"{EVENTS}?page=1", payload={"events": [stored("a")], "meta": meta})
    pages = [page async for page in lago.events.list().pages()]
    assert len(pages) == 1
    assert pages[0].meta.total_count == 1
    assert [e.transaction_id for e in pages[0].items] == ["a"]


async def test_pager_that_does_not_advance_stops(lago: AsyncLago, mocked: aioresponses) -> None:
    meta = {
        "current_page": 1,
        "next_page": 1,
        "prev_page": None,
        "total_pages": 9,
        "total_count": 9,
    }
    mocked.get(f"{EVENTS}?page=1", payload={"events": [stored("a")], "meta": meta}, repeat=True)
    with pytest.raises(LagoError, match="did not advance"):
        await lago.events.list().to_list()
    assert len(sent(mocked, "GET", EVENTS)) == 1


FEE = {
    "lago_id": None,
    "lago_charge_id": "1a901a90-1a90-1a90-1a90-1a901a901a90",
    "lago_charge_filter_id": None,
    "lago_invoice_id": None,
    "lago_true_up_fee_id": None,
    "lago_true_up_parent_fee_id": None,
    "lago_subscription_id": "1a901a90-1a90-1a90-1a90-1a901a901a90",
    "lago_customer_id": "1a901a90-1a90-1a90-1a90-1a901a901a90",
    "external_customer_id": "acme",
    "external_subscription_id": "sub_1",
    "amount_cents": 100,
    "precise_amount": "1.0001",
    "precise_total_amount": "1.2",
    "taxes_amount_cents": 20,
    "taxes_precise_amount": "0.2",
    "taxes_rate": 20.0,
    "total_amount_cents": 120,
    "total_amount_currency": "EUR",
    "units": "0.5",
    "description": None,
    "precise_unit_amount": "2.0002",
    "events_count": 1,
    "pay_in_advance": True,
    "invoiceable": True,
    "from_date": None,
    "to_date": None,
    "payment_status": "pending",
    "created_at": None,
    "succeeded_at": None,
    "failed_at": None,
    "refunded_at": None,
    "amount_currency": "EUR",
    "item": {
        "type": "charge",
        "code": "storage",
        "name": "Storage",
        "lago_item_id": "x",
        "item_type": "BillableMetric",
    },
}


async def test_estimate_fees(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.post(f"{EVENTS}/estimate_fees", payload={"fees": [FEE]})
    fees = await lago.events.estimate_fees(
        code="storage", external_subscription_id="sub_1", properties={"gb": 1}
    )
    (call,) = sent(mocked, "POST", f"{EVENTS}/estimate_fees")
    assert call["json"] == {
        "event": {"code": "storage", "external_subscription_id": "sub_1", "properties": {"gb": 1}}
    }
    assert isinstance(fees[0], Fee)
    assert fees[0].amount_cents == 100
    assert fees[0].units == Decimal("0.5")


ESTIMATE = FEE  # FeeEstimateObject has the same shape as a fee


async def test_estimate_instant_fees(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.post(f"{EVENTS}/estimate_instant_fees", payload={"fees": [ESTIMATE]})
    fees = await lago.events.estimate_instant_fees(
        code="storage", external_subscription_id="sub_1", transaction_id="tx-9"
    )
    (call,) = sent(mocked, "POST", f"{EVENTS}/estimate_instant_fees")
    assert call["json"] == {
        "event": {"code": "storage", "external_subscription_id": "sub_1", "transaction_id": "tx-9"}
    }
    assert isinstance(fees[0], FeeEstimate)


async def test_batch_estimate_instant_fees(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.post(f"{EVENTS}/batch_estimate_instant_fees", payload={"fees": [ESTIMATE, ESTIMATE]})
    fees = await lago.events.batch_estimate_instant_fees(
        [
            {"code": "storage", "external_subscription_id": "sub_1", "properties": {"gb": 2}},
            {"code": "storage", "external_subscription_id": "sub_2"},
        ]
    )
    (call,) = sent(mocked, "POST", f"{EVENTS}/batch_estimate_instant_fees")
    assert call["json"] == {
        "events": [
            {
                "event": {
                    "code": "storage",
                    "external_subscription_id": "sub_1",
                    "properties": {"gb": 2},
                }
            },
            {"event": {"code": "storage", "external_subscription_id": "sub_2"}},
        ]
    }
    assert len(fees) == 2
    with pytest.raises(LagoValidationError) as info:
        await lago.events.batch_estimate_instant_fees([{"code": "storage"}])
    assert info.value.field == "events[0].external_subscription_id"
