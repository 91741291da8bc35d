"""Test helpers: :class:`FakeLago`, an in-memory Lago-compatible server with fault injection.

    from lago_async.testing import FakeLago

    async with FakeLago(api_key="test_api_key") as fake:
        ...  # point a client at fake.base_url with fake.api_key
        fake.faults.add(status=503, rate=0.1, route="POST /events/batch")
        assert len(fake.events) == ...
        fake.add_webhook_endpoint("http://127.0.0.1:8000/lago", "hmac")  # signed webhooks

Blocking code uses ``with FakeLago.in_thread() as fake:``; pytest users enable the fixtures
with ``pytest_plugins = ["lago_async.testing.pytest_plugin"]``; ``python -m
lago_async.testing`` serves one from the command line (with faults, seed data and an
inspection route, for apps under test in another process). The server does not use the SDK's
client (only its timestamp parser) and imports neither pytest nor aiohttp's test utilities.
"""

from ._faults import DROP, LATENCY, STORE_THEN_DROP, FaultRule, Faults
from ._ratelimit import RateLimiter
from ._server import API_PREFIX, INSPECTION_PATH, ROUTES, FakeLago, RequestRecord
from ._webhooks import WebhookDelivery

__all__ = [
    "API_PREFIX",
    "DROP",
    "INSPECTION_PATH",
    "LATENCY",
    "ROUTES",
    "STORE_THEN_DROP",
    "FakeLago",
    "FaultRule",
    "Faults",
    "RateLimiter",
    "RequestRecord",
    "WebhookDelivery",
]
