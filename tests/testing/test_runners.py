"""Ways to run FakeLago: async lifecycle, background thread, ``python -m``, pytest plugin."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lago_async.testing import FakeLago

REPO = Path(__file__).resolve().parents[2]


def blocking_call(
    fake_url: str, key: str, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    """A request with urllib, as blocking code would make it."""
    request = urllib.request.Request(
        fake_url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


# -- async lifecycle ----------------------------------------------------------------------


async def test_start_binds_a_free_port_on_localhost() -> None:
    fake = FakeLago(api_key="k")
    with pytest.raises(RuntimeError, match="not started"):
        _ = fake.base_url
    await fake.start()
    try:
        assert fake.port > 0
        assert fake.base_url == f"http://127.0.0.1:{fake.port}/api/v1"
        assert fake.api_key == "k"
        with pytest.raises(RuntimeError, match="already started"):
            await fake.start()
        async with aiohttp.ClientSession() as session:
            response = await session.get(
                fake.base_url + "/customers", headers={"Authorization": "Bearer k"}
            )
            assert response.status == 200
    finally:
        await fake.stop()
    await fake.stop()  # idempotent
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"http://127.0.0.1:{fake.port}/api/v1/customers")


async def test_two_servers_are_independent() -> None:
    async with FakeLago() as one, FakeLago() as two:
        assert one.port != two.port
        one.add_customer("acme")
        assert two.customers == {}


async def test_stop_does_not_wait_for_slow_requests() -> None:
    import asyncio
    import time

    fake = FakeLago()
    await fake.start()
    fake.faults.latency(30)
    async with aiohttp.ClientSession() as session:
        pending = asyncio.ensure_future(
            session.get(fake.base_url + "/customers", headers={"Authorization": "Bearer x"})
        )
        await asyncio.sleep(0.1)
        started = time.perf_counter()
        await fake.stop()
        assert time.perf_counter() - started < 5
        with pytest.raises(aiohttp.ClientError):
            await pending


# -- thread mode ----------------------------------------------------------------------------


def test_in_thread_serves_blocking_clients() -> None:
    with FakeLago.in_thread(api_key="sync-key", batch_limit=2) as fake:
        assert fake.base_url.startswith("http://127.0.0.1:")
        fake.add_subscription("sub_1", "acme")  # helpers work from this thread
        status, body = blocking_call(
            fake.base_url,
            "sync-key",
            "POST",
            "/events/batch",
            {
                "events": [
                    {"transaction_id": f"t{n}", "code": "c", "external_subscription_id": "sub_1"}
                    for n in range(2)
                ]
            },
        )
        assert status == 200
        assert len(body["events"]) == 2
        assert [e["transaction_id"] for e in fake.events] == ["t0", "t1"]
        status, body = blocking_call(fake.base_url, "sync-key", "GET", "/events/t0")
        assert body["event"]["lago_subscription_id"] == fake.subscriptions["sub_1"]["lago_id"]
        fake.faults.add(status=503, times=1)
        assert blocking_call(fake.base_url, "sync-key", "GET", "/customers")[0] == 503
        assert blocking_call(fake.base_url, "wrong", "GET", "/customers")[0] == 401
        port = fake.port
        threads = {t.name for t in threading.enumerate()}
        assert "FakeLago" in threads
    assert "FakeLago" not in {t.name for t in threading.enumerate()}
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/customers", timeout=2)


def test_in_thread_accessors_are_safe_while_serving() -> None:
    with FakeLago.in_thread() as fake:
        errors: list[BaseException] = []

        def send(offset: int) -> None:
            try:
                for n in range(50):
                    event = {"transaction_id": f"{offset}-{n}", "code": "c"}
                    event["external_subscription_id"] = "s"
                    blocking_call(fake.base_url, fake.api_key, "POST", "/events", {"event": event})
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        senders = [threading.Thread(target=send, args=(i,)) for i in range(4)]
        for thread in senders:
            thread.start()
        while any(t.is_alive() for t in senders):
            _ = (fake.events, fake.customers, fake.requests, fake.usage("s"))
            time.sleep(0.001)  # read often, without starving the server thread of the GIL
        for thread in senders:
            thread.join()
        assert errors == []
        assert len(fake.events) == 200
        assert fake.usage("s") == {"c": (200, 200)}


# -- python -m lago_async.testing ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_standalone_server(stop_signal: signal.Signals) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lago_async.testing",
            "--port",
            str(port),
            "--api-key",
            "cli-key",
            "--batch-limit",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url == f"http://127.0.0.1:{port}/api/v1"
        event = {"transaction_id": "t", "code": "c", "external_subscription_id": "s"}
        assert blocking_call(base_url, "cli-key", "POST", "/events", {"event": event})[0] == 200
        status, body = blocking_call(
            base_url, "cli-key", "POST", "/events/batch", {"events": [event] * 3}
        )
        assert (status, body["error_details"]) == (422, {"events": ["too_many_events"]})
        assert blocking_call(base_url, "other", "GET", "/events/t")[0] == 401
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
        if process.stderr:
            process.stderr.close()


# -- import hygiene and the pytest plugin -----------------------------------------------------


def test_importing_testing_pulls_no_test_framework() -> None:
    code = (
        "import sys, lago_async.testing\n"
        "bad = [m for m in ('pytest', 'aiohttp.test_utils', '_pytest') if m in sys.modules]\n"
        "print(bad)\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=60,
        check=True,
    ).stdout
    assert output.strip() == "[]"


def test_pytest_plugin_fixtures(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["lago_async.testing.pytest_plugin"]\n')
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
        "addopts = --strict-markers -p no:cacheprovider\n"
    )
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            import json
            import urllib.request

            import aiohttp
            import pytest

            from lago_async.testing import FakeLago


            async def test_async_fixture(fake_lago):
                assert isinstance(fake_lago, FakeLago)
                async with aiohttp.ClientSession() as session:
                    answer = await session.get(
                        fake_lago.base_url + "/customers",
                        headers={"Authorization": f"Bearer {fake_lago.api_key}"},
                    )
                    assert answer.status == 200


            @pytest.mark.fake_lago(batch_limit=7, api_key="marked")
            async def test_marker_configures(fake_lago):
                assert fake_lago.batch_limit == 7
                assert fake_lago.api_key == "marked"


            def test_sync_fixture(fake_lago_sync):
                request = urllib.request.Request(
                    fake_lago_sync.base_url + "/customers",
                    headers={"Authorization": f"Bearer {fake_lago_sync.api_key}"},
                )
                with urllib.request.urlopen(request) as response:
                    assert json.loads(response.read())["customers"] == []
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
