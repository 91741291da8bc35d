"""FakeLago's webhooks: endpoints registered through the API, keys, signed deliveries, retries.

Lago sends a webhook to every endpoint of the organisation for each change it reports, signed
per endpoint (``jwt`` or ``hmac``) and carrying the ``X-Lago-Unique-Key`` that stays the same
on every retry. FakeLago does the same, in background tasks that never hold up the answer of
the request that caused the change, and records each attempt.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import random
import secrets
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import aiohttp
import orjson

from ._store import (
    ALREADY_EXISTS,
    INVALID,
    MANDATORY,
    ApiError,
    JSONObject,
    Params,
    Query,
    Result,
    bad_request,
    not_found,
    now_iso,
    paginate,
    unprocessable,
)

__all__ = ["PlainText", "WebhookDelivery", "Webhooks"]

SIGNATURE_HEADER = "X-Lago-Signature"
SIGNATURE_ALGORITHM_HEADER = "X-Lago-Signature-Algorithm"
UNIQUE_KEY_HEADER = "X-Lago-Unique-Key"
ALGORITHMS = ("jwt", "hmac")
MAX_ENDPOINTS = 10
"""How many webhook endpoints Lago lets one organisation have."""

_EXTRA_MISSING = (
    'FakeLago signs jwt webhooks with PyJWT and cryptography: pip install "lago-async[webhooks]"'
)


class PlainText(str):
    """An operation's ``text/plain`` answer (the others are JSON)."""


class WebhookDelivery(NamedTuple):
    """One attempt at delivering a webhook (see :attr:`FakeLago.webhook_deliveries`)."""

    url: str
    webhook_type: str
    #: The ``X-Lago-Unique-Key`` sent: the same on every attempt of one webhook.
    unique_key: str
    #: 1 for the first try, then 2, 3... for the retries.
    attempt: int
    #: The receiver's HTTP status, ``None`` when the connection failed or timed out.
    status: int | None
    #: ``jwt`` or ``hmac``.
    signature_algo: str
    #: The exact body sent.
    body: bytes
    #: Why the attempt failed without a status (``None`` otherwise).
    error: str | None = None

    @property
    def delivered(self) -> bool:
        """Whether the receiver answered 2xx."""
        return self.status is not None and 200 <= self.status < 300


class _Keys:
    """The organisation's RSA key pair (made on first use) and HMAC key."""

    def __init__(self) -> None:
        self.hmac_key = secrets.token_hex(16)
        self._private: Any = None
        self._public_pem: bytes | None = None

    def _ensure(self) -> None:
        if self._private is None:
            self.rotate()

    def rotate(self) -> None:
        try:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa
        except ImportError:
            raise RuntimeError(_EXTRA_MISSING) from None
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._public_pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self._private = private

    @property
    def public_pem(self) -> str:
        self._ensure()
        assert self._public_pem is not None
        return self._public_pem.decode()

    def sign_jwt(self, body: bytes, issuer: str) -> str:
        self._ensure()
        try:
            import jwt
        except ImportError:
            raise RuntimeError(_EXTRA_MISSING) from None
        claims = {"data": body.decode(), "iss": issuer}
        return jwt.encode(claims, self._private, algorithm="RS256")

    def sign_hmac(self, body: bytes) -> str:
        digest = hmac.new(self.hmac_key.encode(), body, hashlib.sha256).digest()
        return base64.b64encode(digest).decode()


def _signing_available() -> bool:
    try:
        import cryptography  # noqa: F401
        import jwt  # noqa: F401
    except ImportError:
        return False
    return True


