"""The transport against answers that are not what Lago sends, per-call options, and reuse
across event loops."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from aioresponses import aioresponses

from lago_async import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    AsyncLago,
    LagoError,
    LagoValidationError,
)
from tests.conftest import API_KEY, BASE_URL, customer_json

CUSTOMER = f"{BASE_URL}/customers/acme"


# --- a 2xx that is not Lago's JSON ------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "what"),
    [
        (b"<html>maintenance</html>", "text/html", "not JSON"),
        (b"", "application/json", "empty"),
        (b"{}", "application/json", "'customer'"),
        (b"[1, 2]", "application/json", "'customer'"),
        (b'{"customer": null}', "application/json", "customer"),
    ],
)
async def test_a_read_answered_with_garbage_raises_a_response_validation_error(
    lago: AsyncLago, mocked: aioresponses, body: bytes, content_type: str, what: str
) -> None:
    mocked.get(CUSTOMER, status=200, body=body, content_type=content_type)
    with pytest.raises(APIResponseValidationError) as info:
        await lago.customers.get("acme")
    message = str(info.value)
    assert what in message
    assert "GET /customers/acme" in message
    assert (info.value.method, info.value.path) == ("GET", "/customers/acme")
    assert "may have been applied" not in message


@pytest.mark.parametrize("body", [b"<html>ok</html>", b"", b"{}"])
async def test_a_write_answered_with_garbage_says_it_may_have_been_applied(
    lago: AsyncLago, mocked: aioresponses, body: bytes
) -> None:
    mocked.post(f"{BASE_URL}/events", status=200, body=body)
    with pytest.raises(APIResponseValidationError) as info:
        await lago.events.create(transaction_id="t", code="c", external_subscription_id="s")
    assert "POST /events" in str(info.value)
    assert "may have been applied" in str(info.value)


async def test_a_list_answered_with_garbage_raises(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.get(f"{BASE_URL}/customers?page=1", status=200, body=b"<html>", content_type="text/html")
    with pytest.raises(APIResponseValidationError, match="GET /customers"):
        await lago.customers.list().to_list()


async def test_a_redirect_is_not_followed(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.get(CUSTOMER, status=301, headers={"Location": "https://elsewhere.example/x"})
    with pytest.raises(APIError) as info:
        await lago.customers.get("acme")
    assert info.value.status == 301
    assert "elsewhere.example" in str(info.value)
    assert "base_url" in str(info.value)
    assert len(mocked.requests) == 1


# --- per-call options are checked as the constructor checks them ------------------------------


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("-inf"), "5", True])
async def test_a_bad_per_call_timeout_is_refused(
    lago: AsyncLago, mocked: aioresponses, timeout: Any
) -> None:
    with pytest.raises(LagoValidationError) as info:
        await lago.customers.get("acme", timeout=timeout)
    assert info.value.field == "timeout"
    with pytest.raises(LagoValidationError):
        AsyncLago(api_key=API_KEY, base_url=BASE_URL, timeout=timeout)
    assert not mocked.requests


@pytest.mark.parametrize("max_retries", [-1, 1.5, "2", float("nan"), True])
async def test_a_bad_per_call_max_retries_is_refused(
    lago: AsyncLago, mocked: aioresponses, max_retries: Any
) -> None:
    with pytest.raises(LagoValidationError) as info:
        await lago.customers.get("acme", max_retries=max_retries)
    assert info.value.field == "max_retries"
    assert not mocked.requests


async def test_a_per_call_timeout_bounds_each_attempt() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    async with served(slow) as url:
        lago = AsyncLago(api_key=API_KEY, base_url=url, timeout=30, max_retries=0)
        async with lago:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(APIConnectionError, match="timed out"):
                await lago.customers.get("acme", timeout=0.1)
            assert loop.time() - started < 4


# --- a client outlives its event loop ---------------------------------------------------------


def test_a_client_works_again_under_a_new_event_loop() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"customer": customer_body()})

    async def serve_and_call(lago: AsyncLago | None) -> AsyncLago:
        async with served(handler, port=PORT[0]) as url:
            PORT[0] = int(url.split(":")[2].split("/")[0])
            client = lago or AsyncLago(api_key=API_KEY, base_url=url)
            customer = await client.customers.get("acme")
            assert customer.external_id == "acme"
            return client

    PORT = [0]
    lago = asyncio.run(serve_and_call(None))
    # The first loop is closed now; the same client is used from a second asyncio.run.
    asyncio.run(serve_and_call(lago))
    asyncio.run(lago.aclose())


def test_a_given_session_from_a_closed_loop_raises_a_lago_error() -> None:
    import aiohttp

    async def make_session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    session = asyncio.run(make_session())
    lago = AsyncLago(api_key=API_KEY, base_url="http://127.0.0.1:9/api/v1", session=session)

    async def use() -> None:
        with pytest.raises(LagoError, match="event loop"):
            await lago.customers.get("acme")

    asyncio.run(use())
    session.detach()  # its loop is gone: let go of it without closing through that loop


# --- helpers ----------------------------------------------------------------------------------


def customer_body() -> dict[str, Any]:
    return customer_json()


class served:
    """An aiohttp.web app on loopback answering every path with ``handler``."""

    def __init__(self, handler: Any, port: int = 0) -> None:
        self.handler = handler
        self.port = port

    async def __aenter__(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handler)
        self.runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}/api/v1"

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


# --- configurable backoff ---------------------------------------------------------------------


async def test_retry_backoff_is_configurable_per_client_and_per_copy(
    mocked: aioresponses, sleeps: list[float]
) -> None:
    for _ in range(6):
        mocked.get(CUSTOMER, status=503)
    async with AsyncLago(
        api_key=API_KEY,
        base_url=BASE_URL,
        max_retries=2,
        initial_retry_delay=0.01,
        max_retry_backoff=0.015,
    ) as lago:
        with pytest.raises(APIError):
            await lago.customers.get("acme")
        assert len(sleeps) == 2
        assert 0.0075 <= sleeps[0] <= 0.01 and 0.01125 <= sleeps[1] <= 0.015
        sleeps.clear()
        slower = lago.with_options(initial_retry_delay=1.0, max_retry_backoff=1.0)
        with pytest.raises(APIError):
            await slower.customers.get("acme")
        assert len(sleeps) == 2 and all(0.75 <= s <= 1.0 for s in sleeps)


@pytest.mark.parametrize("name", ["initial_retry_delay", "max_retry_backoff", "max_retry_delay"])
@pytest.mark.parametrize("value", [-1, float("nan"), float("inf"), "1", True])
def test_backoff_options_are_checked(name: str, value: Any) -> None:
    with pytest.raises(LagoValidationError) as info:
        AsyncLago(api_key=API_KEY, base_url=BASE_URL, **{name: value})
    assert info.value.field == name
    lago = AsyncLago(api_key=API_KEY, base_url=BASE_URL)
    with pytest.raises(LagoValidationError):
        lago.with_options(**{name: value})
