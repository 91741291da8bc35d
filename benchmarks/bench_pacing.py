"""Pacing to the rate limit: how much of an allowed rate ingestors use, and how many 429s.

    python -m benchmarks.bench_pacing [--limit 200] [--seconds 8] [--json out.json]

A FakeLago in this process limits ``POST /events/batch`` to ``--limit`` requests per
one-second window, as Lago Cloud does per organisation (429 with ``X-RateLimit-*`` headers
beyond). Ingestors in separate processes then send batches of 10 events as fast as they are
let, for ``--seconds``: one process alone, then four at once sharing the one limit. The table
gives the requests let through per second as a share of the limit, and the share of requests
answered 429, over two spans: while every sender is sending (from a second after the last
one began, which leaves its pacer a second to learn the limit, to when the first one
stopped), and over the whole run (from a second after the processes were started to when
the last one exited). The project's goals: one ingestor uses at least 90% of the rate with
under 1% of 429s; four together at least 80% with under 5%.
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
            start = time.monotonic()
            end = start + seconds
            n = 0
            while time.monotonic() < end:
                await ingest.send_many(
                    {"transaction_id": f"{tag}-{n + i}", "code": "c",
                     "external_subscription_id": "s"}
                    for i in range(100)
                )
                n += 100
            stop = time.monotonic()
    # time.monotonic is the machine's clock: the parent compares it with its own
    print(n, start, stop)

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]))
"""


def _at(samples: list[tuple[float, int, int]], when: float) -> tuple[int, int]:
    """The limiter's counts (allowed, refused) at ``when``, from the nearest sample."""
    nearest = min(samples, key=lambda sample: abs(sample[0] - when))
    return nearest[1], nearest[2]


def run(processes: int, limit: int, seconds: float) -> dict[str, Any]:
    """Run ``processes`` senders against one limit and measure two spans.

    *Steady*: from one second after the last sender began sending (its pacer has learnt the
    limit, and the others have made room) to when the first one stopped, so every sender is
    sending throughout. *Whole run*: from one second after the processes were started to when
    the last one exited, start-up, closing and interpreter exit included.
    """
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
        samples: list[tuple[float, int, int]] = []
        while any(sender.poll() is None for sender in senders):
            samples.append((time.monotonic(), limiter.allowed, limiter.refused))
            time.sleep(0.05)
            if time.monotonic() - started > seconds + 60:
                raise RuntimeError("the senders did not finish")
        samples.append((time.monotonic(), limiter.allowed, limiter.refused))
        reports = [(s.stdout.read() if s.stdout else "").split() for s in senders]
    events = sum(int(report[0]) for report in reports)
    steady_from = max(float(report[1]) for report in reports) + 1.0
    steady_to = min(float(report[2]) for report in reports)
    whole_from, whole_to = started + 1.0, samples[-1][0]
    figures: dict[str, Any] = {
        "processes": processes,
        "limit_per_s": limit,
        "events_sent": events,
        "wall_s": round(samples[-1][0] - started, 2),
    }
    for name, begin, end in (("steady", steady_from, steady_to), ("whole", whole_from, whole_to)):
        (allowed0, refused0), (allowed1, refused1) = _at(samples, begin), _at(samples, end)
        span = end - begin
        sent, answered_429 = allowed1 - allowed0, refused1 - refused0
        figures[name] = {
            "seconds": round(span, 2),
            "allowed_per_s": round(sent / span, 1) if span > 0 else 0.0,
            "share_of_limit": round(sent / span / limit, 3) if span > 0 else 0.0,
            "share_429": round(answered_429 / max(1, sent + answered_429), 4),
        }
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=200, help="requests per second allowed")
    parser.add_argument("--seconds", type=float, default=8.0, help="sending time per run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results = [run(1, args.limit, args.seconds), run(4, args.limit, args.seconds)]
    print(f"POST /events/batch limited to {args.limit} requests/s (10 events per request)\n")
    print(
        "| ingestor processes | span | seconds | requests/s let through "
        "| share of the limit | 429s |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for r in results:
        for name, label in (("steady", "all sending"), ("whole", "whole run")):
            f = r[name]
            print(
                f"| {r['processes']} | {label} | {f['seconds']:.1f} | {f['allowed_per_s']:,.1f} "
                f"| {f['share_of_limit']:.1%} | {f['share_429']:.2%} |"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
