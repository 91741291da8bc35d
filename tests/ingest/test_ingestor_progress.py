"""``on_progress``: periodic snapshots of the counters while an ingestor works, and the final
figures once it closes, so a backfill can show progress without polling."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aioresponses import CallbackResult, aioresponses

from lago_async import AsyncLago, IngestStats, LagoValidationError
from tests.ingest.test_ingestor_unit import BATCH, event


async def slow(url: Any, **kwargs: Any) -> CallbackResult:
    await asyncio.sleep(0.02)
    return CallbackResult(payload={"events": []})


async def test_progress_is_reported_while_working_and_once_at_the_end(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    mocked.post(BATCH, callback=slow, repeat=True)
    seen: list[IngestStats] = []
    async with lago.events.ingestor(
        batch_size=5, max_in_flight=1, on_progress=seen.append, progress_interval=0.01
    ) as ingest:
        for n in range(50):
            await ingest.send(event(n))
        await asyncio.sleep(0.05)
        during = len(seen)
    assert during >= 2  # reported on the interval, before any close
    final = seen[-1]
    assert final == ingest.stats
    assert (final.accepted, final.delivered, final.settled) == (50, 50, 50)
    settled = [snapshot.settled for snapshot in seen]
    assert settled == sorted(settled)
    await asyncio.sleep(0.05)
    assert seen[-1] is final  # nothing more once closed


async def test_a_failing_progress_callback_is_logged_and_ingestion_goes_on(
    lago: AsyncLago, mocked: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    mocked.post(BATCH, callback=slow, repeat=True)

    def broken(stats: IngestStats) -> None:
        raise RuntimeError("progress bar crashed")

    with caplog.at_level(logging.ERROR, logger="lago_async.ingest"):
        async with lago.events.ingestor(on_progress=broken, progress_interval=0.01) as ingest:
            for n in range(10):
                await ingest.send(event(n))
            await asyncio.sleep(0.03)
    assert ingest.stats.delivered == 10
    assert "on_progress raised" in caplog.text


@pytest.mark.parametrize("interval", [0, -1.0, float("nan")])
def test_progress_interval_is_checked(lago: AsyncLago, interval: float) -> None:
    with pytest.raises(LagoValidationError, match="progress_interval"):
        lago.events.ingestor(on_progress=print, progress_interval=interval)
