"""Webhook verification with a fresh RSA key pair and an HMAC key: what Lago signs verifies,
everything else is refused with WebhookVerificationError."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from lago_async import LagoError
from lago_async.webhooks import (
    WebhookEvent,
    WebhookVerificationError,
    WebhookVerifier,
    hmac_signature,
)

jwt = pytest.importorskip("jwt", reason="needs the webhooks extra (PyJWT with cryptography)")
rsa = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.rsa")
serialization = pytest.importorskip("cryptography.hazmat.primitives.serialization")

ISSUER = "https://lago.example.com"
HMAC_KEY = "hmac-key-for-tests"
BODY = orjson.dumps(
    {
        "webhook_type": "invoice.created",
        "object_type": "invoice",
        "organization_id": "org-1",
        "invoice": {"lago_id": "inv-1", "total_amount_cents": 1200},
    }
)


def new_keys() -> tuple[Any, bytes]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public_pem


PRIVATE, PUBLIC_PEM = new_keys()
OTHER_PRIVATE, OTHER_PUBLIC_PEM = new_keys()


def signed_jwt(body: bytes, key: Any = PRIVATE, issuer: str = ISSUER, **kw: Any) -> str:
    token: str = jwt.encode({"data": body.decode(), "iss": issuer}, key, algorithm="RS256", **kw)
    return token


def jwt_headers(token: str) -> dict[str, str]:
    return {
        "X-Lago-Signature": token,
        "X-Lago-Signature-Algorithm": "jwt",
        "X-Lago-Unique-Key": "wh-1",
    }


def hmac_headers(body: bytes, key: str = HMAC_KEY) -> dict[str, str]:
    return {
        "x-lago-signature": hmac_signature(body, key),
        "x-lago-signature-algorithm": "hmac",
        "x-lago-unique-key": "wh-2",
    }


def verifier(**options: Any) -> WebhookVerifier:
    return WebhookVerifier(public_key=PUBLIC_PEM, hmac_key=HMAC_KEY, **options)


# --- what verifies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "public_key",
    [PUBLIC_PEM, PUBLIC_PEM.decode(), base64.b64encode(PUBLIC_PEM).decode()],
    ids=["pem bytes", "pem text", "base64 of pem (as Lago serves it)"],
)
def test_a_jwt_webhook_verifies(public_key: Any) -> None:
    event = WebhookVerifier(public_key=public_key).verify(BODY, jwt_headers(signed_jwt(BODY)))
    assert isinstance(event, WebhookEvent)
    assert (event.webhook_type, event.object_type, event.unique_key) == (
        "invoice.created",
        "invoice",
        "wh-1",
    )
    assert event.object == {"lago_id": "inv-1", "total_amount_cents": 1200}
    assert event.organization_id == "org-1"


def test_a_jwt_webhook_with_the_right_issuer_verifies() -> None:
    verifier(issuer=ISSUER).verify(BODY, jwt_headers(signed_jwt(BODY)))


def test_an_hmac_webhook_verifies_with_lowercase_headers() -> None:
    event = verifier().verify(BODY, hmac_headers(BODY))
    assert (event.webhook_type, event.unique_key) == ("invoice.created", "wh-2")


def test_hmac_signature_matches_an_independent_computation() -> None:
    # printf '{"webhook_type":"x"}' | openssl dgst -sha256 -hmac k -binary | base64
    signature = hmac_signature(b'{"webhook_type":"x"}', "k")
    assert signature == "M4gy6nASQx+9DilPwtFqhZA7IsVZi2TZyoQMrZ7X81k="


# --- what is refused ---------------------------------------------------------------------------


def refused(body: bytes, headers: dict[str, str], v: WebhookVerifier | None = None) -> str:
    with pytest.raises(WebhookVerificationError) as info:
        (v or verifier()).verify(body, headers)
    assert isinstance(info.value, LagoError)
    return str(info.value)


def test_a_tampered_body_is_refused() -> None:
    tampered = BODY.replace(b"1200", b"1")
    assert "not the body" in refused(tampered, jwt_headers(signed_jwt(BODY)))
    assert "does not match" in refused(tampered, hmac_headers(BODY))


def test_a_tampered_signature_is_refused() -> None:
    token = signed_jwt(BODY)
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}AAAA"
    assert "not valid" in refused(BODY, jwt_headers(forged))
    headers = hmac_headers(BODY)
    headers["x-lago-signature"] = hmac_signature(BODY, "another key")
    assert "does not match" in refused(BODY, headers)


def test_a_jwt_signed_with_another_key_is_refused() -> None:
    assert "not valid" in refused(BODY, jwt_headers(signed_jwt(BODY, OTHER_PRIVATE)))


def test_alg_none_is_refused() -> None:
    unsigned = jwt.encode({"data": BODY.decode(), "iss": ISSUER}, None, algorithm="none")
    assert "not valid" in refused(BODY, jwt_headers(unsigned))


def test_hs256_keyed_with_the_public_key_is_refused() -> None:
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
    claims = base64.urlsafe_b64encode(orjson.dumps({"data": BODY.decode(), "iss": ISSUER})).rstrip(
        b"="
    )
    import hashlib
    import hmac

    mac = hmac.new(PUBLIC_PEM, header + b"." + claims, hashlib.sha256).digest()
    forged = b".".join([header, claims, base64.urlsafe_b64encode(mac).rstrip(b"=")]).decode()
    assert "not valid" in refused(BODY, jwt_headers(forged))


def test_a_wrong_issuer_is_refused_when_one_is_configured() -> None:
    token = signed_jwt(BODY, issuer="https://evil.example.com")
    assert "not valid" in refused(BODY, jwt_headers(token), verifier(issuer=ISSUER))
    verifier().verify(BODY, jwt_headers(token))  # without an issuer configured, not checked


@pytest.mark.parametrize("algorithm", [None, "", "rsa", "HMAC-SHA1"])
def test_a_missing_or_unknown_algorithm_is_refused(algorithm: str | None) -> None:
    headers = hmac_headers(BODY)
    del headers["x-lago-signature-algorithm"]
    if algorithm is not None:
        headers["X-Lago-Signature-Algorithm"] = algorithm
    refused(BODY, headers)


def test_a_missing_signature_is_refused() -> None:
    headers = hmac_headers(BODY)
    del headers["x-lago-signature"]
    assert "X-Lago-Signature" in refused(BODY, headers)


def test_an_algorithm_without_its_key_is_refused() -> None:
    assert "no hmac_key" in refused(
        BODY, hmac_headers(BODY), WebhookVerifier(public_key=PUBLIC_PEM)
    )
    assert "no public_key" in refused(
        BODY, jwt_headers(signed_jwt(BODY)), WebhookVerifier(hmac_key=HMAC_KEY)
    )


def test_a_signed_body_that_is_not_a_webhook_is_refused() -> None:
    body = b'{"hello": "world"}'
    assert "webhook_type" in refused(body, hmac_headers(body))


def test_keys_never_show() -> None:
    v = verifier()
    assert HMAC_KEY not in repr(v)
    assert "BEGIN" not in repr(v)
    with pytest.raises(ValueError):
        WebhookVerifier()
    with pytest.raises(ValueError, match="public_key"):
        WebhookVerifier(public_key="not a key")
