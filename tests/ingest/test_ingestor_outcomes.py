"""Every accepted event ends in exactly one outcome, on every path the server or the caller
can take: odd 2xx answers, size refusals, split batches cut by a deadline, cancelled waits,
a loop that stops with the ingestor open."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import orjson
import pytest
from aioresponses import CallbackResult, aioresponses

from lago_async import AsyncLago, IngestQueueFull, LagoValidationError
from lago_async._ingest import EventIngestor
from tests.conftest import API_KEY
from tests.ingest.test_ingestor_unit import BATCH, batches, event, ok

TOO_MANY = {
    "status": 422,
    "error": "Unprocessable Entity",
    "code": "validation_errors",
    "error_details": {"events": ["too_many_events"]},
}


def settled_everything(ingest: EventIngestor) -> None:
    stats = ingest.stats
    assert stats.accepted == stats.settled, stats
    assert (stats.queued, stats.in_flight) == (0, 0), stats


# --- a 2xx is a confirmation only when it is Lago's answer ---------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html><body>Welcome to nginx!</body></html>", "text/html"),
        (b"", "application/json"),
        (b"{}", "application/json"),
        (b'{"status":"ok"}', "application/json"),
        (b"null", "application/json"),
    ],
)
async def test_a_2xx_that_is_not_lagos_answer_is_retried(
    lago: AsyncLago, mocked: aioresponses, sleeps: list[float], body: bytes, content_type: str
) -> None:
    mocked.post(BATCH, status=200, body=body, content_type=content_type)
    mocked.post(BATCH, status=200, body=b' \n{"events": []}', content_type="application/json")
    async with lago.events.ingestor() as ingest:
        await ingest.send(event(1))
    assert batches(mocked) == [["tx-1"], ["tx-1"]]
    stats = ingest.stats
    assert (stats.delivered, stats.failed, stats.retries) == (1, 0, 1)


async def test_unconfirmed_2xx_until_retries_run_out_is_failed(
    lago: AsyncLago, mocked: aioresponses, sleeps: list[float]
) -> None:
    mocked.post(BATCH, status=200, body=b"<html>proxy</html>", repeat=True)
    async with lago.events.ingestor(max_retries=2) as ingest:
        await ingest.send(event(1))
        await ingest.send(event(2))
    assert len(batches(mocked)) == 3
    stats = ingest.stats
    assert (stats.delivered, stats.failed) == (0, 2)
    assert "unconfirmed answer" in ingest.failed[0].reason
    assert "<html>proxy</html>" in ingest.failed[0].reason
    settled_everything(ingest)


# --- full batches and splits ------------------------------------------------------------------


async def test_a_full_batch_goes_out_at_once(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.post(BATCH, callback=ok, repeat=True)
    async with lago.events.ingestor(batch_size=10, flush_interval=3600) as ingest:
        for n in range(9):
            await ingest.send(event(n))
        for _ in range(20):
            await asyncio.sleep(0)
        assert batches(mocked) == []  # nine wait for the tenth (or the hour-long interval)
        await ingest.send(event(9))
        for _ in range(200):
            if ingest.stats.delivered:
                break
            await asyncio.sleep(0.005)
        # Neither a flush nor the interval nor another event sent it: the full batch did.
        assert batches(mocked) == [[f"tx-{n}" for n in range(10)]]
        assert ingest.stats.delivered == 10


async def test_too_many_events_halves_the_batch(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.post(BATCH, status=422, payload=TOO_MANY)
    mocked.post(BATCH, callback=ok, repeat=True)
    async with lago.events.ingestor(batch_size=4) as ingest:
        for n in range(4):
            await ingest.send(event(n))
    assert batches(mocked) == [["tx-0", "tx-1", "tx-2", "tx-3"], ["tx-0", "tx-1"], ["tx-2", "tx-3"]]
    assert ingest.stats.delivered == 4
    settled_everything(ingest)


async def test_deadline_during_a_split_settles_both_halves(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    async def hang(url: Any, **kwargs: Any) -> CallbackResult:
        await asyncio.sleep(30)
        return CallbackResult(payload={"events": []})

    mocked.post(BATCH, status=422, payload=TOO_MANY)
    mocked.post(BATCH, callback=hang, repeat=True)
    ingest = lago.events.ingestor(batch_size=4, close_timeout=0.2)
    async with ingest:
        for n in range(4):
            await ingest.send(event(n))
    stats = ingest.stats
    assert (stats.accepted, stats.failed) == (4, 4)
    assert sorted(f.transaction_id for f in ingest.failed) == [f"tx-{n}" for n in range(4)]
    assert all("close deadline" in f.reason for f in ingest.failed)
    settled_everything(ingest)


async def test_413_splits_down_to_what_the_proxy_takes(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    def proxy(url: Any, **kwargs: Any) -> CallbackResult:
        if len(orjson.loads(kwargs["data"])["events"]) > 2:
            return CallbackResult(status=413, body=b"<html>413 Request Entity Too Large</html>")
        return CallbackResult(payload={"events": []})

    mocked.post(BATCH, callback=proxy, repeat=True)
    async with lago.events.ingestor(batch_size=8) as ingest:
        for n in range(8):
            await ingest.send(event(n))
    sizes = [len(b) for b in batches(mocked)]
    assert sizes == [8, 4, 2, 2, 4, 2, 2]
    assert sorted(tx for b in batches(mocked) if len(b) <= 2 for tx in b) == sorted(
        f"tx-{n}" for n in range(8)
    )
    assert (ingest.stats.delivered, ingest.stats.failed, ingest.stats.rejected) == (8, 0, 0)


async def test_one_event_refused_with_413_is_rejected_with_the_reason(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    def proxy(url: Any, **kwargs: Any) -> CallbackResult:
        events = orjson.loads(kwargs["data"])["events"]
        if any("blob" in e.get("properties", {}) for e in events):
            return CallbackResult(status=413, body=b"too large")
        return CallbackResult(payload={"events": []})

    mocked.post(BATCH, callback=proxy, repeat=True)
    async with lago.events.ingestor(batch_size=4) as ingest:
        for n in range(4):
            extra = {"properties": {"blob": "x" * 100}} if n == 2 else {}
            await ingest.send(event(n, **extra))
    stats = ingest.stats
    assert (stats.delivered, stats.rejected, stats.failed) == (3, 1, 0)
    (rejected,) = ingest.rejected
    assert rejected.transaction_id == "tx-2"
    assert "payload_too_large" in rejected.details["event"][0]
    settled_everything(ingest)


async def test_max_batch_bytes_cuts_requests(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.post(BATCH, callback=ok, repeat=True)
    limit = 2048
    async with lago.events.ingestor(max_batch_bytes=limit, flush_interval=3600) as ingest:
        for n in range(100):
            await ingest.send(event(n, properties={"pad": "p" * 150}))
    bodies = [
        call.kwargs["data"]
        for (method, url), calls in mocked.requests.items()
        if method == "POST" and str(url) == BATCH
        for call in calls
    ]
    assert len(bodies) > 1
    assert all(len(body) <= limit for body in bodies)
    assert sum(len(orjson.loads(body)["events"]) for body in bodies) == 100
    assert ingest.stats.delivered == 100


async def test_an_event_larger_than_max_batch_bytes_is_refused_by_send(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    async with lago.events.ingestor(max_batch_bytes=1024) as ingest:
        with pytest.raises(LagoValidationError, match="max_batch_bytes") as info:
            await ingest.send(event(1, properties={"blob": "x" * 2000}))
        assert info.value.field == "event"
        with pytest.raises(LagoValidationError, match="max_batch_bytes"):
            ingest.send_nowait(event(1, properties={"blob": "x" * 2000}))
    assert ingest.stats.accepted == 0
    assert not mocked.requests


@pytest.mark.parametrize("value", [0, 10, -1, 1.5, True, "2048"])
def test_max_batch_bytes_is_checked(lago: AsyncLago, value: Any) -> None:
    with pytest.raises(LagoValidationError, match="max_batch_bytes"):
        lago.events.ingestor(max_batch_bytes=value)


# --- the caller's waits and threads -----------------------------------------------------------


async def test_cancelling_a_wait_on_flush_does_not_cancel_delivery(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    async def slow(url: Any, **kwargs: Any) -> CallbackResult:
        await asyncio.sleep(0.3)
        return CallbackResult(payload={"events": []})

    mocked.post(BATCH, callback=slow, repeat=True)
    async with lago.events.ingestor(batch_size=5) as ingest:
        for n in range(10):
            await ingest.send(event(n))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ingest.flush(), 0.05)
    stats = ingest.stats
    assert (stats.delivered, stats.failed) == (10, 0)
    assert len(batches(mocked)) == 2  # each batch sent once: nothing was cut off and resent


async def test_send_threadsafe_on_the_loop_thread_with_a_full_queue_raises(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    async def slow(url: Any, **kwargs: Any) -> CallbackResult:
        await asyncio.sleep(0.05)
        return CallbackResult(payload={"events": []})

    mocked.post(BATCH, callback=slow, repeat=True)
    async with lago.events.ingestor(batch_size=2, max_queue=2) as ingest:
        ingest.send_threadsafe(event(1))
        ingest.send_threadsafe(event(2))
        with pytest.raises(IngestQueueFull, match="own event loop"):
            ingest.send_threadsafe(event(3), timeout=5)
    assert ingest.stats.delivered == 2


def test_a_loop_stopping_with_the_ingestor_open_reports_every_event() -> None:
    """No ingestor or client closed; asyncio.run ends: buffered events are counted too."""
    holder: list[EventIngestor] = []

    async def main() -> None:
        # Nothing listens on port 9: batches fail and wait to retry.
        lago = AsyncLago(api_key=API_KEY, base_url="http://127.0.0.1:9/api/v1")
        ingest = lago.events.ingestor(batch_size=10, flush_interval=3600)
        holder.append(ingest)
        for n in range(25):
            await ingest.send(event(n))
        await asyncio.sleep(0.05)

    with pytest.warns(ResourceWarning, match="25 of 25 events not delivered"):
        asyncio.run(main())
    (ingest,) = holder
    stats = ingest.stats
    assert (stats.accepted, stats.failed) == (25, 25)
    # The five still buffered say why; the batches cancelled by asyncio.run say so.
    assert sum("event loop stopped" in f.reason for f in ingest.failed) >= 5
    assert API_KEY not in repr(ingest.failed)
    settled_everything(ingest)


async def test_send_threadsafe_from_other_threads_still_waits_for_room(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    mocked.post(BATCH, callback=ok, repeat=True)
    async with lago.events.ingestor(batch_size=2, max_queue=2, flush_interval=0.01) as ingest:

        def producer() -> None:
            for n in range(20):
                ingest.send_threadsafe(event(n), timeout=10)

        await asyncio.to_thread(producer)
    assert ingest.stats.delivered == 20
    assert threading.active_count() >= 1
