"""Signature checks for Lago's webhooks (``jwt`` and ``hmac``) and the event they carry."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from collections.abc import Mapping
from typing import Any

import attrs
import orjson

from .._convert import structure
from .._errors import APIResponseValidationError, LagoError

__all__ = [
    "SIGNATURE_ALGORITHM_HEADER",
    "SIGNATURE_HEADER",
    "UNIQUE_KEY_HEADER",
    "WebhookEvent",
    "WebhookVerificationError",
    "WebhookVerifier",
    "hmac_signature",
    "parse_event",
]

log = logging.getLogger("lago_async.webhooks")

SIGNATURE_HEADER = "X-Lago-Signature"
SIGNATURE_ALGORITHM_HEADER = "X-Lago-Signature-Algorithm"
UNIQUE_KEY_HEADER = "X-Lago-Unique-Key"
"""The webhook's id: the same on every retry of one webhook (dedupe receivers on it)."""


class WebhookVerificationError(LagoError):
    """A webhook that cannot be trusted: unsigned, wrongly signed, or not what was signed."""


class _KeyMismatch(WebhookVerificationError):
    """A well-formed RS256 JWT whose signature the public key does not verify: the key may
    have been rotated (the clients fetch it again once)."""


@attrs.frozen(kw_only=True)
class WebhookEvent:
    """A verified webhook.

    ``object`` is the payload's object (an invoice, a subscription...) under the key named by
    ``object_type``, as decoded JSON; ``payload`` is the whole decoded body.
    """

    webhook_type: str
    """What happened: ``invoice.created``, ``subscription.terminated``..."""
    object_type: str | None
    """The key of the object in the payload (``invoice``, ``subscription``...)."""
    organization_id: str | None
    """The Lago organisation that sent it."""
    unique_key: str | None
    """The ``X-Lago-Unique-Key`` header: the same on every retry of this webhook."""
    object: Any
    """The payload's object (decoded JSON), or ``None`` when the payload has none."""
    payload: dict[str, Any]
    """The whole decoded body."""


def hmac_signature(body: bytes, hmac_key: str | bytes) -> str:
    """The ``hmac`` signature Lago sends for ``body``: base64(HMAC-SHA256(key, body))."""
    key = hmac_key.encode() if isinstance(hmac_key, str) else hmac_key
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


def signature_algorithm(headers: Mapping[str, str]) -> str:
    """The webhook's ``X-Lago-Signature-Algorithm`` (``jwt`` or ``hmac``), or
    :class:`WebhookVerificationError` when it is missing or unknown."""
    algorithm = (_header(headers, SIGNATURE_ALGORITHM_HEADER) or "").strip().lower()
    if not algorithm:
        raise WebhookVerificationError(f"no {SIGNATURE_ALGORITHM_HEADER} header")
    if algorithm not in ("jwt", "hmac"):
        raise WebhookVerificationError(
            f"unknown signature algorithm {algorithm[:20]!r} (expected jwt or hmac)"
        )
    return algorithm


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # a plain dict: look the name up without regard to case
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def _pem(public_key: str | bytes) -> bytes:
    """A PEM public key, given as PEM or as the base64 of a PEM (as Lago serves it)."""
    raw = public_key.encode() if isinstance(public_key, str) else public_key
    raw = raw.strip()
    if raw.startswith(b"-----BEGIN"):
        return raw
    try:
        decoded = base64.b64decode(raw, validate=True).strip()
    except (binascii.Error, ValueError):
        raise ValueError("public_key is neither a PEM key nor the base64 of one") from None
    if not decoded.startswith(b"-----BEGIN"):
        raise ValueError("public_key is neither a PEM key nor the base64 of one")
    return decoded


