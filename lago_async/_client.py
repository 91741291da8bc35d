"""``AsyncLago``: configuration, session lifecycle and the resource namespaces."""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any, TypeVar

import aiohttp

from ._errors import APIResponseValidationError, LagoError, LagoValidationError
from ._pagination import AsyncPager
from ._raw import RawResponseClient
from ._transport import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_DELAY,
    DEFAULT_TIMEOUT,
    INITIAL_RETRY_DELAY,
    MAX_BACKOFF,
    Transport,
    check_delay,
    check_max_retries,
    check_timeout,
)
from ._validate import apply_extras, as_body, encode_json
from ._webhook_keys import WebhookKeys
from .resources._base import parse, unwrap
from .resources._generated._namespaces import NAMESPACES, Namespaces

__all__ = ["DEFAULT_BATCH_LIMIT", "LAGO_CLOUD_INGEST_URL", "AsyncLago"]

T = TypeVar("T")

DEFAULT_BATCH_LIMIT = 100

LAGO_CLOUD_INGEST_URL = "https://ingest.getlago.com/api/v1"
"""Lago Cloud's event-ingestion service, for ``AsyncLago(ingest_url=...)``."""

_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


class AsyncLago(Namespaces):
    """The asynchronous Lago client.

    Use it as an async context manager (or call :meth:`aclose`) so its connection pool is
    closed::

        async with AsyncLago(api_key="...") as lago:
            customer = await lago.customers.get("acme")

    Args:
        api_key: the organisation's API key; defaults to ``$LAGO_API_KEY``. A missing key is
            an error at construction. It never appears in a repr, a log line or an error.
        base_url: the API root including ``/api/v1``; defaults to ``$LAGO_API_URL``, else
            ``https://api.getlago.com/api/v1`` (EU: ``https://api.eu.getlago.com/api/v1``;
            self-hosted: ``https://lago.example.com/api/v1``).
        timeout: seconds allowed for one attempt of a request (connecting, sending and
            reading the answer); each retry gets the same again. Every method also takes a
            ``timeout=`` of its own, checked the same way.
        max_retries: how many times a failed request is sent again (connection errors,
            timeouts, 408, 429, 5xx); 0 disables retries.
        max_retry_delay: the longest server-requested wait (``Retry-After``,
            ``X-RateLimit-Reset``) a retry obeys; a longer one raises at once.
        initial_retry_delay: seconds before the first retry when the server gave no hint;
            each further retry waits twice as long (less up to 25% of jitter).
        max_retry_backoff: the longest of those waits. Tests of code that meets faults can
            set both to a few milliseconds (``with_options`` takes them too).
        batch_limit: the most events ``POST /events/batch`` takes (100 on Lago Cloud;
            self-hosted servers can change it).
        session: an aiohttp ``ClientSession`` to use; it is not closed by the client.
        connection_limit: the size of the connection pool the client creates.
        default_headers: extra headers sent with every request.
        ingest_url: the root of a separate event-ingestion service (Lago Cloud's is
            :data:`LAGO_CLOUD_INGEST_URL`); ``POST /events`` and ``/events/batch``, and so
            the ingestor, go there, everything else to ``base_url``. Defaults to
            ``$LAGO_INGEST_URL``, else ``base_url``.
        webhook_hmac_key: the organisation's HMAC key, for ``lago.webhooks.verify`` of
            ``hmac``-signed webhooks; defaults to ``$LAGO_WEBHOOK_HMAC_KEY``. Like the API key,
            it never appears in a repr, a log line or an error.

    Each group of the API is a namespace attribute (``lago.events``, ``lago.plans``,
    ``lago.plans.charges``...), imported on first use; docs/api.md lists every call.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_retry_delay: float = DEFAULT_MAX_RETRY_DELAY,
        initial_retry_delay: float = INITIAL_RETRY_DELAY,
        max_retry_backoff: float = MAX_BACKOFF,
        batch_limit: int = DEFAULT_BATCH_LIMIT,
        session: aiohttp.ClientSession | None = None,
        connection_limit: int = 100,
        default_headers: Mapping[str, str] | None = None,
        webhook_hmac_key: str | None = None,
        ingest_url: str | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("LAGO_API_KEY")
        if not key:
            raise LagoError(
                "no API key: pass api_key=... or set the LAGO_API_KEY environment variable"
            )
        url = base_url or os.environ.get("LAGO_API_URL") or DEFAULT_BASE_URL
        if not url.startswith(("http://", "https://")):
            raise LagoError(f"base_url must start with http:// or https://, got {url!r}")
        ingest = ingest_url or os.environ.get("LAGO_INGEST_URL") or None
        if ingest is not None and (
            not isinstance(ingest, str) or not ingest.startswith(("http://", "https://"))
        ):
            raise LagoValidationError(
                "ingest_url", f"must start with http:// or https://, got {ingest!r}"
            )
        _check_options(
            timeout=timeout,
            max_retries=max_retries,
            batch_limit=batch_limit,
            max_retry_delay=max_retry_delay,
            initial_retry_delay=initial_retry_delay,
            max_retry_backoff=max_retry_backoff,
        )
        self.batch_limit = batch_limit
        self._transport = Transport(
            api_key=key,
            base_url=url,
            timeout=timeout,
            max_retries=max_retries,
            max_retry_delay=max_retry_delay,
            initial_retry_delay=initial_retry_delay,
            max_retry_backoff=max_retry_backoff,
            session=session,
            connection_limit=connection_limit,
            default_headers=default_headers,
            ingest_url=ingest,
        )
        hmac_key = webhook_hmac_key or os.environ.get("LAGO_WEBHOOK_HMAC_KEY") or None
        if hmac_key is not None and not isinstance(hmac_key, str):
            raise LagoValidationError("webhook_hmac_key", "must be a string")
        self._webhooks = WebhookKeys(hmac_key)
        self._bind_resources()

    def _bind_resources(self) -> None:
        """Namespaces are made on first use (see :meth:`__getattr__`); nothing to do here."""

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes not set yet: load the namespace's module on first use.
        where = NAMESPACES.get(name)
        if where is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        module, cls = where
        namespace = getattr(importlib.import_module(module), cls)(self)
        self.__dict__[name] = namespace
        return namespace

    @property
    def with_raw_response(self) -> Any:
        """The same namespaces and calls, each returning a :class:`~lago_async.RawResponse`.

        ``raw = await lago.with_raw_response.customers.get("acme")`` gives ``raw.status``,
        ``raw.headers``, ``raw.content`` and ``raw.parse()`` (the :class:`Customer`). To keep
        typed results and still see the answers, use :func:`lago_async.capture_responses`.
        """
        return RawResponseClient(self)

    @property
    def base_url(self) -> str:
        """The API root requests go to."""
        return self._transport.base_url

    @property
    def timeout(self) -> float:
        """Seconds allowed per request."""
        return self._transport.timeout

    @property
    def max_retries(self) -> int:
        """How many times a failed request is retried."""
        return self._transport.max_retries

    def __repr__(self) -> str:
        return (
            f"AsyncLago(base_url={self.base_url!r}, timeout={self.timeout}, "
            f"max_retries={self.max_retries})"
        )

    def with_options(
        self,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        max_retry_delay: float | None = None,
        initial_retry_delay: float | None = None,
        max_retry_backoff: float | None = None,
        batch_limit: int | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> AsyncLago:
        """A copy of this client with other settings, sharing its connection pool.

        ``lago.with_options(max_retries=5).events.create(...)``. Closing either closes the
        shared pool, so close the original when you are done.
        """
        _check_options(
            timeout=timeout,
            max_retries=max_retries,
            batch_limit=batch_limit,
            max_retry_delay=max_retry_delay,
            initial_retry_delay=initial_retry_delay,
            max_retry_backoff=max_retry_backoff,
        )
        new = object.__new__(AsyncLago)
        new._webhooks = self._webhooks  # the key cache is shared, like the pool
        new.batch_limit = self.batch_limit if batch_limit is None else batch_limit
        new._transport = self._transport.copy(
            timeout=timeout,
            max_retries=max_retries,
            max_retry_delay=max_retry_delay,
            initial_retry_delay=initial_retry_delay,
            max_retry_backoff=max_retry_backoff,
            default_headers=default_headers,
        )
        new._bind_resources()
        return new

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        cast_to: Any = None,
        key: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> Any:
        """Call any endpoint of the API, with the client's retries, errors and key handling.

        The escape hatch for what the SDK does not model yet::

            raw = await lago.request("GET", "/customers/acme/invoices", params={"per_page": 5})
            customer = await lago.request(
                "GET", "/customers/acme", key="customer", cast_to=lago_async.types.Customer
            )

        Args:
            method: the HTTP method (``GET``, ``POST``, ``PUT``, ``PATCH``, ``DELETE``).
            path: the path under ``base_url``, starting with ``/``, already URL-encoded
                (encode identifiers yourself, e.g. with :func:`urllib.parse.quote`).
            params: query parameters, encoded as for every other call (a sequence repeats the
                key; give the API's ``[]`` suffix).
            body: a mapping or an attrs input model, sent as JSON (NaN and the like are
                refused as everywhere), or ``bytes`` sent as they are.
            key: the key the answer wraps its object in (``"customer"``); required with
                ``cast_to`` unless the answer is the object itself.
            cast_to: a model class (or ``list[Model]``) to structure the answer (under
                ``key``) into; without it the decoded JSON is returned.
            timeout, max_retries: as for every call.

        Raises what every call raises: :class:`LagoValidationError` before sending,
        :class:`APIError` subclasses for the server's refusals, :class:`APIConnectionError`,
        and :class:`APIResponseValidationError` for an answer of the wrong shape.
        """
        verb = method.upper() if isinstance(method, str) else ""
        if verb not in _METHODS:
            raise LagoValidationError(
                "method", f"must be one of {sorted(_METHODS)}, got {method!r}"
            )
        if not isinstance(path, str) or not path.startswith("/") or "/../" in f"{path}/":
            raise LagoValidationError("path", f"must be a path starting with '/', got {path!r}")
        if body is None or isinstance(body, bytes):
            payload = body
        else:
            payload = encode_json(as_body(body, {}, field="body"), "body")
        data = await self._transport.request(
            verb, path, params=params, body=payload, timeout=timeout, max_retries=max_retries
        )
        if cast_to is None:
            return unwrap(data, key, method=verb, path=path) if key is not None else data
        return parse(data, key, cast_to, method=verb, path=path)

    async def aclose(self) -> None:
        """Close the connection pool (unless it is a session given by the caller)."""
        await self._transport.aclose()

    async def __aenter__(self) -> AsyncLago:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _pager(
        self,
        path: str,
        params: Mapping[str, Any],
        *,
        key: str,
        item_type: type[T],
        page: int | None,
        timeout: float | None,
        max_retries: int | None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> AsyncPager[T]:
        transport = self._transport
        fixed: Mapping[str, Any] | None = dict(params)
        headers = None
        if extra_headers is not None or extra_query is not None or extra_body is not None:
            # checked when the pager is made, before anything is sent
            fixed, _, headers = apply_extras(
                "GET", fixed, None, extra_headers, extra_query, extra_body
            )

        async def fetch(number: int) -> Any:
            data = await transport.request(
                "GET",
                path,
                params={**(fixed or {}), "page": number},
                timeout=timeout,
                max_retries=max_retries,
                headers=headers,
            )
            if not isinstance(unwrap(data, key, method="GET", path=path), list):
                raise APIResponseValidationError(
                    f"the answer's {key!r} is not a list", method="GET", path=path
                )
            return data

        return AsyncPager(fetch, key=key, item_type=item_type, page=page)


def _check_options(
    *,
    timeout: float | None,
    max_retries: int | None,
    batch_limit: int | None,
    max_retry_delay: float | None = None,
    initial_retry_delay: float | None = None,
    max_retry_backoff: float | None = None,
) -> None:
    # The same checks as every call's own timeout= and max_retries= (in the transport).
    if timeout is not None:
        check_timeout(timeout)
    if max_retries is not None:
        check_max_retries(max_retries)
    for name, value in (
        ("max_retry_delay", max_retry_delay),
        ("initial_retry_delay", initial_retry_delay),
        ("max_retry_backoff", max_retry_backoff),
    ):
        if value is not None:
            check_delay(value, name)
    if batch_limit is not None and (not isinstance(batch_limit, int) or batch_limit < 1):
        raise LagoValidationError("batch_limit", f"must be an integer >= 1, got {batch_limit!r}")
