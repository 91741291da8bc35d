"""The standalone FakeLago for apps under test in another process: seed data, faults from the
command line, and the inspection route a test reads what was stored from."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from lago_async import APIConnectionError, AsyncLago
from lago_async.testing import INSPECTION_PATH, FakeLago
from lago_async.testing.__main__ import parse_fault
from lago_async.webhooks import WebhookVerifier
from tests.testing.test_runners import free_port, subprocess_env


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    seed = {
        "customers": [{"external_id": "acme", "name": "Acme", "currency": "EUR"}],
        "subscriptions": [{"external_id": "sub_1", "external_customer_id": "acme"}],
        "events": [
            {"transaction_id": f"seed-{n}", "code": "calls", "external_subscription_id": "sub_1"}
            for n in range(3)
        ],
    }
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps(seed))
    command = [
        sys.executable,
        "-m",
        "lago_async.testing",
        "--port",
        str(free_port()),
        "--api-key",
        "cli-key",
        "--seed-file",
        str(seed_file),
        "--fault",
        "503:1@GET /customers/{external_customer_id}",
        "--fault",
        "store_then_drop:1@POST /events",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env()
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()


async def state(base_url: str) -> dict[str, object]:
    root = base_url.removesuffix("/api/v1")
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": "Bearer cli-key"}
        async with session.get(root + INSPECTION_PATH, headers=headers) as response:
            assert response.status == 200
            return dict(await response.json())


async def test_seed_file_faults_and_inspection(server: str) -> None:
    before = await state(server)
    assert [c["external_id"] for c in before["customers"]] == ["acme"]  # type: ignore[union-attr,index]
    assert len(before["events"]) == 3  # type: ignore[arg-type]
    async with AsyncLago(
        api_key="cli-key", base_url=server, max_retries=1, initial_retry_delay=0.001
    ) as lago:
        with pytest.raises(Exception, match="503"):
            await lago.customers.get("acme")
        # Every answer is dropped after the event is stored: the app sees a connection error,
        # and the test sees that the event was stored once.
        with pytest.raises(APIConnectionError):
            await lago.events.create(
                transaction_id="app-1", code="calls", external_subscription_id="sub_1"
            )
    after = await state(server)
    assert len(after["events"]) == 4  # type: ignore[arg-type]
    assert after["faults_fired"] == {"503": 2, "store_then_drop": 2}
    assert after["internal_errors"] == []


async def test_the_inspection_route_needs_the_key() -> None:
    async with FakeLago(api_key="k") as fake, aiohttp.ClientSession() as session:
        async with session.get(fake.url + INSPECTION_PATH) as response:
            assert response.status == 401


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("503", {"kind": "status", "status": 503, "rate": 1.0, "route": None}),
        (
            "429:0.5@POST /events",
            {"kind": "status", "status": 429, "rate": 0.5, "route": "POST /events"},
        ),
        ("drop:0.01", {"kind": "drop", "rate": 0.01, "route": None}),
        ("latency=0.2:0.5", {"kind": "latency", "seconds": 0.2, "rate": 0.5, "route": None}),
    ],
)
def test_fault_specs(text: str, parsed: dict[str, object]) -> None:
    assert parse_fault(text) == parsed


@pytest.mark.parametrize("text", ["200", "oops", "drop:2", "latency=x", "503:abc"])
def test_bad_fault_specs_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_fault(text)


def test_a_bad_seed_file_exits_with_a_message(tmp_path: Path) -> None:
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps({"customers": [{"name": "no id"}]}))
    done = subprocess.run(
        [sys.executable, "-m", "lago_async.testing", "--seed-file", str(seed_file)],
        capture_output=True,
        text=True,
        timeout=30,
        env=subprocess_env(),
    )
    assert done.returncode == 2
    assert "customers[0] needs an external_id" in done.stderr


def test_load_refuses_unknown_keys() -> None:
    async def main() -> None:
        async with FakeLago() as fake:
            with pytest.raises(ValueError, match="unknown keys"):
                fake.load({"plans": []})

    asyncio.run(main())


async def test_the_standalone_server_sends_webhooks_signed_with_the_given_hmac_key() -> None:
    received: list[tuple[bytes, dict[str, str]]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((await request.read(), dict(request.headers)))
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    hook_url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    command = [
        sys.executable,
        "-m",
        "lago_async.testing",
        "--api-key",
        "cli-key",
        "--webhook-hmac-key",
        "shared-secret",
    ]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, env=subprocess_env()
    )
    try:
        assert process.stdout is not None
        base_url = (await process.stdout.readline()).decode().strip()
        async with AsyncLago(api_key="cli-key", base_url=base_url) as lago:
            await lago.webhook_endpoints.create(webhook_url=hook_url, signature_algo="hmac")
            await lago.customers.create(external_id="acme")
        for _ in range(1000):  # delivery runs in the server's background, up to 10 s
            seen = await state(base_url)
            if seen["webhook_deliveries"]:
                break
            await asyncio.sleep(0.01)
    finally:
        process.terminate()
        await process.wait()
        await runner.cleanup()
    assert [(d["webhook_type"], d["status"]) for d in seen["webhook_deliveries"]] == [  # type: ignore[union-attr,index]
        ("customer.created", 200)
    ]
    assert [e["webhook_url"] for e in seen["webhook_endpoints"]] == [hook_url]  # type: ignore[union-attr,index]
    body, headers = received[0]
    event = WebhookVerifier(hmac_key="shared-secret").verify(body, headers)
    assert (event.webhook_type, event.object.external_id) == ("customer.created", "acme")
