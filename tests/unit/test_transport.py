"""The one request path: headers, retries, backoff, server hints and error mapping."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from aioresponses import aioresponses

import lago_async
from lago_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncLago,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    LagoError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)
from lago_async._transport import backoff_delay, retry_hint
from tests.conftest import API_KEY, BASE_URL, sent

CUSTOMER_URL = f"{BASE_URL}/customers/acme"
CUSTOMER = {
    "customer": {
        "lago_id": "1a901a90-1a90-1a90-1a90-1a901a901a90",
        "external_id": "acme",
        "applicable_timezone": "UTC",
        "created_at": "2026-01-01T00:00:00Z",
    }
}


async def test_headers_name_the_sdk_and_carry_the_key(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    mocked.get(CUSTOMER_URL, payload={"customer": {}}, repeat=True)
    await lago._transport.request("GET", "/customers/acme")
    (call,) = sent(mocked, "GET", CUSTOMER_URL)
    assert call["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert call["headers"]["User-Agent"].startswith(f"lago-async-python/{lago_async.__version__}")
    assert call["headers"]["Content-Type"] == "application/json"


async def test_503_then_200_succeeds_after_one_retry(
    lago: AsyncLago, mocked: aioresponses, sleeps: list[float]
) -> None:
    mocked.get(CUSTOMER_URL, status=503, payload={"status": 503, "error": "Unavailable"})
    mocked.get(CUSTOMER_URL, payload=CUSTOMER)
    customer = await lago.customers.get("acme")
    assert customer.external_id == "acme"
    assert len(sent(mocked, "GET", CUSTOMER_URL)) == 2
    assert len(sleeps) == 1
    assert 0.375 <= sleeps[0] <= 0.5  # first backoff: 0.5 s less up to 25% jitter


async def test_429_waits_the_announced_reset(
    lago: AsyncLago, mocked: aioresponses, sleeps: list[float]
) -> None:
    mocked.get(
        CUSTOMER_URL,
        status=429,
        payload={"status": 429, "error": "Too Many Requests"},
        headers={"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "7"},
    )
    mocked.get(CUSTOMER_URL, payload=CUSTOMER)
    await lago.customers.get("acme")
    assert sleeps == [7.0]


async def test_retry_after_wins_over_backoff(
    lago: AsyncLago, mocked: aioresponses, sleeps: list[float]
) -> None:
    mocked.get(CUSTOMER_URL, status=503, headers={"Retry-After": "3"})
    mocked.get(CUSTOMER_URL, payload=CUSTOMER)
    await lago.customers.get("acme")
    assert sleeps == [3.0]


async def test_hint_beyond_the_cap_raises_at_once(
    mocked: aioresponses, sleeps: list[float]
) -> None:
    mocked.get(CUSTOMER_URL, status=429, headers={"X-RateLimit-Reset": "3600"})
    async with AsyncLago(api_key=API_KEY, base_url=BASE_URL, max_retry_delay=30) as lago:
        with pytest.raises(RateLimitError) as info:
            await lago.customers.get("acme")
    assert info.value.reset_after == 3600.0
    assert sleeps == []


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (422, UnprocessableEntityError),
    ],
)
async def test_client_errors_are_sent_once(
    lago: AsyncLago,
    mocked: aioresponses,
    sleeps: list[float],
    status: int,
    error_type: type[Exception],
) -> None:
    body = {"status": status, "error": "Nope", "code": "some_code", "error_details": {"a": ["b"]}}
    mocked.get(CUSTOMER_URL, status=status, payload=body, repeat=True)
    with pytest.raises(error_type) as info:
        await lago.customers.get("acme")
    error = info.value
    assert isinstance(error, lago_async.APIError)
    assert (error.status, error.code, error.error_details, error.body) == (
        status,
        "some_code",
        {"a": ["b"]},
        body,
    )
    assert (error.method, error.path) == ("GET", "/customers/acme")
    assert len(sent(mocked, "GET", CUSTOMER_URL)) == 1
    assert sleeps == []


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_exhausted_retries_raise_the_last_answer(
    lago: AsyncLago, mocked: aioresponses, sleeps: list[float], status: int
) -> None:
    mocked.get(CUSTOMER_URL, status=status, payload={"status": status, "error": "x"}, repeat=True)
    with pytest.raises(lago_async.APIError) as info:
        await lago.customers.get("acme")
    assert info.value.status == status
    assert info.value.attempts == 3
    expected = {429: RateLimitError}.get(status, InternalServerError if status >= 500 else None)
    if expected:
        assert type(info.value) is expected
    assert len(sent(mocked, "GET", CUSTOMER_URL)) == 3  # 1 + max_retries (2)
    assert len(sleeps) == 2
    assert 0.75 <= sleeps[1] <= 1.0  # the backoff doubles


async def test_max_retries_per_call_and_per_client(
    mocked: aioresponses, sleeps: list[float]
) -> None:
    mocked.get(CUSTOMER_URL, status=500, repeat=True)
    async with AsyncLago(api_key=API_KEY, base_url=BASE_URL, max_retries=0) as lago:
        with pytest.raises(InternalServerError):
            await lago.customers.get("acme")
        assert len(sent(mocked, "GET", CUSTOMER_URL)) == 1
        with pytest.raises(InternalServerError):
            await lago.customers.get("acme", max_retries=4)
        assert len(sent(mocked, "GET", CUSTOMER_URL)) == 1 + 5
        with pytest.raises(InternalServerError):
            await lago.with_options(max_retries=1).customers.get("acme")
        assert len(sent(mocked, "GET", CUSTOMER_URL)) == 1 + 5 + 2


async def test_timeout_raises_api_timeout_error(
    lago: AsyncLago, mocked: aioresponses, sleeps: list[float]
) -> None:
    mocked.get(CUSTOMER_URL, exception=asyncio.TimeoutError(), repeat=True)
    with pytest.raises(APITimeoutError) as info:
        await lago.customers.get("acme")
    assert isinstance(info.value, APIConnectionError)
    assert len(sent(mocked, "GET", CUSTOMER_URL)) == 3


async def test_connection_error_is_retried_then_succeeds(
    lago: AsyncLago, mocked: aioresponses, sleeps: list[float]
) -> None:
    mocked.get(CUSTOMER_URL, exception=aiohttp.ServerDisconnectedError())
    mocked.get(CUSTOMER_URL, payload=CUSTOMER)
    assert (await lago.customers.get("acme")).external_id == "acme"
    assert len(sleeps) == 1


async def test_connection_error_exhausted(
    lago: AsyncLago, mocked: aioresponses, sleeps: list[float]
) -> None:
    mocked.get(CUSTOMER_URL, exception=aiohttp.ClientConnectionError("refused"), repeat=True)
    with pytest.raises(APIConnectionError) as info:
        await lago.customers.get("acme")
    assert not isinstance(info.value, APITimeoutError)
    assert "GET /customers/acme" in str(info.value)


async def test_non_json_error_body_is_kept_as_text(
    lago: AsyncLago, mocked: aioresponses, sleeps: list[float]
) -> None:
    mocked.get(CUSTOMER_URL, status=502, body="<html>Bad gateway</html>", repeat=True)
    with pytest.raises(InternalServerError) as info:
        await lago.customers.get("acme")
    assert info.value.body == "<html>Bad gateway</html>"
    assert info.value.code is None


def test_backoff_doubles_and_caps() -> None:
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delays = [backoff_delay(attempt) for _ in range(50)]
        assert all(0.75 * ceiling <= d <= ceiling for d in delays)


def test_retry_hint_forms() -> None:
    assert retry_hint({"Retry-After": "2"}) == 2.0
    assert retry_hint({"X-RateLimit-Reset": "5"}) == 5.0
    assert retry_hint({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_hint({"Retry-After": "soon"}) is None
    assert retry_hint({}) is None


async def test_api_key_never_leaks(
    mocked: aioresponses, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mocked.get(CUSTOMER_URL, status=503, repeat=True)
    async with AsyncLago(api_key=API_KEY, base_url=BASE_URL) as lago:
        with pytest.raises(InternalServerError) as info:
            await lago.customers.get("acme")
        texts = [repr(lago), str(lago), repr(lago._transport), repr(lago.with_options(timeout=3))]
    texts += [str(info.value), repr(info.value), caplog.text]
    assert caplog.records  # the retries were logged...
    for text in texts:
        assert API_KEY not in text  # ...without the key


def test_missing_api_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAGO_API_KEY", raising=False)
    with pytest.raises(LagoError, match="LAGO_API_KEY"):
        AsyncLago()


def test_environment_configures_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAGO_API_KEY", "env-key")
    monkeypatch.setenv("LAGO_API_URL", "https://lago.example.com/api/v1/")
    client = AsyncLago()
    assert client.base_url == "https://lago.example.com/api/v1"
    monkeypatch.delenv("LAGO_API_URL")
    assert AsyncLago().base_url == "https://api.getlago.com/api/v1"


async def test_with_options_shares_the_pool(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.get(CUSTOMER_URL, payload=CUSTOMER, repeat=True)
    copy = lago.with_options(timeout=5, max_retries=0)
    assert (copy.timeout, copy.max_retries) == (5, 0)
    assert (lago.timeout, lago.max_retries) == (60.0, 2)
    await lago.customers.get("acme")
    await copy.customers.get("acme")
    assert copy._transport.session() is lago._transport.session()


async def test_user_session_is_not_closed(mocked: aioresponses) -> None:
    mocked.get(CUSTOMER_URL, payload=CUSTOMER)
    async with aiohttp.ClientSession() as session:
        async with AsyncLago(api_key=API_KEY, base_url=BASE_URL, session=session) as lago:
            await lago.customers.get("acme")
        assert not session.closed


async def test_own_session_is_closed_and_recreated(mocked: aioresponses) -> None:
    mocked.get(CUSTOMER_URL, payload=CUSTOMER, repeat=True)
    lago = AsyncLago(api_key=API_KEY, base_url=BASE_URL)
    await lago.customers.get("acme")
    session = lago._transport.session()
    await lago.aclose()
    assert session.closed
    await lago.customers.get("acme")  # a closed client opens a new pool on next use
    await lago.aclose()


async def test_per_call_timeout_is_passed_to_aiohttp(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.get(CUSTOMER_URL, payload=CUSTOMER, repeat=True)
    await lago.customers.get("acme", timeout=1.5)
    await lago.customers.get("acme")
    calls = [c for reqs in mocked.requests.values() for c in reqs]
    assert calls[0].kwargs["timeout"].total == 1.5
    # The default rides on the session the client created, not on each request.
    assert "timeout" not in calls[1].kwargs
    assert lago._transport.session().timeout.total == 60.0


async def test_headers_reach_a_real_server() -> None:
    from aiohttp import web

    seen: list[dict[str, str]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.json_response(CUSTOMER)

    app = web.Application()
    app.router.add_get("/api/v1/customers/acme", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        url = f"http://127.0.0.1:{port}/api/v1"
        async with AsyncLago(api_key=API_KEY, base_url=url) as lago:
            await lago.customers.get("acme")
            await lago.with_options(default_headers={"X-Extra": "1"}, timeout=5).customers.get(
                "acme"
            )
        async with aiohttp.ClientSession() as session:
            async with AsyncLago(api_key=API_KEY, base_url=url, session=session) as lago:
                await lago.customers.get("acme")
    finally:
        await runner.cleanup()
    assert len(seen) == 3
    for headers in seen:
        assert headers["Authorization"] == f"Bearer {API_KEY}"
        assert headers["User-Agent"].startswith("lago-async-python/")
    assert seen[1]["X-Extra"] == "1"
    assert "X-Extra" not in seen[0]
