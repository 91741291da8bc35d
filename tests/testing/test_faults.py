"""FakeLago fault injection: rates under a seed, each kind of fault, counters, routes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from lago_async.testing import FakeLago, Faults
from tests.testing._api import Api, event

N = 1000
RATE = 0.1
# Binomial(1000, 0.1): mean 100, sd ~9.5; the bounds are > 3 sd wide on each side.
LOW, HIGH = 70, 130


async def statuses(fake: FakeLago, n: int, route: str = "/customers") -> list[int | None]:
    """``n`` sequential GETs of ``route``; ``None`` for a dropped connection."""
    out: list[int | None] = []
    async with aiohttp.ClientSession() as session:
        api = Api(session, fake.base_url, fake.api_key)
        for _ in range(n):
            try:
                out.append((await api.get(route)).status)
            except aiohttp.ClientConnectionError:
                out.append(None)
    return out


async def send_events(fake: FakeLago, n: int) -> list[int | None]:
    """``n`` sequential ``POST /events`` of distinct events; ``None`` for a dropped connection."""
    out: list[int | None] = []
    async with aiohttp.ClientSession() as session:
        api = Api(session, fake.base_url, fake.api_key)
        for k in range(n):
            try:
                out.append((await api.post("/events", {"event": event(k)})).status)
            except aiohttp.ClientConnectionError:
                out.append(None)
    return out


async def run_with(seed: int, configure: Callable[[Faults], Any]) -> list[int | None]:
    async with FakeLago(seed=seed) as fake:
        configure(fake.faults)
        return await statuses(fake, N)


async def test_error_rate_is_seed_determined_and_reproducible() -> None:
    def configure(faults: Faults) -> None:
        faults.add(status=503, rate=RATE)

    first = await run_with(0, configure)
    second = await run_with(0, configure)
    other_seed = await run_with(1, configure)
    fired = first.count(503)
    assert LOW <= fired <= HIGH
    assert first == second  # the same requests fail, not only as many
    assert set(first) == {200, 503}
    assert other_seed != first


async def test_fired_counters_match_what_clients_saw(fake: FakeLago) -> None:
    rule = fake.faults.add(status=500, rate=RATE)
    seen = await statuses(fake, N)
    assert seen.count(500) == rule.fired == fake.faults.fired["500"]
    assert LOW <= rule.fired <= HIGH
    assert fake.requests["GET /customers"] == N


async def test_error_body_and_custom_headers(api: Api, fake: FakeLago) -> None:
    fake.faults.add(status=503, headers={"X-Fault": "yes"})
    answer = await api.get("/customers")
    assert answer.status == 503
    assert answer.body == {"status": 503, "error": "Service Unavailable"}
    assert answer.headers["X-Fault"] == "yes"


async def test_faults_act_before_auth(api: Api, fake: FakeLago) -> None:
    fake.faults.add(status=502)
    assert (await api("GET", "/customers", api_key="wrong")).status == 502


async def test_rate_limit_answers_429_with_lago_headers(api: Api, fake: FakeLago) -> None:
    fake.faults.rate_limit(limit=500, reset=3, times=1)
    limited = await api.post("/events", {"event": event(1)})
    assert limited.status == 429
    assert limited.body["status"] == 429
    assert limited.headers["X-RateLimit-Limit"] == "500"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert limited.headers["X-RateLimit-Reset"] == "3"
    assert "Retry-After" not in limited.headers
    assert fake.events == []
    assert (await api.post("/events", {"event": event(1)})).status == 200
    assert fake.faults.fired == {"429": 1}


async def test_rate_limit_with_retry_after(api: Api, fake: FakeLago) -> None:
    fake.faults.rate_limit(retry_after=2)
    assert (await api.get("/customers")).headers["Retry-After"] == "2"


async def test_rate_limit_rate(fake: FakeLago) -> None:
    fake.faults.rate_limit(rate=RATE)
    assert LOW <= (await statuses(fake, N)).count(429) <= HIGH


async def test_times_limits_a_rule(api: Api, fake: FakeLago) -> None:
    rule = fake.faults.add(status=503, times=2)
    seen = [(await api.get("/customers")).status for _ in range(4)]
    assert seen == [503, 503, 200, 200]
    assert rule.fired == 2


async def test_route_scoping(api: Api, fake: FakeLago) -> None:
    fake.faults.add(status=503, route="POST /events/batch")
    fake.faults.add(status=500, route="/customers/{external_customer_id}")  # any method
    assert (await api.post("/events/batch", {"events": [event(1)]})).status == 503
    assert (await api.post("/events", {"event": event(1)})).status == 200
    assert (await api.get("/customers")).status == 200
    assert (await api.get("/customers/acme")).status == 500
    assert (await api.delete("/customers/acme")).status == 500
    assert fake.faults.fired == {"503": 1, "500": 2}


def test_invalid_rules_are_refused() -> None:
    faults = FakeLago().faults
    with pytest.raises(ValueError, match="unknown route"):
        faults.add(route="POST /event/batch")
    with pytest.raises(ValueError, match="rate"):
        faults.drop(rate=1.5)
    with pytest.raises(ValueError, match="status"):
        faults.add(status=200)
    with pytest.raises(ValueError, match="seconds"):
        faults.latency(-1)
    with pytest.raises(ValueError, match="times"):
        faults.drop(times=-1)


async def test_first_firing_rule_wins(api: Api, fake: FakeLago) -> None:
    first = fake.faults.add(status=500)
    second = fake.faults.add(status=503)
    assert (await api.get("/customers")).status == 500
    assert (first.fired, second.fired) == (1, 0)
    fake.faults.remove(first)
    assert (await api.get("/customers")).status == 503
    assert fake.faults.rules == (second,)


async def test_clear_removes_rules_and_counters(api: Api, fake: FakeLago) -> None:
    fake.faults.add(status=503)
    await api.get("/customers")
    fake.faults.clear()
    assert fake.faults.fired == {}
    assert (await api.get("/customers")).status == 200


async def test_latency_delays_the_answer(api: Api, fake: FakeLago) -> None:
    fake.faults.latency(0.2, times=1)
    started = time.perf_counter()
    assert (await api.get("/customers")).status == 200
    slow = time.perf_counter() - started
    started = time.perf_counter()
    await api.get("/customers")
    fast = time.perf_counter() - started
    assert slow >= 0.2
    assert fast < 0.2
    assert fake.faults.fired == {"latency": 1}


async def test_latency_rate(fake: FakeLago) -> None:
    rule = fake.faults.latency(0.0, rate=RATE)
    await statuses(fake, N)
    assert LOW <= rule.fired <= HIGH


async def test_latency_combines_with_an_error(api: Api, fake: FakeLago) -> None:
    fake.faults.latency(0.05)
    fake.faults.add(status=503)
    started = time.perf_counter()
    assert (await api.get("/customers")).status == 503
    assert time.perf_counter() - started >= 0.05
    assert fake.faults.fired == {"latency": 1, "503": 1}


async def test_drop_cuts_the_connection_before_storing(api: Api, fake: FakeLago) -> None:
    fake.faults.drop(route="POST /events/batch", times=1)
    with pytest.raises(aiohttp.ClientConnectionError):
        await api.post("/events/batch", {"events": [event(1), event(2)]})
    assert fake.events == []
    assert fake.faults.fired == {"drop": 1}
    assert fake.request_log[-1].status is None
    assert (await api.post("/events/batch", {"events": [event(1), event(2)]})).status == 200
    assert len(fake.events) == 2


async def test_drop_rate_loses_exactly_the_dropped_events(fake: FakeLago) -> None:
    rule = fake.faults.drop(rate=RATE, route="POST /events")
    seen = await send_events(fake, N)
    failed = seen.count(None)
    assert set(seen) == {200, None}
    assert failed == rule.fired == fake.faults.fired["drop"]
    assert LOW <= failed <= HIGH
    assert len(fake.events) == N - failed


async def test_store_then_drop_stores_but_does_not_answer(api: Api, fake: FakeLago) -> None:
    fake.faults.store_then_drop(route="POST /events/batch", times=1)
    batch = {"events": [event(n) for n in range(3)]}
    with pytest.raises(aiohttp.ClientConnectionError):
        await api.post("/events/batch", batch)
    assert [e["transaction_id"] for e in fake.events] == ["tx-0", "tx-1", "tx-2"]
    assert fake.faults.fired == {"store_then_drop": 1}
    # the client's retry now meets duplicates: those events were delivered
    retry = await api.post("/events/batch", batch)
    assert retry.status == 422
    assert retry.body["error_details"] == {
        str(n): {"transaction_id": ["value_already_exist"]} for n in range(3)
    }
    assert len(fake.events) == 3


async def test_store_then_drop_rate(fake: FakeLago) -> None:
    rule = fake.faults.store_then_drop(rate=RATE, route="POST /events")
    failed = (await send_events(fake, N)).count(None)
    assert failed == rule.fired
    assert LOW <= failed <= HIGH
    assert len(fake.events) == N  # every event was stored


async def test_rule_streams_do_not_depend_on_other_routes_traffic() -> None:
    async def pattern(noise: bool) -> list[int]:
        async with FakeLago(seed=5) as fake, aiohttp.ClientSession() as session:
            api = Api(session, fake.base_url, fake.api_key)
            fake.faults.add(status=503, rate=0.3, route="GET /customers")
            fake.faults.add(status=500, rate=0.5, route="GET /events")
            out = []
            for _ in range(50):
                out.append((await api.get("/customers")).status)
                if noise:
                    await api.get("/events")
            return out

    assert await pattern(noise=False) == await pattern(noise=True)


async def test_faults_under_concurrency_keep_counts(fake: FakeLago) -> None:
    rule = fake.faults.add(status=503, rate=0.5)
    async with aiohttp.ClientSession() as session:
        api = Api(session, fake.base_url, fake.api_key)
        answers = await asyncio.gather(*(api.get("/customers") for _ in range(200)))
    assert sum(a.status == 503 for a in answers) == rule.fired
