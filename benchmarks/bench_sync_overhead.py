"""Per-call overhead of the blocking facade (``lago_sync``) over the async core.

    python benchmarks/bench_sync_overhead.py [--count 2000] [--rounds 5]

Both clients call ``customers.get("acme")`` one after the other against a local aiohttp.web
server answering a fixed customer. The server runs in a child process, so that its work does
not compete with the clients for this process's GIL. Each round times ``--count`` sequential
calls with the async client (``await`` in one ``asyncio.run``) and then with the sync client
(one ``Lago`` and its portal thread), after a warm-up; the table gives the median of the
rounds: wall time and CPU time (this process, all threads) per call, and the differences.
The project's target is an overhead of at most 60 µs per call. For reference, a last row
sends the same calls through anyio's ``BlockingPortal.call``, which ``lago_sync`` uses to run
its portal thread but not for each call (it costs more: see ``lago_sync/_portal.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

API_KEY = "bench_key"
CUSTOMER = (
    b'{"customer":{"lago_id":"1a2b3c4d-0000-0000-0000-000000000000","external_id":"acme",'
    b'"applicable_timezone":"UTC","created_at":"2025-01-01T00:00:00Z","name":"Acme",'
    b'"currency":"EUR","sequential_id":1,"slug":"LAG-1"}}'
)
TARGET_US = 60.0


def serve() -> None:
    """The child process: serve the customer until stdin closes; print the port first."""
    from aiohttp import web

    async def customer(request: web.Request) -> web.Response:
        return web.Response(body=CUSTOMER, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/api/v1/customers/{external_id}", customer)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        print(port, flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
        await runner.cleanup()

    asyncio.run(main())


def measure_async(base_url: str, count: int, warmup: int) -> tuple[float, float]:
    from lago_async import AsyncLago

    async def main() -> tuple[float, float]:
        async with AsyncLago(api_key=API_KEY, base_url=base_url) as lago:
            get = lago.customers.get
            for _ in range(warmup):
                await get("acme")
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(count):
                await get("acme")
            return time.perf_counter() - wall, time.process_time() - cpu

    return asyncio.run(main())


def measure_sync(base_url: str, count: int, warmup: int) -> tuple[float, float]:
    from lago_sync import Lago

    with Lago(api_key=API_KEY, base_url=base_url) as lago:
        get = lago.customers.get
        for _ in range(warmup):
            get("acme")
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(count):
            get("acme")
        return time.perf_counter() - wall, time.process_time() - cpu


def measure_portal_call(base_url: str, count: int, warmup: int) -> tuple[float, float]:
    """For reference: the same calls through anyio's ``BlockingPortal.call``."""
    from functools import partial

    from anyio.from_thread import start_blocking_portal

    from lago_async import AsyncLago

    with start_blocking_portal() as portal:
        lago = portal.call(partial(AsyncLago, api_key=API_KEY, base_url=base_url))
        get = lago.customers.get
        for _ in range(warmup):
            portal.call(get, "acme")
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(count):
            portal.call(get, "acme")
        elapsed = time.perf_counter() - wall, time.process_time() - cpu
        portal.call(lago.aclose)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="sequential calls per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (the median is shown)")
    parser.add_argument("--warmup", type=int, default=200, help="calls before timing")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0

    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        base_url = f"http://127.0.0.1:{port}/api/v1"
        rows: dict[str, list[tuple[float, float]]] = {"async": [], "sync": [], "portal": []}
        measures = (
            ("async", measure_async),
            ("sync", measure_sync),
            ("portal", measure_portal_call),
        )
        for _ in range(args.rounds):
            for name, measure in measures:
                wall, cpu = measure(base_url, args.count, args.warmup)
                rows[name].append((wall / args.count * 1e6, cpu / args.count * 1e6))
    finally:
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()

    def median(name: str, index: int) -> float:
        return statistics.median(row[index] for row in rows[name])

    async_wall, async_cpu = median("async", 0), median("async", 1)
    sync_wall, sync_cpu = median("sync", 0), median("sync", 1)
    overhead = sync_wall - async_wall
    verdict = "meets" if overhead <= TARGET_US else "misses"
    print(
        f"`customers.get`, {args.count} sequential calls per round, median of {args.rounds} "
        f"rounds (Python {sys.version.split()[0]}):\n"
    )
    print("| client | wall µs/call | CPU µs/call |")
    print("|---|---:|---:|")
    print(f"| `lago_async` (`await`) | {async_wall:.1f} | {async_cpu:.1f} |")
    print(f"| `lago_sync` (blocking) | {sync_wall:.1f} | {sync_cpu:.1f} |")
    print(f"| **sync overhead** | **{overhead:+.1f}** | **{sync_cpu - async_cpu:+.1f}** |")
    portal_wall, portal_cpu = median("portal", 0), median("portal", 1)
    print(
        f"| for reference: `AsyncLago` through anyio's `BlockingPortal.call` | {portal_wall:.1f} "
        f"({portal_wall - async_wall:+.1f}) | {portal_cpu:.1f} ({portal_cpu - async_cpu:+.1f}) |"
    )
    print(f"\nTarget: <= {TARGET_US:.0f} µs of wall time per call over async: {verdict} it.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
