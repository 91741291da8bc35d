"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from aioresponses import aioresponses

from lago_async import AsyncLago

BASE_URL = "http://lago.test/api/v1"
API_KEY = "sk-test-0123456789-secret"


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    """aioresponses intercepting every aiohttp request of the test."""
    with aioresponses() as m:
        yield m


@pytest.fixture
async def lago() -> AsyncIterator[AsyncLago]:
    """An AsyncLago pointed at BASE_URL (mock it with ``mocked``)."""
    async with AsyncLago(api_key=API_KEY, base_url=BASE_URL) as client:
        yield client


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Replace the transport's sleep: retries happen at once and their delays are recorded."""
    recorded: list[float] = []

    async def fake_sleep(delay: float) -> None:
        recorded.append(delay)

    monkeypatch.setattr("lago_async._transport._sleep", fake_sleep)
    return recorded


def sent(m: aioresponses, method: str, url: str) -> list[dict[str, Any]]:
    """The requests aioresponses saw for ``method url`` (url without query), oldest first.

    Each is a dict with ``params`` (list of pairs), ``json`` (decoded body or None) and
    ``headers``.
    """
    from yarl import URL

    calls = []
    for (verb, seen_url), requests in m.requests.items():
        if verb == method and str(seen_url.with_query(None)) == str(URL(url)):
            for call in requests:
                data = call.kwargs.get("data")
                calls.append(
                    {
                        "url": seen_url,
                        "params": list(seen_url.query.items()),
                        "json": orjson.loads(data) if data else None,
                        "headers": call.kwargs.get("headers") or {},
                    }
                )
    return calls


LAGO_ID = "1a901a90-1a90-1a90-1a90-1a901a901a90"


def customer_json(**fields: Any) -> dict[str, Any]:
    """A customer object as Lago answers it (``external_id`` "acme"), with ``fields`` changed."""
    return {
        "lago_id": LAGO_ID,
        "external_id": "acme",
        "name": "Acme",
        "currency": "EUR",
        "created_at": "2026-01-01T00:00:00Z",
        "applicable_timezone": "UTC",
        "billing_configuration": {},
        "metadata": [],
        **fields,
    }


def event_json(**fields: Any) -> dict[str, Any]:
    """An event object as Lago answers it (``transaction_id`` "tx-1"), with ``fields`` changed."""
    return {
        "lago_id": LAGO_ID,
        "transaction_id": "tx-1",
        "lago_customer_id": None,
        "code": "calls",
        "timestamp": "2026-03-04T12:00:00Z",
        "lago_subscription_id": None,
        "external_subscription_id": "sub",
        "created_at": "2026-03-04T12:00:00Z",
        **fields,
    }
