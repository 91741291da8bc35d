"""Pacing requests to the server's rate limit instead of colliding with it.

Lago Cloud limits each organisation per second and per kind of request (``POST /events``
500/s, usage 200/s, everything else 50/s) and says so on every answer: ``X-RateLimit-Limit``,
``X-RateLimit-Remaining``, ``X-RateLimit-Reset``. A client that sends as fast as it can meets
a storm of 429s; one that waits for them wastes the window. The :class:`Pacer` of each kind of
request spaces requests out (a token bucket) at a rate it adapts to what it observes:

* the first answer carrying ``X-RateLimit-Limit`` starts pacing at just under that limit
  (97% of it: steady requests at exactly the limit would cross a window's edge now and then),
  or at a quarter of that when the answer shows others spending the window already;
* each window of the server, followed through ``X-RateLimit-Remaining`` (it falls within a
  window and jumps back up when the next begins), tells how fast every client sharing the
  limit spent it. When a window ends, each pacer scales the rate it had when the window
  began so that the total would have been 97% of the limit (scaling by a quarter to one
  and a half at most). Clients sharing the limit (several processes, several machines)
  see the same windows and scale alike, so together they settle on 97% within a window
  or two;
* each 429 also cuts the rate at once (by 40%, at most once per 200 ms, since one burst of
  429s tells one thing), which relieves the window under way, and
* when windows cannot be followed (too few answers in one, no ``X-RateLimit-Remaining``),
  time without 429s raises the rate additively (1.5% of the limit per second), never past
  97% of the limit: additive increase and multiplicative decrease (AIMD) then make clients
  that share a limit converge rather than oscillate, only more slowly.

The windows are taken to be fixed one-second ones (as FakeLago's limiter keeps them).
Open-source Lago sends no such headers: nothing is paced there.
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
NEW_WINDOW_JUMP = 0.1
"""How far ``X-RateLimit-Remaining`` must rise, as a fraction of the limit, to mean that a new
window began (answers overtaking one another within a window make it rise a little)."""
MIN_ANSWERS = 4
"""Answers a window must have given for how fast its remaining count fell to be trusted."""
MIN_SPAN = 0.1
"""Seconds of a window its answers must span for how fast its remaining count fell to be
trusted."""
MAX_SCALE = 1.5
"""The most one window's usage may raise the rate by (at most one window's worth of trust)."""
MIN_SCALE = 0.25
"""The most one window's usage may cut the rate by."""
JOIN_SHARE = 0.25
"""The share of the ceiling a pacer starts at when its first answer shows others using the
window (more than :data:`NEW_WINDOW_JUMP` of it spent), rather than all of it: joining a
busy limit at full speed would overshoot it until the window ends."""


class Pacer:
    """Spaces out the requests of one kind at a rate adapted to the server's limit."""

    __slots__ = (
        "_answers",
        "_clock",
        "_cut_at",
        "_first",
        "_first_at",
        "_grown_at",
        "_low",
        "_low_at",
        "_next",
        "_window_rate",
        "_windowed",
        "limit",
        "rate",
    )

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.limit: float | None = None
        """The requests per second the server announced (``None``: no limit seen yet)."""
        self.rate: float | None = None
        """The requests per second currently sent at most (``None``: not paced)."""
        self._next = 0.0  # when the next request may go
        self._grown_at = 0.0
        self._cut_at = float("-inf")
        # The server's current window, as X-RateLimit-Remaining shows it (see _count).
        self._low: int | None = None  # the lowest remaining count seen in it, and when
        self._low_at = 0.0
        self._first = 0  # the first remaining count seen in it, and when
        self._first_at = 0.0
        self._answers = 0  # answers seen in it
        self._window_rate = 0.0  # the rate when it began
        self._windowed = False  # whether the last window set the rate (see _end_window)

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
        remaining = _remaining(headers)
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
                spent = 0.0 if remaining is None else (limit - remaining) / limit
                if rate is None and spent > NEW_WINDOW_JUMP:  # others spend this window
                    self.rate = limit * CEILING * JOIN_SHARE
                if rate is None:
                    # the request just answered went unpaced: the next slot is one gap on
                    self._next = max(self._next, now + 1.0 / (limit * CEILING))
                self._grown_at = now
        if self.limit is None or self.rate is None:
            return
        if remaining is not None:
            self._count(remaining, now)
        if status == 429:
            if now - self._cut_at >= DECREASE_GAP:
                self._cut_at = now
                self.rate = max(1.0, self.rate * DECREASE)
            self._grown_at = now
            return
        elapsed = now - self._grown_at
        if self._windowed:
            self._grown_at = now  # the windows set the rate: no additive increase
        elif elapsed > 0:
            self._grown_at = now
            self.rate = min(
                self.limit * CEILING, self.rate + self.limit * INCREASE_PER_SECOND * elapsed
            )

    def _count(self, remaining: int, now: float) -> None:
        """Follow the server's windows through ``X-RateLimit-Remaining``; when one ends, set
        the rate from how fast every client together used it.

        How fast the remaining count fell in a window is the rate of all the clients sharing
        the limit (other processes, other machines). Each pacer scales the rate it had when
        the window began so that this total would have been the ceiling: the clients that
        share a limit all see the same fall and scale alike, so their total settles on the
        ceiling within a window or two, where 429s and additive increase alone take many
        seconds and leave a sawtooth. Scaling is bounded per window, and a window with too
        few answers leaves pacing to the 429s and additive increase.
        """
        assert self.limit is not None and self.rate is not None
        low = self._low
        if low is None or remaining > low + max(2.0, self.limit * NEW_WINDOW_JUMP):
            if low is not None:
                self._end_window()
            self._first = self._low = remaining
            self._first_at = self._low_at = now
            self._answers = 1
            self._window_rate = self.rate
            return
        if remaining < low:
            self._low, self._low_at = remaining, now
        self._answers += 1

    def _end_window(self) -> None:
        assert self.limit is not None and self._low is not None
        self._windowed = False
        if self._answers < MIN_ANSWERS:
            return
        span = self._low_at - self._first_at
        if span < MIN_SPAN:
            return
        total = (self._first - self._low) / span  # every client's requests per second
        target = self.limit * CEILING
        scale = min(MAX_SCALE, max(MIN_SCALE, target / max(total, 1.0)))
        self.rate = min(target, max(1.0, self._window_rate * scale))
        self._windowed = True


def _remaining(headers: Mapping[str, str]) -> int | None:
    """An answer's ``X-RateLimit-Remaining`` (``None`` when it has none, or not a number)."""
    try:
        return int(headers["X-RateLimit-Remaining"])
    except (KeyError, ValueError):
        return None


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
