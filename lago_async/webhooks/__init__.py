"""Verify the webhooks Lago sends, and read them as events.

Lago signs every webhook, with the algorithm chosen per webhook endpoint, and says which in
the ``X-Lago-Signature-Algorithm`` header:

* ``jwt``: ``X-Lago-Signature`` is an RS256 JWT whose claims are ``{"data": <the body>,
  "iss": <the Lago server's URL>}``, signed with the organisation's RSA key (its public key
  comes from ``GET /webhooks/json_public_key``). Needs the ``webhooks`` extra
  (``pip install "lago-async[webhooks]"``: PyJWT with cryptography).
* ``hmac``: ``X-Lago-Signature`` is base64(HMAC-SHA256(organisation's HMAC key, body)).
  Needs nothing beyond the standard library.

A verifier needs no client, for Django or Flask views::

    from lago_async.webhooks import WebhookVerifier, WebhookVerificationError

    verifier = WebhookVerifier(public_key=LAGO_PUBLIC_KEY, hmac_key=LAGO_HMAC_KEY)

    def lago_webhook(request):
        try:
            event = verifier.verify(request.body, request.headers)
        except WebhookVerificationError:
            return HttpResponse(status=400)
        ...

``verify`` returns the webhook's typed event: one class per webhook type
(:class:`InvoiceCreatedWebhook`, :class:`SubscriptionTerminatedWebhook`...), each a
:class:`WebhookEvent` whose ``object`` is its model; a type this version does not know gives
a plain :class:`WebhookEvent`. The clients' ``lago.webhooks.verify`` does the same and
fetches the public key itself.

Everything else it refuses raises :class:`WebhookVerificationError`: a missing or unknown
algorithm header, a signature that does not verify, a JWT signed with anything but RS256, a
JWT whose ``data`` is not the body received, or a wrong issuer when one is configured.
"""

import importlib
from typing import TYPE_CHECKING, Any

from ._verify import (
    SIGNATURE_ALGORITHM_HEADER,
    SIGNATURE_HEADER,
    UNIQUE_KEY_HEADER,
    WebhookEvent,
    WebhookVerificationError,
    WebhookVerifier,
    hmac_signature,
    parse_event,
)

if TYPE_CHECKING:
    from ._events import *  # noqa: F403

_EVENT_NAMES = frozenset(importlib.import_module("._names", __name__).NAMES)

__all__ = [
    "SIGNATURE_ALGORITHM_HEADER",
    "SIGNATURE_HEADER",
    "UNIQUE_KEY_HEADER",
    "WebhookEvent",
    "WebhookVerificationError",
    "WebhookVerifier",
    "hmac_signature",
    "parse_event",
    *sorted(_EVENT_NAMES),
]


def __getattr__(name: str) -> Any:
    # the typed events (and the models they use) load on first use
    if name not in _EVENT_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("._events", __name__), name)
    globals()[name] = value
    return value
