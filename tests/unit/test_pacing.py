"""The pacer: spacing requests to the announced limit, learning from each window how fast all
the clients sharing it spend it, AIMD on 429s (on a simulated clock)."""

from __future__ import annotations

import heapq
import math
import random

import pytest

from lago_async._pacing import (
    CEILING,
    DECREASE,
    INCREASE_PER_SECOND,
    JOIN_SHARE,
    MAX_SCALE,
    MIN_SCALE,
    Pacer,
    kind_of,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limit_headers(limit: int, remaining: int | None = None) -> dict[str, str]:
    """Lago Cloud's headers; by default, a window nobody else has spent anything of."""
    left = limit - 1 if remaining is None else remaining
    return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(left)}


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


def test_a_pacer_joining_a_busy_window_starts_at_a_share_of_the_limit() -> None:
    alone, joining = Pacer(Clock()), Pacer(Clock())
    alone.observe(200, limit_headers(200, 195))
    joining.observe(200, limit_headers(200, 120))  # others spent 40% of this window already
    assert alone.rate == pytest.approx(200 * CEILING)
    assert joining.rate == pytest.approx(200 * CEILING * JOIN_SHARE)


def spend_window(pacer: Pacer, clock: Clock, limit: int, per_second: float, answers: int) -> None:
    """Answers over the first half second of a window that every client together spends at
    ``per_second`` (from a full one), then the first answer of the next window."""
    start = clock.now
    for n in range(answers):
        clock.now = start + 0.5 * n / (answers - 1)
        pacer.observe(
            200, limit_headers(limit, max(0, int(limit - per_second * (clock.now - start))))
        )
    clock.now = start + 1.0
    pacer.observe(200, limit_headers(limit, limit - 1))


@pytest.mark.parametrize(
    ("per_second", "scale"),
    [(400.0, 194 / 400), (1000.0, MIN_SCALE), (150.0, 194 / 150), (50.0, MAX_SCALE)],
    ids=["over", "far-over", "under", "far-under"],
)
def test_a_window_sets_the_rate_from_how_fast_every_client_spent_it(
    per_second: float, scale: float
) -> None:
    clock = Clock()
    pacer = Pacer(clock)
    pacer.observe(200, limit_headers(200, 150))  # the end of a window
    pacer.rate = 100.0  # this client's share, whatever it was
    clock.now += 0.1
    spend_window(pacer, clock, 200, per_second, answers=20)
    assert pacer.rate == pytest.approx(min(200 * CEILING, 100.0 * scale), rel=0.03)


def test_a_window_with_too_few_answers_leaves_the_rate_to_429s_and_increase() -> None:
    clock = Clock()
    pacer = Pacer(clock)
    pacer.observe(200, limit_headers(200, 150))
    pacer.rate = 100.0
    clock.now += 0.1
    spend_window(pacer, clock, 200, 400.0, answers=2)
    assert pacer.rate == pytest.approx(100.0 + 200 * INCREASE_PER_SECOND * 1.1)


def simulate(
    clients: int,
    limit: int,
    *,
    seconds: float = 30,
    stagger: float = 0.0,
    latency: float = 0.01,
    in_flight: int = 8,
) -> tuple[float, float]:
    """Clients with ``in_flight`` requests each, sending as fast as their pacers allow against
    one limit of fixed 1 s windows, answered after ``latency`` (give or take half); client
    ``n`` starts ``n * stagger`` seconds in.

    Returns (the fraction of the limit used, the fraction of requests refused) over
    ``seconds`` from 5 seconds after the last client started.
    """
    jitter = random.Random(7)
    clock = Clock()
    pacers = [Pacer(clock) for _ in range(clients)]
    events: list[tuple[float, int, int, int]] = []  # (when, what, client, remaining)
    for client in range(clients):
        for slot in range(in_flight):
            heapq.heappush(events, (clock.now + client * stagger + slot * 1e-4, 0, client, 0))
    window, used = -1, 0
    sent = refused = 0
    start = clock.now + (clients - 1) * stagger + 5
    end = start + seconds
    while events:
        clock.now, what, client, remaining = heapq.heappop(events)
        if clock.now >= end:
            break
        half_trip = latency * (0.5 + jitter.random()) / 2
        if what == 0:  # a free slot: wait for the pacer, then send
            wait = max(0.0, pacers[client].delay())
            heapq.heappush(events, (clock.now + wait + half_trip, 1, client, 0))
        elif what == 1:  # the request reaches the server
            if math.floor(clock.now) != window:
                window, used = math.floor(clock.now), 0
            ok = used < limit
            used += ok
            if clock.now >= start:
                sent += ok
                refused += not ok
            heapq.heappush(events, (clock.now + half_trip, 2 if ok else 3, client, limit - used))
        else:  # its answer: the pacer learns, the slot is free again
            pacers[client].observe(200 if what == 2 else 429, limit_headers(limit, remaining))
            heapq.heappush(events, (clock.now, 0, client, 0))
    return sent / (limit * seconds), refused / max(1, sent + refused)


def test_one_client_runs_close_to_the_limit_without_429s() -> None:
    used, refused = simulate(clients=1, limit=500)
    assert used >= 0.95
    assert refused < 0.001


@pytest.mark.parametrize("clients", [2, 4, 8])
@pytest.mark.parametrize("stagger", [0.0, 1.7], ids=["together", "one-by-one"])
@pytest.mark.parametrize("latency", [0.002, 0.05], ids=["near", "far"])
def test_clients_sharing_one_limit_converge_instead_of_colliding(
    clients: int, stagger: float, latency: float
) -> None:
    used, refused = simulate(clients=clients, limit=200, stagger=stagger, latency=latency)
    assert used >= 0.9
    assert refused < 0.02
