"""Fixtures of the lago_sync tests: a FakeLago served from a thread and a sync client on it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from lago_async.testing import FakeLago
from lago_sync import Lago

API_KEY = "sync-test-key"


@pytest.fixture
def fake() -> Iterator[FakeLago]:
    """A FakeLago in a background thread, with customer ``acme`` subscribed as ``sub_1``."""
    with FakeLago.in_thread(api_key=API_KEY, seed=0) as server:
        server.add_customer("acme", currency="EUR")
        server.add_subscription("sub_1", "acme")
        yield server


@pytest.fixture
def lago(fake: FakeLago) -> Iterator[Lago]:
    """A sync client of ``fake``, closed after the test."""
    with Lago(api_key=fake.api_key, base_url=fake.base_url) as client:
        yield client


def portal_threads() -> list[threading.Thread]:
    """The live portal threads of lago_sync clients."""
    return [t for t in threading.enumerate() if t.name == "lago_sync-portal" and t.is_alive()]
