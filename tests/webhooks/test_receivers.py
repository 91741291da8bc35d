"""The receivers of docs/webhooks.md, run unchanged against FakeLago's signed webhooks.

Each receiver's code is the ```python block marked ``<!-- receiver: NAME -->`` in the page:
it is written to a module, imported with the keys in its environment, and served on a real
local port (aiohttp's runner; uvicorn in a thread for Starlette; wsgiref in a thread for
Flask and Django). FakeLago reaches it through a small proxy that loses the answer of the
first delivery (the receiver did the work, Lago saw a 500), so the retry, with the same
unique key, must be recognised and not handled twice. Both ``jwt`` and ``hmac`` endpoints.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import aiohttp
import pytest
from aiohttp import web

from lago_async import AsyncLago
from lago_async.testing import FakeLago
from lago_async.webhooks import SIGNATURE_HEADER

PAGE = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
FRAMEWORKS = ("aiohttp", "starlette", "django", "flask")
NEEDS = {"aiohttp": "aiohttp", "starlette": "uvicorn", "django": "django", "flask": "flask"}
LOGGER = "billing.webhooks"


def receiver_code(name: str) -> str:
    """The code block of docs/webhooks.md that follows ``<!-- receiver: name -->``."""
    text = PAGE.read_text(encoding="utf-8")
    match = re.search(
        rf"^<!-- receiver: {re.escape(name)} -->\n```python\n(?P<code>.*?)^```$",
        text,
        flags=re.MULTILINE | re.DOTALL,
    )
    assert match, f"no receiver block for {name} in {PAGE}"
    return match["code"]


def test_every_receiver_block_is_tested() -> None:
    marked = re.findall(r"^<!-- receiver: (\w+) -->$", PAGE.read_text(), flags=re.MULTILINE)
    assert sorted(marked) == sorted(FRAMEWORKS)


# --- serving each framework on a real port ----------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def wsgi_server(app: Any) -> Iterator[str]:
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="wsgi", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextmanager
def uvicorn_server(app: Any) -> Iterator[str]:
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    for _ in range(1000):  # wait for the bind (a few ms), up to 10 s
        if server.started:
            break
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@asynccontextmanager
async def aiohttp_server(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def _configure_django(module_name: str) -> Any:
    import django
    from django.conf import settings
    from django.urls import clear_url_caches

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="tests-only",
            ALLOWED_HOSTS=["127.0.0.1"],
            ROOT_URLCONF=module_name,
            # as a project has it: the view must be exempt to receive Lago's posts
            MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
            INSTALLED_APPS=[],
        )
        django.setup()
    settings.ROOT_URLCONF = module_name
    clear_url_caches()  # the module is new in each test
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


@asynccontextmanager
async def serve(name: str, module: ModuleType) -> AsyncIterator[str]:
    """Serve the receiver module; yields the URL of its webhook route."""
    if name == "aiohttp":
        async with aiohttp_server(module.app) as root:
            yield root + "/lago/webhooks"
        return
    if name == "starlette":
        context = uvicorn_server(module.app)
    elif name == "flask":
        context = wsgi_server(module.app)
    else:
        context = wsgi_server(_configure_django(module.__name__))
    root = await asyncio.to_thread(context.__enter__)
    try:
        yield root + "/lago/webhooks"
    finally:
        await asyncio.to_thread(context.__exit__, None, None, None)


def load_receiver(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> ModuleType:
    """Import the page's receiver block as a fresh module, with ``env`` set."""
    pytest.importorskip(NEEDS[name], reason=f"the {name} receiver needs {NEEDS[name]}")
    if name == "starlette":
        pytest.importorskip("starlette", reason="the starlette receiver needs starlette")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    module_name = f"lago_receiver_{name}_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{module_name}.py").write_text(receiver_code(name), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(module_name)
    monkeypatch.setitem(sys.modules, module_name, module)
    return module


# --- a proxy that loses one answer -------------------------------------------------------------


class LosingProxy:
    """Forwards each POST to ``target``; the first answer is replaced by a 500 after the
    receiver has handled the request (a lost answer), the later ones pass through."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.answers: list[int] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith("x-lago")}
        headers["Content-Type"] = request.headers.get("Content-Type", "application/json")
        async with aiohttp.ClientSession() as session:
            async with session.post(self.target, data=body, headers=headers) as answer:
                self.answers.append(answer.status)
                await answer.read()
        status = 500 if len(self.answers) == 1 else answer.status
        return web.Response(status=status)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/", self.handle)
        return app


async def eventually(check: Callable[[], bool], what: str) -> None:
    """Wait (up to 10 s) until ``check()`` holds: background work ends on its own time."""
    for _ in range(1000):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


# --- the tests ---------------------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeLago]:
    async with FakeLago(api_key="receiver-key", webhook_retry_delay=0.01) as server:
        yield server
    assert server.internal_errors == []


async def receiver_env(fake: FakeLago, lago: AsyncLago) -> dict[str, str]:
    key = await lago.webhooks.json_public_key()  # as a user gets it
    return {
        "LAGO_WEBHOOK_PUBLIC_KEY": key.public_key,
        "LAGO_WEBHOOK_HMAC_KEY": fake.webhook_hmac_key,
        "LAGO_WEBHOOK_ISSUER": fake.webhook_issuer,
    }


@pytest.mark.parametrize("algo", ["jwt", "hmac"])
@pytest.mark.parametrize("name", FRAMEWORKS)
async def test_receiver_verifies_dispatches_and_dedupes_a_retry(
    name: str,
    algo: str,
    fake: FakeLago,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    async with AsyncLago(api_key=fake.api_key, base_url=fake.base_url) as lago:
        module = load_receiver(name, tmp_path, monkeypatch, await receiver_env(fake, lago))
        async with serve(name, module) as url:
            proxy = LosingProxy(url)
            async with aiohttp_server(proxy.app()) as proxy_url:
                endpoint = await lago.webhook_endpoints.create(
                    webhook_url=proxy_url + "/", signature_algo=algo
                )
                assert endpoint.signature_algo == algo
                await lago.customers.create(external_id="acme", name="Acme")
                deliveries = await fake.webhooks_delivered()

                # Lago's view: a 500, then the retry, same key, accepted
                assert [(d.attempt, d.status) for d in deliveries] == [(1, 500), (2, 200)]
                assert deliveries[0].unique_key == deliveries[1].unique_key
                assert {d.signature_algo for d in deliveries} == {algo}
                # the receiver's view: both were accepted, the second as already handled
                assert proxy.answers == [200, 200]
                key = deliveries[0].unique_key
                await eventually(
                    lambda: "customer acme created" in messages(caplog), "the handler ran"
                )
                assert f"webhook {key} already handled" in messages(caplog)

                # a new webhook of another type is handled too
                await lago.customers.create(external_id="acme", name="Acme Corp")
                await fake.webhooks_delivered()
                await eventually(
                    lambda: "customer acme updated" in messages(caplog), "the update ran"
                )
    handled = [m for m in messages(caplog) if m.startswith("customer ")]
    assert handled == ["customer acme created", "customer acme updated"]  # once each
    assert not [m for m in messages(caplog) if m.startswith("refused")]


@pytest.mark.parametrize("name", FRAMEWORKS)
async def test_receiver_refuses_what_does_not_verify(
    name: str,
    fake: FakeLago,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    async with AsyncLago(api_key=fake.api_key, base_url=fake.base_url) as lago:
        module = load_receiver(name, tmp_path, monkeypatch, await receiver_env(fake, lago))
    # a real signed webhook, captured on its way, then altered
    captured: list[tuple[bytes, dict[str, str]]] = []

    async def capture(request: web.Request) -> web.Response:
        captured.append((await request.read(), dict(request.headers)))
        return web.Response()

    sink = web.Application()
    sink.router.add_post("/", capture)
    async with aiohttp_server(sink) as sink_url:
        fake.add_webhook_endpoint(sink_url + "/", "jwt")
        fake.add_webhook_endpoint(sink_url + "/?h", "hmac")
        fake.add_customer("acme")
        await fake.webhooks_delivered()
    assert len(captured) == 2
    attempts: list[tuple[bytes, dict[str, str]]] = []
    for body, headers in captured:
        lago_headers = {k: v for k, v in headers.items() if k.lower().startswith("x-lago")}
        attempts.append((body.replace(b"acme", b"evil"), lago_headers))  # tampered body
        forged = {**lago_headers, SIGNATURE_HEADER: lago_headers[SIGNATURE_HEADER][:-4] + "AAAA"}
        attempts.append((body, forged))  # tampered signature
        attempts.append((body, {}))  # no signature at all
    async with serve(name, module) as url, aiohttp.ClientSession() as session:
        for body, headers in attempts:
            sent = {**headers, "Content-Type": "application/json"}
            async with session.post(url, data=body, headers=sent) as answer:
                assert answer.status == 400, (headers, body[:80])
        # and the genuine ones pass
        for body, headers in captured:
            lago_headers = {k: v for k, v in headers.items() if k.lower().startswith("x-lago")}
            async with session.post(url, data=body, headers=lago_headers) as answer:
                assert answer.status == 200
    assert len([m for m in messages(caplog) if m.startswith("refused")]) == len(attempts)
    await eventually(
        lambda: messages(caplog).count("customer acme created") == 2, "the genuine ones ran"
    )
    assert not [m for m in messages(caplog) if "evil" in m]
