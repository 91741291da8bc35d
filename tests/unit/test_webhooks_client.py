"""lago.webhooks.verify in both clients: the public key fetched once, cached, fetched again
after a rotation; hmac keys per call, per client or from $LAGO_WEBHOOK_HMAC_KEY."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from aioresponses import aioresponses

import lago_sync
from lago_async import AsyncLago
from lago_async.types import Customer
from lago_async.webhooks import (
    CustomerCreatedWebhook,
    WebhookEvent,
    WebhookVerificationError,
)
from tests.conftest import API_KEY, BASE_URL, customer_json
from tests.unit.test_webhooks import (
    HMAC_KEY,
    OTHER_PRIVATE,
    OTHER_PUBLIC_PEM,
    PUBLIC_PEM,
    hmac_headers,
    jwt_headers,
    signed_jwt,
)

KEY_URL = f"{BASE_URL}/webhooks/json_public_key"
BODY = orjson.dumps(
    {
        "webhook_type": "customer.created",
        "object_type": "customer",
        "organization_id": "org-1",
        "customer": customer_json(),
    }
)


def serve_key(mocked: aioresponses, pem: bytes, times: int = 1) -> None:
    for _ in range(times):
        mocked.get(KEY_URL, payload={"webhook": {"public_key": base64.b64encode(pem).decode()}})


def key_fetches(mocked: aioresponses) -> int:
    return sum(len(calls) for (verb, url), calls in mocked.requests.items() if str(url) == KEY_URL)


async def test_a_jwt_webhook_verifies_with_the_fetched_key_cached(
    mocked: aioresponses, lago: AsyncLago
) -> None:
    serve_key(mocked, PUBLIC_PEM)
    for _ in range(3):
        event = await lago.webhooks.verify(BODY, jwt_headers(signed_jwt(BODY)))
        assert isinstance(event, CustomerCreatedWebhook)
        assert isinstance(event.object, Customer) and event.object.external_id == "acme"
        assert event.unique_key == "wh-1"
    assert key_fetches(mocked) == 1


async def test_a_rotated_key_is_fetched_again_once(mocked: aioresponses, lago: AsyncLago) -> None:
    serve_key(mocked, PUBLIC_PEM)
    await lago.webhooks.verify(BODY, jwt_headers(signed_jwt(BODY)))
    # the organisation's key is rotated: the next webhook is signed with the new one
    serve_key(mocked, OTHER_PUBLIC_PEM)
    event = await lago.webhooks.verify(BODY, jwt_headers(signed_jwt(BODY, key=OTHER_PRIVATE)))
    assert event.webhook_type == "customer.created"
    assert key_fetches(mocked) == 2
    # and the new key is kept: no fetch for the next one
    await lago.webhooks.verify(BODY, jwt_headers(signed_jwt(BODY, key=OTHER_PRIVATE)))
    assert key_fetches(mocked) == 2


async def test_a_forged_signature_fetches_at_most_once_then_is_refused(
    mocked: aioresponses, lago: AsyncLago
) -> None:
    serve_key(mocked, PUBLIC_PEM, times=2)
    await lago.webhooks.verify(BODY, jwt_headers(signed_jwt(BODY)))
    forged = jwt_headers(signed_jwt(BODY, key=OTHER_PRIVATE))
    for _ in range(3):
        with pytest.raises(WebhookVerificationError):
            await lago.webhooks.verify(BODY, forged)
    assert key_fetches(mocked) == 2  # one refetch, not one per forged webhook


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (BODY.replace(b"acme", b"evil"), "valid-for-BODY"),
        (BODY, {"X-Lago-Signature": "x", "X-Lago-Signature-Algorithm": "rsa"}),
        (BODY, {"X-Lago-Signature": "x"}),
    ],
    ids=["tampered body", "unknown algorithm", "no algorithm"],
)
async def test_the_client_refuses_what_the_verifier_refuses(
    mocked: aioresponses, lago: AsyncLago, body: bytes, headers: Any
) -> None:
    serve_key(mocked, PUBLIC_PEM, times=2)
    if headers == "valid-for-BODY":
        headers = jwt_headers(signed_jwt(BODY))
    with pytest.raises(WebhookVerificationError):
        await lago.webhooks.verify(body, headers)


async def test_hmac_keys_per_call_per_client_and_from_the_environment(
    mocked: aioresponses, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = hmac_headers(BODY)
    async with AsyncLago(api_key=API_KEY, base_url=BASE_URL) as lago:
        with pytest.raises(WebhookVerificationError, match="hmac_key"):
            await lago.webhooks.verify(BODY, headers)
        event = await lago.webhooks.verify(BODY, headers, hmac_key=HMAC_KEY)
        assert isinstance(event, WebhookEvent)
        with pytest.raises(WebhookVerificationError):
            await lago.webhooks.verify(BODY, headers, hmac_key="another-key")
    async with AsyncLago(api_key=API_KEY, base_url=BASE_URL, webhook_hmac_key=HMAC_KEY) as lago:
        assert (await lago.webhooks.verify(BODY, headers)).unique_key == "wh-2"
        assert HMAC_KEY not in repr(lago) and HMAC_KEY not in repr(lago._webhooks)
    monkeypatch.setenv("LAGO_WEBHOOK_HMAC_KEY", HMAC_KEY)
    async with AsyncLago(api_key=API_KEY, base_url=BASE_URL) as lago:
        assert isinstance(await lago.webhooks.verify(BODY, headers), CustomerCreatedWebhook)
    assert key_fetches(mocked) == 0  # hmac needs no key from the server


def test_the_blocking_client_verifies_too(mocked: aioresponses) -> None:
    serve_key(mocked, PUBLIC_PEM)
    with lago_sync.Lago(api_key=API_KEY, base_url=BASE_URL, webhook_hmac_key=HMAC_KEY) as lago:
        event = lago.webhooks.verify(BODY, jwt_headers(signed_jwt(BODY)))
        assert isinstance(event, CustomerCreatedWebhook)
        assert lago.webhooks.verify(BODY, hmac_headers(BODY)).unique_key == "wh-2"
        with pytest.raises(WebhookVerificationError):
            lago.webhooks.verify(BODY + b" ", hmac_headers(BODY))
