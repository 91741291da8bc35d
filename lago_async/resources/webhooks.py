"""``lago.webhooks``: the hand-written part of the webhooks namespace.

The generated base fetches the public key (``json_public_key``, ``public_key``); this
subclass adds :meth:`AsyncWebhooks.verify`, which checks a received webhook with the key it
fetches, caches and fetches again after a key rotation.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .._webhook_keys import WebhookKeys
from ._generated.webhooks import AsyncWebhooksBase

if TYPE_CHECKING:
    from ..webhooks import WebhookEvent

__all__ = ["AsyncWebhooks"]

REFETCH_INTERVAL = 30.0
"""Seconds between two fetches of the public key caused by signatures that did not verify:
a stream of forged webhooks cannot make the client hammer the API."""


class AsyncWebhooks(AsyncWebhooksBase):
    """Webhooks: the organisation's public key, and :meth:`verify` for webhooks received."""

    __slots__ = ()

    async def verify(
        self,
        body: bytes | str,
        headers: Mapping[str, str],
        *,
        hmac_key: str | None = None,
        issuer: str | None = None,
    ) -> WebhookEvent:
        """Check a webhook Lago sent and return its typed event.

        Give the raw request body, byte for byte, and the request's headers. ``jwt`` webhooks
        are checked with the organisation's public key, fetched on first use
        (``GET /webhooks/json_public_key``) and cached by the client; when a signature does not
        verify, the key is fetched once more (it may have been rotated; at most once every
        30 seconds) before the webhook is refused. ``hmac`` webhooks use ``hmac_key``, else
        the client's ``webhook_hmac_key`` (``$LAGO_WEBHOOK_HMAC_KEY``). ``issuer``, when
        given, pins a ``jwt`` webhook's ``iss`` claim (your Lago's URL).

        Returns the event's class for its ``webhook_type`` (:class:`InvoiceCreatedWebhook`...,
        each a :class:`~lago_async.webhooks.WebhookEvent`), or a plain ``WebhookEvent`` for a
        type this version does not know. Raises
        :class:`~lago_async.webhooks.WebhookVerificationError` (a
        :class:`~lago_async.LagoError`) for a webhook that cannot be trusted.
        """
        from ..webhooks import WebhookVerificationError, WebhookVerifier
        from ..webhooks._verify import _KeyMismatch, signature_algorithm

        state: WebhookKeys = self._client._webhooks
        if signature_algorithm(headers) == "hmac":
            key = hmac_key or state.hmac_key
            if not key:
                raise WebhookVerificationError(
                    "an hmac webhook: give hmac_key=, or webhook_hmac_key= (or "
                    "$LAGO_WEBHOOK_HMAC_KEY) to the client"
                )
            return WebhookVerifier(hmac_key=key, issuer=issuer).verify(body, headers)
        known = state.public_key
        if known is None:
            known = state.public_key = await self._fetch_key()
        try:
            return WebhookVerifier(public_key=known, issuer=issuer).verify(body, headers)
        except _KeyMismatch:
            now = time.monotonic()
            if now - state.refetched_at < REFETCH_INTERVAL:
                raise
            state.refetched_at = now
            fresh = await self._fetch_key()
            if fresh == known:
                raise
            state.public_key = fresh
            return WebhookVerifier(public_key=fresh, issuer=issuer).verify(body, headers)

    async def _fetch_key(self) -> str:
        return (await self.json_public_key()).public_key
