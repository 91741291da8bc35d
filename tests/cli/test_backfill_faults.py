"""``python -m lago_async ingest`` in a subprocess on 100k rows, through FakeLago's faults, killed
with SIGKILL in the middle and resumed: every row stored exactly once, the bad rows listed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from lago_async import transaction_id
from lago_async.testing import FakeLago

from .conftest import read_rejected

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

BATCH = "POST /events/batch"
# Short retries, so that the faults cost little time; enough of them to outlast bad luck.
FAST = ["--retry-delay", "0.002", "--max-retry-delay", "0.01", "--max-retries", "50"]


def make_input(path: Path, total: int) -> tuple[set[str], dict[int, str]]:
    """Write ``total`` rows; return the ids Lago must end with and the bad rows' outcomes."""
    lines: list[bytes] = []
    expected: set[str] = set()
    bad: dict[int, str] = {}
    for n in range(total):
        line = n + 1
        row: dict[str, Any] = {
            "transaction_id": f"tx-{n}",
            "code": "api_calls" if n % 2 else "storage_gb",
            "external_subscription_id": f"sub_{n % 7}",
            "timestamp": 1_700_000_000 + n,
            "properties": {"units": n % 5 + 1},
        }
        if n % 10 == 3:
            del row["transaction_id"]  # derived from the row
        kind = n % 1000
        if kind == 17:
            lines.append(b'{"code": "api_calls", "broken": ')
            bad[line] = "invalid"
            continue
        if kind == 117:
            lines.append(orjson.dumps(row)[:-1] + b', "units": NaN}')
            bad[line] = "invalid"
            continue
        if kind == 217:
            del row["code"]
            bad[line] = "invalid"
        elif kind == 317:
            row["timestamp"] = 10**15  # Lago refuses it (beyond year 9999)
            bad[line] = "rejected"
        elif kind == 417:
            row["properties"] = "5 units"
            bad[line] = "invalid"
        lines.append(orjson.dumps(row))
        if line not in bad:
            expected.add(row.get("transaction_id") or transaction_id(row))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return expected, bad


_spawned: list[int] = []


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test() -> Iterator[None]:
    yield
    while _spawned:
        with contextlib.suppress(ProcessLookupError):
            os.kill(_spawned.pop(), signal.SIGKILL)


async def command(fake: FakeLago, *args: str) -> asyncio.subprocess.Process:
    """The command in a subprocess, connected to ``fake`` through the environment."""
    env = {**os.environ, "LAGO_API_URL": fake.base_url, "LAGO_API_KEY": fake.api_key}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lago_async",
        "ingest",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _spawned.append(process.pid)
    return process


async def wait_for_line(process: asyncio.subprocess.Process, checkpoint: Path, line: int) -> None:
    """Wait until the command has recorded ``line`` rows as settled (60 s at most: a hang)."""

    async def poll() -> None:
        while settled_line(checkpoint) < line:
            assert process.returncode is None, await process.communicate()
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), 60)


def settled_line(checkpoint: Path) -> int:
    try:
        return int(orjson.loads(checkpoint.read_bytes())["line"])
    except (OSError, ValueError, KeyError):
        return 0


async def test_100k_rows_through_faults_killed_and_resumed_exactly_once(tmp_path: Path) -> None:
    total = 100_000
    path = tmp_path / "events.jsonl"
    expected, bad = make_input(path, total)
    checkpoint = tmp_path / "events.jsonl.checkpoint.json"
    args = [str(path), *FAST, "--chunk-size", "5000", "--progress", "plain"]

    async with FakeLago(seed=2024) as fake:
        fake.faults.add(route=BATCH, status=503, rate=0.03)
        fake.faults.add(route=BATCH, status=500, rate=0.01)
        fake.faults.rate_limit(route=BATCH, rate=0.02, reset=0)
        fake.faults.drop(route=BATCH, rate=0.01)
        fake.faults.store_then_drop(route=BATCH, rate=0.02)

        first = await command(fake, *args)
        await wait_for_line(first, checkpoint, 30_000)
        first.kill()  # SIGKILL: no cleanup at all
        await first.communicate()
        assert first.returncode == -signal.SIGKILL
        at_kill = len(fake.events)
        assert 29_000 <= at_kill < len(expected)  # killed in the middle

        second = await command(fake, *args)
        out, err = await asyncio.wait_for(second.communicate(), 120)
        ids = Counter(e["transaction_id"] for e in fake.events)
        fired = fake.faults.fired

    report = out.decode()
    assert second.returncode == 1, (report, err.decode()[-2000:])  # bad rows: status 1
    for kind in ("503", "500", "429", "drop", "store_then_drop"):
        assert fired[kind] > 0, fired
    # Every good row stored exactly once, across the kill, the faults and the resume.
    assert set(ids) == expected
    assert max(ids.values()) == 1
    # The rejected file lists exactly the bad rows, each once, with the right outcome.
    entries = read_rejected(tmp_path / "events.jsonl.rejected.jsonl")
    assert {e["line"]: e["outcome"] for e in entries} == bad
    assert len(entries) == len(bad)
    assert "resumed after row" in report
    counts = {
        k: int(v.replace(",", "")) for k, v in re.findall(r"^ +(\w+) +([\d,]+)", report, re.M)
    }
    # Totals over both runs: the rows re-sent after the kill and the batches stored but
    # unanswered count as duplicates, never twice.
    assert counts["delivered"] + counts["duplicates"] == len(expected)
    assert counts["duplicates"] > 0
    assert (counts["rejected"], counts["failed"]) == (len(bad), 0)
    assert not checkpoint.exists()


async def test_sigterm_settles_the_chunk_in_flight_and_exits_130(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    expected, bad = make_input(path, 3_000)
    checkpoint = tmp_path / "events.jsonl.checkpoint.json"
    args = [str(path), "--chunk-size", "200", "--batch-size", "50", "--concurrency", "1"]

    async with FakeLago() as fake:
        fake.faults.latency(0.01, route=BATCH)
        first = await command(fake, *args)
        await wait_for_line(first, checkpoint, 200)
        first.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(first.communicate(), 60)
        assert first.returncode == 130, out
        assert b"interrupted after row" in out
        line = settled_line(checkpoint)
        # Everything sent was settled and recorded before the exit.
        assert line == len(fake.events) + sum(1 for n in bad if n <= line)

        second = await command(fake, *args)
        await asyncio.wait_for(second.communicate(), 60)
        assert second.returncode == 1
        ids = Counter(e["transaction_id"] for e in fake.events)
    assert set(ids) == expected
    assert max(ids.values()) == 1
