"""ingest_url: event ingestion goes to the ingest service, everything else to base_url."""

from __future__ import annotations

import pytest

from lago_async import LAGO_CLOUD_INGEST_URL, AsyncLago, LagoValidationError
from lago_async.testing import FakeLago


def event(n: int) -> dict[str, object]:
    return {"transaction_id": f"tx-{n}", "code": "api_calls", "external_subscription_id": "sub_1"}


async def test_events_go_to_the_ingest_service_and_the_rest_to_the_api() -> None:
    async with FakeLago(api_key="k") as api, FakeLago(api_key="k") as ingest:
        api.add_customer("acme")
        api.add_subscription("sub_1", "acme")
        ingest.add_customer("acme")
        ingest.add_subscription("sub_1", "acme")
        async with AsyncLago(
            api_key="k",
            base_url=api.base_url,
            ingest_url=ingest.base_url,
            initial_retry_delay=0.001,
        ) as lago:
            await lago.events.create(**event(0))  # type: ignore[arg-type]
            await lago.events.create_batch([event(1), event(2)])
            async with lago.events.ingestor() as ingestor:
                await ingestor.send_many([event(n) for n in range(3, 300)])
            customer = await lago.customers.get("acme")
            # reading an event back is not ingestion: it asks the API
            with pytest.raises(Exception, match="404"):
                await lago.events.get("tx-0")
        assert customer.external_id == "acme"
        assert sorted(e["transaction_id"] for e in ingest.events) == sorted(
            f"tx-{n}" for n in range(300)
        )
        assert api.events == []
        api_routes = {r.route for r in api.request_log}
        assert "GET /customers/{external_customer_id}" in api_routes
        assert not any(r.method == "POST" and "/events" in r.path for r in api.request_log)
        assert {r.method for r in ingest.request_log} == {"POST"}


async def test_ingest_url_comes_from_the_environment_and_is_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LAGO_INGEST_URL", LAGO_CLOUD_INGEST_URL)
    async with AsyncLago(api_key="k", base_url="https://lago.example.com/api/v1") as lago:
        assert lago._transport.ingest_url == "https://ingest.getlago.com/api/v1"
        assert lago.with_options(timeout=5)._transport.ingest_url == LAGO_CLOUD_INGEST_URL
    monkeypatch.delenv("LAGO_INGEST_URL")
    async with AsyncLago(api_key="k", base_url="https://lago.example.com/api/v1") as lago:
        assert lago._transport.ingest_url == "https://lago.example.com/api/v1"
    with pytest.raises(LagoValidationError) as caught:
        AsyncLago(api_key="k", ingest_url="ingest.getlago.com")
    assert caught.value.field == "ingest_url"
