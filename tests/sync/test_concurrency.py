"""Many threads on one client, os.fork(), and refusing to block a running event loop."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from lago_async.testing import FakeLago
from lago_sync import Lago, LagoError, LagoValidationError, SyncInAsyncContextError
from tests.sync.conftest import portal_threads


def test_sixteen_threads_share_one_client(fake: FakeLago) -> None:
    before = set(threading.enumerate())
    lago = Lago(api_key=fake.api_key, base_url=fake.base_url)
    barrier = threading.Barrier(16)

    def work(worker: int) -> int:
        barrier.wait()  # everyone starts together, the portal's lazy start included
        done = 0
        for n in range(100):
            if n % 2:
                assert lago.customers.get("acme").external_id == "acme"
            else:
                event = lago.events.create(
                    transaction_id=f"t{worker}-{n}", code="api", external_subscription_id="sub_1"
                )
                assert event.transaction_id == f"t{worker}-{n}"
            done += 1
        return done

    with ThreadPoolExecutor(16) as pool:
        assert list(pool.map(work, range(16))) == [100] * 16
    assert len(portal_threads()) == 1  # one portal for all of them
    assert len(fake.events) == 16 * 50
    lago.close()
    assert set(threading.enumerate()) == before


def test_errors_reach_the_thread_that_called(fake: FakeLago) -> None:
    with Lago(api_key=fake.api_key, base_url=fake.base_url) as lago:

        def work(n: int) -> str:
            try:
                lago.customers.get(f"missing-{n}")
            except LagoError as exc:
                return str(exc)
            return "no error"

        with ThreadPoolExecutor(8) as pool:
            messages = list(pool.map(work, range(32)))
    assert all(f"missing-{n}" in m for n, m in enumerate(messages))


def _in_child(body: Callable[[], None]) -> int:
    """Run ``body`` in a forked child; its exit status (0: passed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        status = 1
        try:
            body()
            status = 0
        except BaseException as exc:
            sys.stderr.write(f"child failed: {exc!r}\n")
        finally:
            os._exit(status)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    raise AssertionError("the forked child hung")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_builds_its_own_portal(fake: FakeLago) -> None:
    lago = Lago(api_key=fake.api_key, base_url=fake.base_url)
    lago.customers.get("acme")  # the parent's portal and session are running
    pager = lago.customers.list()
    parent_live = lago._b.live if lago._b else None
    parent_threads = portal_threads()

    def child() -> None:
        assert portal_threads() == []  # threads do not survive fork
        event = lago.events.create(
            transaction_id="from-child", code="api", external_subscription_id="sub_1"
        )
        assert event.transaction_id == "from-child"
        assert lago.customers.get("acme").external_id == "acme"
        assert lago._b is not None and lago._b.live is not parent_live
        assert lago._b.live.pid == os.getpid()
        try:
            pager.to_list()  # made in the parent: refused with a clear message
        except LagoError as exc:
            assert "fork" in str(exc)
        else:
            raise AssertionError("a pager from the parent should be refused")
        lago.close()
        assert portal_threads() == []

    assert _in_child(child) == 0
    assert [e["transaction_id"] for e in fake.events] == ["from-child"]
    # The parent's portal was not touched by the child and keeps working.
    assert lago._b is not None and lago._b.live is parent_live
    assert portal_threads() == parent_threads
    assert lago.customers.get("acme").external_id == "acme"
    assert [c.external_id for c in pager] == ["acme"]
    lago.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_client_first_used_in_the_child(fake: FakeLago) -> None:
    lago = Lago(api_key=fake.api_key, base_url=fake.base_url)

    def child() -> None:
        assert lago.customers.get("acme").external_id == "acme"
        lago.close()

    assert _in_child(child) == 0
    assert lago.customers.get("acme").external_id == "acme"
    lago.close()


def _within(seconds: float, function: Callable[[], Any]) -> Any:
    """Run ``function`` in a thread; fail (rather than hang) if it takes too long."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds}s: it would have hung"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value"), time.monotonic() - started


def test_a_call_from_a_running_loop_raises_at_once(fake: FakeLago) -> None:
    lago = Lago(api_key=fake.api_key, base_url=fake.base_url)

    async def handler() -> list[str]:
        caught = []
        for call in (
            lambda: lago.customers.get("acme"),
            lambda: lago.events.list(),
            lambda: lago.events.ingestor(),
            lambda: lago.with_options(max_retries=1).customers.get("acme"),
        ):
            with pytest.raises(SyncInAsyncContextError) as error:
                call()
            caught.append(str(error.value))
        return caught

    messages, elapsed = _within(5, lambda: asyncio.run(handler()))
    assert elapsed < 1
    assert all("lago_async" in m and "running event loop" in m for m in messages)
    assert portal_threads() == []  # refused before starting anything
    # The same client works from plain code, and its objects refuse inside a loop too.
    pager = lago.customers.list()
    assert [c.external_id for c in pager] == ["acme"]

    async def use_pager() -> None:
        with pytest.raises(SyncInAsyncContextError):
            pager.to_list()
        with pytest.raises(SyncInAsyncContextError):
            list(pager)

    _, elapsed = _within(5, lambda: asyncio.run(use_pager()))
    assert elapsed < 1
    lago.close()


def test_a_call_from_the_portal_thread_itself_raises(fake: FakeLago) -> None:
    lago = Lago(api_key=fake.api_key, base_url=fake.base_url)
    lago.customers.get("acme")
    assert lago._b is not None
    live = lago._b.live

    async def inside() -> str:
        try:
            lago.customers.get("acme")  # would deadlock: the loop would wait for itself
        except SyncInAsyncContextError as exc:
            return str(exc)
        return "no error"

    message, elapsed = _within(5, lambda: live.run(inside()))
    assert "running event loop" in message and elapsed < 1
    lago.close()


def test_the_error_is_a_lago_error() -> None:
    assert issubclass(SyncInAsyncContextError, LagoError)
    assert issubclass(SyncInAsyncContextError, RuntimeError)
    assert not issubclass(SyncInAsyncContextError, LagoValidationError)


def test_closing_while_threads_call_never_hangs(fake: FakeLago) -> None:
    before = set(threading.enumerate())
    lago = Lago(api_key=fake.api_key, base_url=fake.base_url)
    lago.customers.get("acme")
    stop = threading.Event()
    outcomes: list[str] = []

    def work() -> None:
        while not stop.is_set():
            try:
                lago.customers.get("acme")
                outcomes.append("ok")
            except LagoError as exc:  # cancelled or refused by the closing portal
                outcomes.append(type(exc).__name__)

    def scenario() -> None:
        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(0.2)
        lago.close()  # under load
        time.sleep(0.1)  # the workers go on: a closed client opens again on its next call
        stop.set()
        for thread in threads:
            thread.join()
        lago.close()

    _within(30, scenario)
    assert "ok" in outcomes
    assert set(outcomes) <= {"ok", "LagoError", "APIConnectionError"}
    assert set(threading.enumerate()) == before


def test_closing_from_inside_the_portal_loop_stops_it_in_the_background(
    fake: FakeLago,
) -> None:
    before = set(threading.enumerate())
    lago = Lago(api_key=fake.api_key, base_url=fake.base_url)
    lago.customers.get("acme")
    assert lago._b is not None
    live = lago._b.live

    async def close_inside() -> None:
        lago.close()  # cannot wait for its own thread: it stops once this returns

    _within(5, lambda: live.run(close_inside()))
    deadline = time.monotonic() + 5
    while set(threading.enumerate()) != before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert set(threading.enumerate()) == before
    assert lago.customers.get("acme").external_id == "acme"  # a new portal
    lago.close()


def test_async_code_may_call_it_through_a_worker_thread(fake: FakeLago) -> None:
    with Lago(api_key=fake.api_key, base_url=fake.base_url) as lago:

        async def handler() -> str:
            customer = await asyncio.to_thread(lago.customers.get, "acme")
            return customer.external_id

        result, _ = _within(10, lambda: asyncio.run(handler()))
    assert result == "acme"
