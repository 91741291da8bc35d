"""The process test_spool_crash.py kills: sends events through a spool and records each send
that returned.

    python spool_child.py BASE_URL API_KEY SPOOL RECORD RUN COUNT

Sends ``COUNT`` events with the transaction ids ``RUN-0``, ``RUN-1``..., alternating single
``send`` calls and ``send_many`` calls of a few events, and appends the ids of each call that
returned to ``RECORD`` (one line each, written with ``O_APPEND`` after the call returned, so
the file never names an event whose ``send`` had not returned). Prints ``ready`` once the
ingestor is open, and its stats as JSON when it ends normally.
"""

from __future__ import annotations

import asyncio
import os
import sys

import orjson

from lago_async import AsyncLago


def event(run: str, n: int) -> dict[str, object]:
    return {
        "transaction_id": f"{run}-{n}",
        "code": "api_calls",
        "external_subscription_id": f"sub_{n % 5}",
        "properties": {"units": n % 3 + 1},
    }


async def main(base_url: str, api_key: str, spool: str, record: str, run: str, count: int) -> None:
    fd = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    async with AsyncLago(
        api_key=api_key, base_url=base_url, initial_retry_delay=0.002, max_retry_backoff=0.01
    ) as lago:
        ingest = lago.events.ingestor(
            spool=spool, batch_size=20, flush_interval=0.005, max_retries=1_000
        )
        async with ingest:
            print("ready", flush=True)
            n = 0
            while n < count:
                if n % 7 == 3:
                    size = min(5, count - n)
                    await ingest.send_many(event(run, k) for k in range(n, n + size))
                    ids = [f"{run}-{k}" for k in range(n, n + size)]
                else:
                    await ingest.send(event(run, n))
                    size = 1
                    ids = [f"{run}-{n}"]
                os.write(fd, ("\n".join(ids) + "\n").encode())
                n += size
    os.close(fd)
    stats = ingest.stats
    print(orjson.dumps({"accepted": stats.accepted, "recovered": stats.recovered}).decode())


if __name__ == "__main__":
    url, key, spool_path, record_path, run_name, total = sys.argv[1:7]
    asyncio.run(main(url, key, spool_path, record_path, run_name, int(total)))