class WebhookVerifier:
    """Checks a webhook's signature and returns its :class:`WebhookEvent`.

    Args:
        public_key: the organisation's RSA public key for ``jwt`` webhooks: PEM, or the
            base64 of a PEM as ``GET /webhooks/json_public_key`` serves it.
        hmac_key: the organisation's HMAC key for ``hmac`` webhooks.
        issuer: when given, a ``jwt`` webhook's ``iss`` claim must equal it (the Lago
            server's URL, e.g. ``https://api.getlago.com``).

    Give the key(s) of the algorithm(s) your webhook endpoints use; a webhook signed with an
    algorithm whose key is missing is refused.
    """

    __slots__ = ("_hmac_key", "_issuer", "_public_key")

    def __init__(
        self,
        *,
        public_key: str | bytes | None = None,
        hmac_key: str | bytes | None = None,
        issuer: str | None = None,
    ) -> None:
        if public_key is None and hmac_key is None:
            raise ValueError("give public_key (jwt webhooks), hmac_key (hmac webhooks) or both")
        self._public_key = None if public_key is None else _pem(public_key)
        self._hmac_key = hmac_key.encode() if isinstance(hmac_key, str) else hmac_key
        self._issuer = issuer

    def __repr__(self) -> str:
        algorithms = [n for n, k in (("jwt", self._public_key), ("hmac", self._hmac_key)) if k]
        return f"WebhookVerifier(algorithms={algorithms})"  # never the keys

    def verify(self, body: bytes | str, headers: Mapping[str, str]) -> WebhookEvent:
        """Verify ``body`` (the raw request body, byte for byte) against its ``headers``.

        Returns the :class:`WebhookEvent`; raises :class:`WebhookVerificationError` for
        anything that cannot be trusted. Read the body before any framework parses it:
        re-encoded JSON no longer matches the signature.
        """
        raw = body.encode() if isinstance(body, str) else bytes(body)
        algorithm = signature_algorithm(headers)
        signature = _header(headers, SIGNATURE_HEADER)
        if not signature:
            raise WebhookVerificationError(f"no {SIGNATURE_HEADER} header")
        if algorithm == "hmac":
            self._check_hmac(raw, signature)
        else:
            self._check_jwt(raw, signature)
        return _event(raw, _header(headers, UNIQUE_KEY_HEADER))

    def _check_hmac(self, body: bytes, signature: str) -> None:
        if self._hmac_key is None:
            raise WebhookVerificationError("an hmac webhook, but no hmac_key was configured")
        expected = hmac_signature(body, self._hmac_key)
        if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
            raise WebhookVerificationError("the hmac signature does not match the body")

    def _check_jwt(self, body: bytes, token: str) -> None:
        if self._public_key is None:
            raise WebhookVerificationError("a jwt webhook, but no public_key was configured")
        try:
            import jwt
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise WebhookVerificationError(
                'jwt webhooks need PyJWT: pip install "lago-async[webhooks]"'
            ) from None
        options = {"require": ["data"], "verify_iss": self._issuer is not None}
        try:
            # Only RS256: "none", and HS256 "signed" with the public key, are refused.
            claims = jwt.decode(
                token.strip(),
                self._public_key,
                algorithms=["RS256"],
                issuer=self._issuer,
                options=options,  # type: ignore[arg-type]
            )
        except jwt.InvalidSignatureError as exc:
            raise _KeyMismatch(f"the jwt signature is not valid: {exc}") from None
        except jwt.PyJWTError as exc:
            raise WebhookVerificationError(f"the jwt signature is not valid: {exc}") from None
        data = claims.get("data")
        if not isinstance(data, str) or not hmac.compare_digest(data.encode(), body):
            raise WebhookVerificationError("the signed data is not the body received")


def _event(body: bytes, unique_key: str | None) -> WebhookEvent:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise WebhookVerificationError("the webhook body is not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("webhook_type"), str):
        raise WebhookVerificationError("the webhook body has no webhook_type")
    return parse_event(payload, unique_key)


def parse_event(payload: dict[str, Any], unique_key: str | None = None) -> WebhookEvent:
    """The typed event of a decoded webhook payload (its class chosen by ``webhook_type``).

    A type this version does not know, or an object its model cannot read, gives a generic
    :class:`WebhookEvent` whose ``object`` is the decoded JSON: parsing never raises for
    what Lago sends (a warning is logged for an object that did not fit its model).
    """
    from ._events import EVENTS

    webhook_type = payload["webhook_type"]
    object_type = payload.get("object_type")
    raw_object = payload.get(object_type) if isinstance(object_type, str) else None
    fields: dict[str, Any] = {
        "webhook_type": webhook_type,
        "object_type": object_type if isinstance(object_type, str) else None,
        "organization_id": payload.get("organization_id"),
        "unique_key": unique_key,
        "payload": payload,
    }
    known = EVENTS.get(webhook_type)
    if known is not None and isinstance(raw_object, dict):
        cls, model = known
        try:
            parsed = raw_object if model is Any else structure(raw_object, model)
        except APIResponseValidationError as exc:
            log.warning("a %s webhook's object did not fit its model: %s", webhook_type, exc)
        else:
            return cls(object=parsed, **fields)
    return WebhookEvent(object=raw_object, **fields)
