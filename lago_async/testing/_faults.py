"""Fault injection for FakeLago: errors, rate limits, latency and cut connections.

Every rule has its own random stream, seeded from the server seed and the rule's position, and
draws exactly once for each request it matches. So the requests a rule hits depend only on
the seed, the order rules were added, and the order of the requests that rule matches: two
runs with the same seed and the same traffic see the same faults.
"""

from __future__ import annotations

import http
import random
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any, Final, Literal

FaultKind = Literal["status", "latency", "drop", "store_then_drop"]

#: Counter key of the latency rules in :attr:`Faults.fired`.
LATENCY: Final = "latency"
#: Counter key of the connection drops (before anything is processed).
DROP: Final = "drop"
#: Counter key of the "stored but unanswered" drops.
STORE_THEN_DROP: Final = "store_then_drop"


class FaultRule:
    """One configured fault, as returned by the :class:`Faults` methods.

    Attributes are read-only by convention; ``fired`` counts how many requests this rule hit.
    Pass the rule to :meth:`Faults.remove` to stop it.
    """

    __slots__ = (
        "_rng",
        "body",
        "fired",
        "headers",
        "kind",
        "method",
        "path",
        "rate",
        "route",
        "seconds",
        "status",
        "times",
    )

    def __init__(
        self,
        *,
        kind: FaultKind,
        route: str | None,
        method: str | None,
        path: str | None,
        rate: float,
        rng: random.Random,
        times: int | None = None,
        status: int = 0,
        seconds: float = 0.0,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> None:
        self.kind: FaultKind = kind
        self.route = route
        self.method = method
        self.path = path
        self.rate = rate
        self.times = times
        self.status = status
        self.seconds = seconds
        self.headers: dict[str, str] = dict(headers or {})
        self.body: Any = body
        self.fired = 0
        self._rng = rng

    @property
    def counter_key(self) -> str:
        """The key this rule increments in :attr:`Faults.fired` (``"503"``, ``"drop"``...)."""
        if self.kind == "status":
            return str(self.status)
        if self.kind == "latency":
            return LATENCY
        if self.kind == "drop":
            return DROP
        return STORE_THEN_DROP

    def __repr__(self) -> str:
        what = str(self.status) if self.kind == "status" else self.kind
        if self.kind == "latency":
            what = f"latency {self.seconds}s"
        return (
            f"<FaultRule {what} route={self.route or '*'} rate={self.rate} "
            f"times={self.times} fired={self.fired}>"
        )


class Decision:
    """What the faults decided for one request: an added delay and at most one action."""

    __slots__ = ("action", "delay")

    def __init__(self, delay: float, action: FaultRule | None) -> None:
        self.delay = delay
        self.action = action


def _check_rate(rate: float) -> float:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be within [0, 1], got {rate!r}")
    return float(rate)


def _check_times(times: int | None) -> int | None:
    if times is not None and times < 0:
        raise ValueError(f"times must be >= 0 or None, got {times!r}")
    return times


class Faults:
    """The fault rules of one FakeLago (``fake.faults``).

    Rules apply in the order they were added. For each request, every rule whose route
    matches (``None`` matches every route) and that has not used up its ``times`` draws once
    from its own seeded stream and fires when the draw is below its ``rate``. Latency rules
    add up; of the other rules only the first that fires acts (later ones do not draw).
    Faults act before authentication, like a proxy in front of the API would.

    Thread-safe: rules can be added or cleared from any thread while the server runs.
    """

    def __init__(self, seed: int | str | None, routes: frozenset[str], lock: threading.RLock):
        self._seed = seed
        self._routes = routes
        self._paths = frozenset(r.split(" ", 1)[1] for r in routes)
        self._lock = lock
        self._rules: list[FaultRule] = []
        self._created = 0
        self._fired: Counter[str] = Counter()

    # -- configuration ----------------------------------------------------------------------

    def add(
        self,
        status: int = 503,
        rate: float = 1.0,
        *,
        route: str | None = None,
        times: int | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> FaultRule:
        """Answer ``status`` (400..599) instead of processing the request, at ``rate``.

        The body defaults to ``{"status": ..., "error": <reason phrase>}``; ``headers`` are
        added to the answer. ``times`` caps how often the rule fires (``times=2, rate=1``:
        the next two matching requests fail, later ones pass).
        """
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status (400..599), got {status!r}")
        if body is None:
            body = {"status": status, "error": _phrase(status)}
        return self._add("status", route, rate, times, status=status, headers=headers, body=body)

    def rate_limit(
        self,
        rate: float = 1.0,
        *,
        route: str | None = None,
        limit: int | None = None,
        reset: int = 1,
        retry_after: int | None = None,
        times: int | None = None,
    ) -> FaultRule:
        """Answer 429 like Lago Cloud's rate limiter, at ``rate``: a 429 out of the blue.

        Headers: ``X-RateLimit-Remaining: 0``, ``X-RateLimit-Reset: <reset>`` (seconds until
        the window resets), ``X-RateLimit-Limit: <limit>`` only when ``limit`` is given (a
        client that paces itself to that header then slows down to it) and ``Retry-After:
        <retry_after>`` only when that is given. Counted as ``"429"``. For a limiter that
        counts requests per second as Lago Cloud's does, use :meth:`FakeLago.limit_rate`.
        """
        headers = {
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(reset),
        }
        if limit is not None:
            headers["X-RateLimit-Limit"] = str(limit)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return self._add(
            "status", route, rate, times, status=429, headers=headers, body=RATE_LIMITED_BODY
        )

    def latency(
        self,
        seconds: float,
        rate: float = 1.0,
        *,
        route: str | None = None,
        times: int | None = None,
    ) -> FaultRule:
        """Wait ``seconds`` before handling the request, at ``rate``. Counted as ``"latency"``."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        return self._add("latency", route, rate, times, seconds=float(seconds))

    def drop(
        self, rate: float = 1.0, *, route: str | None = None, times: int | None = None
    ) -> FaultRule:
        """Close the connection without an answer and without processing, at ``rate``.

        The client sees a disconnection (aiohttp: ``ServerDisconnectedError``); nothing was
        stored. Counted as ``"drop"``.
        """
        return self._add("drop", route, rate, times)

    def store_then_drop(
        self, rate: float = 1.0, *, route: str | None = None, times: int | None = None
    ) -> FaultRule:
        """Process the request (store the events...), then close the connection unanswered.

        The classic cause of double billing: the client sees a disconnection although the
        server kept the data, so a retry meets ``value_already_exist``. Counted as
        ``"store_then_drop"``.
        """
        return self._add("store_then_drop", route, rate, times)

    def remove(self, rule: FaultRule) -> None:
        """Stop one rule (its past firings stay counted in :attr:`fired`)."""
        with self._lock:
            self._rules = [r for r in self._rules if r is not rule]

    def clear(self) -> None:
        """Remove every rule and zero :attr:`fired`; the next rules' streams restart."""
        with self._lock:
            self._rules = []
            self._created = 0
            self._fired = Counter()

    # -- observation -------------------------------------------------------------------------

    @property
    def fired(self) -> Counter[str]:
        """A snapshot of how many times each kind of fault fired.

        Keys: the status as a string for error answers (``"503"``, ``"429"``...),
        ``"latency"``, ``"drop"`` and ``"store_then_drop"``.
        """
        with self._lock:
            return Counter(self._fired)

    @property
    def rules(self) -> tuple[FaultRule, ...]:
        """The active rules, in the order they apply."""
        with self._lock:
            return tuple(self._rules)

    # -- internals ---------------------------------------------------------------------------

    def _add(
        self,
        kind: FaultKind,
        route: str | None,
        rate: float,
        times: int | None,
        **extra: Any,
    ) -> FaultRule:
        method, path = self._parse_route(route)
        with self._lock:
            rng = random.Random(None if self._seed is None else f"{self._seed}:{self._created}")
            self._created += 1
            rule = FaultRule(
                kind=kind,
                route=route,
                method=method,
                path=path,
                rate=_check_rate(rate),
                times=_check_times(times),
                rng=rng,
                **extra,
            )
            self._rules = [*self._rules, rule]
        return rule

    def _parse_route(self, route: str | None) -> tuple[str | None, str | None]:
        if route is None:
            return None, None
        if route in self._routes:
            method, path = route.split(" ", 1)
            return method, path
        if route in self._paths:
            return None, route
        known = ", ".join(sorted(self._routes))
        raise ValueError(f"unknown route {route!r}; FakeLago serves: {known}")

    def _decide(self, method: str, path: str) -> Decision | None:
        """Draw for one request; ``None`` when no rule fired. Call only when rules exist."""
        delay = 0.0
        action: FaultRule | None = None
        with self._lock:
            for rule in self._rules:
                if rule.path is not None and (
                    rule.path != path or (rule.method is not None and rule.method != method)
                ):
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                if action is not None and rule.kind != "latency":
                    continue
                if rule._rng.random() >= rule.rate:
                    continue
                rule.fired += 1
                self._fired[rule.counter_key] += 1
                if rule.kind == "latency":
                    delay += rule.seconds
                else:
                    action = rule
        if action is None and delay == 0.0:
            return None
        return Decision(delay, action)


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


RATE_LIMITED_BODY = {"status": 429, "error": _phrase(429), "code": "too_many_requests"}
"""What Lago Cloud's rate limiter answers with a 429 (the fault and the limiter share it)."""
