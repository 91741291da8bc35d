"""``transaction_id(event)``: an event's id derived from its content, for safe re-sending."""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import orjson

from ._convert import _default, unix_timestamp, unstructure
from ._errors import LagoValidationError
from ._validate import encode_json

if TYPE_CHECKING:
    from .types import EventInput

__all__ = ["transaction_id"]

_SCHEME = b"lago-async transaction_id v1\n"
"""Names the derivation: a later change of scheme gets a new tag, never the same ids."""

PREFIX = "tx_"
"""What every derived id starts with (a reader can tell derived ids from given ones)."""


def transaction_id(event: EventInput | Mapping[str, Any], *, salt: str | None = None) -> str:
    """A ``transaction_id`` derived from the event's content: the same event, the same id.

    Lago stores each ``transaction_id`` once per subscription, so sending an event again under
    its derived id (a re-run backfill, a retry after a crash) never bills it twice. The id is
    ``"tx_"`` and 32 hexadecimal digits (128 bits of a SHA-256 of the event)::

        event = {"code": "api_calls", "external_subscription_id": "sub_1",
                 "timestamp": 1700000000, "properties": {"units": 3}}
        event["transaction_id"] = transaction_id(event)  # "tx_" and 32 hex digits

    Two events are *the same*, and get the same id, when they hold the same fields with the
    same JSON values, whatever the order of their keys (at every depth). What is compared:

    * every field except ``transaction_id`` itself (so an event's id can be derived from the
      event after the id was added to it);
    * a field whose value is ``None`` counts as absent (as it does for an ``EventInput``);
    * values as JSON: ``1`` and ``"1"`` differ, so do ``1`` and ``1.0``, a ``Decimal`` is
      its string, and a ``datetime`` timestamp is the unix time the SDK sends for it.

    The trade-off: two genuinely distinct usages that happen to be recorded identically (same
    subscription, code, timestamp and properties) get the same id, and Lago keeps only the
    first. When that can happen, make the rows differ (a request id in ``properties``), give
    ids of your own, or pass ``salt``: any text mixed into the hash, such as the row's
    position in its file. A salted id is only as stable as the salt: with a row number, a
    re-run is safe only on the unchanged file.

    Raises :class:`~lago_async.LagoValidationError` when the event is not a mapping or an
    ``EventInput``, or holds something that cannot be sent as JSON (NaN, an infinity, an
    object JSON has no form for).
    """
    if attrs.has(type(event)):
        body: dict[str, Any] = unstructure(event)
    elif isinstance(event, Mapping):
        body = {key: value for key, value in event.items() if value is not None}
    else:
        raise LagoValidationError(
            "event", f"must be an EventInput or a mapping, got {type(event).__name__}"
        )
    body.pop("transaction_id", None)
    timestamp = body.get("timestamp")
    if isinstance(timestamp, _dt.datetime):
        body["timestamp"] = unix_timestamp(timestamp)
    try:
        canonical = orjson.dumps(body, default=_default, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        encode_json(body, "event")  # raises, naming the part that cannot be encoded
        raise  # (not reached: what orjson refuses with sorted keys it refuses without)
    if b"null" in canonical:
        encode_json(body, "event")  # raises when a NaN or an infinity became null
    digest = hashlib.sha256(_SCHEME)
    if salt is not None:
        if not isinstance(salt, str):
            raise LagoValidationError("salt", f"must be a string, got {type(salt).__name__}")
        encoded = salt.encode("utf-8", "surrogatepass")
        digest.update(b"salt %d:" % len(encoded) + encoded + b"\n")
    digest.update(canonical)
    return PREFIX + digest.hexdigest()[:32]
