"""The ingestor's durable spool: accepted events kept in SQLite until they are settled.

One SQLite file (WAL mode) holds one table of encoded events keyed by an increasing id. All
reads and writes go through one writer thread, so the event loop never waits for the disk:

* ``write`` gives an event its id and queues its insert; the writer takes every insert
  waiting, writes them in one transaction (a *group commit*) and then wakes whoever waits
  for them (``wait`` in the event loop, ``wait_threadsafe`` in other threads);
* ``forget`` queues the deletion of settled events, written the same way, in batches, and
  nobody waits for those: an event deleted too late is merely sent again after a crash,
  which Lago's dedup on ``transaction_id`` turns into a duplicate;
* ``read`` hands back the events an earlier process left, for the ingestor to send first.

Because ids grow and the writer takes inserts in the order they were queued, "every id up
to N is on disk" is a single number (``committed``). A sidecar lock file (``<path>.lock``)
held with an OS lock for the spool's lifetime keeps a second live process out; the OS drops
the lock when the process dies, however it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import os
import sqlite3
import sys
import threading
from collections.abc import Callable
from typing import Any, Literal

from ._errors import LagoValidationError, SpoolError, SpoolLockedError

__all__ = ["SPOOL_SYNC_MODES", "Spool", "check_options"]

log = logging.getLogger("lago_async.ingest")

SPOOL_SYNC_MODES = ("normal", "full")
"""Accepted ``spool_sync`` values: ``normal`` survives a process crash, ``full`` power loss."""

SpoolSync = Literal["normal", "full"]

_FORMAT = 1  # PRAGMA user_version of a spool this code writes
_TABLE = "lago_spool_events"
_CHUNK = 128  # rows per INSERT statement at most (256 parameters, under every SQLite's limit)
_INSERTS = {
    rows: f"INSERT INTO {_TABLE} (id, data) VALUES " + ",".join(["(?,?)"] * rows)
    for rows in (1, 2, 4, 8, 16, 32, 64, _CHUNK)
}
_DELETE_RANGE = f"DELETE FROM {_TABLE} WHERE id BETWEEN ? AND ?"
_DELETE_BATCH = 1_000  # settled events that wake the writer without an insert to ride on
_READ = f"SELECT id, data FROM {_TABLE} WHERE id > ? AND id <= ? ORDER BY id LIMIT ?"


def check_options(spool: Any, spool_sync: Any) -> tuple[str | None, SpoolSync]:
    """Validate the ingestor's ``spool`` and ``spool_sync`` arguments."""
    if spool_sync not in SPOOL_SYNC_MODES:
        raise LagoValidationError(
            "spool_sync", f"must be one of {', '.join(map(repr, SPOOL_SYNC_MODES))}"
        )
    if spool is None:
        if spool_sync != "normal":
            raise LagoValidationError("spool_sync", "applies to a spool: give spool=... too")
        return None, spool_sync
    if isinstance(spool, bool) or not isinstance(spool, (str, os.PathLike)):
        raise LagoValidationError(
            "spool", f"must be a file path (str or os.PathLike), got {type(spool).__name__}"
        )
    path = os.fspath(spool)
    if not isinstance(path, str):
        raise LagoValidationError("spool", "must be a text path, not bytes")
    if not path or path == ":memory:" or path.startswith("file:"):
        raise LagoValidationError("spool", f"must name a file on disk, got {path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise LagoValidationError("spool", f"the folder {folder} does not exist")
    if os.path.isdir(path):
        raise LagoValidationError("spool", f"{path} is a folder, not a file")
    return path, spool_sync


class _FileLock:
    """An exclusive, non-blocking OS lock on a sidecar file, held until ``release``."""

    def __init__(self, path: str) -> None:
        self._fd: int | None = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(self._fd)
        except OSError:
            os.close(self._fd)
            self._fd = None
            raise SpoolLockedError(path) from None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the lock

    def __del__(self) -> None:
        self.release()


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


class Spool:
    """An open spool: see the module docstring. Opening locks it or raises
    :class:`SpoolLockedError`; :meth:`start` starts its writer in a running event loop."""

    def __init__(self, path: str, sync: SpoolSync = "normal") -> None:
        self.path = path
        self.sync = sync
        self._file_lock = _FileLock(path)
        try:
            self._db, last, pending = self._open()
        except (sqlite3.Error, OSError) as exc:
            self._file_lock.release()
            raise SpoolError(f"cannot open the spool {path}: {exc}") from None
        except BaseException:
            self._file_lock.release()
            raise
        self.pending_at_open: int = pending
        """Events an earlier ingestor left unsettled in the spool when it was opened."""
        self.last_at_open = last
        """The highest id in the spool when it was opened: recovery reads up to it."""
        self.committed = last
        """Every event with an id up to this one is on disk."""
        self.error: str | None = None
        """Why the writer stopped, once it failed."""
        self._next_id = last + 1
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._idle = False
        self._closing = False
        self._inserts: list[tuple[int, bytes]] = []
        self._deletes: list[int] = []
        self._reads: list[tuple[asyncio.Future[list[tuple[int, bytes]]], int, int]] = []
        self._committed_cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Coroutines in wait(), as a heap of (id, sequence, future): a commit wakes only
        # those it covers. The writer calls into the loop only while the heap holds some.
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._waiter_seq = 0
        self._closed: asyncio.Future[None] | None = None
        self._thread: threading.Thread | None = None
        self.finished = False
        """Whether the writer has written everything, closed the database and the lock."""

    def _open(self) -> tuple[sqlite3.Connection, int, int]:
        """The database, set up, with the highest id and the number of events it holds."""
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _FORMAT):
                raise sqlite3.DatabaseError(f"not a spool of this version (format {version})")
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.DatabaseError(f"cannot use write-ahead logging (mode {mode})")
            db.execute(f"PRAGMA synchronous={self.sync.upper()}")
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {_TABLE} (id INTEGER PRIMARY KEY, data BLOB NOT NULL)"
            )
            if version == 0:
                db.execute(f"PRAGMA user_version={_FORMAT}")
            last, pending = db.execute(f"SELECT max(id), count(*) FROM {_TABLE}").fetchone()
        except BaseException:
            db.close()
            raise
        return db, int(last or 0), int(pending)

    def __repr__(self) -> str:
        return f"<Spool {self.path!r} sync={self.sync} committed={self.committed}>"

    # -- the event loop's side ---------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the writer thread; waiters in ``loop`` are woken after each commit."""
        if self._thread is not None:
            return
        self._loop = loop
        self._closed = loop.create_future()
        self._thread = threading.Thread(target=self._run, name="lago-spool-writer", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> int:
        """Queue one encoded event for the next group commit and return its id."""
        with self._lock:
            if self.error is not None or self._closing:
                raise SpoolError(self._refusal())
            ident = self._next_id
            self._next_id = ident + 1
            self._inserts.append((ident, data))
            if self._idle:
                self._idle = False
                self._wake.notify()
        return ident

    def write_many(self, items: list[bytes]) -> int:
        """:meth:`write` for several events, given consecutive ids; the last one's id."""
        with self._lock:
            if self.error is not None or self._closing:
                raise SpoolError(self._refusal())
            first = self._next_id
            self._next_id = first + len(items)
            self._inserts.extend(zip(range(first, self._next_id), items, strict=True))
            if self._idle:
                self._idle = False
                self._wake.notify()
        return self._next_id - 1

    def forget(self, ids: Any) -> None:
        """Queue the deletion of settled events (an iterable of ids).

        Deletions ride along with the next group commit of inserts; only when many are
        waiting do they wake the writer on their own (a crash before they are written only
        means that these events are sent again, as duplicates).
        """
        with self._lock:
            if self.finished:
                return
            self._deletes.extend(ids)
            if self._idle and len(self._deletes) >= _DELETE_BATCH:
                self._idle = False
                self._wake.notify()

    async def wait(self, ident: int) -> None:
        """Return once the event ``ident`` is on disk; raise :class:`SpoolError` if it cannot
        be written."""
        if self.committed >= ident:
            return
        assert self._loop is not None
        future: asyncio.Future[None] = self._loop.create_future()
        self._waiter_seq += 1
        heapq.heappush(self._waiters, (ident, self._waiter_seq, future))
        # Queued before looking at `committed` again, which the writer sets before it looks
        # at the queue: either this sees the commit, or the writer sees this waiter.
        if self.committed < ident:
            if self.error is not None or self.finished:
                raise SpoolError(self._refusal())
            await future
            if self.committed < ident:
                raise SpoolError(self._refusal())

    async def read(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` events left by an earlier process with an id above ``after``."""
        assert self._loop is not None
        future: asyncio.Future[list[tuple[int, bytes]]] = self._loop.create_future()
        with self._lock:
            if self.error is not None or self._closing:
                raise SpoolError(self._refusal())
            self._reads.append((future, after, limit))
            if self._idle:
                self._idle = False
                self._wake.notify()
        return await future

    def close_nowait(self) -> None:
        """Ask the writer to write what is queued, close the database and drop the lock."""
        if self._thread is None:
            self._finish()
            return
        with self._lock:
            self._closing = True
            self._wake.notify()

    async def aclose(self) -> None:
        """:meth:`close_nowait`, then wait until the spool is closed and unlocked."""
        self.close_nowait()
        if self._closed is not None:
            await asyncio.shield(self._closed)

    def _on_commit(self) -> None:
        """In the loop: wake the coroutines whose events are on disk (all of them once the
        writer has stopped: they then raise)."""
        waiters = self._waiters
        committed = self.committed
        everyone = self.finished or self.error is not None
        while waiters and (everyone or waiters[0][0] <= committed):
            future = heapq.heappop(waiters)[2]
            if not future.done():
                future.set_result(None)

    # -- other threads' side -----------------------------------------------------------------

    def wait_threadsafe(self, ident: int) -> None:
        """:meth:`wait` for a thread other than the event loop's."""
        with self._committed_cond:
            while self.committed < ident and self.error is None and not self.finished:
                self._committed_cond.wait()
        if self.committed < ident:
            raise SpoolError(self._refusal())

    def _refusal(self) -> str:
        if self.error is not None:
            return f"the spool {self.path} cannot be written: {self.error}"
        return f"the spool {self.path} is closed"

    # -- the writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    while not (
                        self._inserts
                        or self._reads
                        or self._closing
                        or len(self._deletes) >= _DELETE_BATCH
                    ):
                        self._idle = True
                        self._wake.wait()
                    self._idle = False
                    inserts, self._inserts = self._inserts, []
                    deletes, self._deletes = self._deletes, []
                    reads, self._reads = self._reads, []
                    closing = self._closing
                if inserts or deletes:
                    self._commit(inserts, deletes)
                for future, after, limit in reads:
                    rows = self._db.execute(_READ, (after, self.last_at_open, limit)).fetchall()
                    self._to_loop(_resolve, future, [(int(i), bytes(d)) for i, d in rows])
                if closing and not inserts and not deletes and not reads:
                    return
        except BaseException as exc:  # the disk is full, the file went away...
            self._broken(exc)
        finally:
            self._finish()

    def _commit(self, inserts: list[tuple[int, bytes]], deletes: list[int]) -> None:
        db = self._db
        db.execute("BEGIN")
        try:
            if inserts:
                _insert(db, inserts)
            if deletes:
                db.executemany(_DELETE_RANGE, _ranges(deletes))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.rollback()
            raise
        if inserts:
            with self._committed_cond:
                self.committed = inserts[-1][0]
                self._committed_cond.notify_all()
            if self._waiters:
                self._to_loop(self._on_commit)

    def _broken(self, exc: BaseException) -> None:
        log.error("lago ingestor: the spool %s cannot be written: %r", self.path, exc)
        with self._lock:
            self.error = repr(exc)
            reads, self._reads = self._reads, []
        for future, _after, _limit in reads:
            self._to_loop(_fail, future, SpoolError(self._refusal()))

    def _finish(self) -> None:
        """Close the database and release the lock (once); wake everyone still waiting."""
        with self._lock:
            if self.finished:
                return
            self.finished = True
            self._closing = True
        try:
            self._db.close()
        except sqlite3.Error:  # pragma: no cover - closing does not fail in practice
            log.exception("lago ingestor: closing the spool %s failed", self.path)
        self._file_lock.release()
        with self._committed_cond:
            self._committed_cond.notify_all()
        self._to_loop(self._on_commit)
        if self._closed is not None:
            self._to_loop(_resolve, self._closed, None)

    def _to_loop(self, callback: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # a closed loop has nobody left to wake
            loop.call_soon_threadsafe(callback, *args)


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _insert(db: sqlite3.Connection, rows: list[tuple[int, bytes]]) -> None:
    """Insert ``rows`` with a few multi-row statements rather than one statement per row.

    Each statement releases Python's GIL once while SQLite works; per row, the writer
    would fight the event loop's thread for it hundreds of times per commit.
    """
    start = 0
    left = len(rows)
    size = _CHUNK
    while left:
        while size > left:
            size //= 2
        params: list[Any] = []
        for pair in rows[start : start + size]:
            params += pair
        db.execute(_INSERTS[size], params)
        start += size
        left -= size


def _ranges(ids: list[int]) -> list[tuple[int, int]]:
    """Runs of consecutive ids as ``(first, last)`` pairs: a batch's events are mostly
    consecutive, so one ``DELETE ... BETWEEN`` removes each run."""
    ids = sorted(ids)
    out: list[tuple[int, int]] = []
    first = last = ids[0]
    for ident in ids[1:]:
        if ident == last + 1:
            last = ident
        else:
            out.append((first, last))
            first = last = ident
    out.append((first, last))
    return out
