"""The ingestor's durable spool, against FakeLago over real sockets.

What is on disk is read with a separate SQLite connection, as a process opening the file after
a crash would see it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from lago_async import (
    AsyncLago,
    LagoValidationError,
    SpoolError,
    SpoolLockedError,
)
from lago_async.testing import FakeLago

from .test_ingestor_faults import BATCH, FAST_BACKOFF, event, stored_ids


def on_disk(path: Path) -> list[str]:
    """The transaction ids held in the spool file, in spool order."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT data FROM lago_spool_events ORDER BY id").fetchall()
    finally:
        db.close()
    return [orjson.loads(data)["transaction_id"] for (data,) in rows]


def client(fake: FakeLago, **options: Any) -> AsyncLago:
    return AsyncLago(api_key=fake.api_key, base_url=fake.base_url, **FAST_BACKOFF, **options)


class WriteBlocker:
    """Holds SQLite's write lock on the spool from another connection, so that the
    ingestor's writer cannot commit until ``release``."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self.db.execute("ROLLBACK")
        self.db.close()


async def test_send_returns_once_the_event_is_on_disk(tmp_path: Path) -> None:
    spool = tmp_path / "events.db"
    async with FakeLago() as fake:
        fake.faults.latency(30, route=BATCH)  # nothing gets delivered while we look
        async with client(fake) as lago:
            ingest = lago.events.ingestor(spool=spool, close_timeout=0.1, flush_interval=0.01)
            async with ingest:
                await ingest.send(event(0))
                assert on_disk(spool) == ["tx-0"]

                # While the spool cannot be written, neither send nor send_many returns.
                blocker = WriteBlocker(spool)
                one = asyncio.ensure_future(ingest.send(event(1)))
                many = asyncio.ensure_future(ingest.send_many(event(n) for n in range(2, 50)))
                done, _ = await asyncio.wait({one, many}, timeout=0.3)
                assert not done
                assert ingest.stats.accepted == 50  # accepted, not yet durable
                blocker.release()
                await one
                assert await many == 48
                assert on_disk(spool) == [f"tx-{n}" for n in range(50)]
    # The close deadline passed: all 50 failed, and failed events stay in the spool.
    assert ingest.stats.failed == 50
    assert on_disk(spool) == [f"tx-{n}" for n in range(50)]


async def test_settled_events_leave_the_spool_and_failed_ones_stay(tmp_path: Path) -> None:
    spool = tmp_path / "events.db"
    invalid = {3, 17}
    async with FakeLago() as fake:
        async with client(fake) as lago:
            async with lago.events.ingestor(spool=spool, batch_size=10) as ingest:
                for n in range(40):
                    extra = {"timestamp": 10**15} if n in invalid else {}  # refused by Lago
                    await ingest.send(event(n, **extra))
            assert ingest.stats.delivered == 38
            assert ingest.stats.rejected == 2
            assert on_disk(spool) == []  # delivered and rejected events are deleted

        # A wrong API key: the server refuses every request, the events fail...
        async with AsyncLago(api_key="wrong", base_url=fake.base_url) as lago:
            async with lago.events.ingestor(spool=spool, batch_size=10) as ingest:
                for n in range(40, 60):
                    await ingest.send(event(n))
            assert ingest.stats.failed == 20
        # ...and stay in the spool, for the next ingestor.
        assert on_disk(spool) == [f"tx-{n}" for n in range(40, 60)]
        assert len(fake.events) == 38


async def test_restart_sends_what_the_spool_holds_first(tmp_path: Path) -> None:
    spool = tmp_path / "events.db"
    async with FakeLago() as fake:
        fake.faults.add(status=503, route=BATCH)
        async with client(fake) as lago:
            async with lago.events.ingestor(spool=spool, max_retries=0, batch_size=10) as ingest:
                await ingest.send_many(event(n) for n in range(25))
            assert ingest.stats.failed == 25
        fake.faults.clear()
        assert len(fake.events) == 0

        async with client(fake) as lago:
            ingest = lago.events.ingestor(spool=spool, batch_size=10, max_in_flight=1)
            async with ingest:
                await ingest.send(event(100))
                await ingest.send(event(101))
        stats = ingest.stats
        order = [e["transaction_id"] for e in fake.events]

    assert stats.recovered == 25
    assert (stats.accepted, stats.delivered) == (27, 27)
    assert stats.delivered + stats.duplicates + stats.rejected + stats.failed == stats.accepted
    # The 25 left over went out before the new ones.
    assert order == [f"tx-{n}" for n in range(25)] + ["tx-100", "tx-101"]
    assert on_disk(spool) == []


async def test_restart_after_lost_answers_counts_duplicates(tmp_path: Path) -> None:
    spool = tmp_path / "events.db"
    async with FakeLago() as fake:
        # Lago stores every batch but no answer comes back: the client cannot know.
        fake.faults.store_then_drop(route=BATCH)
        async with client(fake) as lago:
            async with lago.events.ingestor(spool=spool, max_retries=0, batch_size=10) as ingest:
                await ingest.send_many(event(n) for n in range(30))
            assert ingest.stats.failed == 30
        fake.faults.clear()
        assert len(fake.events) == 30

        async with client(fake) as lago:
            async with lago.events.ingestor(spool=spool) as ingest:
                pass  # only what the spool holds
        ids = stored_ids(fake)

    stats = ingest.stats
    assert (stats.accepted, stats.recovered, stats.duplicates, stats.delivered) == (30, 30, 30, 0)
    assert ids == Counter({f"tx-{n}": 1 for n in range(30)})
    assert on_disk(spool) == []


async def test_recovery_respects_max_queue(tmp_path: Path) -> None:
    spool = tmp_path / "events.db"
    async with FakeLago() as fake:
        fake.faults.add(status=503, route=BATCH)
        async with client(fake) as lago:
            async with lago.events.ingestor(spool=spool, max_retries=0, batch_size=10) as ingest:
                await ingest.send_many(event(n) for n in range(500))
        fake.faults.clear()
        fake.faults.latency(0.01, route=BATCH)
        peak = 0

        def watch(stats: Any) -> None:
            nonlocal peak
            peak = max(peak, stats.queued + stats.in_flight)

        async with client(fake) as lago:
            ingest = lago.events.ingestor(
                spool=spool,
                batch_size=10,
                max_queue=50,
                max_in_flight=2,
                on_progress=watch,
                progress_interval=0.005,
            )
            async with ingest:
                await ingest.send(event(1000))
        assert len(fake.events) == 501
    assert ingest.stats.recovered == 500
    assert 0 < peak <= 50


async def test_stats_stay_exact_through_faults(tmp_path: Path) -> None:
    spool = tmp_path / "events.db"
    total = 3_000
    invalid = {n for n in range(total) if n % 100 == 37}
    async with FakeLago(seed=7) as fake:
        fake.faults.add(route=BATCH, status=503, rate=0.05)
        fake.faults.rate_limit(route=BATCH, rate=0.05, reset=0)
        fake.faults.drop(route=BATCH, rate=0.03)
        fake.faults.store_then_drop(route=BATCH, rate=0.03)
        async with client(fake) as lago:
            async with lago.events.ingestor(spool=spool, max_retries=50, batch_size=25) as ingest:

                async def producer(start: int) -> None:
                    for n in range(start, total, 4):
                        extra = {"timestamp": 10**15} if n in invalid else {}
                        await ingest.send(event(n, **extra))

                await asyncio.gather(*(producer(k) for k in range(4)))
        fired = fake.faults.fired
        ids = stored_ids(fake)

    stats = ingest.stats
    assert fired["store_then_drop"] > 0 and fired["drop"] > 0
    assert set(ids) == {f"tx-{n}" for n in range(total) if n not in invalid}
    assert max(ids.values()) == 1
    assert stats.accepted == total
    assert (stats.rejected, stats.failed) == (len(invalid), 0)
    assert stats.delivered + stats.duplicates == total - len(invalid)
    assert stats.delivered + stats.duplicates + stats.rejected + stats.failed == stats.accepted
    assert on_disk(spool) == []


async def test_send_many_keeps_the_events_before_a_bad_one(tmp_path: Path) -> None:
    spool = tmp_path / "events.db"
    async with FakeLago() as fake:
        fake.faults.latency(30, route=BATCH)
        async with client(fake) as lago:
            ingest = lago.events.ingestor(spool=spool, close_timeout=0.1)
            async with ingest:
                events = [event(0), event(1), {"code": "api_calls"}, event(3)]
                with pytest.raises(LagoValidationError) as caught:
                    await ingest.send_many(events)
                assert caught.value.field == "events[2].transaction_id"
                assert on_disk(spool) == ["tx-0", "tx-1"]


async def test_send_nowait_is_refused_with_a_spool(tmp_path: Path) -> None:
    async with FakeLago() as fake, client(fake) as lago:
        async with lago.events.ingestor(spool=tmp_path / "events.db") as ingest:
            with pytest.raises(SpoolError, match="send_nowait"):
                ingest.send_nowait(event(0))
    assert ingest.stats.accepted == 0


# -- the lock ---------------------------------------------------------------------------------


async def test_a_second_ingestor_on_the_same_spool_is_refused(tmp_path: Path) -> None:
    spool = tmp_path / "events.db"
    async with FakeLago() as fake, client(fake) as lago:
        async with lago.events.ingestor(spool=spool) as ingest:
            await ingest.send(event(0))
            with pytest.raises(SpoolLockedError) as caught:
                lago.events.ingestor(spool=spool)
            assert caught.value.path == str(spool)
            assert str(spool) in str(caught.value)
        # Closing released the lock: the spool opens again.
        async with lago.events.ingestor(spool=spool) as again:
            await again.send(event(1))
        assert len(fake.events) == 2


def test_a_spool_held_by_another_process_is_refused_until_it_dies(tmp_path: Path) -> None:
    from lago_sync import Lago

    spool = tmp_path / "events.db"
    holder = textwrap.dedent(
        f"""
        import sys
        from lago_sync import Lago
        with Lago(api_key="k", base_url="http://127.0.0.1:9/api/v1") as lago:
            with lago.events.ingestor(spool={str(spool)!r}):
                print("holding", flush=True)
                sys.stdin.read()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "holding"
        with Lago(api_key="k", base_url="http://127.0.0.1:9/api/v1") as lago:
            with pytest.raises(SpoolLockedError, match="in use by another live ingestor"):
                lago.events.ingestor(spool=spool)
            proc.kill()  # no clean-up runs: the operating system drops the lock
            proc.wait(timeout=30)
            with lago.events.ingestor(spool=spool) as ingest:
                assert ingest.spool == str(spool)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- options ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"spool": 123}, "spool"),
        ({"spool": True}, "spool"),
        ({"spool": b"events.db"}, "spool"),
        ({"spool": ""}, "spool"),
        ({"spool": ":memory:"}, "spool"),
        ({"spool": "/no/such/folder/events.db"}, "spool"),
        ({"spool": "{tmp}"}, "spool"),
        ({"spool": "{tmp}/events.db", "spool_sync": "fast"}, "spool_sync"),
        ({"spool": "{tmp}/events.db", "spool_sync": None}, "spool_sync"),
        ({"spool_sync": "full"}, "spool_sync"),
    ],
)
async def test_bad_spool_options_are_refused(
    tmp_path: Path, lago: AsyncLago, options: dict[str, Any], field: str
) -> None:
    options = {
        key: value.format(tmp=tmp_path) if isinstance(value, str) else value
        for key, value in options.items()
    }
    with pytest.raises(LagoValidationError) as caught:
        lago.events.ingestor(**options)
    assert caught.value.field == field
    assert not (tmp_path / "events.db").exists()


