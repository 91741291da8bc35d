"""One benchmark client per process: ``python -m benchmarks.clients SCENARIO [options]``.

Each scenario builds the same events the same way, sends them to the server at ``--url`` (the
root, ``http://host:port``), and prints one JSON object on stdout: how many events (or calls)
it measured, the wall time and the CPU time of the measured part. CPU time is the whole
process's (every thread), from :func:`time.process_time`; imports, start-up and a warm-up
round are outside the measured part.

Scenarios are listed in :data:`SCENARIOS`; ``--help`` shows the options.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["SCENARIOS", "main"]

API = "/api/v1"
T0 = 1_735_689_600  # 2025-01-01T00:00:00Z, a fixed event time


def make_event(run: str, n: int) -> dict[str, Any]:
    """The event every client sends: Lago's required fields, a timestamp and two properties."""
    return {
        "transaction_id": f"{run}-{n}",
        "code": "api_calls",
        "external_subscription_id": f"sub_{n % 100}",
        "timestamp": T0 + n % 86_400,
        "properties": {"units": 1, "region": "eu-west-1"},
    }


class Measure:
    """Wall and process CPU time of a block (``with Measure() as m: ...; m.wall, m.cpu``)."""

    wall = 0.0
    cpu = 0.0

    def __enter__(self) -> Measure:
        gc.collect()
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu = time.process_time() - self._cpu
        self.wall = time.perf_counter() - self._wall


def result(count: int, m: Measure, **extra: Any) -> dict[str, Any]:
    return {"count": count, "wall_s": m.wall, "cpu_s": m.cpu, **extra}


# -- event ingestion ------------------------------------------------------------------------


async def async_ingestor(args: argparse.Namespace) -> dict[str, Any]:
    """``lago_async``: ``async with lago.events.ingestor() as ingest: await ingest.send(...)``."""
    from lago_async import AsyncLago

    async with AsyncLago(api_key=args.api_key, base_url=args.url + API) as lago:
        async with lago.events.ingestor() as ingest:
            for n in range(args.warmup):
                await ingest.send(make_event("warm", n))
        with Measure() as m:
            async with lago.events.ingestor() as ingest:
                for n in range(args.count):
                    await ingest.send(make_event(args.run, n))
    stats = ingest.stats
    return result(args.count, m, delivered=stats.delivered, batches=stats.batches)


ROWS = 1_000
"""Events per ``send_many`` call fed with lists: a page of rows, as a bulk producer reads them."""


async def async_ingestor_many(args: argparse.Namespace) -> dict[str, Any]:
    """``lago_async``: ``await ingest.send_many(rows)``, the bulk entry point, fed lists of
    :data:`ROWS` events built in the measured loop (a page of rows from a file or a database)."""
    from lago_async import AsyncLago

    async def send_all(ingest: Any, run: str, total: int) -> None:
        for start in range(0, total, ROWS):
            await ingest.send_many(
                [make_event(run, n) for n in range(start, min(start + ROWS, total))]
            )

    async with AsyncLago(api_key=args.api_key, base_url=args.url + API) as lago:
        async with lago.events.ingestor() as ingest:
            await send_all(ingest, "warm", args.warmup)
        with Measure() as m:
            async with lago.events.ingestor() as ingest:
                await send_all(ingest, args.run, args.count)
    stats = ingest.stats
    return result(args.count, m, delivered=stats.delivered, batches=stats.batches)


async def async_ingestor_many_gen(args: argparse.Namespace) -> dict[str, Any]:
    """``lago_async``: ``await ingest.send_many(generator)``: the events are encoded one by
    one, since a generator may hand out one dict and change it for the next event."""
    from lago_async import AsyncLago

    async with AsyncLago(api_key=args.api_key, base_url=args.url + API) as lago:
        async with lago.events.ingestor() as ingest:
            await ingest.send_many(make_event("warm", n) for n in range(args.warmup))
        with Measure() as m:
            async with lago.events.ingestor() as ingest:
                await ingest.send_many(make_event(args.run, n) for n in range(args.count))
    stats = ingest.stats
    return result(args.count, m, delivered=stats.delivered, batches=stats.batches)


