"""Serve a FakeLago from the command line until SIGINT or SIGTERM.

    python -m lago_async.testing --port 8080 --api-key test_api_key \\
        --seed-file seed.json --fault "503:0.05@POST /events/batch" --fault drop:0.01

The first line printed on stdout is the base URL (``http://127.0.0.1:8080/api/v1``). An app
under test in another process (a FastAPI app under uvicorn, a worker) talks to it; the test
reads what it stored from ``GET /_fake_lago/state`` (same bearer token).

``--fault`` takes ``KIND[:RATE][@ROUTE]``, repeatable: ``KIND`` is an HTTP error status
(``503``; ``429`` answers as Lago Cloud's rate limiter), ``drop``, ``store_then_drop`` or
``latency=SECONDS``; ``RATE`` is the probability (default 1); ``ROUTE`` is one of FakeLago's
routes (``POST /events/batch``), every route when left out.

Webhook endpoints are registered through the API (``POST /webhook_endpoints``);
``--webhook-hmac-key`` sets the key of ``hmac`` ones, so the app under test can verify them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._server import FakeLago


def parse_fault(text: str) -> dict[str, Any]:
    """``KIND[:RATE][@ROUTE]`` as keyword arguments for :func:`add_fault`."""
    spec, _, route = text.partition("@")
    kind, _, rate_text = spec.partition(":")
    try:
        rate = float(rate_text) if rate_text else 1.0
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad rate in fault {text!r}") from None
    if not 0.0 <= rate <= 1.0:
        raise argparse.ArgumentTypeError(f"the rate of fault {text!r} must be within 0..1")
    fault: dict[str, Any] = {"rate": rate, "route": route.strip() or None}
    name, _, value = kind.strip().partition("=")
    if name in ("drop", "store_then_drop"):
        fault["kind"] = name
    elif name == "latency":
        try:
            fault.update(kind="latency", seconds=float(value))
        except ValueError:
            raise argparse.ArgumentTypeError(f"latency needs seconds: {text!r}") from None
    elif name.isdigit() and 400 <= int(name) <= 599:
        fault.update(kind="status", status=int(name))
    else:
        raise argparse.ArgumentTypeError(
            f"unknown fault {text!r}: use a status (503), drop, store_then_drop or latency=S"
        )
    return fault


def add_fault(fake: FakeLago, fault: dict[str, Any]) -> None:
    """Add one parsed ``--fault`` to ``fake``."""
    options = {"rate": fault["rate"], "route": fault["route"]}
    kind = fault["kind"]
    if kind == "drop":
        fake.faults.drop(**options)
    elif kind == "store_then_drop":
        fake.faults.store_then_drop(**options)
    elif kind == "latency":
        fake.faults.latency(fault["seconds"], **options)
    elif fault["status"] == 429:
        fake.faults.rate_limit(**options)
    else:
        fake.faults.add(fault["status"], **options)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lago_async.testing",
        description="Serve an in-memory, Lago-compatible API (FakeLago) until interrupted.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (0: a free one)")
    parser.add_argument("--api-key", default="test_api_key", help="accepted bearer token")
    parser.add_argument(
        "--batch-limit", type=int, default=100, help="most events per POST /events/batch"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of ids and fault draws")
    parser.add_argument(
        "--seed-file",
        type=Path,
        help="JSON file of customers, subscriptions and events to start with",
    )
    parser.add_argument(
        "--webhook-hmac-key",
        help="HMAC key signing the webhooks of hmac endpoints (random when left out)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        type=parse_fault,
        default=[],
        metavar="KIND[:RATE][@ROUTE]",
        help="inject a fault (repeatable): 503:0.05@'POST /events/batch', drop:0.01, "
        "store_then_drop:0.01, 429:0.1, latency=0.2:0.5",
    )
    return parser


async def serve(args: argparse.Namespace) -> None:
    """Run a FakeLago configured by ``args`` until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with FakeLago(
        args.api_key,
        host=args.host,
        port=args.port,
        batch_limit=args.batch_limit,
        seed=args.seed,
        webhook_hmac_key=args.webhook_hmac_key,
    ) as fake:
        if args.seed_file is not None:
            fake.load(json.loads(args.seed_file.read_text(encoding="utf-8")))
        for fault in args.fault:
            add_fault(fake, fault)
        print(fake.base_url, flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m lago_async.testing``; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass
    except (ValueError, OSError) as exc:  # a bad seed file, a port in use...
        print(f"python -m lago_async.testing: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
