"""The blocking ingestor: many threads, exactly once under faults, and the flush at exit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from pathlib import Path

from lago_async.testing import FakeLago
from lago_sync import Lago

ROOT = Path(__file__).resolve().parents[2]
BATCH = "POST /events/batch"


def event(n: int) -> dict[str, object]:
    return {
        "transaction_id": f"tx-{n}",
        "code": "api_calls",
        "external_subscription_id": f"sub_{n % 4}",
        "properties": {"units": 1},
    }


def test_eight_threads_deliver_every_event_exactly_once(fake: FakeLago, lago: Lago) -> None:
    fake.faults.add(route=BATCH, status=503, rate=0.1)
    fake.faults.rate_limit(route=BATCH, rate=0.05, reset=0)
    fake.faults.drop(route=BATCH, rate=0.02)
    fake.faults.store_then_drop(route=BATCH, rate=0.03)
    threads, per_thread = 8, 2_500
    errors: list[BaseException] = []

    fast = lago.with_options(initial_retry_delay=0.002, max_retry_backoff=0.002)
    with fast.events.ingestor(max_queue=1_000, max_retries=50) as ingest:

        def produce(worker: int) -> None:
            try:
                for i in range(per_thread):
                    ingest.send(event(worker * per_thread + i))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        pool = [threading.Thread(target=produce, args=(w,)) for w in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()

    total = threads * per_thread
    assert errors == []
    stored = Counter(e["transaction_id"] for e in fake.events)
    assert set(stored) == {f"tx-{n}" for n in range(total)}
    assert max(stored.values()) == 1
    stats = ingest.stats
    assert stats.accepted == total
    assert (stats.rejected, stats.failed) == (0, 0)
    assert stats.delivered + stats.duplicates == total
    assert stats.duplicates > 0 and fake.faults.fired["store_then_drop"] > 0


def run_script(fake: FakeLago, body: str) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(
        f"""
        from lago_sync import Lago
        lago = Lago(api_key={fake.api_key!r}, base_url={fake.base_url!r})
        """
    ) + textwrap.dedent(body)
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_exit_without_closing_flushes_and_warns(fake: FakeLago) -> None:
    done = run_script(
        fake,
        """
        ingest = lago.events.ingestor(flush_interval=3600).__enter__()
        for n in range(250):
            ingest.send({"transaction_id": f"exit-{n}", "code": "c",
                         "external_subscription_id": "sub_1"})
        # no close, no with: the program just ends
        """,
    )
    assert done.returncode == 0, done.stderr
    assert "0 of 250 events not delivered" in done.stderr
    assert sorted(e["transaction_id"] for e in fake.events) == sorted(
        f"exit-{n}" for n in range(250)
    )


def test_exit_flush_is_bounded_and_counts_what_is_lost(fake: FakeLago) -> None:
    fake.faults.latency(30, route=BATCH)
    done = run_script(
        fake,
        """
        ingest = lago.events.ingestor(close_timeout=0.5).__enter__()
        for n in range(120):
            ingest.send({"transaction_id": f"slow-{n}", "code": "c",
                         "external_subscription_id": "sub_1"})
        """,
    )
    assert done.returncode == 0, done.stderr
    assert "120 of 120 events not delivered" in done.stderr