def _is_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class Webhooks:
    """Webhook endpoints, keys and deliveries of one FakeLago.

    The endpoint operations take and return what the Store's do (and run under FakeLago's
    lock); :meth:`send` may be called from any thread.
    """

    def __init__(
        self,
        new_id: Callable[[], str],
        lock: threading.RLock,
        *,
        seed: int | str | None,
        max_attempts: int,
        retry_delay: float,
        timeout: float,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"webhook_max_attempts must be >= 1, got {max_attempts!r}")
        self._new_id = new_id
        self._lock = lock
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.timeout = timeout
        self.keys = _Keys()
        self.issuer = ""
        rng = random.Random(None if seed is None else f"organization:{seed}")
        self.organization_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.endpoints: dict[str, JSONObject] = {}
        self.deliveries: list[WebhookDelivery] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending = 0
        self._settled: asyncio.Event | None = None  # set when a delivery task ends

    def reset(self) -> None:
        """Forget endpoints and deliveries (keys and the organisation stay)."""
        self.endpoints.clear()
        self.deliveries.clear()

    # -- lifecycle (on FakeLago's loop) -----------------------------------------------------

    def start(self, issuer: str) -> None:
        self._loop = asyncio.get_running_loop()
        self._settled = asyncio.Event()
        self.issuer = issuer

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        self._loop = None

    # -- endpoints --------------------------------------------------------------------------

    def _input(self, body: Any) -> JSONObject:
        data = body.get("webhook_endpoint") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise bad_request("param is missing or the value is empty: webhook_endpoint")
        return data

    def _validate(self, data: Mapping[str, Any], current: JSONObject | None) -> JSONObject:
        errors: dict[str, list[str]] = {}
        url = data.get("webhook_url")
        if url is None or url == "":
            errors["webhook_url"] = [MANDATORY]
        elif not isinstance(url, str) or not _is_url(url):
            errors["webhook_url"] = ["url_is_invalid"]
        elif any(e["webhook_url"] == url and e is not current for e in self.endpoints.values()):
            errors["webhook_url"] = [ALREADY_EXISTS]
        algo = data.get("signature_algo")
        if algo is not None and algo not in ALGORITHMS:
            errors["signature_algo"] = [INVALID]
        elif (algo or (current or {}).get("signature_algo", "jwt")) == "jwt" and not (
            _signing_available()
        ):
            errors["signature_algo"] = ["webhooks_extra_missing"]
        name = data.get("name")
        if name is not None and not isinstance(name, str):
            errors["name"] = [INVALID]
        types = data.get("event_types")
        if types is not None and (
            not isinstance(types, list) or not all(isinstance(t, str) for t in types)
        ):
            errors["event_types"] = [INVALID]
        if errors:
            raise unprocessable(errors)
        fields: JSONObject = {"webhook_url": url}
        if algo is not None or current is None:
            fields["signature_algo"] = algo or "jwt"
        for key in ("name", "event_types"):
            if key in data:
                fields[key] = data[key]
        return fields

    def create_endpoint(self, params: Params, query: Query, body: Any) -> Result:
        """``POST /webhook_endpoints``."""
        data = self._input(body)
        fields = self._validate(data, None)
        if len(self.endpoints) >= MAX_ENDPOINTS:
            raise unprocessable({"base": ["exceeded_limit"]})
        endpoint: JSONObject = {
            "lago_id": self._new_id(),
            "lago_organization_id": self.organization_id,
            "webhook_url": "",
            "signature_algo": "jwt",
            "name": None,
            "event_types": None,
            "created_at": now_iso(),
        }
        endpoint.update(fields)
        self.endpoints[endpoint["lago_id"]] = endpoint
        return 200, {"webhook_endpoint": endpoint}

    def list_endpoints(self, params: Params, query: Query, body: Any = None) -> Result:
        """``GET /webhook_endpoints``: oldest first, paged."""
        page, meta = paginate(list(self.endpoints.values()), query)
        return 200, {"webhook_endpoints": page, "meta": meta}

    def _endpoint(self, params: Params) -> JSONObject:
        endpoint = self.endpoints.get(params["lago_id"])
        if endpoint is None:
            raise not_found("webhook_endpoint_not_found")
        return endpoint

    def get_endpoint(self, params: Params, query: Query, body: Any = None) -> Result:
        """``GET /webhook_endpoints/{lago_id}``."""
        return 200, {"webhook_endpoint": self._endpoint(params)}

    def update_endpoint(self, params: Params, query: Query, body: Any) -> Result:
        """``PUT /webhook_endpoints/{lago_id}``."""
        endpoint = self._endpoint(params)
        fields = self._validate(self._input(body), endpoint)
        endpoint.update(fields)
        return 200, {"webhook_endpoint": endpoint}

    def delete_endpoint(self, params: Params, query: Query, body: Any = None) -> Result:
        """``DELETE /webhook_endpoints/{lago_id}``."""
        endpoint = self._endpoint(params)
        del self.endpoints[endpoint["lago_id"]]
        return 200, {"webhook_endpoint": endpoint}

    def json_public_key(self, params: Params, query: Query, body: Any = None) -> Result:
        """``GET /webhooks/json_public_key``: the base64 of the PEM, in JSON."""
        return 200, {"webhook": {"public_key": self._public_key_b64()}}

    def public_key(self, params: Params, query: Query, body: Any = None) -> Result:
        """``GET /webhooks/public_key``: the base64 of the PEM, as text."""
        return 200, PlainText(self._public_key_b64())

    def _public_key_b64(self) -> str:
        try:
            pem = self.keys.public_pem
        except RuntimeError as exc:
            raise ApiError(
                400, {"status": 400, "error": f"BadRequest: {exc}", "code": "not_available"}
            ) from None
        return base64.b64encode(pem.encode()).decode()

    # -- sending ----------------------------------------------------------------------------

    def payload(self, webhook_type: str, object_type: str, obj: Any) -> bytes:
        """The body Lago sends for ``obj``."""
        return orjson.dumps(
            {
                "webhook_type": webhook_type,
                "object_type": object_type,
                "organization_id": self.organization_id,
                object_type: obj,
            }
        )

    def send(self, webhook_type: str, object_type: str, obj: Any) -> list[str]:
        """Queue one webhook per matching endpoint; returns their unique keys.

        The body is made now (a snapshot of ``obj``); delivery happens in the background.
        Nothing is queued while FakeLago is not serving.
        """
        with self._lock:
            loop = self._loop
            targets = [
                dict(e)
                for e in self.endpoints.values()
                if e["event_types"] is None or webhook_type in e["event_types"]
            ]
            if loop is None or not targets:
                return []
            body = self.payload(webhook_type, object_type, obj)
            jobs = [(e, self._new_id()) for e in targets]
            self._pending += len(jobs)
        for endpoint, key in jobs:
            self._schedule(loop, endpoint, webhook_type, body, key)
        return [key for _, key in jobs]

    def _schedule(
        self,
        loop: asyncio.AbstractEventLoop,
        endpoint: JSONObject,
        webhook_type: str,
        body: bytes,
        key: str,
    ) -> None:
        def start() -> None:
            if self._loop is None:  # stopped meanwhile: drop it
                with self._lock:
                    self._pending -= 1
                return
            task = loop.create_task(self._deliver(endpoint, webhook_type, body, key))
            self._tasks.add(task)
            task.add_done_callback(self._done)

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            start()
        else:
            loop.call_soon_threadsafe(start)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        with self._lock:
            self._pending -= 1
        if self._settled is not None:
            self._settled.set()

    def _headers(self, algo: str, body: bytes, key: str) -> dict[str, str]:
        with self._lock:  # not while the key is being rotated from another thread
            if algo == "hmac":
                signature = self.keys.sign_hmac(body)
            else:
                signature = self.keys.sign_jwt(body, self.issuer)
        return {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature,
            SIGNATURE_ALGORITHM_HEADER: algo,
            UNIQUE_KEY_HEADER: key,
        }

    async def _deliver(
        self, endpoint: JSONObject, webhook_type: str, body: bytes, key: str
    ) -> None:
        url, algo = endpoint["webhook_url"], endpoint["signature_algo"]
        if self._session is None:
            self._session = aiohttp.ClientSession()
        session = self._session
        for attempt in range(1, self.max_attempts + 1):
            status: int | None = None
            error: str | None = None
            try:
                # signed per attempt: a key rotated meanwhile signs the retries
                headers = self._headers(algo, body, key)
                async with session.post(
                    url,
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                    allow_redirects=False,
                ) as response:
                    status = response.status
                    await response.read()
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, RuntimeError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            record = WebhookDelivery(url, webhook_type, key, attempt, status, algo, body, error)
            with self._lock:
                self.deliveries.append(record)
            if record.delivered:
                return
            if attempt < self.max_attempts:
                await asyncio.sleep(self.retry_delay * 2 ** (attempt - 1))

    @property
    def pending(self) -> int:
        """Webhooks queued or being retried."""
        with self._lock:
            return self._pending

    async def drain(self, timeout: float) -> None:
        """Wait until no webhook is queued or being retried (``TimeoutError`` after
        ``timeout`` seconds)."""

        settled = self._settled
        if settled is None:
            return

        async def idle() -> None:
            while self.pending:
                settled.clear()
                await settled.wait()

        await asyncio.wait_for(idle(), timeout)
