"""``lago.events``: the hand-written part of the events namespace.

The generated base (``_generated/events.py``) has every operation of the API; this subclass
replaces the ones with behaviour the API document cannot describe: idempotent ``create`` and
``create_batch`` (a retry refused as a duplicate after a lost answer counts as delivered), the
event checks of ``_validate.event_dict``, the fee estimates' signatures, and the ingestor.
"""

from __future__ import annotations

import asyncio
import builtins
import datetime as _dt
import os
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .. import types as _models
from .._errors import LagoValidationError, UnprocessableEntityError
from .._sentinel import NOT_GIVEN, NotGiven
from .._validate import as_body, encode_json, event_dict, require_list, require_str
from ._base import parse
from ._generated.events import AsyncEventsBase

if TYPE_CHECKING:
    from .._ingest import EventIngestor, IngestStats, RejectedEvent
    from ..types import Event, EventInput, Fee, FeeEstimate

__all__ = ["AsyncEvents"]

_DUPLICATE = ["value_already_exist"]


def only_duplicates(error: UnprocessableEntityError, count: int | None = None) -> bool:
    """Whether a 422 says nothing but "this transaction_id is already stored".

    For a single event the details are ``{"transaction_id": ["value_already_exist"]}``; for a
    batch of ``count`` events every index must carry exactly that.
    """
    details = error.error_details
    if count is None:
        return details == {"transaction_id": _DUPLICATE}
    if len(details) != count:
        return False
    return all(
        isinstance(item, Mapping) and dict(item) == {"transaction_id": _DUPLICATE}
        for item in details.values()
    )


