"""``send_many``: bulk queueing with the same checks, order and backpressure as ``send``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aioresponses import CallbackResult, aioresponses

from lago_async import AsyncLago, LagoValidationError, _ingest
from lago_async._ingest import IngestorClosed
from lago_async.testing import FakeLago
from tests.ingest.test_ingestor_unit import BATCH, batches, event, ok


async def test_send_many_queues_in_order_and_batches(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.post(BATCH, callback=ok, repeat=True)
    async with lago.events.ingestor(batch_size=10, flush_interval=3600) as ingest:
        assert await ingest.send_many(event(n) for n in range(25)) == 25
    assert batches(mocked) == [
        [f"tx-{n}" for n in range(0, 10)],
        [f"tx-{n}" for n in range(10, 20)],
        [f"tx-{n}" for n in range(20, 25)],
    ]
    assert ingest.stats.delivered == 25


async def test_send_many_waits_for_room(lago: AsyncLago, mocked: aioresponses) -> None:
    async def slow(url: Any, **kwargs: Any) -> CallbackResult:
        await asyncio.sleep(0.005)
        return CallbackResult(payload={"events": []})

    mocked.post(BATCH, callback=slow, repeat=True)
    highest = 0

    def watch() -> Iterator[dict[str, Any]]:
        nonlocal highest
        for n in range(60):
            highest = max(highest, ingest.stats.queued + ingest.stats.in_flight)
            yield event(n)

    async with lago.events.ingestor(batch_size=5, max_queue=10, max_in_flight=1) as ingest:
        assert await ingest.send_many(watch()) == 60
    assert highest <= 10  # never more held than max_queue
    assert ingest.stats.delivered == 60


async def test_a_bad_event_names_its_index_and_stops_there(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    mocked.post(BATCH, callback=ok, repeat=True)
    read: list[int] = []

    def rows() -> Iterator[dict[str, Any]]:
        for n in range(10):
            read.append(n)
            yield event(n, code="" if n == 3 else "calls")

    async with lago.events.ingestor() as ingest:
        with pytest.raises(LagoValidationError) as info:
            await ingest.send_many(rows())
    assert info.value.field == "events[3].code"
    assert read == [0, 1, 2, 3]
    assert (ingest.stats.accepted, ingest.stats.delivered) == (3, 3)


def test_send_many_from_the_blocking_client() -> None:
    from lago_sync import Lago

    with FakeLago.in_thread() as fake, Lago(api_key=fake.api_key, base_url=fake.base_url) as lago:
        with lago.events.ingestor(batch_size=50) as ingest:
            assert ingest.send_many(event(n) for n in range(120)) == 120
        assert ingest.stats.delivered == 120
        assert len(fake.events) == 120


# -- lists and tuples: whole batches checked and encoded at once ------------------------------


def bodies(m: aioresponses) -> list[bytes]:
    return [call.kwargs["data"] for calls in m.requests.values() for call in calls]


@pytest.mark.parametrize("kind", [list, tuple])
async def test_a_sequence_goes_out_in_whole_batches_as_an_iterator_would(
    lago: AsyncLago, mocked: aioresponses, kind: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    mocked.post(BATCH, callback=ok, repeat=True)
    events = [event(n, timestamp=1_700_000_000 + n, properties={"gb": n / 3}) for n in range(35)]
    async with lago.events.ingestor(batch_size=10, flush_interval=3600) as ingest:
        assert await ingest.send_many(iter(events)) == 35
    one_by_one = bodies(mocked)
    mocked.requests.clear()

    encoded: list[Any] = []  # what goes the one-event-at-a-time way
    real = _ingest.encode_event

    def spy(e: Any, *args: Any, **kwargs: Any) -> bytes:
        encoded.append(e)
        return real(e, *args, **kwargs)

    monkeypatch.setattr(_ingest, "encode_event", spy)
    async with lago.events.ingestor(batch_size=10, flush_interval=3600) as ingest:
        assert await ingest.send_many(kind(events)) == 35
    assert bodies(mocked) == one_by_one  # byte for byte
    assert encoded == events[30:]  # only the last, partial batch went event by event
    assert (ingest.stats.accepted, ingest.stats.delivered, ingest.stats.batches) == (35, 35, 4)


async def test_a_generator_may_hand_out_one_dict_again_with_new_values(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    mocked.post(BATCH, callback=ok, repeat=True)

    def reusing() -> Iterator[dict[str, Any]]:
        row: dict[str, Any] = {"code": "calls", "external_subscription_id": "s"}
        properties: dict[str, Any] = {}
        for n in range(25):
            row["transaction_id"] = f"tx-{n}"
            properties["units"] = n
            row["properties"] = properties
            yield row

    async with lago.events.ingestor(batch_size=10) as ingest:
        assert await ingest.send_many(reusing()) == 25
    sent = [e for body in bodies(mocked) for e in orjson.loads(body)["events"]]
    assert sorted((e["transaction_id"], e["properties"]["units"]) for e in sent) == sorted(
        (f"tx-{n}", n) for n in range(25)
    )


async def test_refusals_and_failures_of_a_bulk_batch_report_the_events_as_given(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    refusal = {
        "status": 422,
        "error": "Unprocessable Entity",
        "code": "validation_errors",
        "error_details": {
            "2": {"transaction_id": ["value_already_exist"]},
            "7": {"code": ["value_is_mandatory"]},
        },
    }
    mocked.post(BATCH, status=422, payload=refusal)
    mocked.post(BATCH, callback=ok)  # the 8 events not named, sent again
    mocked.post(BATCH, status=400, payload={"status": 400, "error": "Bad Request"})
    events = [event(n, properties={"units": n, "ratio": n / 7}) for n in range(20)]
    async with lago.events.ingestor(batch_size=10, max_in_flight=1) as ingest:
        assert await ingest.send_many(events) == 20
    stats = ingest.stats
    assert (stats.delivered, stats.duplicates, stats.rejected, stats.failed) == (8, 1, 1, 10)
    assert [r.event for r in ingest.rejected] == [events[7]]
    assert [f.event for f in ingest.failed] == events[10:]
    assert batches(mocked)[1] == [f"tx-{n}" for n in range(10) if n not in (2, 7)]


async def test_a_sequence_waits_for_room_for_a_whole_batch(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    held: list[int] = []

    async def slow(url: Any, **kwargs: Any) -> CallbackResult:
        held.append(ingest.stats.queued + ingest.stats.in_flight)
        await asyncio.sleep(0.002)
        return CallbackResult(payload={"events": []})

    mocked.post(BATCH, callback=slow, repeat=True)
    async with lago.events.ingestor(batch_size=5, max_queue=12, max_in_flight=1) as ingest:
        assert await ingest.send_many([event(n) for n in range(60)]) == 60
    assert max(held) <= 12
    assert ingest.stats.delivered == 60


async def test_a_sequence_sent_to_a_closed_ingestor_is_refused(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    mocked.post(BATCH, callback=ok, repeat=True)
    async with lago.events.ingestor(batch_size=5) as ingest:
        pass
    with pytest.raises(IngestorClosed):
        await ingest.send_many([event(n) for n in range(10)])
    assert ingest.stats.accepted == 0
