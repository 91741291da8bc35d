"""What the ingestor's durable spool costs: CPU per event and events per second, with the
spool and without it, side by side in one run.

    python -m benchmarks.bench_spool [--count 50000] [--rounds 3] [--json out.json]

Every measurement runs in a fresh process (pinned to the first CPU, the server to the last,
as ``python -m benchmarks`` does) sending to the benchmarks' sink (:mod:`benchmarks.sink`).
Each scenario is measured without a spool (``memory``) and with one (``spool``, a fresh
SQLite file in a temporary folder, ``spool_sync="normal"`` unless the scenario says
``full``); rounds are interleaved and the table gives the medians. CPU is the whole process's
(every thread: the spool's writer included), from :func:`time.process_time`, from the
ingestor's opening to its close (every event delivered, and deleted from the spool).

Scenarios:

* ``send``: one producer, ``await ingest.send(event)`` in a loop. With a spool each call
  waits for its own commit, so nothing can be grouped: the worst case.
* ``send x64``: 64 producer tasks awaiting ``send`` at once; their writes share commits.
* ``send_many``: ``await ingest.send_many(generator)``; one wait for the disk at the end.
* ``sync x4``: ``lago_sync``'s blocking ``ingest.send`` from 4 threads.
* ``send_many full``: ``send_many`` with ``spool_sync="full"`` (a disk flush per commit).

The project's goal is a spool costing at most 2x the CPU per event of the in-memory ingestor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.clients import API, Measure, make_event, result
from benchmarks.run import API_KEY, Runner

SCENARIOS = ("send", "send x64", "send_many", "sync x4", "send_many full")
SEQUENTIAL_SHARE = 5
"""The one-producer ``send`` scenario sends count / this with a spool (it is slow)."""
GOAL = 2.0


def _options(spool: str | None, scenario: str) -> dict[str, Any]:
    if spool is None:
        return {}
    return {"spool": spool, "spool_sync": "full" if scenario.endswith("full") else "normal"}


async def _async_client(args: argparse.Namespace, spool: str | None) -> dict[str, Any]:
    from lago_async import AsyncLago

    scenario = args.scenario
    count = args.count

    async def feed(ingest: Any, run: str, total: int) -> None:
        if scenario.startswith("send_many"):
            await ingest.send_many(make_event(run, n) for n in range(total))
        elif scenario == "send x64":
            send = ingest.send

            async def producer(first: int) -> None:
                for n in range(first, total, 64):
                    await send(make_event(run, n))

            await asyncio.gather(*(producer(k) for k in range(64)))
        else:
            send = ingest.send
            for n in range(total):
                await send(make_event(run, n))

    options = _options(spool, scenario)
    async with AsyncLago(api_key=args.api_key, base_url=args.url + API) as lago:
        async with lago.events.ingestor(**options) as ingest:
            await feed(ingest, "warm", args.warmup)
        with Measure() as m:
            async with lago.events.ingestor(**options) as ingest:
                await feed(ingest, args.run, count)
    stats = ingest.stats
    return result(count, m, delivered=stats.delivered)


def _sync_client(args: argparse.Namespace, spool: str | None) -> dict[str, Any]:
    from lago_sync import Lago

    threads = 4
    per_thread = args.count // threads

    def run_threads(ingest: Any, run: str, count: int) -> None:
        def feed(start: int) -> None:
            for n in range(start, start + count):
                ingest.send(make_event(run, n))

        workers = [threading.Thread(target=feed, args=(t * count,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    options = _options(spool, args.scenario)
    with Lago(api_key=args.api_key, base_url=args.url + API) as lago:
        with lago.events.ingestor(**options) as ingest:
            run_threads(ingest, "warm", max(1, args.warmup // threads))
        with Measure() as m:
            with lago.events.ingestor(**options) as ingest:
                run_threads(ingest, args.run, per_thread)
    stats = ingest.stats
    return result(per_thread * threads, m, delivered=stats.delivered)


def client_main(args: argparse.Namespace) -> int:
    """One measurement, in this process: print its JSON result."""
    with tempfile.TemporaryDirectory(prefix="lago-bench-spool-") as folder:
        spool = os.path.join(folder, "events.db") if args.mode == "spool" else None
        if args.scenario.startswith("sync"):
            data = _sync_client(args, spool)
        else:
            data = asyncio.run(_async_client(args, spool))
        if spool is not None:
            data["spool_bytes_after"] = os.path.getsize(spool)
    if data["delivered"] != data["count"]:
        raise SystemExit(f"only {data['delivered']} of {data['count']} events were delivered")
    print(json.dumps(data), flush=True)
    return 0


def _count(scenario: str, mode: str, count: int) -> int:
    if scenario == "send" and mode == "spool":
        return max(1_000, count // SEQUENTIAL_SHARE)
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=50_000, help="events per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (the median is shown)")
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--only", help="comma-separated scenarios (default: all)")
    parser.add_argument("--json", help="also write the raw figures to this file")
    parser.add_argument("--no-pin", action="store_true", help="let the kernel place processes")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("memory", "spool"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--api-key", default=API_KEY, help=argparse.SUPPRESS)
    parser.add_argument("--run", default=f"r{os.getpid()}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        return client_main(args)

    scenarios = SCENARIOS if not args.only else tuple(s.strip() for s in args.only.split(","))
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {SCENARIOS}")
    runner = Runner(pin=not args.no_pin, verbose=False)
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with runner.server() as url:
        for round_ in range(args.rounds):
            for scenario in scenarios:
                for mode in ("memory", "spool"):
                    command = [
                        "-m",
                        "benchmarks.bench_spool",
                        "--client",
                        "--scenario",
                        scenario,
                        "--mode",
                        mode,
                        "--url",
                        url,
                        "--count",
                        str(_count(scenario, mode, args.count)),
                        "--warmup",
                        str(args.warmup),
                        "--run",
                        f"r{round_}-{mode}-{scenario.replace(' ', '_')}",
                    ]
                    data = runner.run_json(command)
                    runs.setdefault((scenario, mode), []).append(data)
                    print(
                        f"  round {round_ + 1} {scenario:<15} {mode:<6} "
                        f"{data['count'] / data['wall_s']:>9,.0f} events/s  "
                        f"cpu {data['cpu_s'] / data['count'] * 1e6:6.2f} us/event",
                        file=sys.stderr,
                        flush=True,
                    )

    def median(scenario: str, mode: str, what: str) -> float:
        rows = runs[(scenario, mode)]
        if what == "rate":
            return statistics.median(r["count"] / r["wall_s"] for r in rows)
        return statistics.median(r["cpu_s"] / r["count"] * 1e6 for r in rows)

    print(
        f"\nEvents through the ingestor to the benchmark sink, median of {args.rounds} rounds "
        f"(Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
        f"{', client and server pinned apart' if runner.pinned else ''}):\n"
    )
    print(
        "| scenario | events/s, memory | events/s, spool | CPU µs/event, memory "
        "| CPU µs/event, spool | CPU ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    summary: dict[str, Any] = {}
    for scenario in scenarios:
        cpu_mem, cpu_spool = median(scenario, "memory", "cpu"), median(scenario, "spool", "cpu")
        rate_mem, rate_spool = median(scenario, "memory", "rate"), median(scenario, "spool", "rate")
        ratio = cpu_spool / cpu_mem
        summary[scenario] = {
            "rate_memory": rate_mem,
            "rate_spool": rate_spool,
            "cpu_us_memory": cpu_mem,
            "cpu_us_spool": cpu_spool,
            "cpu_ratio": ratio,
        }
        mark = "" if ratio <= GOAL else " (over the goal)"
        print(
            f"| `{scenario}` | {rate_mem:,.0f} | {rate_spool:,.0f} | {cpu_mem:.1f} "
            f"| {cpu_spool:.1f} | {ratio:.2f}x{mark} |"
        )
    print(f"\nGoal: a spool costs at most {GOAL:.0f}x the CPU per event of the in-memory ingestor.")
    if args.json:
        raw = {f"{s}|{m}": rows for (s, m), rows in runs.items()}
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"summary": summary, "runs": raw}, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
