"""Fixtures of the FakeLago tests: a started server and a raw HTTP client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from lago_async.testing import FakeLago
from tests.testing._api import Api

API_KEY = "fake-lago-key"


@pytest.fixture
async def fake() -> AsyncIterator[FakeLago]:
    """A started FakeLago (seed 0, batch limit 100)."""
    async with FakeLago(api_key=API_KEY, seed=0) as server:
        yield server
    assert server.internal_errors == [], "FakeLago failed internally"


@pytest.fixture
async def api(fake: FakeLago) -> AsyncIterator[Api]:
    """A raw JSON client of ``fake``."""
    async with aiohttp.ClientSession() as session:
        yield Api(session, fake.base_url, fake.api_key)
