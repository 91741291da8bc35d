"""The webhook keys a client holds (a module of its own: the client imports it eagerly)."""

from __future__ import annotations

__all__ = ["WebhookKeys"]


class WebhookKeys:
    """What a client (and its ``with_options`` copies) keeps for webhooks: the HMAC key it was
    given and the public key it fetched. Never shown: its repr names no key."""

    __slots__ = ("hmac_key", "public_key", "refetched_at")

    def __init__(self, hmac_key: str | None) -> None:
        self.hmac_key = hmac_key
        self.public_key: str | None = None
        self.refetched_at = float("-inf")

    def __repr__(self) -> str:
        return "<WebhookKeys>"
