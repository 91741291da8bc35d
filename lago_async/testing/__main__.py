"""Serve a FakeLago from the command line until SIGINT or SIGTERM.

    python -m lago_async.testing --port 8080 --api-key test_api_key

The first line printed on stdout is the base URL (``http://127.0.0.1:8080/api/v1``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

from ._server import FakeLago


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
    ) as fake:
        print(fake.base_url, flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m lago_async.testing``; returns the exit status."""
    args = _parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
