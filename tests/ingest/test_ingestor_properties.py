"""Property: whatever the server does, the ingestor's accounting holds.

Hypothesis draws a script of server behaviours (Lago's answers, garbage 2xx, 413,
``too_many_events``, per-index 422s, 429, 5xx, dropped connections, events stored but not
answered, slow answers), events of which some are invalid, ingestor settings, a close deadline
and cancelled waits on ``flush()``. A loopback server that dedupes on ``transaction_id`` as Lago
does plays the script. After the ingestor closes:

* ``accepted == delivered + duplicates + rejected + failed``;
* every event counted as delivered or duplicate is stored; no rejected event is stored;
* the events neither rejected nor failed are exactly ``delivered + duplicates`` in number;
* nothing is stored twice.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
from typing import Any
from unittest import mock

import orjson
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lago_async import AsyncLago
from tests.conftest import API_KEY

BEHAVIOURS = [
    "ok",
    "garbage",
    "stored_garbage",
    "too_large",
    "too_many",
    "rate_limited",
    "server_error",
    "drop",
    "stored_drop",
    "slow",
]


class ScriptedLago:
    """``POST /events/batch`` answering as the drawn script says, then as Lago does."""

    def __init__(self, script: list[str]) -> None:
        self.script = collections.deque(script)
        self.stored: collections.Counter[str] = collections.Counter()

    def refusal(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        """Lago's per-index details for invalid events and already stored ones."""
        details: dict[str, Any] = {}
        for index, item in enumerate(events):
            if item.get("properties", {}).get("invalid"):
                details[str(index)] = {"code": ["value_is_mandatory"]}
            elif item["transaction_id"] in self.stored:
                details[str(index)] = {"transaction_id": ["value_already_exist"]}
        return details

    async def handle(self, request: web.Request) -> web.StreamResponse:
        events = orjson.loads(await request.read())["events"]
        behaviour = self.script.popleft() if self.script else "ok"
        if behaviour == "slow":
            await asyncio.sleep(0.01)
        elif behaviour == "garbage":
            return web.Response(text="<html>hello from the proxy</html>", content_type="text/html")
        elif behaviour == "too_large":
            return web.Response(status=413, text="Request Entity Too Large")
        elif behaviour == "too_many":
            return json_response(422, {"events": ["too_many_events"]})
        elif behaviour == "rate_limited":
            return web.json_response(
                {"status": 429, "error": "Too Many Requests", "code": "rate_limited"},
                status=429,
                headers={"X-RateLimit-Reset": "0.01", "X-RateLimit-Remaining": "0"},
            )
        elif behaviour == "server_error":
            return web.Response(status=503, text="unavailable")
        elif behaviour == "drop":
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=500)
        details = self.refusal(events)
        if details:  # the whole batch is refused, nothing stored
            return json_response(422, details)
        for item in events:
            self.stored[item["transaction_id"]] += 1
        if behaviour == "stored_garbage":
            return web.json_response({})
        if behaviour == "stored_drop":
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=500)
        return web.json_response({"events": events})


def json_response(status: int, details: dict[str, Any]) -> web.Response:
    body = {
        "status": status,
        "error": "Unprocessable Entity",
        "code": "validation_errors",
        "error_details": details,
    }
    return web.json_response(body, status=status)


async def no_sleep(delay: float) -> None:
    await asyncio.sleep(0)


async def scenario(
    script: list[str],
    invalid: list[bool],
    batch_size: int,
    max_in_flight: int,
    max_retries: int,
    close_timeout: float | None,
    cancelled_flush_at: int | None,
    bulk: bool,
) -> None:
    server = ScriptedLago(script)
    app = web.Application()
    app.router.add_post("/api/v1/events/batch", server.handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with AsyncLago(api_key=API_KEY, base_url=f"http://127.0.0.1:{port}/api/v1") as lago:
            ingest = lago.events.ingestor(
                batch_size=batch_size,
                max_in_flight=max_in_flight,
                max_retries=max_retries,
                close_timeout=close_timeout,
                flush_interval=0.005,
            )
            events: list[dict[str, Any]] = []
            for n, bad in enumerate(invalid):
                event: dict[str, Any] = {
                    "transaction_id": f"tx-{n}",
                    "code": "calls",
                    "external_subscription_id": "sub",
                }
                if bad:
                    event["properties"] = {"invalid": True}
                events.append(event)
            # send: one event at a time; send_many: lists, so whole batches go the bulk way
            cut = len(events) if cancelled_flush_at is None else cancelled_flush_at + 1
            async with ingest:
                if bulk:
                    await ingest.send_many(events[:cut])
                else:
                    for item in events[:cut]:
                        await ingest.send(item)
                if cancelled_flush_at is not None:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(ingest.flush(), 0.001)
                if bulk:
                    await ingest.send_many(events[cut:])
                else:
                    for item in events[cut:]:
                        await ingest.send(item)
    finally:
        await runner.cleanup()

    stats = ingest.stats
    everything = {f"tx-{n}" for n in range(len(invalid))}
    rejected = {r.transaction_id for r in ingest.rejected}
    failed = {f.transaction_id for f in ingest.failed}
    stored = set(server.stored)
    assert stats.accepted == len(invalid)
    assert stats.accepted == stats.delivered + stats.duplicates + stats.rejected + stats.failed
    assert len(rejected) == stats.rejected and len(failed) == stats.failed
    assert not rejected & failed
    confirmed = everything - rejected - failed
    assert len(confirmed) == stats.delivered + stats.duplicates
    assert confirmed <= stored, "an event counted as delivered was never stored"
    assert not rejected & stored, "a rejected event was stored"
    assert stored <= everything
    assert all(count == 1 for count in server.stored.values()), "an event was stored twice"
    # Only invalid events, and events a proxy refused alone for size, are rejected.
    too_large = {r.transaction_id for r in ingest.rejected if "payload_too_large" in str(r.details)}
    invalid_ids = {f"tx-{n}" for n, bad in enumerate(invalid) if bad}
    assert rejected - too_large <= invalid_ids
    assert (stats.queued, stats.in_flight) == (0, 0)


@settings(
    max_examples=120,
    deadline=None,
    # Random locally, to keep exploring; the same examples in CI, so that a run is
    # reproducible and a new finding shows up in a developer's run, not as a red CI.
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    script=st.lists(st.sampled_from(BEHAVIOURS), max_size=30),
    invalid=st.lists(st.integers(0, 5).map(lambda n: n == 0), min_size=1, max_size=40),
    batch_size=st.integers(1, 8),
    max_in_flight=st.integers(1, 3),
    max_retries=st.integers(0, 4),
    close_timeout=st.sampled_from([None, None, 0.02, 0.2]),
    cancelled_flush_at=st.none() | st.integers(0, 40),
    bulk=st.booleans(),
)
def test_accounting_holds_whatever_the_server_does(
    script: list[str],
    invalid: list[bool],
    batch_size: int,
    max_in_flight: int,
    max_retries: int,
    close_timeout: float | None,
    cancelled_flush_at: int | None,
    bulk: bool,
) -> None:
    with mock.patch("lago_async._transport._sleep", no_sleep):
        asyncio.run(
            scenario(
                script,
                invalid,
                batch_size,
                max_in_flight,
                max_retries,
                close_timeout,
                cancelled_flush_at,
                bulk,
            )
        )
