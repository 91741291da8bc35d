"""``EventIngestor``: high-volume event sending that loses nothing and bills nothing twice.

How it keeps its promises:

* Every event is checked and encoded to JSON when it is accepted (``send``), so a bad event
  raises in the caller, and the queue holds compact bytes rather than the caller's objects.
* The queue is bounded: ``send`` waits for room (backpressure) and ``send_nowait`` raises.
  Events count against ``max_queue`` from acceptance until they are settled, so memory is
  bounded by ``max_queue`` however slow the server is.
* Batches go to ``POST /events/batch`` (at most the batch limit each), when full or after
  ``flush_interval``, with at most ``max_in_flight`` requests at once.
* Whole batches are retried on connection errors, timeouts, 408, 429 and 5xx with jittered
  backoff; a 429 pauses every sender until the reset the server announced.
* Lago refuses a whole batch when one event is bad (422, details keyed by index). The refusal
  is resolved event by event: an event refused only as ``value_already_exist`` was stored
  earlier (its answer was lost and the batch retried) and counts as a duplicate, an event
  with any other error is rejected with the server's details, and every other event of the
  batch is sent again. Lago stores each ``transaction_id`` once, so sending again is safe.
* ``flush`` waits until everything accepted so far is settled; leaving the ``async with``
  block flushes; a close deadline turns what is still pending into reported failures.

Every accepted event ends in exactly one of ``delivered``, ``duplicates``, ``rejected`` or
``failed`` in :attr:`EventIngestor.stats`; the last two are also listed with their reasons.

With a spool (:mod:`lago_async._spool`), each accepted event is also written to SQLite before
``send`` returns, and deleted once delivered, a duplicate or rejected; failed events stay
there, and the next ingestor opened on the spool sends them (and anything a crash left) first.
Each event then carries its spool id next to its bytes (``_Packer.ids``), so that whatever
settles an event can delete exactly that row.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
import operator
import os
import threading
import warnings
from array import array
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import attrs
import orjson

from . import _transport
from ._errors import (
    APIConnectionError,
    APIError,
    LagoError,
    LagoValidationError,
    RateLimitError,
    SpoolError,
    UnprocessableEntityError,
)
from ._spool import Spool, check_options
from ._transport import is_retryable_status, retry_hint
from ._validate import encode_event, encode_plain_events

if TYPE_CHECKING:
    from ._client import AsyncLago
    from .types import EventInput

__all__ = ["EventIngestor", "FailedEvent", "IngestQueueFull", "IngestStats", "RejectedEvent"]

log = logging.getLogger("lago_async.ingest")

EXIT_FLUSH_TIMEOUT = 10.0
"""Seconds an ingestor left open is flushed for when its client closes (or at exit)."""

_DUPLICATE = {"transaction_id": ["value_already_exist"]}
_BATCH_OPEN = b'{"events":['
_BATCH_CLOSE = b"]}"
_MIN_BATCH_BYTES = 1024
_SPOOL_CHUNK = 128  # events send_many hands to the spool at once


class IngestQueueFull(LagoError):
    """``send_nowait`` found the ingestor's queue full (``max_queue`` events not yet settled)."""


class IngestorClosed(LagoError):
    """The ingestor is closed (or closing) and accepts no more events."""


@attrs.frozen
class RejectedEvent:
    """An event Lago refused for a reason other than being a duplicate; it was not stored."""

    event: dict[str, Any]
    """The event as it was sent."""
    details: dict[str, Any]
    """Lago's per-field reasons, e.g. ``{"code": ["value_is_mandatory"]}``."""

    @property
    def transaction_id(self) -> str:
        """The rejected event's ``transaction_id``."""
        return str(self.event.get("transaction_id"))


@attrs.frozen
class FailedEvent:
    """An event whose delivery could not be confirmed: retries ran out, the close deadline
    passed, or the server refused the whole request (a wrong API key, say).

    It may or may not have been stored; sending it again is safe because Lago stores each
    ``transaction_id`` once.
    """

    event: dict[str, Any]
    """The event as it was sent."""
    reason: str
    """Why delivery was not confirmed."""

    @property
    def transaction_id(self) -> str:
        """The failed event's ``transaction_id``."""
        return str(self.event.get("transaction_id"))


@attrs.frozen
class IngestStats:
    """A snapshot of an ingestor's counters.

    Once everything is settled, ``accepted == delivered + duplicates + rejected + failed``.
    """

    accepted: int
    """Events taken by ``send``/``send_nowait``."""
    delivered: int
    """Events Lago confirmed it stored."""
    duplicates: int
    """Events Lago already had (stored by an earlier attempt whose answer was lost)."""
    rejected: int
    """Events Lago refused as invalid (see :attr:`EventIngestor.rejected`)."""
    failed: int
    """Events whose delivery could not be confirmed (see :attr:`EventIngestor.failed`)."""
    retries: int
    """Batch requests sent again after an error."""
    batches: int
    """Batch requests sent, retries included."""
    queued: int
    """Events accepted and not yet in a request."""
    in_flight: int
    """Events in requests under way or waiting to be retried."""
    recovered: int = 0
    """Events taken from the spool, left there by an earlier ingestor (a crash, or failed
    events kept for a later run); they are counted in ``accepted`` too."""

    @property
    def settled(self) -> int:
        """Events with a final outcome."""
        return self.delivered + self.duplicates + self.rejected + self.failed


