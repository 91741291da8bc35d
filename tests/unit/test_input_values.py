"""Never send something other than what the caller meant: refused before anything is sent,
naming the field, on every path that sends events (create, create_batch, estimates, the
ingestor's fast and full encoding paths)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import orjson
import pytest
from aioresponses import aioresponses

from lago_async import AsyncLago, LagoValidationError
from tests.conftest import BASE_URL, event_json, sent

UTC = dt.timezone.utc
EVENTS_URL = f"{BASE_URL}/events"
BATCH_URL = f"{BASE_URL}/events/batch"
NAN, INF = float("nan"), float("inf")


def event(**extra: Any) -> dict[str, Any]:
    return {"transaction_id": "tx-1", "code": "calls", "external_subscription_id": "sub", **extra}


Sender = Callable[[AsyncLago, dict[str, Any]], Awaitable[Any]]


async def via_create(lago: AsyncLago, body: dict[str, Any]) -> Any:
    return await lago.events.create(body)


async def via_create_keywords(lago: AsyncLago, body: dict[str, Any]) -> Any:
    return await lago.events.create(**body)


async def via_batch(lago: AsyncLago, body: dict[str, Any]) -> Any:
    return await lago.events.create_batch([event(transaction_id="ok"), body])


async def via_ingestor(lago: AsyncLago, body: dict[str, Any]) -> Any:
    async with lago.events.ingestor(max_retries=0, close_timeout=5) as ingest:
        await ingest.send(body)


SENDERS = {
    "create": (via_create, "event"),
    "create(**)": (via_create_keywords, "event"),
    "create_batch": (via_batch, "events[1]"),
    "ingestor": (via_ingestor, "event"),
}


def each_sender() -> Any:
    return pytest.mark.parametrize(("send", "prefix"), SENDERS.values(), ids=SENDERS.keys())


async def refused(
    lago: AsyncLago, mocked: aioresponses, send: Sender, body: dict[str, Any]
) -> LagoValidationError:
    with pytest.raises(LagoValidationError) as info:
        await send(lago, body)
    assert not mocked.requests, "something was sent"
    return info.value


# --- NaN and infinities -----------------------------------------------------------------------


@each_sender()
@pytest.mark.parametrize(
    ("properties", "path"),
    [
        ({"tokens": NAN}, "properties.tokens"),
        ({"tokens": INF}, "properties.tokens"),
        ({"tokens": -INF}, "properties.tokens"),
        ({"usage": {"gpu": [1.0, NAN]}}, "properties.usage.gpu[1]"),
        ({"tokens": Decimal("NaN")}, "properties.tokens"),
        ({"tokens": Decimal("-Infinity")}, "properties.tokens"),
        ({"big": 2**64}, "properties.big"),
        ({"big": -(2**63) - 1}, "properties.big"),
    ],
)
async def test_non_finite_and_oversized_numbers_are_refused_naming_the_property(
    lago: AsyncLago,
    mocked: aioresponses,
    send: Sender,
    prefix: str,
    properties: dict[str, Any],
    path: str,
) -> None:
    error = await refused(lago, mocked, send, event(properties=properties))
    assert error.field == f"{prefix}.{path}"


@each_sender()
@pytest.mark.parametrize("timestamp", [NAN, INF, -INF, "nan", "inf", "-Infinity", "1e999"])
async def test_non_finite_timestamps_are_refused(
    lago: AsyncLago, mocked: aioresponses, send: Sender, prefix: str, timestamp: Any
) -> None:
    error = await refused(lago, mocked, send, event(timestamp=timestamp))
    assert error.field == f"{prefix}.timestamp"


@each_sender()
@pytest.mark.parametrize("amount", [NAN, INF, Decimal("NaN"), Decimal("Infinity"), "nan", "inf"])
async def test_non_finite_amounts_are_refused(
    lago: AsyncLago, mocked: aioresponses, send: Sender, prefix: str, amount: Any
) -> None:
    error = await refused(lago, mocked, send, event(precise_total_amount_cents=amount))
    assert error.field == f"{prefix}.precise_total_amount_cents"


async def test_estimate_fees_refuses_nan_properties(lago: AsyncLago, mocked: aioresponses) -> None:
    with pytest.raises(LagoValidationError) as info:
        await lago.events.estimate_fees(
            code="calls", external_subscription_id="sub", properties={"gb": NAN}
        )
    assert info.value.field == "event.properties.gb"
    assert not mocked.requests


async def test_none_and_finite_values_still_go_out(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.post(BATCH_URL, payload={"events": []})
    async with lago.events.ingestor() as ingest:
        await ingest.send(event(properties={"note": None, "gb": 1.5, "big": 2**63 - 1}))
    (call,) = sent(mocked, "POST", BATCH_URL)
    assert call["json"]["events"][0]["properties"] == {"note": None, "gb": 1.5, "big": 2**63 - 1}


# --- required fields, types (through the public methods) ------------------------------------


@each_sender()
@pytest.mark.parametrize("field", ["transaction_id", "code", "external_subscription_id"])
async def test_empty_required_fields_are_refused(
    lago: AsyncLago, mocked: aioresponses, send: Sender, prefix: str, field: str
) -> None:
    error = await refused(lago, mocked, send, event(**{field: ""}))
    assert error.field == f"{prefix}.{field}"
    assert "empty" in str(error)


@each_sender()
async def test_a_bool_is_not_a_timestamp(
    lago: AsyncLago, mocked: aioresponses, send: Sender, prefix: str
) -> None:
    error = await refused(lago, mocked, send, event(timestamp=True))
    assert error.field == f"{prefix}.timestamp"


@each_sender()
@pytest.mark.parametrize("properties", [["gb", 1], "gb=1", 3])
async def test_properties_must_be_a_mapping(
    lago: AsyncLago, mocked: aioresponses, send: Sender, prefix: str, properties: Any
) -> None:
    error = await refused(lago, mocked, send, event(properties=properties))
    assert error.field == f"{prefix}.properties"


# --- the ingestor's fast path sends what the full path sends ---------------------------------


@pytest.mark.parametrize(
    "timestamp",
    [
        dt.datetime(2026, 3, 4, 12, 0, 0, 5000, tzinfo=UTC),
        dt.datetime(2026, 3, 4, 12, 0, 0),  # naive: UTC
        1772625600.25,
        1772625600,
        "1772625600.5",
    ],
    ids=["aware datetime", "naive datetime", "float", "int", "numeric string"],
)
async def test_ingestor_sends_timestamps_as_create_does(
    lago: AsyncLago, mocked: aioresponses, timestamp: Any
) -> None:
    mocked.post(EVENTS_URL, payload={"event": stored()})
    mocked.post(BATCH_URL, payload={"events": []})
    await lago.events.create(event(timestamp=timestamp))
    async with lago.events.ingestor() as ingest:
        await ingest.send(event(timestamp=timestamp))
    (single,) = sent(mocked, "POST", EVENTS_URL)
    (batch,) = sent(mocked, "POST", BATCH_URL)
    assert batch["json"]["events"][0] == single["json"]["event"]
    assert batch["json"]["events"][0]["timestamp"] == single["json"]["event"]["timestamp"]


@pytest.mark.parametrize("timestamp", ["yesterday", "", "12:00"])
async def test_ingestor_refuses_a_garbage_timestamp_string(
    lago: AsyncLago, mocked: aioresponses, timestamp: str
) -> None:
    async with lago.events.ingestor() as ingest:
        with pytest.raises(LagoValidationError) as info:
            await ingest.send(event(timestamp=timestamp))
    assert info.value.field == "event.timestamp"
    assert not mocked.requests


def stored() -> dict[str, Any]:
    return event_json()


# --- path identifiers -------------------------------------------------------------------------


@pytest.mark.parametrize("ident", [".", "..", "\ud800", "a\udfffb"])
async def test_path_identifiers_that_could_address_another_resource_are_refused(
    lago: AsyncLago, mocked: aioresponses, ident: str
) -> None:
    for call in (
        lambda: lago.customers.get(ident),
        lambda: lago.customers.delete(ident),
        lambda: lago.events.get(ident),
        lambda: lago.customers.current_usage(ident, external_subscription_id="sub"),
    ):
        with pytest.raises(LagoValidationError) as info:
            await call()
        assert info.value.field in ("external_id", "transaction_id", "external_customer_id")
    assert not mocked.requests


async def test_dots_inside_an_identifier_are_fine(lago: AsyncLago, mocked: aioresponses) -> None:
    body = {
        "customer": {
            "lago_id": "1a901a90-1a90-1a90-1a90-1a901a901a90",
            "external_id": "a..b",
            "name": "x",
            "currency": "EUR",
            "created_at": "2026-01-01T00:00:00Z",
            "applicable_timezone": "UTC",
            "billing_configuration": {},
            "metadata": [],
        }
    }
    mocked.get(f"{BASE_URL}/customers/a..b", payload=body)
    mocked.get(f"{BASE_URL}/customers/...", payload=body)
    assert (await lago.customers.get("a..b")).external_id == "a..b"
    assert (await lago.customers.get("...")).external_id == "a..b"


def test_orjson_still_writes_nan_as_null() -> None:
    """Why the checks above exist: the encoder alone would send null."""
    assert orjson.dumps({"x": NAN}) == b'{"x":null}'


async def test_a_null_beside_values_orjson_encodes_natively_is_not_mistaken_for_nan(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    import uuid

    mocked.post(EVENTS_URL, payload={"event": stored()})
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    await lago.events.create(event(properties={"request": ident, "note": None}))
    (call,) = sent(mocked, "POST", EVENTS_URL)
    assert call["json"]["event"]["properties"] == {"request": str(ident), "note": None}
