"""EventIngestor against mocked HTTP: batching, retries, 422 resolution, queue bounds."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aioresponses import CallbackResult, aioresponses

from lago_async import AsyncLago, LagoValidationError
from lago_async._ingest import IngestQueueFull, RejectedEvent
from tests.conftest import API_KEY, BASE_URL

BATCH = f"{BASE_URL}/events/batch"


def event(n: int, **extra: Any) -> dict[str, Any]:
    return {"transaction_id": f"tx-{n}", "code": "calls", "external_subscription_id": "s", **extra}


def batches(m: aioresponses) -> list[list[str]]:
    """The transaction ids of each batch request, in order."""
    out = []
    for (method, url), calls in m.requests.items():
        if method == "POST" and str(url) == BATCH:
            for call in calls:
                out.append(
                    [e["transaction_id"] for e in orjson.loads(call.kwargs["data"])["events"]]
                )
    return out


def ok(url: Any, **kwargs: Any) -> CallbackResult:
    return CallbackResult(payload={"events": []})


async def test_full_batches_then_the_rest_on_close(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.post(BATCH, callback=ok, repeat=True)
    async with lago.events.ingestor(batch_size=100, flush_interval=60) as ingest:
        for n in range(250):
            await ingest.send(event(n))
    sent = batches(mocked)
    assert sorted(len(b) for b in sent) == [50, 100, 100]
    assert sorted(tx for b in sent for tx in b) == sorted(f"tx-{n}" for n in range(250))
    stats = ingest.stats
    assert (stats.accepted, stats.delivered, stats.batches) == (250, 250, 3)
    assert (stats.queued, stats.in_flight) == (0, 0)


async def test_flush_interval_sends_a_partial_batch(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.post(BATCH, callback=ok, repeat=True)
    async with lago.events.ingestor(flush_interval=0.01) as ingest:
        await ingest.send(event(1))
        import asyncio

        for _ in range(200):
            if ingest.stats.delivered:
                break
            await asyncio.sleep(0.01)
        assert ingest.stats.delivered == 1  # sent by the timer, before any flush or close


async def test_422_is_resolved_event_by_event(lago: AsyncLago, mocked: aioresponses) -> None:
    refusal = {
        "status": 422,
        "error": "Unprocessable Entity",
        "code": "validation_errors",
        "error_details": {
            "1": {"transaction_id": ["value_already_exist"]},
            "3": {"code": ["value_is_mandatory"]},
        },
    }
    mocked.post(BATCH, status=422, payload=refusal)
    mocked.post(BATCH, callback=ok)
    seen: list[RejectedEvent] = []
    async with lago.events.ingestor(on_rejected=seen.append) as ingest:
        for n in range(5):
            await ingest.send(event(n))
    assert batches(mocked) == [[f"tx-{n}" for n in range(5)], ["tx-0", "tx-2", "tx-4"]]
    stats = ingest.stats
    assert (stats.delivered, stats.duplicates, stats.rejected, stats.failed) == (3, 1, 1, 0)
    assert stats.retries == 0
    (rejected,) = ingest.rejected
    assert rejected.transaction_id == "tx-3"
    assert rejected.details == {"code": ["value_is_mandatory"]}
    assert seen == [rejected]


async def test_5xx_and_connection_errors_retry_the_batch(
    lago: AsyncLago, mocked: aioresponses, sleeps: list[float]
) -> None:
    import aiohttp

    mocked.post(BATCH, status=503)
    mocked.post(BATCH, exception=aiohttp.ServerDisconnectedError())
    mocked.post(BATCH, callback=ok)
    async with lago.events.ingestor() as ingest:
        await ingest.send(event(1))
    assert len(batches(mocked)) == 3
    assert (ingest.stats.delivered, ingest.stats.retries) == (1, 2)
    assert len(sleeps) == 2


async def test_429_pauses_for_the_announced_reset(
    lago: AsyncLago, mocked: aioresponses, sleeps: list[float]
) -> None:
    mocked.post(BATCH, status=429, headers={"X-RateLimit-Reset": "3", "X-RateLimit-Remaining": "0"})
    mocked.post(BATCH, callback=ok)
    async with lago.events.ingestor() as ingest:
        await ingest.send(event(1))
    assert ingest.stats.delivered == 1
    assert len(sleeps) == 1 and 2.5 < sleeps[0] <= 3.0


async def test_exhausted_retries_report_failures(
    lago: AsyncLago, mocked: aioresponses, sleeps: list[float]
) -> None:
    mocked.post(BATCH, status=500, repeat=True)
    async with lago.events.ingestor(max_retries=3) as ingest:
        await ingest.send(event(1))
        await ingest.send(event(2))
    assert len(batches(mocked)) == 4
    stats = ingest.stats
    assert (stats.accepted, stats.delivered, stats.failed) == (2, 0, 2)
    assert [f.transaction_id for f in ingest.failed] == ["tx-1", "tx-2"]
    assert "gave up after 4 attempts" in ingest.failed[0].reason


async def test_authentication_error_fails_without_retry(
    lago: AsyncLago, mocked: aioresponses, sleeps: list[float]
) -> None:
    mocked.post(BATCH, status=401, payload={"status": 401, "error": "Unauthorized"}, repeat=True)
    async with lago.events.ingestor() as ingest:
        await ingest.send(event(1))
    assert len(batches(mocked)) == 1
    assert ingest.stats.failed == 1
    assert API_KEY not in ingest.failed[0].reason


async def test_bad_event_raises_in_the_caller(lago: AsyncLago, mocked: aioresponses) -> None:
    async with lago.events.ingestor() as ingest:
        with pytest.raises(LagoValidationError) as info:
            await ingest.send({"transaction_id": "t", "code": "c"})
        assert info.value.field == "event.external_subscription_id"
        with pytest.raises(LagoValidationError):
            ingest.send_nowait(event(1, properties={"x": {1, 2}}))
    assert ingest.stats.accepted == 0
    assert not mocked.requests


async def test_send_nowait_raises_when_full(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.post(BATCH, callback=ok, repeat=True)
    async with lago.events.ingestor(batch_size=10, max_queue=10, flush_interval=60) as ingest:
        for n in range(10):
            ingest.send_nowait(event(n))
        # the ten are in a batch task that has not run yet: still held
        with pytest.raises(IngestQueueFull):
            ingest.send_nowait(event(99))
    assert ingest.stats.delivered == 10


def test_options_are_checked(lago: AsyncLago) -> None:
    with pytest.raises(LagoValidationError, match="batch_size"):
        lago.events.ingestor(batch_size=101)
    with pytest.raises(LagoValidationError, match="max_queue"):
        lago.events.ingestor(batch_size=50, max_queue=10)


def test_packer_takes_extends_and_splits() -> None:
    from lago_async._ingest import _Packer

    items = [orjson.dumps(event(n)) for n in range(7)]
    packer = _Packer.of(items[:4])
    other = _Packer.of(items[4:])
    packer.extend(other)
    assert (len(packer), len(other)) == (7, 0)
    assert packer.items() == items
    head = packer.take(3)
    assert head.items() == items[:3]
    assert packer.items() == items[3:]
    assert orjson.loads(packer.body()) == {"events": [event(n) for n in range(3, 7)]}
    rest = packer.take(10)
    assert (len(rest), len(packer)) == (4, 0)
    assert packer.items() == [] and packer.body() == b'{"events":[]}'


def test_fast_path_and_full_path_encode_alike() -> None:
    from decimal import Decimal

    from lago_async._validate import encode_event

    plain = event(1, timestamp=1700000000)
    assert orjson.loads(encode_event(plain)) == plain
    converted = event(2, properties={"amount": Decimal("1.50")}, timestamp=1.5)
    assert orjson.loads(encode_event(converted)) == {
        **event(2),
        "properties": {"amount": "1.50"},
        "timestamp": "1.5",
    }


async def test_429_pause_is_capped_by_max_retry_delay(
    mocked: aioresponses, sleeps: list[float]
) -> None:
    mocked.post(BATCH, status=429, headers={"X-RateLimit-Reset": "3600"})
    mocked.post(BATCH, callback=ok)
    async with AsyncLago(api_key=API_KEY, base_url=BASE_URL, max_retry_delay=5) as lago:
        async with lago.events.ingestor() as ingest:
            await ingest.send(event(1))
    assert ingest.stats.delivered == 1
    assert len(sleeps) == 1 and 4.5 < sleeps[0] <= 5.0