class EventIngestor:
    """Sends any number of events through ``POST /events/batch``, concurrently and safely.

    Get one from :meth:`lago.events.ingestor() <lago_async.resources.AsyncEvents.ingestor>`::

        async with lago.events.ingestor() as ingest:
            for n in range(100_000):
                await ingest.send({"transaction_id": f"tx-{n}", "code": "api_calls",
                                   "external_subscription_id": "sub_1"})
        print(ingest.stats)

    Args:
        batch_size: events per request; at most (and by default) the client's
            ``batch_limit``.
        flush_interval: seconds an incomplete batch waits for more events before it is sent.
        max_queue: events held at most (accepted and not yet settled); ``send`` waits and
            ``send_nowait`` raises beyond it. At least ``batch_size``.
        max_in_flight: batch requests under way at once.
        max_retries: how many times one batch is sent again after retryable errors before
            its events are reported as failed.
        close_timeout: seconds ``aclose`` (leaving the block) waits for pending events before
            reporting them as failed; ``None`` waits as long as retries go on.
        on_rejected: called with each :class:`RejectedEvent` (exceptions it raises are logged
            and ignored).
        on_progress: called with an :class:`IngestStats` snapshot every
            ``progress_interval`` seconds while the ingestor is open, and once more with the
            final figures when it closes (exceptions it raises are logged and ignored). It
            runs in the ingestor's event loop: keep it quick.
        progress_interval: seconds between two ``on_progress`` calls.
        max_batch_bytes: the largest request body to send (a proxy in front of Lago may
            refuse larger ones with 413), or ``None`` for no limit. Batches are cut before
            they would pass it, and an event too large to fit on its own is refused by
            ``send``. Whatever the setting, a 413 answer splits the batch in halves down to
            single events, and a single event refused with 413 is reported as rejected.
        spool: a file path: keep every accepted event in this SQLite file until it is
            settled, so that a crash loses nothing ``send`` accepted. ``send`` then returns
            once the event is on disk; opening an ingestor on a spool left with events sends
            them first; events that *failed* stay in the spool for the next ingestor opened
            on it. One live ingestor per spool: another one raises
            :class:`~lago_async.SpoolLockedError`. See the ingestion guide.
        spool_sync: ``"normal"`` (default) survives a crash of the process; ``"full"`` also
            survives a power loss or an operating system crash, at the price of a disk flush
            per write.
    """

    def __init__(
        self,
        client: AsyncLago,
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
    ) -> None:
        limit = client.batch_limit
        size = limit if batch_size is None else batch_size
        if not isinstance(size, int) or not 1 <= size <= limit:
            raise LagoValidationError("batch_size", f"must be between 1 and {limit}, got {size!r}")
        if not isinstance(max_queue, int) or max_queue < size:
            raise LagoValidationError(
                "max_queue", f"must be an integer >= batch_size ({size}), got {max_queue!r}"
            )
        if not isinstance(max_in_flight, int) or max_in_flight < 1:
            raise LagoValidationError("max_in_flight", f"must be >= 1, got {max_in_flight!r}")
        if not flush_interval > 0:
            raise LagoValidationError("flush_interval", f"must be > 0, got {flush_interval!r}")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise LagoValidationError("max_retries", f"must be >= 0, got {max_retries!r}")
        if not progress_interval > 0:
            raise LagoValidationError(
                "progress_interval", f"must be > 0 seconds, got {progress_interval!r}"
            )
        if max_batch_bytes is not None and (
            not isinstance(max_batch_bytes, int)
            or isinstance(max_batch_bytes, bool)
            or max_batch_bytes < _MIN_BATCH_BYTES
        ):
            raise LagoValidationError(
                "max_batch_bytes",
                f"must be an integer >= {_MIN_BATCH_BYTES} (or None), got {max_batch_bytes!r}",
            )
        self._transport = client._transport
        self.batch_size: int = size
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.max_in_flight = max_in_flight
        self.max_retries = max_retries
        self.close_timeout = close_timeout
        self.on_rejected = on_rejected
        self.max_batch_bytes = max_batch_bytes
        self.on_progress = on_progress
        self.progress_interval = progress_interval
        self._progress: asyncio.TimerHandle | None = None
        # What the events of one request may take, the body's wrapper left out (0: no limit).
        self._event_budget = (
            0 if max_batch_bytes is None else max_batch_bytes - len(_BATCH_OPEN + _BATCH_CLOSE)
        )
        spool_path, sync = check_options(spool, spool_sync)
        self.spool: str | None = spool_path
        """The spool file, or ``None`` without a spool."""
        self.spool_sync: str = sync
        """The spool's durability setting."""

        self.rejected: list[RejectedEvent] = []
        """Events Lago refused as invalid, with its reasons."""
        self.failed: list[FailedEvent] = []
        """Events whose delivery could not be confirmed, with the reason."""

        spooled = spool_path is not None
        self._buffer = _Packer(spooled)
        # No spool and no byte budget: the hot path only appends to the buffer's tail.
        self._lean = not spooled and max_batch_bytes is None
        self._accepted = 0
        self._recovered = 0
        self._delivered = 0
        self._duplicates = 0
        self._retries = 0
        self._batches = 0
        self._in_flight = 0
        self._held = 0  # accepted and not settled: what max_queue bounds
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots: asyncio.Semaphore | None = None
        self._room: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._linger: asyncio.TimerHandle | None = None
        self._paused_until = 0.0
        self._closed = False
        # Thread-safe entry (send_threadsafe): events encoded in the callers' threads.
        self._inbox = _Packer(spooled)  # filled by other threads, under _inbox_lock
        self._inbox_lock = threading.Lock()
        self._inbox_room = threading.Condition(self._inbox_lock)
        self._inbox_scheduled = False
        self._threaded = False
        self._loop_thread: int | None = None
        self._stopped: asyncio.Event | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._stop_reason = "cancelled before delivery was confirmed"
        # The spool, opened (and locked) last, once every other argument is known to be good.
        self._recovery_done = threading.Event()  # what the spool held is queued
        self._recovery_done_async: asyncio.Event | None = None
        self._spool: Spool | None = None
        if spool_path is not None:
            self._spool = Spool(spool_path, sync)
        else:
            self._recovery_done.set()

    def __repr__(self) -> str:
        return f"<EventIngestor {self.stats}>"

    # -- lifecycle ---------------------------------------------------------------------------

    def _start(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
            self._slots = asyncio.Semaphore(self.max_in_flight)
            self._room = asyncio.Event()
            self._loop_thread = threading.get_ident()
            self._transport._holder.ingestors.add(self)
            self._stopped = asyncio.Event()
            self._watcher = loop.create_task(self._watch_for_shutdown())
            if self.on_progress is not None:
                self._progress = loop.call_later(self.progress_interval, self._tick)
            self._recovery_done_async = asyncio.Event()
            spool = self._spool
            if spool is not None:
                spool.start(loop)
                if spool.pending_at_open:
                    task = loop.create_task(self._recover(spool))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                else:
                    self._recovery_done.set()
            if self._recovery_done.is_set():
                self._recovery_done_async.set()
        return loop

    async def _recover(self, spool: Spool) -> None:
        """Queue the events an earlier ingestor left in the spool, before any new one."""
        assert self._room is not None and self._recovery_done_async is not None
        chunk = max(self.batch_size, 1_000)
        after = 0
        try:
            while True:
                rows = await spool.read(after, chunk)
                if not rows:
                    break
                for ident, data in rows:
                    while self._held >= self.max_queue:
                        self._room.clear()
                        await self._room.wait()
                    self._recovered += 1
                    self._accept_spooled(data, ident)
                after = rows[-1][0]
            if self._recovered:
                log.info(
                    "lago ingestor: %d events left in the spool %s are queued",
                    self._recovered,
                    spool.path,
                )
        except SpoolError:
            log.exception("lago ingestor: reading the spool %s failed", spool.path)
        finally:
            self._recovery_done.set()
            self._recovery_done_async.set()

    def _tick(self) -> None:
        """Report progress every ``progress_interval`` seconds until the ingestor is closed."""
        self._report_progress()
        if not self._closed and self._loop is not None:
            self._progress = self._loop.call_later(self.progress_interval, self._tick)
        else:
            self._progress = None

    def _report_progress(self) -> None:
        if self.on_progress is None:
            return
        try:
            self.on_progress(self.stats)
        except Exception:
            log.exception("lago ingestor: on_progress raised")

    async def _watch_for_shutdown(self) -> None:
        """Wait for the ingestor to be closed; cancelled first, the loop is shutting down.

        ``asyncio.run`` cancels every task left when its main coroutine returns: an
        ingestor that was never closed then reports everything it still holds (buffered
        events included) as failed, and warns with the count not delivered.
        """
        assert self._stopped is not None
        try:
            await self._stopped.wait()
        except asyncio.CancelledError:
            if not self._stopped.is_set():
                self._abandon()
            raise

    def _abandon(self) -> None:
        reason = "the event loop stopped before the ingestor was closed"
        self._stop(reason)
        if self._spool is not None:
            self._spool.close_nowait()
        stats = self.stats
        # Batches still running report their events when their own cancellation lands.
        not_delivered = stats.failed + stats.in_flight
        message = (
            f"an event ingestor was never closed: {reason}; {not_delivered} of "
            f"{stats.accepted} events not delivered (listed in its .failed)"
        )
        log.warning("lago ingestor: %s", message)
        warnings.warn(message, ResourceWarning, stacklevel=2)

    def _stop(self, reason: str) -> list[asyncio.Task[None]]:
        """Close, report what is not yet in a request as failed, cancel the batches.

        Each cancelled batch reports its own unsettled events with ``reason``.
        """
        with self._inbox_lock:
            self._closed = True
            self._inbox_room.notify_all()
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        self._pull_inbox(dispatch=False)
        self._fail(self._buffer.take(len(self._buffer)).items(), reason, from_batch=False)
        self._stop_reason = reason
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        return tasks

    async def __aenter__(self) -> EventIngestor:
        self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self, timeout: float | None = None) -> None:
        """Stop accepting events, deliver what was accepted, and wait for it to settle.

        Waits at most ``timeout`` seconds (default: ``close_timeout``); what is still pending
        then is reported in :attr:`failed`, never dropped silently. If the task calling this
        is cancelled, the ingestor's own tasks keep delivering while the loop runs.
        """
        self._start()
        with self._inbox_lock:
            self._closed = True
            self._inbox_room.notify_all()
        deadline = self.close_timeout if timeout is None else timeout
        try:
            await asyncio.wait_for(asyncio.shield(self._drain_all()), deadline)
        except asyncio.TimeoutError:
            tasks = self._stop(
                f"close deadline of {deadline}s passed before delivery was confirmed"
            )
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._spool is not None:
            await self._spool.aclose()
        # Not in a `finally`: an interrupted close leaves the ingestor for the client's close.
        self._transport._holder.ingestors.discard(self)
        assert self._stopped is not None
        if not self._stopped.is_set():
            self._stopped.set()
            if self._progress is not None:
                self._progress.cancel()
                self._progress = None
            self._report_progress()  # the final figures, once everything is settled

    async def _close_unclosed(self) -> None:
        """Close an ingestor left open when its client closes (or the program exits).

        Flushes for at most ``close_timeout`` (default :data:`EXIT_FLUSH_TIMEOUT`) and warns
        with the number of events not delivered.
        """
        timeout = self.close_timeout if self.close_timeout is not None else EXIT_FLUSH_TIMEOUT
        await self.aclose(timeout)
        stats = self.stats
        message = (
            f"an event ingestor was not closed before its client: flushed it for up to "
            f"{timeout}s; {stats.failed} of {stats.accepted} events not delivered"
            + (" (listed in its .failed)" if stats.failed else "")
        )
        log.warning("lago ingestor: %s", message)
        warnings.warn(message, ResourceWarning, stacklevel=2)

    async def flush(self) -> None:
        """Send everything accepted so far and wait until all of it is settled."""
        self._start()
        await self._drain_all()

    async def _drain_all(self) -> None:
        while True:
            self._pull_inbox(dispatch=False)
            self._dispatch(everything=True)
            running = [task for task in self._tasks if not task.done()]
            if not running:
                return
            # asyncio.wait, unlike gather, never cancels the batches when this wait is
            # cancelled (a caller giving up on flush() must not stop delivery), and it
            # yields to the loop even when every task is already done (gather does not on
            # Python 3.12+, which would spin here before the done-callbacks run).
            await asyncio.wait(running)

    # -- accepting ---------------------------------------------------------------------------

    @property
    def stats(self) -> IngestStats:
        """The current counters (a snapshot)."""
        return IngestStats(
            accepted=self._accepted + len(self._inbox),
            delivered=self._delivered,
            duplicates=self._duplicates,
            rejected=len(self.rejected),
            failed=len(self.failed),
            retries=self._retries,
            batches=self._batches,
            queued=len(self._buffer) + len(self._inbox),
            in_flight=self._in_flight,
            recovered=self._recovered,
        )

    async def send(self, event: EventInput | Mapping[str, Any]) -> None:
        """Check and queue one event, waiting for room when the queue is full.

        Raises :class:`LagoValidationError` (naming the field) for a bad event, at once.
        Returns when the event is accepted (with a spool: and written to it), not when it is
        delivered: see :meth:`flush`.
        """
        data = encode_event(event)
        if self._lean and self._held < self.max_queue and self._loop is not None:
            # _accept's lean path, inlined: the step every event of a busy producer takes
            if self._closed:
                self._check_open()
            self._accepted += 1
            self._held += 1
            buffer = self._buffer
            tail = buffer.tail
            tail.append(data)
            count = len(tail) + len(buffer.ends)
            if count >= self.batch_size:
                self._dispatch()
            elif count == 1:
                self._arm_linger()
            return
        if self._event_budget and len(data) > self._event_budget:
            self._too_large(data)
        if self._spool is not None:
            await self._send_spooled(data)
            return
        if self._loop is None:
            self._start()
        if self._held >= self.max_queue:
            await self._wait_for_room()
        self._accept(data)

    async def _send_spooled(self, data: bytes) -> None:
        spool = self._spool
        assert spool is not None
        await self._wait_for_recovery()
        if self._held >= self.max_queue:
            await self._wait_for_room()
        self._check_open()
        ident = spool.write(data)
        self._accept_spooled(data, ident)
        await spool.wait(ident)

    async def _wait_for_recovery(self) -> None:
        """Start if needed, and wait until what the spool held is queued."""
        if self._loop is None:
            self._start()
        done = self._recovery_done_async
        assert done is not None
        if not done.is_set():
            await done.wait()

    async def _wait_for_room(self, need: int = 1) -> None:
        """Wait until ``need`` more events fit under ``max_queue`` (or raise if closed)."""
        while self._held > self.max_queue - need:
            self._check_open()
            assert self._room is not None
            self._room.clear()
            await self._room.wait()

    async def send_many(
        self, events: Iterable[EventInput | Mapping[str, Any]], timeout: float | None = None
    ) -> int:
        """Check and queue many events in order, waiting for room whenever the queue is full.

        Cheaper per event than awaiting :meth:`send` for each (no coroutine per event), for
        backfills and bulk producers; ``events`` may be any iterable, a generator included.
        In the async ingestor a ``list`` or ``tuple`` is cheaper still: whole batches of
        plain events (dicts that need no conversion) are checked and encoded together, in
        one orjson call per request. An iterator's events (and, in ``lago_sync``, every
        event) are encoded one by one, as they come: a generator may hand out one dict and
        change it for the next event.
        Returns how many were accepted. A bad event raises :class:`LagoValidationError`
        naming it (``events[12].code``); the events before it are accepted, the rest are not
        read. ``timeout`` is accepted for the blocking twin's sake, which may wait that long
        for room per event; here waiting is the caller's to bound (``asyncio.timeout``).
        """
        if self._spool is not None:
            return await self._send_many_spooled(events)
        if self._loop is None:
            self._start()
        if self._lean and (type(events) is list or type(events) is tuple):
            return await self._send_many_sequence(events)
        budget = self._event_budget
        lean = self._lean
        buffer = self._buffer
        size = self.batch_size
        accepted = 0
        for index, event in enumerate(events):
            # Not encode_event(event, index=index): on this hot path the extra argument costs
            # about 175 instructions per event; the try costs nothing until an event is bad.
            try:
                data = encode_event(event)
            except LagoValidationError:
                encode_event(event, index=index)  # raises again, naming the index
                raise
            if lean and self._held < self.max_queue:
                # _accept's lean path, inlined (as in send)
                if self._closed:
                    self._check_open()
                self._accepted += 1
                self._held += 1
                tail = buffer.tail
                tail.append(data)
                count = len(tail) + len(buffer.ends)
                if count >= size:
                    self._dispatch()
                elif count == 1:
                    self._arm_linger()
                accepted += 1
                continue
            if budget and len(data) > budget:
                self._too_large(data)
            if self._held >= self.max_queue:
                await self._wait_for_room()
            self._accept(data)
            accepted += 1
        return accepted

    async def _send_many_sequence(
        self, events: list[EventInput | Mapping[str, Any]] | tuple[Any, ...]
    ) -> int:
        """:meth:`send_many` for a list or tuple, on the lean path (no spool, no byte budget).

        While the buffer is empty and a whole batch of events is left, the batch is checked
        and encoded in one step (:func:`encode_plain_events`) and becomes a request of its
        own; otherwise (a partial batch, or a batch holding an event that needs the full
        checks) one event goes the way :meth:`send` takes it. The list is read by index at
        each step, as a ``for`` loop over it would, so what the caller changes in it while
        this waits for room is seen alike.
        """
        buffer = self._buffer
        size = self.batch_size
        index = 0
        while index < len(events):
            if not buffer.tail and not buffer.ends and index + size <= len(events):
                if self._held > self.max_queue - size:
                    await self._wait_for_room(size)
                    continue  # the buffer may have changed meanwhile: look again
                if self._closed:
                    self._check_open()
                data = encode_plain_events(events[index : index + size])
                if data is not None:
                    self._accepted += size
                    self._held += size
                    self._spawn(_Chunk(b'{"events":' + data + b"}", size))
                    index += size
                    continue
            event = events[index]
            data = encode_event(event, index=index)
            if self._held >= self.max_queue:
                await self._wait_for_room()
            self._accept(data)
            index += 1
        return index

    async def _send_many_spooled(self, events: Iterable[EventInput | Mapping[str, Any]]) -> int:
        """:meth:`send_many` with a spool: one wait for the disk, after the last event."""
        spool = self._spool
        assert spool is not None
        await self._wait_for_recovery()
        budget = self._event_budget
        accepted = 0
        last = 0
        chunk: list[bytes] = []  # encoded, handed to the spool and accepted together
        room = 0  # how many more the chunk may take without passing max_queue
        try:
            for index, event in enumerate(events):
                data = encode_event(event, index=index)
                if budget and len(data) > budget:
                    self._too_large(data)
                if not room:
                    if chunk:
                        last = self._accept_chunk(chunk)
                        accepted += len(chunk)
                        chunk = []
                    if self._held >= self.max_queue:
                        await self._wait_for_room()
                    room = min(self.max_queue - self._held, _SPOOL_CHUNK)
                chunk.append(data)
                room -= 1
            if chunk:
                last = self._accept_chunk(chunk)
                accepted += len(chunk)
        except LagoValidationError:
            # The events before the bad one are accepted: return only once they are on disk.
            if chunk:
                last = self._accept_chunk(chunk)
            if last:
                await spool.wait(last)
            raise
        except LagoError:
            if last:
                await spool.wait(last)
            raise
        if last:
            await spool.wait(last)
        return accepted

    def _accept_chunk(self, chunk: list[bytes]) -> int:
        """Hand encoded events to the spool, accept them, and return the last one's id."""
        spool = self._spool
        assert spool is not None
        self._check_open()
        last = spool.write_many(chunk)
        ident = last - len(chunk)
        for data in chunk:
            ident += 1
            self._accept_spooled(data, ident)
        return last

    def send_many_threadsafe(
        self, events: Iterable[EventInput | Mapping[str, Any]], timeout: float | None = None
    ) -> int:
        """:meth:`send_many` from any thread: each event as :meth:`send_threadsafe` takes it.

        Blocks while the queue is full; raises :class:`IngestQueueFull` if no room appears
        within ``timeout`` seconds for one event. Returns how many were accepted (with a
        spool: once they are all written to it).
        """
        budget = self._event_budget
        accepted = 0
        last = 0
        try:
            for index, event in enumerate(events):
                data = encode_event(event, index=index)
                if budget and len(data) > budget:
                    self._too_large(data)
                last = self._put_threadsafe(data, timeout) or last
                accepted += 1
        finally:
            if last:
                assert self._spool is not None
                self._spool.wait_threadsafe(last)
        return accepted

    def send_nowait(self, event: EventInput | Mapping[str, Any]) -> None:
        """Check and queue one event, or raise :class:`IngestQueueFull` when there is no room.

        Not available with a spool (it raises :class:`SpoolError`): writing the event to disk
        takes a wait that this method cannot make; use :meth:`send`.
        """
        if self._spool is not None:
            raise SpoolError(
                "send_nowait cannot wait for the spool's disk write; use `await send(...)`"
            )
        data = encode_event(event)
        if self._event_budget and len(data) > self._event_budget:
            self._too_large(data)
        self._start()
        if self._held >= self.max_queue:
            raise IngestQueueFull(
                f"{self._held} events are waiting (max_queue={self.max_queue}); "
                "use `await send(...)` to wait for room"
            )
        self._accept(data)

    # tools/generate_sync.py makes a coroutine ``X`` whose sibling ``X_threadsafe`` takes the
    # same parameters call that sibling in its blocking twin: lago_sync's ``send`` is this
    # method, run in the caller's thread. Keep the two names paired.
    def send_threadsafe(
        self, event: EventInput | Mapping[str, Any], timeout: float | None = None
    ) -> None:
        """Check and queue one event from any thread, blocking while the queue is full.

        The event is checked and encoded in the calling thread and handed to the ingestor's
        loop in bulk, so many threads can send at high rates. Raises :class:`IngestQueueFull`
        if no room appears within ``timeout`` seconds (``None``: wait as long as needed).
        With a spool, returns once the event is written to it.
        """
        data = encode_event(event)
        if self._event_budget and len(data) > self._event_budget:
            self._too_large(data)
        ident = self._put_threadsafe(data, timeout)
        if ident:
            assert self._spool is not None
            self._spool.wait_threadsafe(ident)

    def _put_threadsafe(self, data: bytes, timeout: float | None) -> int:
        """Queue one encoded event from any thread; its spool id (0 without a spool)."""
        loop = self._loop
        if loop is None:
            raise LagoError("the ingestor is not started: enter its block first")
        spool = self._spool
        ident = 0
        if spool is not None and not self._recovery_done.is_set():
            if threading.get_ident() == self._loop_thread:
                raise IngestQueueFull(
                    "the events left in the spool are still being queued, and "
                    "send_threadsafe was called on the ingestor's own event loop thread, where "
                    "waiting would block them forever; use `await send(...)` there"
                )
            if not self._recovery_done.wait(timeout):
                raise IngestQueueFull(
                    f"the events left in the spool were not all queued within {timeout}s"
                )
        with self._inbox_room:
            self._threaded = True
            self._check_open()
            while self._held + len(self._inbox) >= self.max_queue:
                if threading.get_ident() == self._loop_thread:
                    # Waiting here would block the very loop that makes room: a deadlock.
                    raise IngestQueueFull(
                        f"the queue is full (max_queue={self.max_queue}) and send_threadsafe "
                        "was called on the ingestor's own event loop thread, where waiting "
                        "would block delivery forever; use `await send(...)` there"
                    )
                if not self._inbox_room.wait(timeout):
                    raise IngestQueueFull(f"no room within {timeout}s (max_queue={self.max_queue})")
                self._check_open()
            self._inbox.add(data)
            if spool is not None:
                ident = spool.write(data)
                self._inbox.add_id(ident)
            schedule = not self._inbox_scheduled
            self._inbox_scheduled = True
        if schedule:
            loop.call_soon_threadsafe(self._pull_inbox)
        return ident

    def _too_large(self, data: bytes) -> None:
        raise LagoValidationError(
            "event",
            f"encodes to {len(data)} bytes, more than one request of max_batch_bytes="
            f"{self.max_batch_bytes} can carry",
        )

    def _check_open(self) -> None:
        if self._closed:
            raise IngestorClosed("the ingestor is closed")

    def _pull_inbox(self, dispatch: bool = True) -> None:
        """Move the events other threads queued into the buffer (runs in the loop)."""
        with self._inbox_lock:
            self._inbox_scheduled = False
            if not self._inbox:
                return
            chunk = self._inbox.take(len(self._inbox))
            self._accepted += len(chunk)
            self._held += len(chunk)
        self._buffer.extend(chunk)
        if dispatch:
            self._dispatch()
            self._arm_linger()

    def _accept(self, data: bytes) -> None:
        # The hot path of every event: _Packer.add inlined, no other calls unless a batch
        # is full or the buffer just became non-empty.
        if self._closed:
            self._check_open()
        self._accepted += 1
        self._held += 1
        buffer = self._buffer
        if self._lean:
            tail = buffer.tail
            tail.append(data)
            count = len(tail) + len(buffer.ends)
            if count >= self.batch_size:
                self._dispatch()
            elif count == 1:
                self._arm_linger()
            return
        packed = buffer.data
        if packed:
            packed += b","
        packed += data
        ends = buffer.ends
        ends.append(len(packed))
        count = len(ends)
        if count >= self.batch_size or (self._event_budget and len(packed) > self._event_budget):
            self._dispatch()
        elif count == 1:
            self._arm_linger()

    def _accept_spooled(self, data: bytes, ident: int) -> None:
        """:meth:`_accept` for an event in the spool (new, or left by an earlier run)."""
        self._accepted += 1
        self._held += 1
        buffer = self._buffer
        packed = buffer.data
        if packed:
            packed += b","
        packed += data
        ends = buffer.ends
        ends.append(len(packed))
        ids = buffer.ids
        assert ids is not None
        ids.append(ident)
        count = len(ends)
        if count >= self.batch_size or (self._event_budget and len(packed) > self._event_budget):
            self._dispatch()
        elif count == 1:
            self._arm_linger()

    def _arm_linger(self) -> None:
        if self._linger is None and self._buffer:
            assert self._loop is not None
            self._linger = self._loop.call_later(self.flush_interval, self._on_linger)

    def _on_linger(self) -> None:
        self._linger = None
        self._dispatch(everything=True)

    def _dispatch(self, everything: bool = False) -> None:
        """Turn buffered events into batch tasks: the full batches, or all of them.

        A batch is full at ``batch_size`` events or, with ``max_batch_bytes``, when one more
        event would not fit in the request.
        """
        buffer = self._buffer
        buffer.pack()
        size = self.batch_size
        budget = self._event_budget
        while buffer and (
            everything or len(buffer) >= size or (budget and len(buffer.data) > budget)
        ):
            count = size
            if budget:
                # Events that fit: the offsets where events end only grow.
                count = min(size, max(1, bisect.bisect_right(buffer.ends, budget)))
            self._spawn(buffer.take(count))
        if not buffer and self._linger is not None:
            self._linger.cancel()
            self._linger = None

    def _spawn(self, batch: _Packer) -> None:
        assert self._loop is not None
        self._in_flight += len(batch)
        task = self._loop.create_task(self._run_batch(_Batch(batch)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- settling ----------------------------------------------------------------------------

    def _settle(self, count: int, *, from_batch: bool = True) -> None:
        if from_batch:
            self._in_flight -= count
        self._held -= count
        if self._room is not None and self._held < self.max_queue:
            self._room.set()
        if self._threaded:
            with self._inbox_room:
                self._inbox_room.notify_all()

    def _forget(self, ids: array[int] | list[int] | None) -> None:
        """Delete settled events from the spool (delivered, duplicates, rejected).

        Failed events are not forgotten: they stay in the spool for the next ingestor.
        """
        if ids and self._spool is not None:
            self._spool.forget(ids)

    def _fail(self, items: list[bytes], reason: str, *, from_batch: bool = True) -> None:
        if not items:
            return
        for data in items:
            self.failed.append(FailedEvent(event=orjson.loads(data), reason=reason))
        log.warning("lago ingestor: %d events not confirmed: %s", len(items), reason)
        self._settle(len(items), from_batch=from_batch)

    def _reject(self, data: bytes, details: dict[str, Any]) -> None:
        rejected = RejectedEvent(event=orjson.loads(data), details=details)
        self.rejected.append(rejected)
        if self.on_rejected is not None:
            try:
                self.on_rejected(rejected)
            except Exception:
                log.exception("lago ingestor: on_rejected raised")

    async def _run_batch(self, batch: _Batch) -> None:
        """Deliver one batch; whatever way this ends, every event of it has an outcome.

        The batch record holds every event of the batch that is not settled yet, split
        halves included; each outcome removes its events from the record in the same step
        that counts them, so the handlers below settle exactly what is left.
        """
        assert self._slots is not None
        try:
            async with self._slots:
                while batch.parts:
                    await self._send_part(batch)
        except asyncio.CancelledError:
            self._fail(batch.take_all(), self._stop_reason)
            raise
        except Exception as exc:  # a bug must not lose events: report them
            log.exception("lago ingestor: unexpected error")
            self._fail(batch.take_all(), f"unexpected error: {exc!r}")

    async def _send_part(self, batch: _Batch) -> None:
        """Send the batch's first part until it is settled, split, or given up on."""
        assert self._loop is not None
        loop = self._loop
        part = batch.parts[0]
        attempt = 0
        while True:
            wait = self._paused_until - loop.time()
            if wait > 0:
                await _transport._sleep(wait)
            paced = False
            self._batches += 1
            try:
                answer = await self._transport.request(
                    "POST",
                    "/events/batch",
                    body=part.body(),
                    max_retries=0,
                    decode=False,
                    ingest=True,
                )
            except UnprocessableEntityError as exc:
                items = part.items()
                if _too_many(exc) and len(items) > 1:
                    batch.split_first()
                    return
                remaining = self._resolve(part, items, exc)
                if remaining is None:
                    batch.parts.pop(0)
                    self._fail(items, f"refused: {exc}")
                elif remaining:
                    # The events Lago did not name were refused only for their neighbours:
                    # send them again (not a retry: the batch just got smaller).
                    batch.parts[0] = remaining
                else:
                    batch.parts.pop(0)
                return
            except APIError as exc:
                if exc.status == 413:
                    if len(part) > 1:
                        batch.split_first()
                    elif batch.maybe_stored:
                        # An earlier attempt went unanswered: it may have stored the event.
                        batch.parts.pop(0)
                        self._fail(
                            part.items(),
                            f"refused as too large after an unanswered attempt: {exc}",
                        )
                    else:
                        batch.parts.pop(0)
                        (data,) = part.items()
                        self._reject(data, {"event": [f"payload_too_large: {exc}"]})
                        self._settle(1)
                        self._forget(part.ids)
                    return
                if not is_retryable_status(exc.status):
                    batch.parts.pop(0)
                    self._fail(part.items(), f"refused: {exc}")
                    return
                if isinstance(exc, RateLimitError):
                    hint = retry_hint(exc.headers)
                    if (
                        "Retry-After" not in exc.headers
                        and "X-RateLimit-Limit" in exc.headers
                        and self._transport.pacer("POST", "/events/batch").rate is not None
                    ):
                        # Lago Cloud's limiter: the transport's pacer has slowed down, and
                        # spaces the retry itself. Pausing every sender until the window's
                        # (whole-second) reset would waste the rest of it.
                        paced = True
                    elif hint is not None:
                        # Capped like single calls: a reset of an hour must not stall us.
                        pause = min(hint, self._transport.max_retry_delay)
                        self._paused_until = max(self._paused_until, loop.time() + pause)
                else:
                    batch.maybe_stored = True  # a gateway's 5xx may hide a stored batch
                error = str(exc)
            except APIConnectionError as exc:
                batch.maybe_stored = True
                error = str(exc)
            else:
                if _confirms(answer):
                    batch.parts.pop(0)
                    self._delivered += len(part)
                    self._settle(len(part))
                    self._forget(part.ids)
                    return
                # A 2xx that is not Lago's answer (a proxy's page, an empty body): nothing
                # says the events were stored, so the attempt counts as failed.
                batch.maybe_stored = True
                error = f"unconfirmed answer to POST /events/batch: {_preview(answer)}"
            if paced:
                # Being held to the rate limit is not a failure: the retry waits for its paced
                # turn and does not use up max_retries (a close deadline still bounds it).
                self._retries += 1
                continue
            if attempt >= self.max_retries:
                batch.parts.pop(0)
                self._fail(part.items(), f"gave up after {attempt + 1} attempts: {error}")
                return
            attempt += 1
            self._retries += 1
            if self._paused_until <= loop.time() and not paced:
                await _transport._sleep(self._transport.backoff(attempt - 1))

    def _resolve(
        self, part: _Packer, pending: list[bytes], exc: UnprocessableEntityError
    ) -> _Packer | None:
        """Settle the events a 422 names and return the others (of ``part``, whose events
        are ``pending``), to be sent again.

        ``None`` when the refusal is not keyed by event index.
        """
        indexed: dict[int, Mapping[str, Any]] = {}
        for key, value in exc.error_details.items():
            try:
                index = int(key)
            except (TypeError, ValueError):
                return None
            if not 0 <= index < len(pending) or not isinstance(value, Mapping):
                return None
            indexed[index] = value
        if not indexed:
            return None
        ids = part.ids
        remaining = _Packer(ids is not None)
        settled: list[int] = []
        for index, data in enumerate(pending):
            problem = indexed.get(index)
            if problem is None:
                remaining.add(data)
                if ids is not None:
                    remaining.add_id(ids[index])
                continue
            if ids is not None:
                settled.append(ids[index])
            if dict(problem) == _DUPLICATE:
                self._duplicates += 1
            else:
                self._reject(data, dict(problem))
        self._settle(len(indexed))
        self._forget(settled)
        return remaining


class _Batch:
    """The events of one batch task that are not settled yet, in the parts still to send.

    A batch starts as one part; a refusal for size splits the first part in two. Every
    event stays in exactly one part until the step that settles it removes it.
    """

    __slots__ = ("maybe_stored", "parts")

    def __init__(self, events: _Packer) -> None:
        self.parts: list[_Packer] = [events]
        self.maybe_stored = False
        """Whether an attempt went unanswered (its events may be stored): no later refusal
        can then say an event of this batch was not stored."""

    def __len__(self) -> int:
        return sum(len(part) for part in self.parts)

    def split_first(self) -> None:
        """Replace the first part by its two halves."""
        first = self.parts[0]
        items = first.items()
        ids = first.ids
        half = len(items) // 2
        if ids is None:
            self.parts[0:1] = [_Packer.of(items[:half]), _Packer.of(items[half:])]
        else:
            self.parts[0:1] = [
                _Packer.of(items[:half], ids[:half]),
                _Packer.of(items[half:], ids[half:]),
            ]

    def take_all(self) -> list[bytes]:
        """Remove and return every event still held."""
        items = [item for part in self.parts for item in part.items()]
        self.parts = []
        return items


class _Packer:
    """Encoded events stored back to back, comma-separated, with the offset where each ends.

    About the size of the JSON per event (plus 4 bytes), where a list of ``bytes`` would cost
    an object header each, and orjson's results keep a 4 KiB allocation each. A batch's body
    is one concatenation away. With a spool, ``ids`` holds each event's spool id (in step
    with ``ends``); without, it is ``None``.
    """

    __slots__ = ("data", "ends", "ids", "tail")

    def __init__(self, spooled: bool = False) -> None:
        self.data = bytearray()
        self.ends = array("I")
        self.ids: array[int] | None = array("q") if spooled else None
        self.tail: list[bytes] = []
        """Events appended by the ingestor's hot path and not yet packed: a list append is
        the cheapest step per event; :meth:`pack` joins them (in one C call) whenever the
        packer is read. Never holds more than a batch: orjson's results keep 4 KiB each."""

    def pack(self) -> None:
        """Move the events of :attr:`tail` to the end of :attr:`data` and :attr:`ends`."""
        tail = self.tail
        if not tail:
            return
        data = self.data
        start = len(data) + 1 if data else 0
        if data:
            data += b","
        data += b",".join(tail)
        # where event i ends: start + (lengths of events 0..i) + i commas
        self.ends.extend(
            map(operator.add, itertools.accumulate(map(len, tail)), itertools.count(start))
        )
        self.tail = []

    @classmethod
    def of(cls, items: list[bytes], ids: array[int] | None = None) -> _Packer:
        """A packer holding ``items`` (and their spool ``ids``, if spooled)."""
        packer = cls(ids is not None)
        for item in items:
            packer.add(item)
        if ids is not None:
            packer.ids = array("q", ids)
        return packer

    def __len__(self) -> int:
        return len(self.ends) + len(self.tail)

    def add(self, item: bytes) -> None:
        """Append one encoded event."""
        self.pack()
        data = self.data
        if data:
            data += b","
        data += item
        self.ends.append(len(data))

    def add_id(self, ident: int) -> None:
        """Record the spool id of the event just added."""
        assert self.ids is not None
        self.ids.append(ident)

    def extend(self, other: _Packer) -> None:
        """Move every event of ``other`` to the end of this packer (``other`` ends empty)."""
        self.pack()
        other.pack()
        if not other.ends:
            return
        if self.ids is not None and other.ids is not None:
            self.ids.extend(other.ids)
            other.ids = array("q")
        if not self.ends:
            self.data, self.ends = other.data, other.ends
            other.data, other.ends = bytearray(), array("I")
            return
        shift = len(self.data) + 1
        self.data += b","
        self.data += other.data
        self.ends.extend(end + shift for end in other.ends)
        other.data, other.ends = bytearray(), array("I")

    def take(self, count: int) -> _Packer:
        """Remove the first ``count`` events and return them in a packer of their own."""
        self.pack()
        out = _Packer()
        ids = self.ids
        if count >= len(self.ends):
            out.data, out.ends, out.ids = self.data, self.ends, ids
            self.data, self.ends = bytearray(), array("I")
            if ids is not None:
                self.ids = array("q")
            return out
        if ids is not None:
            out.ids = ids[:count]
            self.ids = ids[count:]
        cut = self.ends[count - 1]
        out.data = self.data[:cut]
        out.ends = self.ends[:count]
        shift = cut + 1
        self.data = self.data[shift:]
        self.ends = array("I", [end - shift for end in self.ends[count:]])
        return out

    def items(self) -> list[bytes]:
        """The encoded events, one ``bytes`` each."""
        self.pack()
        data = bytes(self.data)
        out: list[bytes] = []
        start = 0
        for end in self.ends:
            out.append(data[start:end])
            start = end + 1
        return out

    def body(self) -> bytes:
        """The ``POST /events/batch`` body holding these events."""
        self.pack()
        return _BATCH_OPEN + self.data + _BATCH_CLOSE


class _Chunk(_Packer):
    """A whole batch encoded in one orjson call: its request body and how many events it
    holds, with no offset per event.

    Only a refusal to resolve or a failure to report needs the events one by one: then
    :meth:`pack` (which every other method of :class:`_Packer` calls first) decodes the body
    and turns this into an ordinary packer of the same events.
    """

    __slots__ = ("_body", "_count")

    def __init__(self, body: bytes, count: int) -> None:
        # No buffers of its own until pack() needs them: this is made once per request.
        self.ids = None
        self._body: bytes | None = body
        self._count = count

    def __len__(self) -> int:
        return self._count if self._body is not None else super().__len__()

    def pack(self) -> None:
        body = self._body
        if body is not None:
            self._body = None
            _Packer.__init__(self)
            for event in orjson.loads(body)["events"]:
                self.add(orjson.dumps(event))
        super().pack()

    def body(self) -> bytes:
        return self._body if self._body is not None else super().body()


def _confirms(answer: bytes | None) -> bool:
    """Whether a 2xx body is Lago's answer to a batch: a JSON object holding ``events``.

    Looks at the first bytes only: the hot path never decodes the (large) answer.
    """
    if not answer:
        return False
    head = answer[:64].lstrip()
    return head[:1] == b"{" and head[1:].lstrip().startswith(b'"events"')


def _preview(answer: bytes | None) -> str:
    if not answer:
        return "an empty body"
    text = answer[:80].decode("utf-8", "replace")
    return repr(text) + ("..." if len(answer) > 80 else "")


def _too_many(exc: UnprocessableEntityError) -> bool:
    events = exc.error_details.get("events")
    return isinstance(events, list) and "too_many_events" in events
