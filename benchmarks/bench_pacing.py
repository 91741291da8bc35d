"""Pacing to the rate limit: how much of an allowed rate ingestors use, and how many 429s.

    python -m benchmarks.bench_pacing [--limit 200] [--seconds 8] [--json out.json]

A FakeLago in this process limits ``POST /events/batch`` to ``--limit`` requests per
one-second window, as Lago Cloud does per organisation (429 with ``X-RateLimit-*`` headers
beyond). Ingestors in separate processes then send batches of 10 events as fast as they are
let, for ``--seconds``: one process alone, then four at once sharing the one limit. The table
gives, over the run after its first second, the requests let through per second as a share of
the limit, and the share of requests answered 429. The project's goals: one ingestor uses at
least 90% of the rate with under 1% of 429s; four together at least 80% with under 5%.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lago_async.testing import FakeLago

ROOT = Path(__file__).resolve().parent.parent

SENDER = """
import asyncio, sys, time
from lago_async import AsyncLago

async def main(url: str, key: str, seconds: float, tag: str) -> None:
    async with AsyncLago(api_key=key, base_url=url) as lago:
        async with lago.events.ingestor(batch_size=10, flush_interval=0.01) as ingest:
            end = time.monotonic() + seconds
            n = 0
            while time.monotonic() < end:
                await ingest.send_many(
                    {"transaction_id": f"{tag}-{n + i}", "code": "c",
                     "external_subscription_id": "s"}
                    for i in range(100)
                )
                n += 100
    print(n)

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]))
"""


def run(processes: int, limit: int, seconds: float) -> dict[str, Any]:
    with FakeLago.in_thread() as fake:
        limiter = fake.limit_rate(limit, "POST /events/batch")
        started = time.monotonic()
        senders = [
            subprocess.Popen(
                [sys.executable, "-c", SENDER, fake.base_url, fake.api_key, str(seconds), f"p{i}"],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(processes)
        ]
        # the first second (processes starting, pacers learning the limit) is left out
        time.sleep(1.0)
        allowed0, refused0, t0 = limiter.allowed, limiter.refused, time.monotonic()
        for sender in senders:
            sender.wait(timeout=seconds + 60)
        allowed, refused, t1 = limiter.allowed, limiter.refused, time.monotonic()
        # the ingestors' last batches drain after their sending time: measure to the end
        span = t1 - t0
        events = sum(int((s.stdout.read() if s.stdout else "0") or 0) for s in senders)
    sent = allowed - allowed0
    answered_429 = refused - refused0
    return {
        "processes": processes,
        "limit_per_s": limit,
        "seconds": round(span, 2),
        "allowed_per_s": round(sent / span, 1),
        "share_of_limit": round(sent / span / limit, 3),
        "share_429": round(answered_429 / max(1, sent + answered_429), 4),
        "events_sent": events,
        "wall_s": round(time.monotonic() - started, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=200, help="requests per second allowed")
    parser.add_argument("--seconds", type=float, default=8.0, help="sending time per run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results = [run(1, args.limit, args.seconds), run(4, args.limit, args.seconds)]
    print(f"POST /events/batch limited to {args.limit} requests/s (10 events per request)\n")
    print("| ingestor processes | requests/s let through | share of the limit | 429s |")
    print("| ---: | ---: | ---: | ---: |")
    for r in results:
        print(
            f"| {r['processes']} | {r['allowed_per_s']:,.1f} | {r['share_of_limit']:.1%} "
            f"| {r['share_429']:.2%} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
