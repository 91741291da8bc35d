"""Pacing requests to the server's rate limit instead of colliding with it.

Lago Cloud limits each organisation per second and per kind of request (``POST /events``
500/s, usage 200/s, everything else 50/s) and says so on every answer: ``X-RateLimit-Limit``,
``X-RateLimit-Remaining``, ``X-RateLimit-Reset``. A client that sends as fast as it can meets
a storm of 429s; one that waits for them wastes the window. The :class:`Pacer` of each kind of
request spaces requests out (a token bucket) at a rate it adapts to what it observes:

* the first answer carrying ``X-RateLimit-Limit`` starts pacing at just under that limit;
* each 429 cuts the rate multiplicatively (by 40%, at most once per 200 ms, since one burst
  of 429s tells one thing), and
* time without 429s raises it additively (1.5% of the limit per second), never past 97% of
  the limit (steady requests at exactly the limit would cross a window's edge now and then).

Additive increase and multiplicative decrease (AIMD) is what makes several clients that share
one organisation's limit (several processes, several machines) converge to shares of it
rather than oscillate. Open-source Lago sends no such headers: nothing is paced there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

__all__ = ["Pacer", "Pacers", "kind_of"]

CEILING = 0.97
"""The highest fraction of the announced limit a pacer sends at."""
DECREASE = 0.6
"""What a 429 multiplies the rate by."""
INCREASE_PER_SECOND = 0.015
"""What one second without a 429 adds to the rate, as a fraction of the limit."""
DECREASE_GAP = 0.2
"""Seconds during which further 429s do not cut the rate again (one burst, one signal)."""


class Pacer:
    """Spaces out the requests of one kind at a rate adapted to the server's limit."""

    __slots__ = ("_clock", "_cut_at", "_grown_at", "_next", "limit", "rate")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.limit: float | None = None
        """The requests per second the server announced (``None``: no limit seen yet)."""
        self.rate: float | None = None
        """The requests per second currently sent at most (``None``: not paced)."""
        self._next = 0.0  # when the next request may go
        self._grown_at = 0.0
        self._cut_at = float("-inf")

    def __repr__(self) -> str:
        return f"<Pacer rate={self.rate} limit={self.limit}>"

    def delay(self) -> float:
        """Seconds to wait before sending one request now (0 when it may go at once).

        Taking the delay books the slot: call it once per request, then sleep that long.
        """
        rate = self.rate
        if rate is None:
            return 0.0
        now = self._clock()
        start = max(now, self._next)  # no saved-up burst after a quiet (or stalled) spell
        self._next = start + 1.0 / rate
        return start - now

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Learn from one answer: its rate-limit headers and whether it was a 429."""
        announced = headers.get("X-RateLimit-Limit")
        if announced is None and status != 429:
            return
        now = self._clock()
        if announced is not None:
            try:
                limit = float(announced)
            except ValueError:
                limit = 0.0
            if limit > 0 and limit != self.limit:
                rate = self.rate
                self.limit = limit
                if rate is None or rate > limit * CEILING:
                    self.rate = limit * CEILING
                if rate is None:
                    # the request just answered went unpaced: the next slot is one gap on
                    self._next = max(self._next, now + 1.0 / (limit * CEILING))
                self._grown_at = now
        if self.limit is None or self.rate is None:
            return
        if status == 429:
            if now - self._cut_at >= DECREASE_GAP:
                self._cut_at = now
                self.rate = max(1.0, self.rate * DECREASE)
            self._grown_at = now
            return
        elapsed = now - self._grown_at
        if elapsed > 0:
            self._grown_at = now
            self.rate = min(
                self.limit * CEILING, self.rate + self.limit * INCREASE_PER_SECOND * elapsed
            )


def kind_of(method: str, path: str) -> str:
    """The kind of a request, as Lago Cloud counts them: events, usage, or the rest.

    ``POST /events`` and ``/events/batch`` share the events limit; current and projected
    usage share the usage one; every other call has its own pacer per resource and method,
    which settles on the limit the server announces for it.
    """
    if method == "POST" and (path == "/events" or path == "/events/batch"):
        return "events"
    if path.endswith("_usage"):
        return "usage"
    segment = path.split("/", 2)[1] if path.startswith("/") else path
    return f"{method} {segment}"


class Pacers:
    """The pacers of one client (shared by its ``with_options`` copies and ingestors)."""

    __slots__ = ("_by_kind", "_clock")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._by_kind: dict[str, Pacer] = {}
        self._clock = clock

    def get(self, method: str, path: str) -> Pacer:
        kind = kind_of(method, path)
        pacer = self._by_kind.get(kind)
        if pacer is None:
            pacer = self._by_kind[kind] = Pacer(self._clock)
        return pacer
