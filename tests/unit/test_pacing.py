"""The pacer: spacing requests to the announced limit, AIMD on 429s (on a simulated clock)."""

from __future__ import annotations

import math

import pytest

from lago_async._pacing import CEILING, DECREASE, INCREASE_PER_SECOND, Pacer, kind_of


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limit_headers(limit: int, remaining: int = 1) -> dict[str, str]:
    return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining)}


def test_nothing_is_paced_until_the_server_announces_a_limit() -> None:
    pacer = Pacer(Clock())
    pacer.observe(200, {})
    assert pacer.rate is None
    assert [pacer.delay() for _ in range(100)] == [0.0] * 100


def test_requests_are_spaced_just_under_the_announced_limit() -> None:
    clock = Clock()
    pacer = Pacer(clock)
    pacer.observe(200, limit_headers(100))
    assert pacer.rate == pytest.approx(100 * CEILING)
    delays = [pacer.delay() for _ in range(10)]
    # the answered request went unpaced: the next one waits one gap after it, and so on
    assert delays == pytest.approx([n / (100 * CEILING) for n in range(1, 11)])
    # a quiet spell saves up no burst: after it, requests are spaced again
    clock.now += 60
    assert pacer.delay() == 0.0
    assert pacer.delay() == pytest.approx(1 / (100 * CEILING))


def test_a_429_cuts_the_rate_once_per_burst_and_quiet_time_raises_it_back() -> None:
    clock = Clock()
    pacer = Pacer(clock)
    pacer.observe(200, limit_headers(100))
    pacer.observe(429, limit_headers(100, 0))
    assert pacer.rate == pytest.approx(100 * CEILING * DECREASE)
    pacer.observe(429, limit_headers(100, 0))  # the same burst: no second cut
    assert pacer.rate == pytest.approx(100 * CEILING * DECREASE)
    clock.now += 1.0
    pacer.observe(200, limit_headers(100))
    assert pacer.rate == pytest.approx(100 * CEILING * DECREASE + 100 * INCREASE_PER_SECOND)
    clock.now += 100
    pacer.observe(200, limit_headers(100))
    assert pacer.rate == pytest.approx(100 * CEILING)  # never past the ceiling


def test_kinds_follow_lago_clouds_limits() -> None:
    assert kind_of("POST", "/events") == kind_of("POST", "/events/batch") == "events"
    assert kind_of("GET", "/customers/acme/current_usage") == "usage"
    assert kind_of("GET", "/customers/acme/projected_usage") == "usage"
    assert kind_of("GET", "/customers/acme") == kind_of("GET", "/customers") == "GET customers"
    assert kind_of("GET", "/events/tx-1") != "events"


def simulate(clients: int, limit: int, seconds: int = 60) -> tuple[float, float]:
    """Clients sending as fast as their pacers allow against one limit of fixed 1 s windows.

    Returns (the fraction of the limit used, the fraction of requests refused) over the run
    after its first 5 seconds.
    """
    clock = Clock()
    pacers = [Pacer(clock) for _ in range(clients)]
    ready = [clock.now + i * 0.001 for i in range(clients)]
    window, used = math.floor(clock.now), 0
    sent = refused = 0
    start, end = clock.now + 5, clock.now + 5 + seconds
    while clock.now < end:
        i = min(range(clients), key=lambda c: ready[c])
        clock.now = ready[i]
        if math.floor(clock.now) != window:
            window, used = math.floor(clock.now), 0
        ok = used < limit
        used += ok
        if clock.now >= start:
            sent += ok
            refused += not ok
        pacers[i].observe(200 if ok else 429, limit_headers(limit, max(0, limit - used)))
        delay = pacers[i].delay()
        ready[i] = clock.now + max(delay, 0.0005)  # 0.5 ms per request at the least
    return sent / (limit * seconds), refused / max(1, sent + refused)


def test_one_client_runs_close_to_the_limit_without_429s() -> None:
    used, refused = simulate(clients=1, limit=500)
    assert used >= 0.9
    assert refused < 0.01


@pytest.mark.parametrize(("clients", "least"), [(2, 0.75), (4, 0.8), (8, 0.8)])
def test_clients_sharing_one_limit_converge_instead_of_colliding(
    clients: int, least: float
) -> None:
    used, refused = simulate(clients=clients, limit=200)
    assert used >= least
    assert refused < 0.05