def sync_ingestor(args: argparse.Namespace) -> dict[str, Any]:
    """``lago_sync``: ``with lago.events.ingestor() as ingest: ingest.send(...)`` from threads."""
    from lago_sync import Lago

    threads = args.threads
    per_thread = args.count // threads

    def feed(ingest: Any, run: str, start: int, count: int) -> None:
        for n in range(start, start + count):
            ingest.send(make_event(run, n))

    def run_threads(ingest: Any, run: str, count: int) -> None:
        workers = [
            threading.Thread(target=feed, args=(ingest, run, t * count, count))
            for t in range(threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    with Lago(api_key=args.api_key, base_url=args.url + API) as lago:
        with lago.events.ingestor() as ingest:
            run_threads(ingest, "warm", max(1, args.warmup // threads))
        with Measure() as m:
            with lago.events.ingestor() as ingest:
                run_threads(ingest, args.run, per_thread)
    stats = ingest.stats
    return result(per_thread * threads, m, delivered=stats.delivered, batches=stats.batches)


async def raw_batches(args: argparse.Namespace) -> dict[str, Any]:
    """The floor: aiohttp and orjson posting 100-event batches, 8 requests in flight."""
    import aiohttp

    url = args.url + API + "/events/batch"
    headers = {"Authorization": f"Bearer {args.api_key}", "Content-Type": "application/json"}
    size, in_flight = 100, 8

    async with aiohttp.ClientSession(headers=headers) as session:
        slots = asyncio.Semaphore(in_flight)
        tasks: set[asyncio.Task[None]] = set()
        delivered = 0

        async def post(body: bytes, count: int) -> None:
            nonlocal delivered
            try:
                async with session.post(url, data=body) as response:
                    raw = await response.read()
                    if response.status >= 400:
                        raise RuntimeError(f"{response.status}: {raw[:200]!r}")
                    orjson.loads(raw)
                    delivered += count
            finally:
                slots.release()

        async def send_all(run: str, total: int) -> None:
            batch: list[dict[str, Any]] = []
            for n in range(total):
                batch.append(make_event(run, n))
                if len(batch) == size or n == total - 1:
                    body = orjson.dumps({"events": batch})
                    count, batch = len(batch), []
                    await slots.acquire()
                    task = asyncio.create_task(post(body, count))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            await asyncio.gather(*tasks)

        await send_all("warm", args.warmup)
        delivered = 0
        with Measure() as m:
            await send_all(args.run, args.count)
    return result(args.count, m, delivered=delivered)


def official_batch(args: argparse.Namespace) -> dict[str, Any]:
    """``lago-python-client``: ``client.events.batch_create(BatchEvent(events=[...]))``."""
    from lago_python_client import Client
    from lago_python_client.models import BatchEvent, Event

    client = Client(api_key=args.api_key, api_url=args.url + "/")

    def send_all(run: str, total: int) -> None:
        for start in range(0, total, 100):
            events = [Event(**make_event(run, n)) for n in range(start, min(start + 100, total))]
            client.events.batch_create(BatchEvent(events=events))

    send_all("warm", min(args.warmup, 200))
    with Measure() as m:
        send_all(args.run, args.count)
    return result(args.count, m, delivered=args.count)


def official_create(args: argparse.Namespace) -> dict[str, Any]:
    """``lago-python-client``: ``client.events.create(Event(...))``, one request per event."""
    from lago_python_client import Client
    from lago_python_client.models import Event

    client = Client(api_key=args.api_key, api_url=args.url + "/")
    for n in range(min(args.warmup, 5)):
        client.events.create(Event(**make_event("warm", n)))
    with Measure() as m:
        for n in range(args.count):
            client.events.create(Event(**make_event(args.run, n)))
    return result(args.count, m, delivered=args.count)


# -- single calls ---------------------------------------------------------------------------


async def _concurrently(total: int, concurrency: int, call: Callable[[int], Any]) -> None:
    counter = iter(range(total))

    async def worker() -> None:
        for n in counter:
            await call(n)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def async_create_concurrent(args: argparse.Namespace) -> dict[str, Any]:
    """``await lago.events.create(...)`` from ``--concurrency`` tasks."""
    from lago_async import AsyncLago

    async with AsyncLago(api_key=args.api_key, base_url=args.url + API) as lago:

        def call(run: str) -> Callable[[int], Any]:
            return lambda n: lago.events.create(make_event(run, n))

        await _concurrently(args.warmup, args.concurrency, call("warm"))
        with Measure() as m:
            await _concurrently(args.count, args.concurrency, call(args.run))
    return result(args.count, m)


async def raw_create_concurrent(args: argparse.Namespace) -> dict[str, Any]:
    """aiohttp and orjson posting one event per request from ``--concurrency`` tasks."""
    import aiohttp

    url = args.url + API + "/events"
    headers = {"Authorization": f"Bearer {args.api_key}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(headers=headers) as session:

        def call(run: str) -> Callable[[int], Any]:
            async def post(n: int) -> Any:
                body = orjson.dumps({"event": make_event(run, n)})
                async with session.post(url, data=body) as response:
                    raw = await response.read()
                    if response.status >= 400:
                        raise RuntimeError(f"{response.status}: {raw[:200]!r}")
                    return orjson.loads(raw)["event"]

            return post

        await _concurrently(args.warmup, args.concurrency, call("warm"))
        with Measure() as m:
            await _concurrently(args.count, args.concurrency, call(args.run))
    return result(args.count, m)


async def async_create_sequential(args: argparse.Namespace) -> dict[str, Any]:
    """``await lago.events.create(...)`` one after the other."""
    from lago_async import AsyncLago

    async with AsyncLago(api_key=args.api_key, base_url=args.url + API) as lago:
        for n in range(args.warmup):
            await lago.events.create(make_event("warm", n))
        with Measure() as m:
            for n in range(args.count):
                await lago.events.create(make_event(args.run, n))
    return result(args.count, m)


def sync_create_sequential(args: argparse.Namespace) -> dict[str, Any]:
    """``lago.events.create(...)`` (``lago_sync``) one after the other."""
    from lago_sync import Lago

    with Lago(api_key=args.api_key, base_url=args.url + API) as lago:
        for n in range(args.warmup):
            lago.events.create(make_event("warm", n))
        with Measure() as m:
            for n in range(args.count):
                lago.events.create(make_event(args.run, n))
    return result(args.count, m)


# -- memory ---------------------------------------------------------------------------------


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def ingestor_memory(args: argparse.Namespace) -> dict[str, Any]:
    """Bytes the ingestor holds per queued event, ``--count`` events queued.

    The client points at the sink's ``/hang/`` prefix, so the first ``max_in_flight``
    requests never get an answer and every other event stays queued; the caller keeps no
    reference to the events it sent. Python allocations are counted with tracemalloc
    (``--tracemalloc``) or, by default, as the growth of the resident set.
    """
    import logging
    import tracemalloc

    from lago_async import AsyncLago

    logging.getLogger("lago_async").setLevel(logging.CRITICAL)  # the stuck batches are expected

    traced = args.tracemalloc
    lago = AsyncLago(api_key=args.api_key, base_url=args.url + "/hang" + API, timeout=3600)
    ingest = lago.events.ingestor(max_queue=args.count + 10_000, flush_interval=3600)
    await ingest.__aenter__()
    # warm up everything that is allocated once (session, connections, semaphore waiters)
    for n in range(2000):
        ingest.send_nowait(make_event("warm", n))
    await asyncio.sleep(0.5)
    gc.collect()
    if traced:
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0] if traced else _rss()
    started = time.perf_counter()
    for n in range(args.count):
        ingest.send_nowait(make_event(args.run, n))
    await asyncio.sleep(0.5)  # let the batch tasks start and park on the semaphore
    gc.collect()
    after = tracemalloc.get_traced_memory()[0] if traced else _rss()
    elapsed = time.perf_counter() - started
    stats = ingest.stats
    held = stats.queued + stats.in_flight - 2000
    return {
        "count": args.count,
        "held": held,
        "bytes": after - before,
        "bytes_per_event": (after - before) / max(held, 1),
        "method": "tracemalloc" if traced else "rss",
        "wall_s": elapsed,
    }


SCENARIOS: dict[str, Callable[[argparse.Namespace], Any]] = {
    "async_ingestor": async_ingestor,
    "async_ingestor_many": async_ingestor_many,
    "async_ingestor_many_gen": async_ingestor_many_gen,
    "sync_ingestor": sync_ingestor,
    "raw_batches": raw_batches,
    "official_batch": official_batch,
    "official_create": official_create,
    "async_create_concurrent": async_create_concurrent,
    "raw_create_concurrent": raw_create_concurrent,
    "async_create_sequential": async_create_sequential,
    "sync_create_sequential": sync_create_sequential,
    "ingestor_memory": ingestor_memory,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.clients")
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--url", required=True, help="server root, http://host:port")
    parser.add_argument("--api-key", default="bench_key")
    parser.add_argument("--count", type=int, required=True, help="events or calls measured")
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--run", default=f"r{os.getpid()}-{time.time_ns()}")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--profile", metavar="HTML", help="profile the run with pyinstrument")
    args = parser.parse_args(argv)
    scenario = SCENARIOS[args.scenario]

    def run() -> Any:
        outcome = scenario(args)
        return asyncio.run(outcome) if asyncio.iscoroutine(outcome) else outcome

    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005, async_mode="disabled")
        with profiler:
            data = run()
        with open(args.profile, "w", encoding="utf-8") as out:
            out.write(profiler.output_html())
        sys.stderr.write(profiler.output_text(unicode=False, color=False, show_all=False))
    else:
        try:
            data = run()
        except BaseException:
            if args.scenario == "ingestor_memory":
                import traceback

                traceback.print_exc()
                os._exit(1)
            raise
    data["scenario"] = args.scenario
    sys.stdout.write(orjson.dumps(data).decode() + "\n")
    sys.stdout.flush()
    if args.scenario == "ingestor_memory":
        os._exit(0)  # the queued events cannot be delivered; do not wait for them
    return 0


if __name__ == "__main__":
    sys.exit(main())
