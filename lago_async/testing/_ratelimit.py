"""FakeLago's rate limiter: Lago Cloud's per-second windows, for pacing tests and benchmarks."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """Allows ``per_second`` requests of the routes it covers in each one-second window.

    Every answer of a covered route carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining``
    and ``X-RateLimit-Reset`` (whole seconds until the window ends, as Lago sends it); a
    request beyond the limit is answered 429. All covered routes share one budget, as Lago
    Cloud's limits are per organisation and per kind of request.
    """

    def __init__(
        self,
        per_second: int,
        routes: frozenset[str] | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(per_second, int) or per_second < 1:
            raise ValueError(f"per_second must be a positive integer, got {per_second!r}")
        self.per_second = per_second
        self.routes = routes
        self._clock = clock
        self._lock = threading.Lock()
        self._window = -1
        self._used = 0
        self.allowed = 0
        """Requests let through so far."""
        self.refused = 0
        """Requests answered 429 so far."""

    def covers(self, route: str) -> bool:
        return self.routes is None or route in self.routes

    def take(self) -> tuple[bool, dict[str, str]]:
        """Count one request: whether it may go, and the headers of its answer."""
        now = self._clock()
        with self._lock:
            window = math.floor(now)
            if window != self._window:
                self._window, self._used = window, 0
            allowed = self._used < self.per_second
            if allowed:
                self._used += 1
                self.allowed += 1
            else:
                self.refused += 1
            remaining = self.per_second - self._used
        reset = max(1, math.ceil(window + 1 - now))
        return allowed, {
            "X-RateLimit-Limit": str(self.per_second),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset),
        }
