"""The API key never appears in anything reachable from an exception the SDK raises.

Every kind of error is triggered against real loopback servers (HTTP statuses, garbage
answers, a malformed status line, a redirect loop, a reset connection, a refused connection,
a timeout) and bad input; then ``str``, ``repr``, ``args`` and ``vars()`` are searched
recursively, along ``__cause__`` and ``__context__`` and into attributes, for the key.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import pytest
from aiohttp import web

from lago_async import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APITimeoutError,
    AsyncLago,
    LagoError,
    LagoValidationError,
)

KEY = "sk-live-LEAKCANARY-7f3a9c1e"


def leaks(root: BaseException) -> list[str]:
    """Where the key shows in objects reachable from ``root`` (empty: nowhere)."""
    found: list[str] = []
    seen: set[int] = set()

    def visit(obj: Any, where: str, depth: int) -> None:
        if id(obj) in seen or depth > 12:
            return
        seen.add(id(obj))
        for text in _texts(obj):
            if KEY in text:
                found.append(where)
                break
        if isinstance(obj, (str, bytes, bytearray, int, float, bool, type(None))):
            return
        if isinstance(obj, BaseException):
            visit(obj.args, f"{where}.args", depth + 1)
            visit(obj.__cause__, f"{where}.__cause__", depth + 1)
            visit(obj.__context__, f"{where}.__context__", depth + 1)
        if isinstance(obj, dict):
            for key, value in obj.items():
                visit(key, f"{where}[key]", depth + 1)
                visit(value, f"{where}[{key!r}]", depth + 1)
            return
        if isinstance(obj, (list, tuple, set, frozenset)):
            for index, item in enumerate(obj):
                visit(item, f"{where}[{index}]", depth + 1)
            return
        items = getattr(obj, "items", None)
        if callable(items):
            try:
                for key, value in items():
                    visit(value, f"{where}[{key!r}]", depth + 1)
            except Exception:
                pass
        for name in _attributes(obj):
            try:
                value = getattr(obj, name)
            except Exception:
                continue
            if callable(value) and not isinstance(value, (type, BaseException)):
                continue
            visit(value, f"{where}.{name}", depth + 1)

    visit(root, type(root).__name__, 0)
    return found


def _texts(obj: Any) -> list[str]:
    out = []
    for render in (str, repr):
        with suppress(Exception):
            out.append(render(obj))
    if isinstance(obj, (bytes, bytearray)):
        out.append(bytes(obj).decode("latin-1"))
    return out


def _attributes(obj: Any) -> list[str]:
    names: set[str] = set()
    with suppress(TypeError):
        names.update(vars(obj))
    for cls in type(obj).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        names.update([slots] if isinstance(slots, str) else slots)
    return sorted(n for n in names if not n.startswith("__"))


# --- servers that misbehave -------------------------------------------------------------------


@asynccontextmanager
async def web_app(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def raw_server(answer: bytes | None) -> AsyncIterator[str]:
    """A TCP server that reads the request, then writes ``answer`` (or resets) and closes."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if answer is None:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
        else:
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        server.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def maintenance_page(request: web.Request) -> web.Response:
    return web.Response(status=200, text="<html>maintenance</html>", content_type="text/html")


async def redirect_loop(request: web.Request) -> web.Response:
    raise web.HTTPFound(location=str(request.url))


async def hang(request: web.Request) -> web.Response:
    await asyncio.sleep(10)
    return web.json_response({})


async def caught(
    call: Callable[[AsyncLago], Awaitable[Any]], url: str, **options: Any
) -> LagoError:
    async with AsyncLago(api_key=KEY, base_url=url, max_retries=0, **options) as lago:
        with pytest.raises(LagoError) as info:
            await call(lago)
    return info.value


def get(lago: AsyncLago) -> Awaitable[Any]:
    return lago.customers.get("acme")


def create(lago: AsyncLago) -> Awaitable[Any]:
    return lago.events.create(transaction_id="t", code="c", external_subscription_id="s")


@pytest.mark.parametrize("code", [400, 401, 403, 404, 422, 429, 500, 503])
async def test_api_errors_by_status(code: int) -> None:
    async def answer(request: web.Request) -> web.Response:
        body = {"status": code, "error": "Nope", "code": "x", "error_details": {"a": ["b"]}}
        return web.json_response(body, status=code)

    async with web_app(answer) as url:
        error = await caught(get, url)
    assert isinstance(error, APIError) and error.status == code
    assert leaks(error) == []


async def test_garbage_answers() -> None:
    async with web_app(maintenance_page) as url:
        for call in (get, create):
            error = await caught(call, url)
            assert isinstance(error, APIResponseValidationError)
            assert leaks(error) == []


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 abc\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        None,  # reset
        b"",  # closed without a word
    ],
    ids=["bad status", "not http", "bad header", "reset", "closed"],
)
async def test_connection_level_failures(answer: bytes | None) -> None:
    async with raw_server(answer) as url:
        for call in (get, create):
            error = await caught(call, url)
            assert isinstance(error, APIConnectionError), error
            assert leaks(error) == [], leaks(error)


async def test_redirect_loop() -> None:
    async with web_app(redirect_loop) as url:
        error = await caught(get, url)
    assert isinstance(error, (APIError, APIConnectionError))
    assert leaks(error) == []


async def test_connection_refused() -> None:
    error = await caught(get, f"http://127.0.0.1:{free_port()}/api/v1")
    assert isinstance(error, APIConnectionError)
    assert leaks(error) == []


async def test_timeout() -> None:
    async with web_app(hang) as url:
        error = await caught(get, url, timeout=0.2)
    assert isinstance(error, APITimeoutError)
    assert leaks(error) == []


async def test_validation_errors() -> None:
    for call in (
        lambda lago: lago.customers.get(".."),
        lambda lago: lago.events.create(transaction_id="", code="c", external_subscription_id="s"),
        lambda lago: lago.customers.get("acme", timeout=-1),
    ):
        error = await caught(call, "http://127.0.0.1:9/api/v1")
        assert isinstance(error, LagoValidationError)
        assert leaks(error) == []


def test_the_search_finds_a_key_when_there_is_one() -> None:
    """The search itself can fail: a key hidden two levels down a chained error is found."""

    class Holder:
        def __init__(self) -> None:
            self.headers = {"Authorization": f"Bearer {KEY}"}

    inner = RuntimeError("inner")
    inner.info = Holder()  # type: ignore[attr-defined]
    outer = LagoError("outer")
    outer.__context__ = inner
    assert "LagoError.__context__.info.headers['Authorization']" in leaks(outer)
