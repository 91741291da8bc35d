"""``send_many``: bulk queueing with the same checks, order and backpressure as ``send``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aioresponses import CallbackResult, aioresponses

from lago_async import AsyncLago, LagoValidationError
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
