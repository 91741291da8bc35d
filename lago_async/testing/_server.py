"""FakeLago: the HTTP face of the in-memory store, with auth, fault injection and lifecycle."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from types import TracebackType
from typing import Any, NamedTuple

import orjson
from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from ._api import ROUTE_SPECS, Api
from ._faults import RATE_LIMITED_BODY, Faults
from ._ratelimit import RateLimiter
from ._store import ApiError, JSONObject, Operation, Query, Store, bad_request, to_datetime
from ._webhooks import PlainText, WebhookDelivery, Webhooks

__all__ = [
    "API_PREFIX",
    "INSPECTION_PATH",
    "ROUTES",
    "FakeLago",
    "RequestRecord",
    "WebhookDelivery",
]

#: Where FakeLago serves the API, as Lago does (``base_url`` ends with it).
API_PREFIX = "/api/v1"
#: FakeLago's own route (outside the API) serving :meth:`FakeLago.state`, same bearer token.
INSPECTION_PATH = "/_fake_lago/state"

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_log = logging.getLogger("lago_async.testing")


class RequestRecord(NamedTuple):
    """One request FakeLago received (see :attr:`FakeLago.request_log`)."""

    method: str
    #: ``"POST /events/batch"`` style route, ``None`` for a path FakeLago does not serve.
    route: str | None
    #: The path and query as sent.
    path: str
    #: The status answered, ``None`` when the connection was dropped.
    status: int | None


#: ``(method, path under /api/v1, operation, takes a JSON body)`` of every route; the
#: operation is the Store's, or the webhooks' when its name starts with ``webhooks.``.
_ROUTE_TABLE: tuple[tuple[str, str, str, bool], ...] = (
    ("POST", "/customers", "upsert_customer", True),
    ("GET", "/customers", "list_customers", False),
    ("GET", "/customers/{external_customer_id}", "get_customer", False),
    ("DELETE", "/customers/{external_customer_id}", "delete_customer", False),
    ("GET", "/customers/{external_customer_id}/current_usage", "current_usage", False),
    ("GET", "/customers/{external_customer_id}/projected_usage", "projected_usage", False),
    ("GET", "/customers/{external_customer_id}/past_usage", "past_usage", False),
    ("POST", "/customers/{external_customer_id}/checkout_url", "checkout_url", True),
    ("GET", "/customers/{external_customer_id}/portal_url", "portal_url", False),
    (
        "GET",
        "/customers/{external_customer_id}/applied_coupons",
        "list_applied_coupons",
        False,
    ),
    (
        "DELETE",
        "/customers/{external_customer_id}/applied_coupons/{applied_coupon_id}",
        "delete_applied_coupon",
        False,
    ),
    ("POST", "/events", "create_event", True),
    ("GET", "/events", "list_events", False),
    ("POST", "/events/batch", "create_batch", True),
    ("POST", "/events/estimate_fees", "estimate_fees", True),
    ("POST", "/events/estimate_instant_fees", "estimate_instant_fees", True),
    ("POST", "/events/batch_estimate_instant_fees", "batch_estimate_instant_fees", True),
    ("GET", "/events/{transaction_id}", "get_event", False),
    ("POST", "/webhook_endpoints", "webhooks.create_endpoint", True),
    ("GET", "/webhook_endpoints", "webhooks.list_endpoints", False),
    ("GET", "/webhook_endpoints/{lago_id}", "webhooks.get_endpoint", False),
    ("PUT", "/webhook_endpoints/{lago_id}", "webhooks.update_endpoint", True),
    ("DELETE", "/webhook_endpoints/{lago_id}", "webhooks.delete_endpoint", False),
    ("GET", "/webhooks/json_public_key", "webhooks.json_public_key", False),
    ("GET", "/webhooks/public_key", "webhooks.public_key", False),
)

_OWN_ROUTES = frozenset(f"{method} {path}" for method, path, _, _ in _ROUTE_TABLE)

#: Every route FakeLago serves (every operation of the API), as ``"METHOD /path"`` with the
#: OpenAPI path templates (relative to ``/api/v1``). These are the names fault rules take
#: as ``route``.
ROUTES: tuple[str, ...] = tuple(sorted(_OWN_ROUTES)) + tuple(
    spec.route for spec in ROUTE_SPECS if spec.route not in _OWN_ROUTES
)

_NO_QUERY: Query = MultiDictProxy(MultiDict())
_UNAUTHORIZED = orjson.dumps({"status": 401, "error": "Unauthorized"})
_NO_ROUTE = orjson.dumps({"status": 404, "error": "Not Found", "code": "route_not_found"})


_RATE_LIMITED = orjson.dumps(RATE_LIMITED_BODY)


def _json(data: bytes, status: int, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=data, status=status, content_type="application/json", headers=headers)


class FakeLago:
    """An in-memory, Lago-compatible API server on aiohttp, with fault injection.

    Serves every operation of Lago's API (:data:`ROUTES`) under ``/api/v1`` on ``host`` (a
    random free port by default), with bearer-token auth and Lago's error bodies: objects
    are stored and keyed as Lago keys them, bodies are checked against the API's schemas,
    answers are valid under them, and subscriptions that follow a plan are metered from
    their events over the billing period of FakeLago's clock (:meth:`set_time`). Use it as
    ``async with FakeLago() as fake:`` (or :meth:`start`/:meth:`stop`), from blocking code
    with ``with FakeLago.in_thread() as fake:``, or through the pytest fixtures of
    :mod:`lago_async.testing.pytest_plugin`.

    Args:
        api_key: the only bearer token accepted; others get 401.
        seed: seeds the fault streams and the generated ids (``None``: random).
        batch_limit: most events ``POST /events/batch`` takes (Lago's default is 100).
        host: interface to bind.
        port: port to bind; 0 picks a free one.
        unit_amount_cents: price of one unit of any billable metric, in cents; override per
            code in :attr:`prices`.
        currency: currency of usage and fees for customers without one.
        auto_subscriptions: when true (default), an unknown ``external_subscription_id`` is
            attached on first use by a usage route to the customer in the URL, and by a fee
            estimate to a customer whose ``external_id`` is the subscription id (created if
            missing). When false, those routes answer 404 ``subscription_not_found`` until
            :meth:`add_subscription` is called. Events are stored for any subscription either
            way, as Lago ingests them without checking.
        request_log_size: how many recent requests :attr:`request_log` keeps.
        webhook_max_attempts: how many times a webhook is sent to an endpoint that does not
            answer 2xx (or cannot be reached), counting the first.
        webhook_retry_delay: seconds before the first retry; each further one waits twice
            as long.
        webhook_timeout: seconds one delivery attempt may take.
        webhook_hmac_key: the organisation's HMAC key that signs ``hmac`` webhooks (random
            when left out; see :attr:`webhook_hmac_key`).

    Subscriptions without a plan (:meth:`add_subscription`, or attached on first use) keep
    a flat price instead: the units of an event are its first numeric property value (a
    number, or a string like ``"2.5"``), else 1; a usage charge per code sums units and
    counts events over every event of the open period (regardless of the event
    timestamps), and costs ``units * price`` cents rounded half up.

    Webhooks: endpoints registered through ``POST /webhook_endpoints`` receive, signed as
    Lago signs them (``jwt`` or ``hmac`` per endpoint), the webhooks of the changes FakeLago
    models (a customer created or updated, a subscription started or terminated, a wallet
    transaction, a plan or metric changed...), and whatever :meth:`send_webhook` sends.
    Delivery runs in the background, retried on a non-2xx answer or a connection failure
    with the same unique key; see
    :attr:`webhook_deliveries` and :meth:`webhooks_delivered`. ``jwt`` needs the
    ``webhooks`` extra (PyJWT and cryptography).
    """

    def __init__(
        self,
        api_key: str = "test_api_key",
        *,
        seed: int | str | None = 0,
        batch_limit: int = 100,
        host: str = "127.0.0.1",
        port: int = 0,
        unit_amount_cents: int = 100,
        currency: str = "USD",
        auto_subscriptions: bool = True,
        request_log_size: int = 1000,
        webhook_max_attempts: int = 4,
        webhook_retry_delay: float = 0.05,
        webhook_timeout: float = 5.0,
        webhook_hmac_key: str | None = None,
    ) -> None:
        if batch_limit < 1:
            raise ValueError(f"batch_limit must be >= 1, got {batch_limit!r}")
        self._api_key = api_key
        self._seed = seed
        self.host = host
        self._port = port
        self._lock = threading.RLock()
        self._store = Store(
            seed=seed,
            batch_limit=batch_limit,
            unit_amount_cents=unit_amount_cents,
            currency=currency,
            auto_subscriptions=auto_subscriptions,
        )
        self._webhooks = Webhooks(
            self._store.new_id,
            self._lock,
            seed=seed,
            max_attempts=webhook_max_attempts,
            retry_delay=webhook_retry_delay,
            timeout=webhook_timeout,
        )
        if webhook_hmac_key is not None:
            if not webhook_hmac_key:
                raise ValueError("webhook_hmac_key must not be empty")
            self._webhooks.keys.hmac_key = webhook_hmac_key
        self._store.notify = self._webhooks.send
        self._api = Api(self._store)
        self._faults = Faults(seed, frozenset(ROUTES), self._lock)
        self._limiter: RateLimiter | None = None
        self._requests: Counter[str] = Counter()
        self._request_log: deque[RequestRecord] = deque(maxlen=request_log_size)
        self._internal_errors: list[str] = []
        self._app: web.Application | None = None
        self._runner: web.AppRunner | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def app(self) -> web.Application:
        """The aiohttp application (built on first use), to mount or serve yourself."""
        if self._app is None:
            self._app = self._build_app()
        return self._app

    async def start(self) -> None:
        """Bind ``host:port`` and start serving; :attr:`port` then holds the bound port."""
        if self._runner is not None:
            raise RuntimeError("FakeLago is already started")
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.25)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._port = int(runner.addresses[0][1])
        self._runner = runner
        self._webhooks.start(self.url)

    async def stop(self) -> None:
        """Stop serving and close open connections (idempotent). Data is kept.

        Requests still in progress (say, under a latency fault) get a quarter of a second
        to finish, then are cancelled, so stopping never hangs.
        """
        runner, self._runner = self._runner, None
        if runner is not None:
            await self._webhooks.stop()
            await runner.cleanup()

    async def __aenter__(self) -> FakeLago:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @classmethod
    @contextmanager
    def in_thread(cls, api_key: str = "test_api_key", **kwargs: Any) -> Iterator[FakeLago]:
        """Run a FakeLago in a background thread with its own event loop, for blocking code.

        ``with FakeLago.in_thread(seed=1) as fake:`` yields the started server; it stops when
        the block exits. Its helpers and accessors are safe to call from any thread.
        Arguments are those of :class:`FakeLago`.
        """
        fake = cls(api_key, **kwargs)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="FakeLago", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(fake.start(), loop).result(timeout=30)
            try:
                yield fake
            finally:
                asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            loop.close()

    @property
    def api_key(self) -> str:
        """The bearer token the server accepts."""
        return self._api_key

    @property
    def seed(self) -> int | str | None:
        """The seed of the fault streams and generated ids."""
        return self._seed

    @property
    def port(self) -> int:
        """The bound port (the configured one before :meth:`start`)."""
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port``, the server root (raises before :meth:`start`)."""
        if self._runner is None:
            raise RuntimeError("FakeLago is not started: use 'async with' or start()")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    @property
    def base_url(self) -> str:
        """The API root to give a client, ``http://host:port/api/v1``."""
        return self.url + API_PREFIX

    # -- configuration -----------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The fault rules (see :class:`~lago_async.testing.Faults`)."""
        return self._faults

    def limit_rate(self, per_second: int, *routes: str) -> RateLimiter:
        """Rate-limit ``routes`` (every route when none is named) as Lago Cloud does.

        ``per_second`` requests pass in each one-second window; beyond, 429 with Lago's
        headers. Every answer of those routes carries ``X-RateLimit-Limit``,
        ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset``. Returns the limiter, whose
        ``allowed`` and ``refused`` count requests; ``limit_rate(0)`` is refused, and
        :meth:`remove_rate_limit` lifts it.
        """
        unknown = set(routes) - set(ROUTES)
        if unknown:
            raise ValueError(f"unknown routes: {sorted(unknown)}")
        self._limiter = RateLimiter(per_second, frozenset(routes) if routes else None)
        return self._limiter

    def remove_rate_limit(self) -> None:
        """Lift the limit :meth:`limit_rate` set."""
        self._limiter = None

    @property
    def batch_limit(self) -> int:
        """Most events one ``POST /events/batch`` takes; settable at any time."""
        return self._store.batch_limit

    @batch_limit.setter
    def batch_limit(self, value: int) -> None:
        if value < 1:
            raise ValueError(f"batch_limit must be >= 1, got {value!r}")
        self._store.batch_limit = value

    @property
    def unit_amount_cents(self) -> int:
        """Default unit price in cents of every billable metric; settable."""
        return self._store.unit_amount_cents

    @unit_amount_cents.setter
    def unit_amount_cents(self, value: int) -> None:
        self._store.unit_amount_cents = value

    @property
    def prices(self) -> dict[str, int]:
        """Unit prices in cents per billable metric code, overriding
        :attr:`unit_amount_cents` (a live dict: ``fake.prices["storage"] = 25``)."""
        return self._store.prices

    # -- data helpers ------------------------------------------------------------------------

    def add_customer(self, external_id: str, **fields: Any) -> JSONObject:
        """Create or update a customer as ``POST /customers`` would; returns a copy."""
        with self._lock:
            body = {"customer": {**fields, "external_id": external_id}}
            try:
                _, payload = self._store.upsert_customer({}, _NO_QUERY, body)
            except ApiError as exc:
                raise ValueError(f"invalid customer: {exc.body}") from None
            return dict(payload["customer"])

    def add_subscription(
        self, external_subscription_id: str, external_customer_id: str
    ) -> JSONObject:
        """Attach a subscription to a customer (created with only its id if missing).

        Usage and fee routes then know the subscription; events sent for it are returned
        with its ``lago_subscription_id`` and the customer's ``lago_customer_id``.
        Re-attaching an existing subscription moves it. Returns a copy of
        ``{lago_id, external_id, external_customer_id, lago_customer_id}``.
        """
        with self._lock:
            return dict(
                self._store.add_subscription(external_subscription_id, external_customer_id)
            )

    def add_applied_coupon(
        self,
        external_customer_id: str,
        coupon_code: str,
        *,
        coupon_name: str | None = None,
        amount_cents: int | None = None,
        amount_currency: str | None = None,
        percentage_rate: str | None = None,
        frequency: str = "once",
        frequency_duration: int | None = None,
    ) -> JSONObject:
        """Apply a coupon to a customer (created if missing); returns a copy of it.

        Its ``lago_id`` is what ``DELETE /customers/{id}/applied_coupons/{lago_id}`` takes.
        """
        with self._lock:
            return dict(
                self._store.add_applied_coupon(
                    external_customer_id,
                    coupon_code,
                    coupon_name=coupon_name,
                    amount_cents=amount_cents,
                    amount_currency=amount_currency,
                    percentage_rate=percentage_rate,
                    frequency=frequency,
                    frequency_duration=frequency_duration,
                )
            )

    def add_events(self, events: Sequence[Mapping[str, Any]]) -> list[JSONObject]:
        """Store events as ``POST /events/batch`` would (all or none); returns copies.

        Raises ``ValueError`` with Lago's per-index details when one is invalid or already
        stored. Any number of events is taken (the batch limit is for HTTP requests).
        """
        with self._lock:
            try:
                stored = self._store.store_events(list(events))
            except ApiError as exc:
                raise ValueError(f"invalid events: {exc.body}") from None
            return [dict(event) for event in stored]

    def load(self, data: Mapping[str, Any]) -> None:
        """Seed customers, subscriptions and events from one mapping (a seed file's JSON).

        ``{"customers": [{"external_id": "acme", "name": "Acme", ...}],
        "subscriptions": [{"external_id": "sub_1", "external_customer_id": "acme"}],
        "events": [{"transaction_id": "tx-1", "code": "calls",
        "external_subscription_id": "sub_1", ...}]}``; every key is optional. Raises
        ``ValueError`` naming what is wrong.
        """
        unknown = set(data) - {"customers", "subscriptions", "events"}
        if unknown:
            raise ValueError(f"unknown keys in the seed data: {sorted(unknown)}")
        for index, customer in enumerate(data.get("customers", [])):
            if not isinstance(customer, Mapping) or "external_id" not in customer:
                raise ValueError(f"customers[{index}] needs an external_id")
            fields = {k: v for k, v in customer.items() if k != "external_id"}
            self.add_customer(customer["external_id"], **fields)
        for index, subscription in enumerate(data.get("subscriptions", [])):
            try:
                self.add_subscription(
                    subscription["external_id"], subscription["external_customer_id"]
                )
            except (KeyError, TypeError):
                raise ValueError(
                    f"subscriptions[{index}] needs external_id and external_customer_id"
                ) from None
        events = data.get("events", [])
        if events:
            self.add_events(events)

    def state(self) -> JSONObject:
        """What FakeLago holds and has seen, as JSON-ready data (what ``GET /_fake_lago/state``
        serves): customers, subscriptions, events, webhook endpoints and delivery attempts
        (their body as text), requests per route, faults fired."""
        with self._lock:
            return {
                "customers": list(self._store.customers.values()),
                "subscriptions": list(self._store.subscriptions.values()),
                "objects": {
                    name: list(bucket.values())
                    for name, bucket in self._api.buckets.items()
                    if name != "subscriptions" and bucket
                },
                "events": list(self._store.events),
                "webhook_endpoints": list(self._webhooks.endpoints.values()),
                "webhook_deliveries": [
                    {**d._asdict(), "body": d.body.decode()} for d in self._webhooks.deliveries
                ],
                "requests": dict(self._requests),
                "faults_fired": dict(self._faults.fired),
                "internal_errors": list(self._internal_errors),
            }

    def add_object(self, collection: str, **fields: Any) -> JSONObject:
        """Store an object Lago makes on its own, which no API call creates; returns a copy.

        ``collection`` is the API's collection path (``"payment_methods"``, ``"fees"``,
        ``"payment_receipts"``, ``"activity_logs"``, ``"api_logs"``...); the object gets a
        ``lago_id`` and ``created_at`` unless given, and is served by that collection's
        routes, shaped by the spec (``fake.add_object("payment_methods",
        external_customer_id="acme", is_default=True)``).
        """
        with self._lock:
            return dict(self._api.add_object(collection, fields))

    # -- the clock -----------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        """FakeLago's current time (UTC): the real time unless :meth:`set_time` froze it."""
        return self._store.now()

    def set_time(self, moment: datetime | str) -> None:
        """Stop FakeLago's clock at ``moment`` (aware, or ISO 8601 text; naive is UTC).

        Everything that reads the time follows it: ``created_at`` of new objects, the
        current billing period of subscriptions (so usage resets when a period boundary is
        crossed), and the timestamp of events sent without one. Events keep the timestamps
        they are sent with.
        """
        if isinstance(moment, str):
            parsed = to_datetime(moment)
            if parsed is None:
                raise ValueError(f"not an ISO 8601 date or time: {moment!r}")
            moment = parsed
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        with self._lock:
            self._store.frozen = moment.astimezone(timezone.utc)

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by ``delta`` (freezing it at the current time first if it
        runs); returns the new time."""
        with self._lock:
            self._store.frozen = self._store.now() + delta
            return self._store.frozen

    def resume_time(self) -> None:
        """Let FakeLago's clock follow the real time again."""
        with self._lock:
            self._store.frozen = None

    def close_period(self, external_subscription_id: str) -> None:
        """End a subscription's open billing period, as invoicing would.

        Its current usage moves to ``/past_usage`` (newest period first) and the current
        usage restarts from zero. Stored events are kept.
        """
        with self._lock:
            self._store.close_period(external_subscription_id)

    def usage(self, external_subscription_id: str) -> dict[str, tuple[int, int | Decimal]]:
        """``{code: (events_count, units)}`` of a subscription's open period."""
        with self._lock:
            return self._store.usage(external_subscription_id)

    def reset(self) -> None:
        """Forget all data, requests, fault rules and counters (the port stays bound)."""
        with self._lock:
            self._store.reset()
            self._api.reset()
            self._webhooks.reset()
            self._faults.clear()
            self._requests.clear()
            self._request_log.clear()
            self._internal_errors.clear()

    # -- webhooks ------------------------------------------------------------------------------

    @property
    def organization_id(self) -> str:
        """The ``organization_id`` of the webhooks FakeLago sends (and of its endpoints)."""
        return self._webhooks.organization_id

    @property
    def webhook_hmac_key(self) -> str:
        """The organisation's HMAC key, which signs the webhooks of ``hmac`` endpoints."""
        return self._webhooks.keys.hmac_key

    @property
    def webhook_public_key_pem(self) -> str:
        """The PEM of the RSA public key that verifies ``jwt`` webhooks.

        ``GET /webhooks/json_public_key`` serves the base64 of it, as Lago does. The key
        pair is made on first use; it needs the ``webhooks`` extra (``RuntimeError``
        otherwise).
        """
        with self._lock:
            return self._webhooks.keys.public_pem

    def rotate_webhook_key(self) -> str:
        """Replace the RSA key pair (as a key rotation would); returns the new public PEM.

        Webhooks sent from now on, retries of earlier ones included, are signed with it.
        """
        with self._lock:
            self._webhooks.keys.rotate()
            return self._webhooks.keys.public_pem

    @property
    def webhook_issuer(self) -> str:
        """The ``iss`` claim of ``jwt`` webhooks: :attr:`url`, as Lago uses its own URL."""
        return self._webhooks.issuer

    @property
    def webhook_endpoints(self) -> list[JSONObject]:
        """Registered webhook endpoints, oldest first (a snapshot)."""
        with self._lock:
            return [dict(e) for e in self._webhooks.endpoints.values()]

    def add_webhook_endpoint(
        self, webhook_url: str, signature_algo: str = "jwt", **fields: Any
    ) -> JSONObject:
        """Register a webhook endpoint as ``POST /webhook_endpoints`` would; returns a copy.

        ``fields`` may hold ``name`` and ``event_types`` (the webhook types to send it, all
        when left out or ``None``).
        """
        body = {
            "webhook_endpoint": {
                **fields,
                "webhook_url": webhook_url,
                "signature_algo": signature_algo,
            }
        }
        with self._lock:
            try:
                _, payload = self._webhooks.create_endpoint({}, _NO_QUERY, body)
            except ApiError as exc:
                raise ValueError(f"invalid webhook endpoint: {exc.body}") from None
            return dict(payload["webhook_endpoint"])

    def send_webhook(self, webhook_type: str, object_type: str, obj: Any) -> list[str]:
        """Send a webhook of any type to every endpoint that takes it, as Lago would.

        The body is ``{"webhook_type", "object_type", "organization_id", <object_type>:
        obj}``. Returns the unique keys, one per endpoint; delivery happens in the
        background (see :meth:`webhooks_delivered`). Raises ``RuntimeError`` when FakeLago
        is not serving.
        """
        if self._runner is None:
            raise RuntimeError("FakeLago is not started: webhooks are sent while it serves")
        return self._webhooks.send(webhook_type, object_type, obj)

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        """Every delivery attempt so far, in order (a snapshot): url, type, unique key,
        attempt, status..."""
        with self._lock:
            return list(self._webhooks.deliveries)

    async def webhooks_delivered(self, timeout: float = 10.0) -> list[WebhookDelivery]:
        """Wait until every webhook sent so far was delivered or gave up retrying, and
        return :attr:`webhook_deliveries`. Works from any event loop (FakeLago's own, or
        another thread's under :meth:`in_thread`); ``TimeoutError`` after ``timeout``.
        """
        loop = self._webhooks._loop
        if loop is not None and loop is not asyncio.get_running_loop():
            future = asyncio.run_coroutine_threadsafe(self._webhooks.drain(timeout), loop)
            await asyncio.wrap_future(future)
        else:
            await self._webhooks.drain(timeout)
        return self.webhook_deliveries

    def wait_for_webhooks(self, timeout: float = 10.0) -> list[WebhookDelivery]:
        """Blocking :meth:`webhooks_delivered`, for tests of a FakeLago run
        :meth:`in_thread` (never call it on FakeLago's own event loop)."""
        loop = self._webhooks._loop
        if loop is not None:
            asyncio.run_coroutine_threadsafe(self._webhooks.drain(timeout), loop).result()
        return self.webhook_deliveries

    # -- observation ---------------------------------------------------------------------------

    @property
    def events(self) -> list[JSONObject]:
        """Stored events in arrival order, as ``POST /events`` answered them (a new list
        each time, sharing the event dicts: read, don't mutate)."""
        with self._lock:
            return list(self._store.events)

    @property
    def customers(self) -> dict[str, JSONObject]:
        """Customers by ``external_id`` (a new dict each time, sharing the customer dicts)."""
        with self._lock:
            return dict(self._store.customers)

    @property
    def subscriptions(self) -> dict[str, JSONObject]:
        """Known subscriptions by ``external_id`` (a snapshot)."""
        with self._lock:
            return dict(self._store.subscriptions)

    @property
    def requests(self) -> Counter[str]:
        """How many requests each route received, keyed ``"POST /events/batch"`` (a
        snapshot). Counts every request that reached a served route, including the ones a
        fault answered or dropped and the unauthorized ones."""
        with self._lock:
            return Counter(self._requests)

    @property
    def request_log(self) -> list[RequestRecord]:
        """The most recent requests (up to ``request_log_size``), oldest first."""
        with self._lock:
            return list(self._request_log)

    # -- HTTP ----------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for method, path, name, has_body in _ROUTE_TABLE:
            owner, _, attribute = name.rpartition(".")
            operation = getattr(self._webhooks if owner else self._store, attribute)
            app.router.add_route(
                method, API_PREFIX + path, self._handler(method, path, operation, has_body)
            )
        for spec in ROUTE_SPECS:
            if spec.route in _OWN_ROUTES:
                continue
            operation = functools.partial(self._api.handler(spec), spec)
            app.router.add_route(
                spec.method,
                API_PREFIX + spec.path,
                self._handler(spec.method, spec.path, operation, spec.body_schema is not None),
            )
        app.router.add_route("GET", INSPECTION_PATH, self._inspect)
        app.router.add_route("*", "/{tail:.*}", self._no_route)
        return app

    async def _inspect(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _json(_UNAUTHORIZED, 401)
        return _json(orjson.dumps(self.state()), 200)

    def _handler(
        self,
        method: str,
        path: str,
        operation: Operation,
        has_body: bool,
    ) -> _Handler:
        key = f"{method} {path}"
        lock = self._lock
        faults = self._faults
        counts = self._requests
        log = self._request_log
        authorization = f"Bearer {self.api_key}"

        def drop(request: web.Request) -> web.Response:
            with lock:
                log.append(RequestRecord(method, key, request.path_qs, None))
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=204)  # never sent: the connection is closed

        async def handle(request: web.Request) -> web.StreamResponse:
            with lock:
                counts[key] += 1
            limiter = self._limiter
            limit_headers = None
            if limiter is not None and limiter.covers(key):
                allowed, limit_headers = limiter.take()
                if not allowed:
                    with lock:
                        log.append(RequestRecord(method, key, request.path_qs, 429))
                    return _json(_RATE_LIMITED, 429, limit_headers)
            after = None
            if faults._rules:
                decision = faults._decide(method, path)
                if decision is not None:
                    if decision.delay:
                        await asyncio.sleep(decision.delay)
                    action = decision.action
                    if action is not None:
                        if action.kind == "drop":
                            return drop(request)
                        if action.kind == "status":
                            with lock:
                                log.append(
                                    RequestRecord(method, key, request.path_qs, action.status)
                                )
                            return _json(orjson.dumps(action.body), action.status, action.headers)
                        after = action
            text: str | None = None
            if request.headers.get("Authorization") != authorization:
                status, data = 401, _UNAUTHORIZED
            else:
                body: Any = None
                status = 0
                if has_body:
                    raw = await request.read()
                    if raw:
                        try:
                            body = orjson.loads(raw)
                        except orjson.JSONDecodeError:
                            error = bad_request("the body is not valid JSON")
                            status, data = error.status, orjson.dumps(error.body)
                if not status:
                    with lock:
                        try:
                            status, payload = operation(request.match_info, request.query, body)
                            if isinstance(payload, PlainText):
                                text = str(payload)
                            else:
                                data = orjson.dumps(payload)
                        except ApiError as exc:
                            status, data = exc.status, orjson.dumps(exc.body)
                        except Exception as exc:  # a bug of FakeLago's: make it loud
                            status, data = 500, self._internal_error(key, request, exc)
            if after is not None:
                return drop(request)
            with lock:
                log.append(RequestRecord(method, key, request.path_qs, status))
            if text is not None:
                return web.Response(
                    text=text, status=status, content_type="text/plain", headers=limit_headers
                )
            return _json(data, status, limit_headers)

        return handle

    def _internal_error(self, route: str, request: web.Request, exc: Exception) -> bytes:
        """Record an unexpected exception (see :attr:`internal_errors`) and say so in JSON."""
        text = f"{route} ({request.path_qs}): {type(exc).__name__}: {exc}"
        self._internal_errors.append(text)
        _log.error("FakeLago internal error on %s", text, exc_info=exc)
        return orjson.dumps(
            {
                "status": 500,
                "error": "Internal Server Error",
                "code": "fake_lago_internal_error",
                "error_details": {"exception": [f"{type(exc).__name__}: {exc}"]},
            }
        )

    @property
    def internal_errors(self) -> list[str]:
        """Unexpected exceptions FakeLago met while answering (a snapshot; empty normally).

        FakeLago answers every request as Lago would; an exception it did not expect is a bug
        of its own, answered with a JSON 500 (``code: fake_lago_internal_error``) and listed
        here. The pytest fixtures fail a test that left one.
        """
        with self._lock:
            return list(self._internal_errors)

    async def _no_route(self, request: web.Request) -> web.Response:
        with self._lock:
            self._request_log.append(RequestRecord(request.method, None, request.path_qs, 404))
        return _json(_NO_ROUTE, 404)

    def __repr__(self) -> str:
        where = self.base_url if self._runner is not None else "not started"
        return f"<FakeLago {where} events={len(self._store.events)}>"