async def test_a_file_that_is_not_a_spool_is_refused(tmp_path: Path, lago: AsyncLago) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are not the events you are looking for" * 100)
    with pytest.raises(SpoolError, match="cannot open the spool"):
        lago.events.ingestor(spool=path)
    # The failed opener did not keep the lock.
    with pytest.raises(SpoolError, match="cannot open the spool"):
        lago.events.ingestor(spool=path)


@pytest.mark.parametrize(("setting", "expected"), [("normal", 1), ("full", 2)])
async def test_spool_sync_sets_sqlite_synchronous(
    tmp_path: Path, lago: AsyncLago, setting: str, expected: int
) -> None:
    ingest = lago.events.ingestor(spool=tmp_path / "events.db", spool_sync=setting)
    async with ingest:
        assert ingest.spool_sync == setting
        # The connection's own setting (per connection in SQLite, so asked of it).
        assert ingest._spool is not None
        assert ingest._spool._db.execute("PRAGMA synchronous").fetchone()[0] == expected
        assert ingest._spool._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# -- the blocking twin ----------------------------------------------------------------------


def test_blocking_send_returns_once_the_event_is_on_disk(tmp_path: Path) -> None:
    import threading

    from lago_sync import Lago

    spool = tmp_path / "events.db"
    with FakeLago.in_thread() as fake, Lago(api_key=fake.api_key, base_url=fake.base_url) as lago:
        fake.faults.latency(30, route=BATCH)  # nothing gets delivered while we look
        ingest = lago.events.ingestor(spool=spool, flush_interval=0.01, close_timeout=0.1)
        with ingest:
            ingest.send(event(0))
            assert on_disk(spool) == ["tx-0"]

            def feed(start: int) -> None:
                for n in range(start, start + 50):
                    ingest.send(event(n))

            # While the spool cannot be written, no send returns.
            blocker = WriteBlocker(spool)
            threads = [threading.Thread(target=feed, args=(100 * k,)) for k in (1, 2, 3, 4)]
            threads.append(
                threading.Thread(target=ingest.send_many, args=([event(n) for n in range(1, 20)],))
            )
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(0.3 / len(threads))
            assert all(thread.is_alive() for thread in threads)
            blocker.release()
            for thread in threads:
                thread.join()
            assert len(on_disk(spool)) == 220
    assert (ingest.stats.accepted, ingest.stats.failed) == (220, 220)
    assert len(on_disk(spool)) == 220