class AsyncEvents(AsyncEventsBase):
    """Send usage events, read them back and estimate the fees they would produce.

    Persisted events (billable metrics with a ``recurring_count`` aggregation such as seats)
    go through :meth:`create` like any event, with ``properties["operation_type"]`` set to
    ``"add"`` or ``"remove"``::

        await lago.events.create(
            transaction_id="seat-42-added",
            code="seats",
            external_subscription_id="sub_1",
            properties={"user_id": "42", "operation_type": "add"},
        )
    """

    __slots__ = ()

    async def create(  # type: ignore[override]
        self,
        event: EventInput | Mapping[str, Any] | None = None,
        /,
        *,
        transaction_id: str | NotGiven = NOT_GIVEN,
        code: str | NotGiven = NOT_GIVEN,
        external_subscription_id: str | NotGiven = NOT_GIVEN,
        timestamp: int | float | str | _dt.datetime | NotGiven | None = NOT_GIVEN,
        properties: Mapping[str, Any] | NotGiven | None = NOT_GIVEN,
        precise_total_amount_cents: Decimal | str | int | NotGiven | None = NOT_GIVEN,
        timeout: float | None = None,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Event:
        """Send one usage event (``POST /events``) and return it as stored.

        Give the fields as keyword arguments, or an :class:`EventInput` or a mapping as the
        first argument. ``transaction_id`` makes the call idempotent: when the answer to a
        first attempt was lost and the retry is refused as a duplicate, the event was stored,
        so it is fetched and returned instead of raising. A duplicate on the first attempt
        raises :class:`UnprocessableEntityError` as usual.
        """
        body = event_dict(
            as_body(
                event,
                {
                    "transaction_id": transaction_id,
                    "code": code,
                    "external_subscription_id": external_subscription_id,
                    "timestamp": timestamp,
                    "properties": properties,
                    "precise_total_amount_cents": precise_total_amount_cents,
                },
                field="event",
            )
        )
        payload = encode_json({"event": body})
        extras = (extra_headers, extra_query, extra_body)
        try:
            data = await self._send(
                "POST", "/events", None, payload, timeout, max_retries, *extras, ingest=True
            )
        except UnprocessableEntityError as exc:
            if exc.attempts > 1 and only_duplicates(exc):
                return await self.get(
                    body["transaction_id"], timeout=timeout, extra_headers=extra_headers
                )
            raise
        return parse(data, "event", _models.Event, method="POST", path="/events")

    async def create_batch(  # type: ignore[override]
        self,
        events: Sequence[EventInput | Mapping[str, Any]],
        /,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> builtins.list[Event]:
        """Send up to the batch limit of events in one request (``POST /events/batch``).

        Lago stores the batch whole or refuses it whole: one bad event gives
        :class:`UnprocessableEntityError` whose ``error_details`` are keyed by index. More
        events than the client's ``batch_limit`` (100 unless configured) raise at once: use
        :meth:`ingestor` for volume. As with :meth:`create`, a retried batch refused only
        because it was already stored counts as delivered.
        """
        events = require_list(events, "events", "event", non_empty=True)
        limit = self._client.batch_limit
        if len(events) > limit:
            raise LagoValidationError(
                "events",
                f"{len(events)} events exceed the batch limit of {limit}; "
                "use lago.events.ingestor() to send any number of events",
            )
        bodies = [event_dict(item, f"events[{i}]") for i, item in enumerate(events)]
        payload = encode_json({"events": bodies})
        extras = (extra_headers, extra_query, extra_body)
        try:
            data = await self._send(
                "POST", "/events/batch", None, payload, timeout, max_retries, *extras, ingest=True
            )
        except UnprocessableEntityError as exc:
            if exc.attempts > 1 and only_duplicates(exc, len(bodies)):
                return list(
                    await asyncio.gather(
                        *(
                            self.get(
                                b["transaction_id"], timeout=timeout, extra_headers=extra_headers
                            )
                            for b in bodies
                        )
                    )
                )
            raise
        return parse(data, "events", list[_models.Event], method="POST", path="/events/batch")

    async def estimate_fees(  # type: ignore[override]
        self,
        *,
        code: str,
        external_subscription_id: str,
        properties: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> builtins.list[Fee]:
        """Estimate the fees an event would create on a pay-in-advance charge.

        ``POST /events/estimate_fees``; nothing is stored.
        """
        body = _estimate_body(code, external_subscription_id, properties, None, "event")
        return await self._call(
            "POST",
            "/events/estimate_fees",
            key="fees",
            cls=list[_models.Fee],
            params=None,
            body=encode_json({"event": body}),
            timeout=timeout,
            max_retries=max_retries,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
        )

    async def estimate_instant_fees(  # type: ignore[override]
        self,
        *,
        code: str,
        external_subscription_id: str,
        properties: Mapping[str, Any] | None = None,
        transaction_id: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> builtins.list[FeeEstimate]:
        """Estimate instant fees for one event (``POST /events/estimate_instant_fees``)."""
        body = _estimate_body(code, external_subscription_id, properties, transaction_id, "event")
        return await self._call(
            "POST",
            "/events/estimate_instant_fees",
            key="fees",
            cls=list[_models.FeeEstimate],
            params=None,
            body=encode_json({"event": body}),
            timeout=timeout,
            max_retries=max_retries,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
        )

    async def batch_estimate_instant_fees(
        self,
        events: Sequence[Mapping[str, Any]],
        /,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> builtins.list[FeeEstimate]:
        """Estimate instant fees for several events at once.

        ``POST /events/batch_estimate_instant_fees``; each event is a mapping with ``code``,
        ``external_subscription_id`` and optionally ``properties`` and ``transaction_id``.
        """
        items = []
        for i, item in enumerate(require_list(events, "events", "event", non_empty=True)):
            if not isinstance(item, Mapping):
                raise LagoValidationError(f"events[{i}]", "must be a mapping")
            items.append(
                {
                    "event": _estimate_body(
                        item.get("code"),
                        item.get("external_subscription_id"),
                        item.get("properties"),
                        item.get("transaction_id"),
                        f"events[{i}]",
                    )
                }
            )
        return await self._call(
            "POST",
            "/events/batch_estimate_instant_fees",
            key="fees",
            cls=list[_models.FeeEstimate],
            params=None,
            body=encode_json({"events": items}),
            timeout=timeout,
            max_retries=max_retries,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
        )

    def ingestor(
        self,
        *,
        batch_size: int | None = None,
        flush_interval: float = 0.5,
        max_queue: int = 10_000,
        max_in_flight: int = 8,
        max_retries: int = 10,
        close_timeout: float | None = None,
        on_rejected: Callable[[RejectedEvent], Any] | None = None,
        max_batch_bytes: int | None = None,
        on_progress: Callable[[IngestStats], Any] | None = None,
        progress_interval: float = 1.0,
        spool: str | os.PathLike[str] | None = None,
        spool_sync: str = "normal",
    ) -> EventIngestor:
        """A high-volume event sender: ``async with lago.events.ingestor() as ingest:``.

        ``await ingest.send(event)`` queues (waiting for room when ``max_queue`` events are
        pending), batches of ``batch_size`` (default: the batch limit) go out when full or
        after ``flush_interval`` seconds, ``max_in_flight`` at once, each retried up to
        ``max_retries`` times; leaving the block delivers everything (within
        ``close_timeout``, if given). ``max_batch_bytes`` caps the size of one request for
        proxies that limit bodies. ``on_progress`` is called with the ingestor's
        :class:`~lago_async.IngestStats` every ``progress_interval`` seconds and once at the
        end. ``spool="events.db"`` keeps accepted events in a SQLite file until they are
        settled (``send`` returns once the event is on disk; a crashed run's events are sent
        by the next ingestor opened on it); ``spool_sync="full"`` makes each write survive a
        power loss. See :class:`~lago_async.EventIngestor` for the guarantees and the
        outcome counters.
        """
        from .._ingest import EventIngestor

        return EventIngestor(
            self._client,
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_queue=max_queue,
            max_in_flight=max_in_flight,
            max_retries=max_retries,
            close_timeout=close_timeout,
            on_rejected=on_rejected,
            max_batch_bytes=max_batch_bytes,
            on_progress=on_progress,
            progress_interval=progress_interval,
            spool=spool,
            spool_sync=spool_sync,
        )


def _estimate_body(
    code: Any,
    external_subscription_id: Any,
    properties: Any,
    transaction_id: Any,
    field: str,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": require_str(code, f"{field}.code"),
        "external_subscription_id": require_str(
            external_subscription_id, f"{field}.external_subscription_id"
        ),
    }
    if properties is not None:
        if not isinstance(properties, Mapping):
            raise LagoValidationError(f"{field}.properties", "must be a mapping")
        body["properties"] = dict(properties)
    if transaction_id is not None:
        body["transaction_id"] = require_str(transaction_id, f"{field}.transaction_id")
    return body
