"""Every way into the ingestor checks and encodes an event alike.

``send``, ``send_many``, ``send_nowait`` and the thread-safe entries each have a fast path for
plain events; whichever takes the event, a bad one raises naming the field before anything is
sent (a NaN or an infinity is never sent as ``null``), and a good one goes out byte for byte
as the caller gave it (a real ``null``, or the text ``"null"``, included).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import orjson
import pytest
from aioresponses import aioresponses

from lago_async import AsyncLago, LagoValidationError
from lago_async._ingest import EventIngestor
from tests.ingest.test_ingestor_unit import BATCH, event, ok

NAN, INF = float("nan"), float("inf")

Entry = Callable[[EventIngestor, dict[str, Any]], Awaitable[Any]]


async def via_send(ingest: EventIngestor, body: dict[str, Any]) -> None:
    await ingest.send(body)


async def via_send_many(ingest: EventIngestor, body: dict[str, Any]) -> None:
    await ingest.send_many([body])


async def via_send_nowait(ingest: EventIngestor, body: dict[str, Any]) -> None:
    ingest.send_nowait(body)


async def via_send_threadsafe(ingest: EventIngestor, body: dict[str, Any]) -> None:
    await asyncio.to_thread(ingest.send_threadsafe, body)


async def via_send_many_threadsafe(ingest: EventIngestor, body: dict[str, Any]) -> None:
    await asyncio.to_thread(ingest.send_many_threadsafe, [body])


ENTRIES = {
    "send": (via_send, "event"),
    "send_many": (via_send_many, "events[0]"),
    "send_nowait": (via_send_nowait, "event"),
    "send_threadsafe": (via_send_threadsafe, "event"),
    "send_many_threadsafe": (via_send_many_threadsafe, "events[0]"),
}


BAD: list[tuple[dict[str, Any], str]] = [
    ({"properties": {"tokens": NAN}}, "properties.tokens"),
    ({"properties": {"units": 1, "tokens": INF}}, "properties.tokens"),
    ({"properties": {"usage": {"gpu": [1.0, -INF]}}}, "properties.usage.gpu[1]"),
    ({"properties": {"tokens": Decimal("NaN")}}, "properties.tokens"),
    ({"properties": {"big": 2**64}}, "properties.big"),
    ({"properties": {"units": 1}, "extra": NAN}, "extra"),
    ({"timestamp": NAN}, "timestamp"),
    ({"timestamp": True}, "timestamp"),
    ({"properties": [1]}, "properties"),
    ({"code": ""}, "code"),
    ({"transaction_id": 7}, "transaction_id"),
    ({"external_subscription_id": None}, "external_subscription_id"),
    ({"precise_total_amount_cents": INF}, "precise_total_amount_cents"),
]

GOOD: list[dict[str, Any]] = [
    {},
    {"timestamp": 1_700_000_000, "properties": {"units": 1, "region": "eu"}},
    {"properties": {"note": None, "text": "null", "null": "nullable", "gb": 1.5}},
    {"external_customer_id": None, "properties": {"nested": {"a": [1, None, 2.5]}}},
    {"timestamp": 1.5, "properties": {"amount": Decimal("1.50")}},
    {"precise_total_amount_cents": "12.5"},
]
GOOD_IDS = ["bare", "plain", "nulls", "nested-nulls", "converted", "amount"]


def each_entry() -> Any:
    return pytest.mark.parametrize(("entry", "prefix"), ENTRIES.values(), ids=ENTRIES.keys())


@each_entry()
@pytest.mark.parametrize(("extra", "path"), BAD)
async def test_a_bad_event_is_refused_naming_the_field_and_nothing_is_sent(
    lago: AsyncLago,
    mocked: aioresponses,
    entry: Entry,
    prefix: str,
    extra: dict[str, Any],
    path: str,
) -> None:
    mocked.post(BATCH, callback=ok, repeat=True)
    async with lago.events.ingestor(flush_interval=0.01) as ingest:
        with pytest.raises(LagoValidationError) as info:
            await entry(ingest, event(1, **extra))
    assert info.value.field == f"{prefix}.{path}"
    assert not mocked.requests, "something was sent"
    assert ingest.stats.accepted == 0


@each_entry()
@pytest.mark.parametrize("extra", GOOD, ids=GOOD_IDS)
async def test_a_good_event_goes_out_as_given(
    lago: AsyncLago, mocked: aioresponses, entry: Entry, prefix: str, extra: dict[str, Any]
) -> None:
    mocked.post(BATCH, callback=ok, repeat=True)
    body = event(1, **extra)
    async with lago.events.ingestor(flush_interval=0.01) as ingest:
        await entry(ingest, body)
    (call,) = next(iter(mocked.requests.values()))
    (sent,) = orjson.loads(call.kwargs["data"])["events"]
    expected = dict(body)
    if "timestamp" in extra and type(extra["timestamp"]) is float:
        expected["timestamp"] = repr(extra["timestamp"])
    if "properties" in extra and "amount" in extra["properties"]:
        expected["properties"] = {"amount": "1.50"}
    assert sent == expected
    assert ingest.stats.delivered == 1


# ``send_many`` given a list checks and encodes a whole batch at once (``encode_plain_events``)
# while a whole batch is left and the buffer is empty: the cases above, sent alone, never take
# that path. Here each case sits at index 13 of 30 events, batches of 10: the first batch goes
# the bulk way, the odd event's batch falls back to one event at a time.
ODD_AT, TOTAL, SIZE = 13, 30, 10


def among_plain_events(odd: dict[str, Any]) -> list[dict[str, Any]]:
    events = [event(n, properties={"units": n}) for n in range(TOTAL)]
    events[ODD_AT] = odd
    return events


def sent_events(mocked: aioresponses) -> list[dict[str, Any]]:
    calls = next(iter(mocked.requests.values()), [])
    return [item for call in calls for item in orjson.loads(call.kwargs["data"])["events"]]


@pytest.mark.parametrize(
    ("extra", "path"),
    [*BAD, ({"code": None}, "code"), ({"properties": {"n": 2**63}}, "")],
    ids=[*(path or "x" for _, path in BAD), "code-null", "fits-64-bits"],
)
async def test_a_list_in_whole_batches_refuses_a_bad_event_naming_its_index(
    lago: AsyncLago, mocked: aioresponses, extra: dict[str, Any], path: str
) -> None:
    mocked.post(BATCH, callback=ok, repeat=True)
    odd = event(ODD_AT, **extra)
    async with lago.events.ingestor(batch_size=SIZE, flush_interval=0.01) as ingest:
        if not path:  # 2**63 fits orjson's unsigned 64 bits: a good event after all
            assert await ingest.send_many(among_plain_events(odd)) == TOTAL
            return
        with pytest.raises(LagoValidationError) as info:
            await ingest.send_many(among_plain_events(odd))
    assert info.value.field == f"events[{ODD_AT}].{path}"
    assert ingest.stats.accepted == ingest.stats.delivered == ODD_AT
    assert [e["transaction_id"] for e in sent_events(mocked)] == [f"tx-{n}" for n in range(ODD_AT)]


async def test_a_list_whose_event_lacks_a_required_key_is_refused_naming_it(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    mocked.post(BATCH, callback=ok, repeat=True)
    odd = event(ODD_AT)
    del odd["code"]
    async with lago.events.ingestor(batch_size=SIZE) as ingest:
        with pytest.raises(LagoValidationError) as info:
            await ingest.send_many(among_plain_events(odd))
    assert info.value.field == f"events[{ODD_AT}].code"
    assert ingest.stats.accepted == ODD_AT


@pytest.mark.parametrize("extra", GOOD, ids=GOOD_IDS)
async def test_a_list_in_whole_batches_sends_every_event_as_given(
    lago: AsyncLago, mocked: aioresponses, extra: dict[str, Any]
) -> None:
    mocked.post(BATCH, callback=ok, repeat=True)
    events = among_plain_events(event(ODD_AT, **extra))
    expected = [dict(e) for e in events]
    if "timestamp" in extra and type(extra["timestamp"]) is float:
        expected[ODD_AT]["timestamp"] = repr(extra["timestamp"])
    if "properties" in extra and "amount" in extra["properties"]:
        expected[ODD_AT]["properties"] = {"amount": "1.50"}
    async with lago.events.ingestor(batch_size=SIZE) as ingest:
        assert await ingest.send_many(events) == TOTAL
    assert sorted(sent_events(mocked), key=lambda e: int(e["transaction_id"][3:])) == expected
    assert ingest.stats.delivered == TOTAL
