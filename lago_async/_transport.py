"""The one request path: URL, headers, JSON, timeouts, retries and error mapping.

Resources call :meth:`Transport.request`; nothing else in the SDK talks to aiohttp. Retry,
backoff and header logic live here only, and the event ingestor reuses :func:`backoff_delay`,
:func:`retry_hint` and :func:`is_retryable_status` for its own batch-level retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import logging
import math
import os
import random
import sys
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson
from yarl import URL

from ._convert import loads
from ._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    LagoError,
    LagoValidationError,
    error_for_status,
)
from ._pacing import Pacer, Pacers
from ._raw import CAPTURE, record
from ._version import __version__

__all__ = [
    "API_ROOT",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "Transport",
    "backoff_delay",
    "check_delay",
    "check_max_retries",
    "check_timeout",
    "is_retryable_status",
    "retry_hint",
]

log = logging.getLogger("lago_async")

DEFAULT_BASE_URL = "https://api.getlago.com/api/v1"
API_ROOT = "/api/v1"
DEFAULT_TIMEOUT = 60.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_RETRIES = 2
DEFAULT_MAX_RETRY_DELAY = 60.0
INITIAL_RETRY_DELAY = 0.5
MAX_BACKOFF = 8.0

USER_AGENT = (
    f"lago-async-python/{__version__} "
    f"(Python {'.'.join(map(str, sys.version_info[:3]))}; aiohttp {aiohttp.__version__})"
)


def setup_logging_from_env() -> None:
    """Log every request on the ``lago_async`` logger when ``$LAGO_LOG`` asks for it.

    ``LAGO_LOG=info`` gives one line per attempt (method, path, status, attempt, elapsed ms
    and the server's request id); ``LAGO_LOG=debug`` adds retry and ingestor details. The
    lines go to stderr unless the application configured a handler of its own. Nothing else
    changes when the variable is unset. Headers, and so the API key, are never logged.
    """
    level = {"debug": logging.DEBUG, "info": logging.INFO}.get(
        os.environ.get("LAGO_LOG", "").strip().lower()
    )
    if level is None:
        return
    log.setLevel(level)
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)


setup_logging_from_env()

# Indirection so tests can replace sleeping without patching asyncio itself.
_sleep = asyncio.sleep
_random = random.random


def is_retryable_status(status: int) -> bool:
    """Whether an answer with ``status`` is worth sending again (408, 429 and 5xx)."""
    return status in (408, 429) or status >= 500


def retry_hint(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks us to wait, from ``Retry-After`` or ``X-RateLimit-Reset``.

    ``Retry-After`` may be a number of seconds or an HTTP date. Lago's ``X-RateLimit-Reset`` is
    the number of seconds until the window resets. Returns ``None`` when neither is usable.
    """
    value = headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                return max(0.0, when.timestamp() - time.time())
    value = headers.get("X-RateLimit-Reset")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            return None
    return None


def backoff_delay(
    attempt: int, initial: float = INITIAL_RETRY_DELAY, cap: float = MAX_BACKOFF
) -> float:
    """Jittered exponential backoff before retry number ``attempt + 1`` (0-based).

    ``min(initial * 2**attempt, cap)`` seconds (by default ``min(0.5 * 2**attempt, 8)``), less
    up to 25% of jitter so that many clients that failed together do not come back together.
    """
    base = min(initial * (2.0**attempt), cap)
    return base * (1.0 - 0.25 * _random())


def _seconds(value: Any, field: str, *, positive: bool, wanted: str) -> float:
    """``value`` as seconds if it is a finite number (not a bool), > 0 or >= 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
        or (positive and value == 0)
    ):
        raise LagoValidationError(field, f"must be {wanted}, got {value!r}")
    return float(value)


def check_delay(value: Any, field: str) -> float:
    """A delay in seconds: a finite number >= 0 (not a bool), else LagoValidationError."""
    return _seconds(value, field, positive=False, wanted="a number of seconds >= 0")


@functools.lru_cache(maxsize=512)
def _url(text: str) -> URL:
    """The URL of an already encoded address, parsed once for the addresses used most (the
    event paths an ingestor posts to on every request, say)."""
    return URL(text, encoded=True)


def _encode_params(params: Mapping[str, Any] | None) -> list[tuple[str, str]] | None:
    """Query parameters as Lago reads them.

    ``None`` values are dropped, booleans are ``true``/``false``, sequences repeat the key (give
    the key with its ``[]`` suffix, as the API names it) and mappings become ``key[sub]=value``.
    """
    if not params:
        return None
    out: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            for sub, subvalue in value.items():
                if subvalue is not None:
                    out.append((f"{key}[{sub}]", _scalar(subvalue)))
        elif isinstance(value, (list, tuple, set, frozenset)):
            out.extend((key, _scalar(item)) for item in value)
        else:
            out.append((key, _scalar(value)))
    return out


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _abandon(session: aiohttp.ClientSession) -> None:
    """Let go of a session whose event loop is gone, without that loop.

    Its connections cannot be closed through their loop any more: their sockets are closed
    directly, and the session and connector are marked closed so that neither warns later.
    """
    connector = session.connector
    session.detach()
    if connector is None:
        return
    for protocols in list(getattr(connector, "_conns", {}).values()):
        for entry in protocols:
            protocol = entry[0] if isinstance(entry, tuple) else entry
            transport = getattr(protocol, "transport", None)
            sock = transport.get_extra_info("socket") if transport is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
    with contextlib.suppress(AttributeError):
        connector._conns.clear()
        connector._closed = True


class _SessionHolder:
    """Owns (or borrows) the aiohttp session shared by a client and its ``with_options`` copies."""

    def __init__(
        self,
        session: aiohttp.ClientSession | None,
        connection_limit: int,
        headers: dict[str, str],
        timeout: aiohttp.ClientTimeout,
    ) -> None:
        self.session = session
        # A session we create carries the creating client's headers and timeout, so requests
        # with those (nearly all) need not send them along: aiohttp then merges less.
        self.headers = headers
        self.timeout = timeout
        self.timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self.owned = session is None
        self.connection_limit = connection_limit
        self.ingestors: set[Any] = set()
        """Event ingestors started and not closed, flushed when the pool is closed."""
        self.pacers = Pacers()
        """Pacing to the server's rate limits, per kind of request (see ``_pacing``)."""

    def get(self) -> aiohttp.ClientSession:
        session = self.session
        if session is not None and not session.closed:
            bound = getattr(session, "_loop", None)
            if bound is not None and bound is not asyncio.get_running_loop():
                # Made under another event loop (a second asyncio.run, say): unusable here.
                if not self.owned:
                    raise LagoError(
                        "the aiohttp session given to the client belongs to another event "
                        "loop (one that has stopped, or runs in another thread); create the "
                        "session, and the client, inside the loop that uses them"
                    )
                _abandon(session)
                session = self.session = None
                self.ingestors.clear()  # they belonged to the old loop and died with it
        if session is None or session.closed:
            if not self.owned:
                raise APIConnectionError("the aiohttp session given to the client is closed")
            # Created lazily, inside the running loop, on first use.
            connector = aiohttp.TCPConnector(
                limit=self.connection_limit, ttl_dns_cache=300, enable_cleanup_closed=False
            )
            session = aiohttp.ClientSession(
                connector=connector,
                headers=self.headers,
                timeout=self.timeout,
            )
            self.session = session
        return session

    async def close(self) -> None:
        # Ingestors still open deliver what they hold (within a bound) before the pool goes.
        for ingestor in list(self.ingestors):
            await ingestor._close_unclosed()
        session, self.session = self.session, None
        if session is not None and self.owned and not session.closed:
            await session.close()


class Transport:
    """Sends requests to one Lago API root with one configuration of timeouts and retries."""

    __slots__ = (
        "_api_key",
        "_base_url",
        "_headers",
        "_holder",
        "_ingest_url",
        "initial_retry_delay",
        "max_retries",
        "max_retry_backoff",
        "max_retry_delay",
        "timeout",
    )

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        timeout: float,
        max_retries: int,
        max_retry_delay: float = DEFAULT_MAX_RETRY_DELAY,
        initial_retry_delay: float = INITIAL_RETRY_DELAY,
        max_retry_backoff: float = MAX_BACKOFF,
        session: aiohttp.ClientSession | None = None,
        connection_limit: int = 100,
        default_headers: Mapping[str, str] | None = None,
        ingest_url: str | None = None,
        _holder: _SessionHolder | None = None,
    ) -> None:
        self._api_key = api_key
        self._base_url = base_url.rstrip("/")
        # where event ingestion goes (POST /events and /events/batch): the API root unless a
        # separate ingest service is configured
        self._ingest_url = ingest_url.rstrip("/") if ingest_url else self._base_url
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_retry_delay = max_retry_delay
        self.initial_retry_delay = initial_retry_delay
        self.max_retry_backoff = max_retry_backoff
        headers = {
            "Authorization": f"Bearer {api_key}",
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        headers.update(default_headers or {})
        self._headers = headers
        if _holder is None:
            _holder = _SessionHolder(session, connection_limit, headers, _new_timeout(timeout))
            _holder.timeouts[timeout] = _holder.timeout
        self._holder = _holder

    def __repr__(self) -> str:
        return f"Transport(base_url={self._base_url!r})"

    @property
    def base_url(self) -> str:
        """The API root every path is appended to."""
        return self._base_url

    @property
    def ingest_url(self) -> str:
        """The root event ingestion goes to (``base_url`` unless an ingest service is set)."""
        return self._ingest_url

    def copy(
        self,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        max_retry_delay: float | None = None,
        initial_retry_delay: float | None = None,
        max_retry_backoff: float | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> Transport:
        """A transport with other settings that shares this one's connection pool."""
        new = Transport(
            api_key=self._api_key,
            base_url=self._base_url,
            timeout=self.timeout if timeout is None else timeout,
            max_retries=self.max_retries if max_retries is None else max_retries,
            max_retry_delay=self.max_retry_delay if max_retry_delay is None else max_retry_delay,
            initial_retry_delay=(
                self.initial_retry_delay if initial_retry_delay is None else initial_retry_delay
            ),
            max_retry_backoff=(
                self.max_retry_backoff if max_retry_backoff is None else max_retry_backoff
            ),
            ingest_url=self._ingest_url,
            _holder=self._holder,
        )
        new._headers = {**self._headers, **default_headers} if default_headers else self._headers
        return new

    def pacer(self, method: str, path: str) -> Pacer:
        """The pacer of this kind of request (shared by the client's copies and ingestors)."""
        return self._holder.pacers.get(method, path)

    def backoff(self, attempt: int) -> float:
        """The jittered pause before retry number ``attempt + 1``, with this configuration."""
        return backoff_delay(attempt, self.initial_retry_delay, self.max_retry_backoff)

    def session(self) -> aiohttp.ClientSession:
        """The shared aiohttp session, created on first use inside the running loop."""
        return self._holder.get()

    async def aclose(self) -> None:
        """Close the session if this client created it (a session given to us stays open)."""
        await self._holder.close()

    def _client_timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        timeouts = self._holder.timeouts
        cached = timeouts.get(seconds)
        if cached is None:
            cached = timeouts[seconds] = _new_timeout(seconds)
        return cached

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: bytes | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        decode: bool = True,
        headers: Mapping[str, str] | None = None,
        ingest: bool = False,
    ) -> Any:
        """Send a request and return its decoded JSON body (``None`` for an empty body).

        ``path`` is relative to the API root and already URL-encoded; ``body`` is the JSON
        encoded beforehand (the resources check and encode their input). ``timeout`` bounds
        each attempt (connecting, sending and reading the answer), not the retries together.
        Connection errors, timeouts, 408, 429 and 5xx are retried up to ``max_retries`` times
        with jittered exponential backoff, obeying ``Retry-After``/``X-RateLimit-Reset`` up to
        ``max_retry_delay``; other errors raise at once. Redirects are not followed (the key
        is never sent elsewhere): a 3xx raises :class:`~lago_async.APIError`. With
        ``decode=False`` a successful body is returned as raw bytes, not parsed, for callers
        that only need to recognise it. ``ingest=True`` sends to ``ingest_url`` (event
        ingestion). Raises a subclass of :class:`~lago_async.APIError`,
        :class:`~lago_async.APIConnectionError` or
        :class:`~lago_async.APIResponseValidationError` (a 2xx that is not JSON).

        The exceptions raised chain nothing from aiohttp: its exceptions carry the request's
        headers, the API key among them.
        """
        if timeout is not None:
            check_timeout(timeout)
        if max_retries is not None:
            check_max_retries(max_retries)
        url = _url((self._ingest_url if ingest else self._base_url) + path)
        query = _encode_params(params)
        client_timeout = self._client_timeout(self.timeout if timeout is None else timeout)
        retries = self.max_retries if max_retries is None else max_retries
        holder = self._holder
        session = holder.get()
        sent_headers = self._headers if not headers else {**self._headers, **headers}
        defaults = (
            holder.owned and sent_headers is holder.headers and client_timeout is holder.timeout
        )
        attempt = 0
        logging_on = log.isEnabledFor(logging.INFO)
        pacer = holder.pacers.get(method, path)
        hinted = False  # the last wait was one the server asked for: its window is over
        while True:
            if pacer.rate is not None and not hinted:
                wait = pacer.delay()
                if wait > 0:
                    await _sleep(wait)
            failure: str | None = None
            timed_out = False
            started = time.perf_counter() if logging_on else 0.0
            try:
                if defaults:
                    sending = session.request(
                        method, url, params=query, data=body, allow_redirects=False
                    )
                else:
                    sending = session.request(
                        method,
                        url,
                        params=query,
                        data=body,
                        headers=sent_headers,
                        timeout=client_timeout,
                        allow_redirects=False,
                    )
                async with sending as response:
                    raw = await response.read()
                    status = response.status
                    location = response.headers.get("Location", "")
                    answer_headers = response.headers
            except asyncio.TimeoutError:
                timed_out = True
            except aiohttp.ClientError as exc:
                failure = self._describe(exc, url)
            if logging_on:
                outcome = (
                    "timed out" if timed_out else failure if failure is not None else str(status)
                )
                request_id = None if failure or timed_out else answer_headers.get("X-Request-Id")
                log.info(
                    "lago request: %s %s -> %s (attempt %d, %.1f ms%s)",
                    method,
                    path,
                    outcome,
                    attempt + 1,
                    (time.perf_counter() - started) * 1000,
                    f", request id {request_id}" if request_id else "",
                )
            if not timed_out and failure is None:
                pacer.observe(status, answer_headers)
                capture = CAPTURE.get()
                if capture is not None:
                    record(capture, method, path, status, answer_headers, raw, attempt + 1)
            # Raised here, outside the except blocks, so that no aiohttp exception (whose
            # request_info holds the Authorization header) is chained as __context__.
            if timed_out or failure is not None:
                if attempt >= retries:
                    if timed_out:
                        raise APITimeoutError(
                            "request timed out", method=method, path=path, attempts=attempt + 1
                        )
                    raise APIConnectionError(
                        f"connection error: {failure}",
                        method=method,
                        path=path,
                        attempts=attempt + 1,
                    )
                delay = self.backoff(attempt)
                hinted = False
                log.debug(
                    "lago %s %s %s, retrying in %.2fs",
                    method,
                    path,
                    "timed out" if timed_out else f"failed ({failure})",
                    delay,
                )
            elif status < 300:
                if not decode:
                    return raw
                if not raw:
                    return None
                try:
                    return loads(raw)
                except orjson.JSONDecodeError:
                    pass
                raise APIResponseValidationError(
                    f"the answer is not JSON: {_preview(raw)}", method=method, path=path
                )
            else:
                error = error_for_status(
                    status,
                    _redirect_body(status, location) if status < 400 else _decode_error_body(raw),
                    method=method,
                    path=path,
                    headers=answer_headers,
                )
                if status == 404 and error.code is None and not self._base_url.endswith(API_ROOT):
                    error.add_note_to_message(
                        f"base_url {self._base_url!r} does not end in {API_ROOT}: "
                        "is it the API root (https://your-lago/api/v1)?"
                    )
                error.attempts = attempt + 1
                if attempt >= retries or not is_retryable_status(status):
                    raise error
                hint = retry_hint(error.headers)
                if hint is not None and hint > self.max_retry_delay:
                    raise error
                delay = self.backoff(attempt) if hint is None else hint
                hinted = hint is not None
                log.debug("lago %s %s answered %s, retrying in %.2fs", method, path, status, delay)
            attempt += 1
            await _sleep(delay)

    def _describe(self, exc: aiohttp.ClientError, url: URL) -> str:
        """What went wrong, for humans: the host, the port and the OS's reason, never a header."""
        where = f"{url.host}:{url.port}"
        if isinstance(exc, aiohttp.ClientConnectorError):
            os_error = exc.os_error
            reason = os_error.strerror or str(os_error) or type(os_error).__name__
            text = f"cannot connect to {where}: {reason}"
        elif isinstance(exc, aiohttp.ServerDisconnectedError):
            text = f"{where} closed the connection without answering"
        elif isinstance(exc, aiohttp.ClientResponseError):
            text = f"unreadable answer from {where}: {exc.message}"
        elif isinstance(exc, aiohttp.ClientPayloadError):
            text = f"the answer from {where} was cut short"
        else:
            detail = str(exc)
            text = f"{type(exc).__name__} talking to {where}" + (f": {detail}" if detail else "")
        # A server may echo what it received: scrub the key from anything it said.
        return text.replace(self._api_key, "***")


def check_timeout(value: Any, field: str = "timeout") -> float:
    """A timeout in seconds: a positive, finite number (not a bool), else LagoValidationError."""
    return _seconds(value, field, positive=True, wanted="a positive number of seconds")


def check_max_retries(value: Any, field: str = "max_retries") -> int:
    """A retry count: an integer >= 0 (not a bool), else LagoValidationError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LagoValidationError(field, f"must be an integer >= 0, got {value!r}")
    return value


def _redirect_body(status: int, location: str) -> dict[str, Any]:
    return {
        "status": status,
        "error": (
            f"redirected to {location or 'another address'}; redirects are not followed, so "
            "that the API key is never sent elsewhere: set base_url to the final address"
        ),
    }


def _preview(raw: bytes) -> str:
    text = raw[:120].decode("utf-8", "replace")
    return repr(text) + ("..." if len(raw) > 120 else "")


def _new_timeout(seconds: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=seconds, sock_connect=min(seconds, DEFAULT_CONNECT_TIMEOUT))


def _decode_error_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")
