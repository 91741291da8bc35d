"""Import time and time to a first answer, each measured in a fresh interpreter.

    python -m benchmarks.startup import lago_async
    python -m benchmarks.startup first-answer lago_async --url http://127.0.0.1:PORT

Both print one JSON object. ``import`` times the import statements of a module set (see
:data:`IMPORTS`). ``first-answer`` times, from the first line this module runs, importing a
client, constructing it and getting the answer to one ``POST /events`` from the server at
``--url``: what a short script or a freshly forked worker pays before its first event is in.
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

__all__ = ["FIRST_ANSWER", "IMPORTS", "main"]

#: What ``import`` can time: a label and the modules it imports.
IMPORTS: dict[str, tuple[str, ...]] = {
    "lago_async": ("lago_async",),
    "lago_sync": ("lago_sync",),
    # what lago_async itself imports (it does not use anyio)
    "deps_async": ("aiohttp", "attrs", "cattrs", "orjson"),
    # every runtime dependency of the distribution, anyio (the sync portal) included
    "deps_all": ("aiohttp", "attrs", "cattrs", "anyio", "orjson"),
    "official": ("lago_python_client",),
}

EVENT = {
    "transaction_id": "first-answer",
    "code": "api_calls",
    "external_subscription_id": "sub_1",
    "properties": {"units": 1},
}


def _time_imports(label: str) -> dict[str, Any]:
    started = time.perf_counter()
    for module in IMPORTS[label]:
        __import__(module)
    return {"seconds": time.perf_counter() - started}


def _lago_async(url: str, key: str) -> None:
    import asyncio

    from lago_async import AsyncLago

    async def main() -> None:
        async with AsyncLago(api_key=key, base_url=url + "/api/v1") as lago:
            await lago.events.create(EVENT)
            _answered()

    asyncio.run(main())


def _lago_sync(url: str, key: str) -> None:
    from lago_sync import Lago

    with Lago(api_key=key, base_url=url + "/api/v1") as lago:
        lago.events.create(EVENT)
        _answered()


def _official(url: str, key: str) -> None:
    from lago_python_client import Client
    from lago_python_client.models import Event

    client = Client(api_key=key, api_url=url + "/")
    client.events.create(Event(**EVENT))
    _answered()


def _raw(url: str, key: str) -> None:
    import asyncio

    import aiohttp
    import orjson

    async def main() -> None:
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        async with aiohttp.ClientSession(headers=headers) as session:
            body = orjson.dumps({"event": EVENT})
            async with session.post(url + "/api/v1/events", data=body) as response:
                response.raise_for_status()
                orjson.loads(await response.read())
                _answered()

    asyncio.run(main())


#: Clients ``first-answer`` can time.
FIRST_ANSWER = {
    "lago_async": _lago_async,
    "lago_sync": _lago_sync,
    "official": _official,
    "raw": _raw,
}

_ANSWERED: list[float] = []


def _answered() -> None:
    _ANSWERED.append(time.perf_counter() - _STARTED)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup")
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import")
    imp.add_argument("label", choices=sorted(IMPORTS))
    first = sub.add_parser("first-answer")
    first.add_argument("client", choices=sorted(FIRST_ANSWER))
    first.add_argument("--url", required=True)
    first.add_argument("--api-key", default="bench_key")
    args = parser.parse_args(argv)
    if args.command == "import":
        out = _time_imports(args.label)
    else:
        FIRST_ANSWER[args.client](args.url, args.api_key)
        out = {"seconds": _ANSWERED[0]}
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