def test_blocking_restart_sends_what_the_spool_holds(tmp_path: Path) -> None:
    from lago_sync import Lago

    spool = tmp_path / "events.db"
    with FakeLago.in_thread() as fake, Lago(api_key=fake.api_key, base_url=fake.base_url) as lago:
        rule = fake.faults.add(status=503, route=BATCH)
        with lago.events.ingestor(spool=spool, max_retries=0) as ingest:
            ingest.send_many(event(n) for n in range(10))
        assert ingest.stats.failed == 10
        fake.faults.remove(rule)
        with lago.events.ingestor(spool=spool) as ingest:
            ingest.send(event(10))
        assert (ingest.stats.recovered, ingest.stats.delivered) == (10, 11)
        assert sorted(stored_ids(fake)) == sorted(f"tx-{n}" for n in range(11))


# -- failures of the spool itself ---------------------------------------------------------------


async def test_a_spool_that_cannot_be_written_fails_the_send_not_the_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(db: sqlite3.Connection, rows: list[tuple[int, bytes]]) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    async with FakeLago() as fake, client(fake) as lago:
        async with lago.events.ingestor(spool=tmp_path / "events.db") as ingest:
            monkeypatch.setattr("lago_async._spool._insert", broken)
            with pytest.raises(SpoolError, match="disk I/O error"):
                await ingest.send(event(0))
            # The writer stopped: later sends are refused at once, before being accepted.
            with pytest.raises(SpoolError, match="cannot be written"):
                await ingest.send(event(1))
            with pytest.raises(SpoolError, match="cannot be written"):
                await ingest.send_many([event(2)])
        # The event accepted before the failure was still delivered, and counted once.
        stats = ingest.stats
        assert (stats.accepted, stats.delivered) == (1, 1)
        assert list(stored_ids(fake)) == ["tx-0"]


async def test_an_ingestor_left_open_releases_its_spool_when_the_client_closes(
    tmp_path: Path,
) -> None:
    spool = tmp_path / "events.db"
    async with FakeLago() as fake:
        with pytest.warns(ResourceWarning, match="not closed before its client"):
            async with client(fake) as lago:
                ingest = lago.events.ingestor(spool=spool)
                await ingest.send(event(0))
        # The client's close flushed it and closed the spool.
        assert ingest.stats.delivered == 1
        assert on_disk(spool) == []
        async with client(fake) as lago:
            async with lago.events.ingestor(spool=spool) as again:
                await again.send(event(1))
        assert len(fake.events) == 2
