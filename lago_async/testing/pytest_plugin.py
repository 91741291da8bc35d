"""pytest fixtures serving a fresh FakeLago per test.

Enable them in a ``conftest.py``::

    pytest_plugins = ["lago_async.testing.pytest_plugin"]

``fake_lago`` is an async fixture (it needs pytest-asyncio, or another plugin running async
fixtures) that yields a started :class:`~lago_async.testing.FakeLago`; ``fake_lago_sync``
runs one in a background thread for blocking code. Both fail the test if FakeLago met an
exception of its own while answering (see :attr:`FakeLago.internal_errors`). Configure
either per test with the ``fake_lago`` marker, whose keyword arguments go to the
constructor::

    @pytest.mark.fake_lago(batch_limit=10, seed=3)
    async def test_small_batches(fake_lago): ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from ._server import FakeLago

try:
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # pragma: no cover - another async plugin (e.g. anyio's) runs it
    _async_fixture = pytest.fixture  # type: ignore[assignment]

__all__ = ["fake_lago", "fake_lago_sync"]


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``fake_lago`` marker."""
    config.addinivalue_line(
        "markers",
        "fake_lago(**kwargs): FakeLago constructor arguments for the fake_lago fixtures",
    )


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("fake_lago")
    return dict(marker.kwargs) if marker is not None else {}


@_async_fixture
async def fake_lago(request: pytest.FixtureRequest) -> AsyncIterator[FakeLago]:
    """A started FakeLago on 127.0.0.1 (random port), stopped after the test."""
    async with FakeLago(**_options(request)) as fake:
        yield fake
    _no_internal_errors(fake)


@pytest.fixture
def fake_lago_sync(request: pytest.FixtureRequest) -> Iterator[FakeLago]:
    """A FakeLago served from a background thread, for tests of blocking code."""
    with FakeLago.in_thread(**_options(request)) as fake:
        yield fake
    _no_internal_errors(fake)


def _no_internal_errors(fake: FakeLago) -> None:
    """Fail the test when FakeLago met an exception of its own (a bug to report)."""
    errors = fake.internal_errors
    if errors:
        pytest.fail("FakeLago failed internally (a FakeLago bug):\n" + "\n".join(errors))
