"""``LAGO_LOG`` request logging, and errors that say where a misconfiguration lies."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import pytest
from aioresponses import aioresponses

from lago_async import AsyncLago, NotFoundError
from tests.conftest import API_KEY, BASE_URL, customer_json

CUSTOMER = f"{BASE_URL}/customers/acme"


def customer_body() -> dict[str, object]:
    return {"customer": customer_json()}


async def test_each_request_is_logged_with_status_attempt_time_and_request_id(
    lago: AsyncLago, mocked: aioresponses, caplog: pytest.LogCaptureFixture, sleeps: list[float]
) -> None:
    mocked.get(CUSTOMER, status=503, headers={"X-Request-Id": "req-1"})
    mocked.get(CUSTOMER, payload=customer_body(), headers={"X-Request-Id": "req-2"})
    with caplog.at_level(logging.DEBUG, logger="lago_async"):
        await lago.customers.get("acme")
    lines = [r.getMessage() for r in caplog.records if r.name == "lago_async"]
    requests = [line for line in lines if line.startswith("lago request")]
    assert len(requests) == 2
    assert "GET /customers/acme" in requests[0] and "503" in requests[0]
    assert "attempt 1" in requests[0] and "request id req-1" in requests[0]
    assert "200" in requests[1] and "attempt 2" in requests[1] and "req-2" in requests[1]
    assert all(" ms" in line for line in requests)
    assert all(API_KEY not in line for line in lines)


async def test_nothing_is_logged_at_the_default_level(
    lago: AsyncLago, mocked: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    mocked.get(CUSTOMER, payload=customer_body())
    with caplog.at_level(logging.WARNING, logger="lago_async"):
        await lago.customers.get("acme")
    assert not [r for r in caplog.records if r.name == "lago_async"]


@pytest.mark.parametrize("level", ["debug", "info", "DEBUG"])
def test_lago_log_turns_on_request_logs_on_stderr(level: str) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio
        from aioresponses import aioresponses
        from lago_async import AsyncLago

        async def main():
            with aioresponses() as m:
                m.get("{CUSTOMER}", payload={customer_body()!r})
                async with AsyncLago(api_key="{API_KEY}", base_url="{BASE_URL}") as lago:
                    await lago.customers.get("acme")

        asyncio.run(main())
        """
    )
    env = {**os.environ, "LAGO_LOG": level}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "lago request: GET /customers/acme -> 200" in done.stderr
    assert API_KEY not in done.stderr + done.stdout


def test_without_lago_log_nothing_is_printed() -> None:
    env = {k: v for k, v in os.environ.items() if k != "LAGO_LOG"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import lago_async, logging; print(logging.getLogger('lago_async').handlers)",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "[]"


async def test_a_404_hints_at_a_base_url_without_the_api_root(mocked: aioresponses) -> None:
    mocked.get("http://lago.test/customers/acme", status=404, body=b"Not Found")
    async with AsyncLago(api_key=API_KEY, base_url="http://lago.test") as lago:
        with pytest.raises(NotFoundError) as info:
            await lago.customers.get("acme")
    assert "/api/v1" in str(info.value)
    assert "base_url" in str(info.value)


async def test_a_lago_404_under_the_api_root_has_no_hint(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    body = {"status": 404, "error": "Not Found", "code": "customer_not_found"}
    mocked.get(CUSTOMER, status=404, payload=body)
    with pytest.raises(NotFoundError) as info:
        await lago.customers.get("acme")
    assert "base_url" not in str(info.value)
    assert info.value.code == "customer_not_found"
