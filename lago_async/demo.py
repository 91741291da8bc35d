"""The README's demo: meter 100,000 usage events, then read the usage back.

    python -m lago_async.demo [--events N] [--customers K] [--no-faults]

Without ``LAGO_API_URL``/``LAGO_API_KEY`` it starts an embedded :class:`FakeLago` that drops
a few connections, answers some requests with 503 and 429, and stores some batches without
answering (the case that double-bills with naive retries), then checks that every event was
stored exactly once. With both variables set it sends to that Lago instead (use a test
organisation: the events are real); reading usage back there needs subscriptions that exist.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from typing import Any

from ._client import AsyncLago
from ._errors import APIError
from ._ingest import EventIngestor, IngestStats

__all__ = ["main"]

CODES = ("api_calls", "storage_gb")


class _ProgressBar:
    """Draws the ingestor's progress from its ``on_progress`` snapshots."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.started = time.perf_counter()
        self.interactive = sys.stderr.isatty()

    def __call__(self, stats: IngestStats) -> None:
        width = 40
        done = stats.settled
        filled = width * done // self.total if self.total else width
        rate = done / max(time.perf_counter() - self.started, 1e-9)
        bar = "#" * filled + "." * (width - filled)
        end = "" if self.interactive and done < self.total else "\n"
        sys.stderr.write(
            f"\r[{bar}] {done:>9,} of {self.total:,} settled  {rate:>9,.0f} events/s{end}"
        )
        sys.stderr.flush()


def _event(run: str, n: int, subscriptions: list[str]) -> dict[str, Any]:
    code = CODES[n % len(CODES)]
    value = 1 if code == "api_calls" else (n % 7) + 1
    return {
        "transaction_id": f"demo-{run}-{n}",
        "code": code,
        "external_subscription_id": subscriptions[n % len(subscriptions)],
        "properties": {"units": value, "region": "eu-west-1" if n % 3 else "us-east-1"},
    }


async def _ingest(
    lago: AsyncLago, run: str, total: int, subscriptions: list[str]
) -> tuple[EventIngestor, float]:
    bar = _ProgressBar(total)
    interval = 0.2 if bar.interactive else 2.0
    async with lago.events.ingestor(
        max_in_flight=8, on_progress=bar, progress_interval=interval
    ) as ingest:
        for n in range(total):
            await ingest.send(_event(run, n, subscriptions))
    return ingest, time.perf_counter() - bar.started


async def _report_usage(lago: AsyncLago, customers: list[str], subscriptions: list[str]) -> None:
    print("\nCurrent usage read back from the API:")
    for customer, subscription in zip(customers, subscriptions, strict=True):
        try:
            usage = await lago.customers.current_usage(
                customer, external_subscription_id=subscription
            )
        except APIError as exc:
            print(f"  {customer}/{subscription}: {exc.status} {exc.code or exc.error}")
            continue
        parts = [
            f"{charge.billable_metric.code}: {charge.events_count:,} events, {charge.units:,} units"
            for charge in usage.charges_usage
        ]
        amount = usage.total_amount_cents / 100
        print(f"  {customer} ({subscription}): {'; '.join(parts)}; {amount:,.2f} {usage.currency}")


async def _run(args: argparse.Namespace) -> int:
    run = uuid.uuid4().hex[:8]
    customers = [f"demo_customer_{i}" for i in range(args.customers)]
    subscriptions = [f"demo_sub_{run}_{i}" for i in range(args.customers)]
    real = bool(os.environ.get("LAGO_API_URL") and os.environ.get("LAGO_API_KEY"))
    if real:
        print(f"Sending {args.events:,} events to {os.environ['LAGO_API_URL']}")
        async with AsyncLago() as lago:
            for customer in customers:
                await lago.customers.create(external_id=customer, name=customer)
            ingest, elapsed = await _ingest(lago, run, args.events, subscriptions)
            _summary(ingest, elapsed)
            await _report_usage(lago, customers, subscriptions)
        return 0 if not ingest.stats.failed else 1

    from .testing import FakeLago

    async with FakeLago(seed=7) as fake:
        for customer, subscription in zip(customers, subscriptions, strict=True):
            fake.add_customer(customer, name=customer.replace("_", " ").title(), currency="EUR")
            fake.add_subscription(subscription, customer)
        if args.faults:
            route = "POST /events/batch"
            fake.faults.add(route=route, status=503, rate=0.02)
            fake.faults.rate_limit(route=route, rate=0.01, reset=0)
            fake.faults.drop(route=route, rate=0.01)
            fake.faults.store_then_drop(route=route, rate=0.01)
            print(
                "Embedded FakeLago with faults on POST /events/batch: 2% 503, 1% 429, "
                "1% dropped connections, 1% stored but unanswered"
            )
        print(f"Sending {args.events:,} events to {fake.base_url}")
        async with AsyncLago(api_key=fake.api_key, base_url=fake.base_url) as lago:
            ingest, elapsed = await _ingest(lago, run, args.events, subscriptions)
            _summary(ingest, elapsed)
            stored = len(fake.events)
            ids = {e["transaction_id"] for e in fake.events}
            print(
                f"FakeLago holds {stored:,} events, {len(ids):,} distinct transaction ids "
                f"({'exactly once' if stored == len(ids) == args.events else 'MISMATCH'})"
            )
            if fake.faults.fired:
                print(
                    "Faults injected: "
                    + ", ".join(
                        f"{name} x{count}" for name, count in sorted(fake.faults.fired.items())
                    )
                )
            await _report_usage(lago, customers, subscriptions)
        return 0 if stored == len(ids) == args.events else 1


def _summary(ingest: EventIngestor, elapsed: float) -> None:
    s = ingest.stats
    print(
        f"\nAccepted {s.accepted:,} events in {elapsed:,.2f} s ({s.accepted / elapsed:,.0f} "
        f"events/s), {s.batches:,} batch requests of which {s.retries:,} were retries:\n"
        f"  delivered   {s.delivered:>9,}  stored by Lago, answer received\n"
        f"  duplicates  {s.duplicates:>9,}  stored by an earlier attempt whose answer was lost "
        "(delivered, not lost)\n"
        f"  rejected    {s.rejected:>9,}  refused by Lago as invalid\n"
        f"  failed      {s.failed:>9,}  delivery not confirmed\n"
        f"  settled     {s.settled:>9,}  = delivered + duplicates + rejected + failed"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m lago_async.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--events", type=int, default=100_000, help="events to send")
    parser.add_argument("--customers", type=int, default=3, help="customers to spread them over")
    parser.add_argument(
        "--no-faults",
        dest="faults",
        action="store_false",
        help="no fault injection in the embedded FakeLago",
    )
    args = parser.parse_args(argv)
    return asyncio.run(_run(args))


if __name__ == "__main__":
    raise SystemExit(main())
