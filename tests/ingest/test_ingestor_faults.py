"""EventIngestor against FakeLago over real sockets, with faults: exact outcomes, none lost."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from lago_async import AsyncLago
from lago_async.testing import FakeLago

BATCH = "POST /events/batch"


def event(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "transaction_id": f"tx-{n}",
        "code": "api_calls",
        "external_subscription_id": f"sub_{n % 5}",
        "properties": {"units": n % 3 + 1},
        **extra,
    }


# Retries after a few milliseconds instead of the real backoff, to keep tests short.
FAST_BACKOFF = {"initial_retry_delay": 0.002, "max_retry_backoff": 0.002}


def stored_ids(fake: FakeLago) -> Counter[str]:
    return Counter(e["transaction_id"] for e in fake.events)


async def test_50k_events_through_every_fault_exactly_once() -> None:
    total = 50_000
    invalid = {n for n in range(total) if n % 100 == 37}  # 1% the server refuses
    async with FakeLago(seed=1234) as fake:
        fake.faults.add(route=BATCH, status=503, rate=0.05)
        fake.faults.add(route=BATCH, status=500, rate=0.05)
        fake.faults.rate_limit(route=BATCH, rate=0.05, reset=0)
        fake.faults.drop(route=BATCH, rate=0.02)
        fake.faults.store_then_drop(route=BATCH, rate=0.02)
        async with AsyncLago(api_key=fake.api_key, base_url=fake.base_url, **FAST_BACKOFF) as lago:
            async with lago.events.ingestor(max_retries=50) as ingest:
                for n in range(total):
                    extra = {"timestamp": 10**15} if n in invalid else {}  # beyond year 9999
                    await ingest.send(event(n, **extra))
        fired = fake.faults.fired
        ids = stored_ids(fake)

    stats = ingest.stats
    # Every fault happened, many times over.
    for kind in ("503", "500", "429", "drop", "store_then_drop"):
        assert fired[kind] > 10, fired
    # FakeLago holds every valid event exactly once, and no invalid one.
    assert set(ids) == {f"tx-{n}" for n in range(total) if n not in invalid}
    assert max(ids.values()) == 1
    # The rejected events are exactly the invalid ones, with the server's reasons.
    assert sorted(r.transaction_id for r in ingest.rejected) == sorted(f"tx-{n}" for n in invalid)
    assert all(r.details == {"timestamp": ["invalid_value"]} for r in ingest.rejected)
    # The counters add up; the lost answers show up as duplicates, not failures.
    assert stats.accepted == total
    assert stats.failed == 0
    assert stats.rejected == len(invalid)
    assert stats.delivered + stats.duplicates == total - len(invalid)
    assert stats.duplicates > 0
    assert stats.delivered + stats.duplicates + stats.rejected + stats.failed == stats.accepted
    assert (stats.queued, stats.in_flight) == (0, 0)


async def test_backpressure_bounds_what_is_held() -> None:
    async with FakeLago() as fake:
        fake.faults.latency(0.05, route=BATCH)
        async with AsyncLago(api_key=fake.api_key, base_url=fake.base_url) as lago:
            ingest = lago.events.ingestor(batch_size=50, max_queue=200, max_in_flight=2)
            peak = 0
            async with ingest:
                for n in range(2_000):
                    await ingest.send(event(n))
                    stats = ingest.stats
                    peak = max(peak, stats.queued + stats.in_flight)
                    assert stats.accepted - stats.settled <= 200
        assert len(fake.events) == 2_000
    assert 150 <= peak <= 200  # the queue filled up to its bound and never beyond


async def test_cancelled_producer_loses_nothing_it_handed_over() -> None:
    async with FakeLago() as fake:
        fake.faults.latency(0.02, route=BATCH)
        async with AsyncLago(api_key=fake.api_key, base_url=fake.base_url) as lago:
            ingest = lago.events.ingestor(batch_size=20, max_queue=100, flush_interval=0.01)

            async def produce() -> None:
                async with ingest:
                    n = 0
                    while True:
                        await ingest.send(event(n))
                        n += 1

            task = asyncio.create_task(produce())
            while ingest.stats.accepted < 500:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            accepted = ingest.stats.accepted
            assert accepted >= 500
        ids = stored_ids(fake)
    assert set(ids) == {f"tx-{n}" for n in range(accepted)}
    assert ingest.stats.delivered == accepted


async def test_close_deadline_reports_what_is_pending() -> None:
    async with FakeLago() as fake:
        fake.faults.latency(30, route=BATCH)
        async with AsyncLago(api_key=fake.api_key, base_url=fake.base_url) as lago:
            ingest = lago.events.ingestor(batch_size=10, max_in_flight=1, close_timeout=0.2)
            async with ingest:
                for n in range(35):
                    await ingest.send(event(n))
        stats = ingest.stats
        assert (stats.accepted, stats.delivered, stats.failed) == (35, 0, 35)
        assert (stats.queued, stats.in_flight) == (0, 0)
        assert sorted(f.transaction_id for f in ingest.failed) == sorted(
            f"tx-{n}" for n in range(35)
        )
        reasons = {f.reason for f in ingest.failed}
        assert any("close deadline" in r for r in reasons)

        # Failed events can be sent again safely: nothing is stored twice.
        fake.faults.clear()
        async with AsyncLago(api_key=fake.api_key, base_url=fake.base_url) as lago:
            async with lago.events.ingestor() as again:
                for failed in ingest.failed:
                    await again.send(failed.event)
        assert again.stats.delivered + again.stats.duplicates == 35
        ids = stored_ids(fake)
    assert set(ids) == {f"tx-{n}" for n in range(35)}
    assert max(ids.values()) == 1


async def test_flush_settles_everything_sent_so_far() -> None:
    async with FakeLago() as fake:
        async with AsyncLago(api_key=fake.api_key, base_url=fake.base_url) as lago:
            async with lago.events.ingestor(flush_interval=60) as ingest:
                for n in range(123):
                    await ingest.send(event(n))
                await ingest.flush()
                assert ingest.stats.delivered == 123
                assert len(fake.events) == 123
