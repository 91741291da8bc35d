"""A minimal Lago-shaped HTTP sink for throughput benchmarks.

FakeLago validates and stores every event, which makes it the bottleneck when a client sends
hundreds of thousands of events a second. This sink does the least a server can do and still
answer like Lago:

* ``POST /api/v1/events`` answers ``{"event": {...}}`` built from the event received (the
  fields a client structures into its model);
* ``POST /api/v1/events/batch`` answers ``{"events": []}``, a small body valid against the
  ``EventsCreated`` schema;
* every event received is counted (``GET /_stats`` answers the counters, ``POST /_reset``
  zeroes them);
* anything under ``/hang/`` is read and never answered, for measuring what a client holds
  while its requests are stuck;
* a request without the expected bearer token answers 401, any other path 404.

    python -m benchmarks.sink --port 0 --api-key bench_key

prints its root URL (``http://127.0.0.1:PORT``) on the first line of stdout and serves until
SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

import orjson
from aiohttp import web

__all__ = ["Sink", "main"]

_BATCH_ANSWER = b'{"events":[]}'
_CREATED_AT = "2025-01-01T00:00:00Z"


class Sink:
    """Counts events and answers Lago-shaped bodies; see the module docstring."""

    def __init__(self, api_key: str) -> None:
        self.auth = f"Bearer {api_key}"
        self.events = 0
        self.requests = 0
        self._never = asyncio.Event()

    def stats(self) -> dict[str, int]:
        return {"events": self.events, "requests": self.requests}

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_"):
            if path == "/_reset":
                self.events = self.requests = 0
            return _json(orjson.dumps(self.stats()), 200)
        body = await request.read()
        if path.startswith("/hang/"):
            await self._never.wait()
        self.requests += 1
        if request.headers.get("Authorization") != self.auth:
            return _json(b'{"status":401,"error":"Unauthorized"}', 401)
        if request.method != "POST":
            return _json(b'{"status":404,"error":"Not Found","code":"route_not_found"}', 404)
        if path == "/api/v1/events/batch":
            self.events += len(orjson.loads(body)["events"])
            return _json(_BATCH_ANSWER, 200)
        if path == "/api/v1/events":
            event = orjson.loads(body)["event"]
            self.events += 1
            answer = {
                "event": {
                    "lago_id": "00000000-0000-0000-0000-000000000000",
                    "transaction_id": event["transaction_id"],
                    "lago_customer_id": None,
                    "code": event["code"],
                    "timestamp": _CREATED_AT,
                    "lago_subscription_id": None,
                    "external_subscription_id": event["external_subscription_id"],
                    "precise_total_amount_cents": None,
                    "properties": event.get("properties") or {},
                    "created_at": _CREATED_AT,
                }
            }
            return _json(orjson.dumps(answer), 200)
        return _json(b'{"status":404,"error":"Not Found","code":"route_not_found"}', 404)


def _json(body: bytes, status: int) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


async def serve(host: str, port: int, api_key: str) -> None:
    """Serve a :class:`Sink` until SIGINT or SIGTERM, printing its URL first."""
    sink = Sink(api_key)
    server = web.Server(sink.handle, access_log=None)
    runner = web.ServerRunner(server, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"http://{host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sink", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default="bench_key")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.api_key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
