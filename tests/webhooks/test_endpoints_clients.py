"""Both clients manage webhook endpoints and read the public key on FakeLago, and a webhook
FakeLago then sends verifies with what they read."""

from __future__ import annotations

import base64
import threading
from collections.abc import AsyncIterator, Iterator
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from aiohttp import web

from lago_async import AsyncLago, NotFoundError, UnprocessableEntityError
from lago_async.testing import FakeLago
from lago_async.webhooks import WebhookVerifier


@pytest.fixture
async def sink() -> AsyncIterator[tuple[str, list[tuple[bytes, dict[str, str]]]]]:
    """A local receiver answering 200; yields its URL and what it received."""
    received: list[tuple[bytes, dict[str, str]]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((await request.read(), dict(request.headers)))
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook", received
    finally:
        await runner.cleanup()


async def test_async_client_endpoint_lifecycle_and_keys(
    sink: tuple[str, list[tuple[bytes, dict[str, str]]]],
) -> None:
    url, received = sink
    async with (
        FakeLago(webhook_retry_delay=0) as fake,
        AsyncLago(api_key=fake.api_key, base_url=fake.base_url) as lago,
    ):
        created = await lago.webhook_endpoints.create(
            webhook_url=url, signature_algo="hmac", name="local"
        )
        assert (created.webhook_url, created.signature_algo, created.name) == (
            url,
            "hmac",
            "local",
        )
        assert created.lago_organization_id == fake.organization_id
        assert await lago.webhook_endpoints.get(created.lago_id) == created
        listed = [e async for e in lago.webhook_endpoints.list()]
        assert listed == [created]

        updated = await lago.webhook_endpoints.update(
            created.lago_id, webhook_url=url, signature_algo="jwt"
        )
        assert updated.signature_algo == "jwt" and updated.name == "local"

        json_key = await lago.webhooks.json_public_key()
        text_key = await lago.webhooks.public_key()
        assert json_key.public_key == text_key
        assert base64.b64decode(text_key).decode() == fake.webhook_public_key_pem

        await lago.customers.create(external_id="acme", name="Acme")
        deliveries = await fake.webhooks_delivered()
        assert [(d.signature_algo, d.status) for d in deliveries] == [("jwt", 200)]
        body, headers = received[0]
        verifier = WebhookVerifier(public_key=json_key.public_key, issuer=fake.webhook_issuer)
        assert verifier.verify(body, headers).object.name == "Acme"

        with pytest.raises(UnprocessableEntityError) as refused:
            await lago.webhook_endpoints.create(webhook_url=url)  # already registered
        assert refused.value.error_details == {"webhook_url": ["value_already_exist"]}
        deleted = await lago.webhook_endpoints.delete(created.lago_id)
        assert deleted.lago_id == created.lago_id
        with pytest.raises(NotFoundError):
            await lago.webhook_endpoints.get(created.lago_id)


@pytest.fixture
def threaded_fake() -> Iterator[FakeLago]:
    with FakeLago.in_thread(webhook_retry_delay=0) as fake:
        yield fake


def test_sync_client_registers_an_endpoint_that_receives_signed_webhooks(
    threaded_fake: FakeLago,
) -> None:
    lago_sync = pytest.importorskip("lago_sync")
    received: list[tuple[bytes, dict[str, str]]] = []

    # a blocking receiver: wsgiref in a thread
    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    def app(environ: dict[str, object], start_response: object) -> list[bytes]:
        length = int(str(environ.get("CONTENT_LENGTH") or 0))
        stream = environ["wsgi.input"]
        body = stream.read(length)  # type: ignore[attr-defined]
        headers = {
            key[5:].replace("_", "-").title(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        received.append((body, headers))
        start_response("200 OK", [("Content-Type", "text/plain")])  # type: ignore[operator]
        return [b"ok"]

    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        with lago_sync.Lago(api_key=threaded_fake.api_key, base_url=threaded_fake.base_url) as lago:
            lago.webhook_endpoints.create(webhook_url=url, signature_algo="hmac")
            lago.customers.create(external_id="acme")
        deliveries = threaded_fake.wait_for_webhooks()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert [(d.webhook_type, d.status) for d in deliveries] == [("customer.created", 200)]
    body, headers = received[0]
    event = WebhookVerifier(hmac_key=threaded_fake.webhook_hmac_key).verify(body, headers)
    assert event.unique_key == deliveries[0].unique_key
