"""Closing a client flushes the ingestors left open on it, and says so."""

from __future__ import annotations

import pytest

from lago_async import AsyncLago
from lago_async.testing import FakeLago


async def test_client_close_flushes_an_open_ingestor() -> None:
    async with FakeLago() as fake:
        lago = AsyncLago(api_key=fake.api_key, base_url=fake.base_url)
        ingest = lago.events.ingestor(flush_interval=3600)
        for n in range(30):
            await ingest.send(
                {"transaction_id": f"t{n}", "code": "c", "external_subscription_id": "s"}
            )
        assert len(fake.events) == 0
        with pytest.warns(ResourceWarning, match="0 of 30 events not delivered"):
            await lago.aclose()
        assert len(fake.events) == 30
        assert ingest.stats.delivered == 30


async def test_closed_ingestor_is_not_flushed_again() -> None:
    async with FakeLago() as fake:
        async with AsyncLago(api_key=fake.api_key, base_url=fake.base_url) as lago:
            async with lago.events.ingestor() as ingest:
                await ingest.send(
                    {"transaction_id": "t", "code": "c", "external_subscription_id": "s"}
                )
            assert lago._transport._holder.ingestors == set()
        assert ingest.stats.delivered == 1
