"""FakeLago sends webhooks as Lago does: registered endpoints, signatures, retries, keys.

A small aiohttp receiver on a real local port records what arrives; the signatures are
checked with the SDK's standalone verifier and, independently, with PyJWT and hmac.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any, NamedTuple

import aiohttp
import jwt
import orjson
import pytest
from aiohttp import web

from lago_async.testing import FakeLago
from lago_async.webhooks import (
    SIGNATURE_ALGORITHM_HEADER,
    SIGNATURE_HEADER,
    UNIQUE_KEY_HEADER,
    WebhookVerificationError,
    WebhookVerifier,
)
from tests._spec import load_spec, schema_validator
from tests.testing._api import Api


class Received(NamedTuple):
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """An aiohttp app on 127.0.0.1 that records requests and answers ``statuses`` in turn
    (then 200); ``gate``, when set, holds every answer until it is set."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.statuses: list[int] = []
        self.gate: asyncio.Event | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(Received(request.path, dict(request.headers), await request.read()))
        if self.gate is not None:
            await self.gate.wait()
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="ok")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield rec
    finally:
        if rec.gate is not None:
            rec.gate.set()
        await runner.cleanup()


@pytest.fixture
async def quick(receiver: Receiver) -> AsyncIterator[FakeLago]:
    """A FakeLago whose retries follow each other at once (no real waiting)."""
    async with FakeLago(api_key="hooks-key", webhook_retry_delay=0) as fake:
        yield fake
    assert fake.internal_errors == []


@pytest.fixture
async def hook_api(quick: FakeLago) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, quick.base_url, quick.api_key)


async def register(api: Api, url: str, algo: str | None, **fields: Any) -> dict[str, Any]:
    endpoint = {"webhook_url": url, **fields}
    if algo is not None:
        endpoint["signature_algo"] = algo
    answer = await api.post("/webhook_endpoints", {"webhook_endpoint": endpoint})
    assert answer.status == 200, answer.body
    created: dict[str, Any] = answer.body["webhook_endpoint"]
    return created


def webhook_schema(name: str) -> Any:
    """The request body schema of one of the spec's webhooks (``customer_created``)."""
    operation = load_spec()["webhooks"][name]["post"]
    return operation["requestBody"]["content"]["application/json"]["schema"]


# --- signing ----------------------------------------------------------------------------------


async def test_customer_created_reaches_jwt_and_hmac_endpoints_signed(
    quick: FakeLago, hook_api: Api, receiver: Receiver
) -> None:
    await register(hook_api, receiver.url + "/jwt", "jwt")
    await register(hook_api, receiver.url + "/hmac", "hmac")
    answer = await hook_api.post("/customers", {"customer": {"external_id": "acme", "name": "A"}})
    assert answer.status == 200
    deliveries = await quick.webhooks_delivered()

    assert sorted(d.url.rsplit("/", 1)[1] for d in deliveries) == ["hmac", "jwt"]
    assert {(d.webhook_type, d.attempt, d.status) for d in deliveries} == {
        ("customer.created", 1, 200)
    }
    by_path = {r.path: r for r in receiver.received}
    assert set(by_path) == {"/jwt", "/hmac"}
    keys = {r.headers[UNIQUE_KEY_HEADER] for r in receiver.received}
    assert len(keys) == 2  # one webhook per endpoint, each with its own key
    assert keys == {d.unique_key for d in deliveries}

    key_answer = await hook_api.get("/webhooks/json_public_key")
    public_key = key_answer.body["webhook"]["public_key"]
    verifier = WebhookVerifier(
        public_key=public_key, hmac_key=quick.webhook_hmac_key, issuer=quick.url
    )
    for path, algo in (("/jwt", "jwt"), ("/hmac", "hmac")):
        got = by_path[path]
        assert got.headers[SIGNATURE_ALGORITHM_HEADER] == algo
        event = verifier.verify(got.body, got.headers)
        assert event.webhook_type == "customer.created"
        assert event.object_type == "customer"
        assert event.organization_id == quick.organization_id
        assert event.payload["customer"] == answer.body["customer"]
        assert event.object.lago_id == answer.body["customer"]["lago_id"]
        assert event.unique_key == got.headers[UNIQUE_KEY_HEADER]
        schema_validator(webhook_schema("customer_created")).validate(orjson.loads(got.body))

    # independently of the SDK: the JWT is RS256 over {"data": body, "iss": the server root}
    jwt_got = by_path["/jwt"]
    pem = base64.b64decode(public_key)
    assert pem == quick.webhook_public_key_pem.encode()
    header = jwt.get_unverified_header(jwt_got.headers[SIGNATURE_HEADER])
    assert header["alg"] == "RS256"
    claims = jwt.decode(jwt_got.headers[SIGNATURE_HEADER], pem, algorithms=["RS256"])
    assert claims == {"data": jwt_got.body.decode(), "iss": quick.url}
    hmac_got = by_path["/hmac"]
    digest = hmac.new(quick.webhook_hmac_key.encode(), hmac_got.body, hashlib.sha256).digest()
    assert hmac_got.headers[SIGNATURE_HEADER] == base64.b64encode(digest).decode()


async def test_an_update_sends_customer_updated_with_the_new_values(
    quick: FakeLago, hook_api: Api, receiver: Receiver
) -> None:
    await register(hook_api, receiver.url, "hmac")
    await hook_api.post("/customers", {"customer": {"external_id": "acme", "name": "Old"}})
    await hook_api.post("/customers", {"customer": {"external_id": "acme", "name": "New"}})
    deliveries = await quick.webhooks_delivered()
    assert [d.webhook_type for d in deliveries] == ["customer.created", "customer.updated"]
    bodies = [orjson.loads(r.body) for r in receiver.received]
    assert [b["customer"]["name"] for b in bodies] == ["Old", "New"]
    schema_validator(webhook_schema("customer_updated")).validate(bodies[1])


async def test_helpers_and_implicit_customers_send_webhooks_too(
    quick: FakeLago, receiver: Receiver
) -> None:
    quick.add_webhook_endpoint(receiver.url, "hmac")
    quick.add_customer("acme")
    quick.add_subscription("sub_1", "bob")  # creates customer bob
    deliveries = await quick.webhooks_delivered()
    created = [orjson.loads(d.body)["customer"]["external_id"] for d in deliveries]
    assert created == ["acme", "bob"]


async def test_send_webhook_sends_any_payload(quick: FakeLago, receiver: Receiver) -> None:
    quick.add_webhook_endpoint(receiver.url, "jwt")
    invoice = {"lago_id": "inv-1", "total_amount_cents": 100}
    keys = quick.send_webhook("invoice.created", "invoice", invoice)
    await quick.webhooks_delivered()
    assert len(keys) == 1 == len(receiver.received)
    got = receiver.received[0]
    event = WebhookVerifier(public_key=quick.webhook_public_key_pem).verify(got.body, got.headers)
    assert (event.webhook_type, event.object, event.unique_key) == (
        "invoice.created",
        invoice,
        keys[0],
    )


async def test_event_types_filter_what_an_endpoint_receives(
    quick: FakeLago, hook_api: Api, receiver: Receiver
) -> None:
    await register(hook_api, receiver.url + "/updates", "hmac", event_types=["customer.updated"])
    await register(hook_api, receiver.url + "/all", "hmac", event_types=None)
    quick.add_customer("acme")
    quick.add_customer("acme", name="Acme")
    await quick.webhooks_delivered()
    got = [(r.path, orjson.loads(r.body)["webhook_type"]) for r in receiver.received]
    assert sorted(got) == [
        ("/all", "customer.created"),
        ("/all", "customer.updated"),
        ("/updates", "customer.updated"),
    ]


async def test_nothing_is_sent_without_endpoints_or_once_deleted(
    quick: FakeLago, hook_api: Api, receiver: Receiver
) -> None:
    quick.add_customer("before")
    endpoint = await register(hook_api, receiver.url, "hmac")
    assert (await hook_api.delete(f"/webhook_endpoints/{endpoint['lago_id']}")).status == 200
    quick.add_customer("after")
    assert await quick.webhooks_delivered() == []
    assert receiver.received == []


# --- delivery ---------------------------------------------------------------------------------


async def test_a_failed_delivery_is_retried_with_the_same_unique_key(
    quick: FakeLago, receiver: Receiver
) -> None:
    quick.add_webhook_endpoint(receiver.url, "jwt")
    receiver.statuses = [500, 503]
    quick.add_customer("acme")
    deliveries = await quick.webhooks_delivered()
    assert [(d.attempt, d.status) for d in deliveries] == [(1, 500), (2, 503), (3, 200)]
    assert len({d.unique_key for d in deliveries}) == 1
    assert len({r.body for r in receiver.received}) == 1  # the same body each time
    keys = {r.headers[UNIQUE_KEY_HEADER] for r in receiver.received}
    assert keys == {deliveries[0].unique_key}


async def test_retries_stop_after_max_attempts_and_a_dead_endpoint_is_recorded(
    receiver: Receiver,
) -> None:
    async with FakeLago(webhook_max_attempts=2, webhook_retry_delay=0) as fake:
        receiver.statuses = [500, 500, 500]
        fake.add_webhook_endpoint(receiver.url, "hmac")
        dead = web.Application()  # a port with nothing listening: bind, note it, close
        runner = web.AppRunner(dead)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        dead_url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        await runner.cleanup()
        fake.add_webhook_endpoint(dead_url, "hmac")
        fake.add_customer("acme")
        deliveries = await fake.webhooks_delivered()
    live = [(d.attempt, d.status) for d in deliveries if d.url == receiver.url]
    assert live == [(1, 500), (2, 500)]
    gone = [d for d in deliveries if d.url == dead_url]
    assert [(d.attempt, d.status) for d in gone] == [(1, None), (2, None)]
    assert all(d.error and not d.delivered for d in gone)


async def test_the_api_answers_before_the_webhook_is_delivered(
    quick: FakeLago, hook_api: Api, receiver: Receiver
) -> None:
    await register(hook_api, receiver.url, "hmac")
    receiver.gate = asyncio.Event()  # the receiver holds its answer until released
    answer = await hook_api.post("/customers", {"customer": {"external_id": "acme"}})
    assert answer.status == 200
    assert quick.webhook_deliveries == []  # still in flight
    receiver.gate.set()
    assert [d.status for d in await quick.webhooks_delivered()] == [200]


async def test_stopping_cancels_pending_deliveries(receiver: Receiver) -> None:
    fake = FakeLago(webhook_retry_delay=3600)
    await fake.start()
    receiver.statuses = [500]
    fake.add_webhook_endpoint(receiver.url, "hmac")
    fake.add_customer("acme")
    while not fake.webhook_deliveries:  # the first attempt fails, the retry waits an hour
        await asyncio.sleep(0.01)
    await fake.stop()  # does not wait for the retry
    assert [d.status for d in fake.webhook_deliveries] == [500]


def test_in_thread_fake_sends_and_waits_from_blocking_code() -> None:
    received: list[bytes] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response(text="ok")

    loop = asyncio.new_event_loop()
    runner = web.AppRunner(web.Application())
    runner.app.router.add_post("/", handle)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    try:
        thread.start()
        with FakeLago.in_thread(webhook_retry_delay=0) as fake:
            fake.add_webhook_endpoint(url, "hmac")
            fake.add_customer("acme")  # from this thread: queued on FakeLago's loop
            deliveries = fake.wait_for_webhooks()
        assert [(d.webhook_type, d.status) for d in deliveries] == [("customer.created", 200)]
        assert len(received) == 1
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


# --- keys -------------------------------------------------------------------------------------


async def test_public_key_routes_serve_the_key_and_rotation_changes_it(
    quick: FakeLago, hook_api: Api, receiver: Receiver
) -> None:
    first = (await hook_api.get("/webhooks/json_public_key")).body["webhook"]["public_key"]
    assert base64.b64decode(first).decode() == quick.webhook_public_key_pem
    assert quick.webhook_public_key_pem.startswith("-----BEGIN PUBLIC KEY-----")
    quick.add_webhook_endpoint(receiver.url, "jwt")
    quick.add_customer("before")
    await quick.webhooks_delivered()

    new_pem = quick.rotate_webhook_key()
    second = (await hook_api.get("/webhooks/json_public_key")).body["webhook"]["public_key"]
    assert second != first and base64.b64decode(second).decode() == new_pem
    quick.add_customer("after")
    await quick.webhooks_delivered()
    old, new = receiver.received
    WebhookVerifier(public_key=first).verify(old.body, old.headers)
    with pytest.raises(WebhookVerificationError):
        WebhookVerifier(public_key=first).verify(new.body, new.headers)
    event = WebhookVerifier(public_key=second).verify(new.body, new.headers)
    assert event.object.external_id == "after"


def test_keys_differ_between_fakes_and_the_hmac_key_is_not_in_the_repr() -> None:
    one, two = FakeLago(), FakeLago()
    assert one.webhook_hmac_key != two.webhook_hmac_key
    assert len(one.webhook_hmac_key) >= 32
    assert one.webhook_hmac_key not in repr(one)


@pytest.fixture
def no_webhooks_extra(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Python acts as if PyJWT and cryptography were not installed."""
    for name in list(sys.modules):
        if name == "jwt" or name.startswith(("jwt.", "cryptography")):
            monkeypatch.delitem(sys.modules, name)
    for name in ("jwt", "cryptography", "cryptography.hazmat.primitives"):
        monkeypatch.setitem(sys.modules, name, None)
    yield


async def test_without_the_webhooks_extra_jwt_is_refused_clearly_and_hmac_works(
    no_webhooks_extra: None, receiver: Receiver
) -> None:
    async with FakeLago() as fake, aiohttp.ClientSession() as session:
        api = Api(session, fake.base_url, fake.api_key)
        answer = await api.post(
            "/webhook_endpoints", {"webhook_endpoint": {"webhook_url": receiver.url}}
        )
        assert answer.status == 422  # jwt is the default algorithm
        assert answer.body["error_details"] == {"signature_algo": ["webhooks_extra_missing"]}
        key = await api.get("/webhooks/json_public_key")
        assert key.status == 400 and "lago-async[webhooks]" in key.body["error"]
        with pytest.raises(RuntimeError, match=r"lago-async\[webhooks\]"):
            _ = fake.webhook_public_key_pem
        await register(api, receiver.url, "hmac")
        fake.add_customer("acme")
        assert [d.status for d in await fake.webhooks_delivered()] == [200]
        assert fake.internal_errors == []


# --- endpoints API ----------------------------------------------------------------------------


async def test_endpoint_crud(quick: FakeLago, hook_api: Api) -> None:
    created = await register(hook_api, "https://hooks.example.com/a", None, name="prod")
    assert created["signature_algo"] == "jwt"  # Lago's default
    assert created["lago_organization_id"] == quick.organization_id
    assert created["event_types"] is None and created["name"] == "prod"
    path = f"/webhook_endpoints/{created['lago_id']}"
    assert (await hook_api.get(path)).body == {"webhook_endpoint": created}

    changed = await hook_api(
        "PUT", path, {"webhook_endpoint": {"webhook_url": "https://hooks.example.com/b"}}
    )
    assert changed.status == 200
    # a field left out keeps its value
    assert changed.body["webhook_endpoint"]["signature_algo"] == "jwt"
    assert changed.body["webhook_endpoint"]["name"] == "prod"
    assert changed.body["webhook_endpoint"]["webhook_url"] == "https://hooks.example.com/b"

    duplicate = await hook_api.post(
        "/webhook_endpoints", {"webhook_endpoint": {"webhook_url": "https://hooks.example.com/b"}}
    )
    assert duplicate.status == 422
    assert duplicate.body["error_details"] == {"webhook_url": ["value_already_exist"]}

    assert (await hook_api.delete(path)).status == 200
    assert (await hook_api.get(path)).status == 404
    assert (await hook_api.delete(path)).body["code"] == "webhook_endpoint_not_found"


async def test_endpoint_list_is_paged_and_limited(quick: FakeLago, hook_api: Api) -> None:
    for n in range(10):
        await register(hook_api, f"https://hooks.example.com/{n}", "hmac")
    page = await hook_api.get("/webhook_endpoints", page=2, per_page=4)
    urls = [e["webhook_url"] for e in page.body["webhook_endpoints"]]
    assert urls == [f"https://hooks.example.com/{n}" for n in (4, 5, 6, 7)]
    assert page.body["meta"] == {
        "current_page": 2,
        "next_page": 3,
        "prev_page": 1,
        "total_pages": 3,
        "total_count": 10,
    }
    over = await hook_api.post(
        "/webhook_endpoints", {"webhook_endpoint": {"webhook_url": "https://hooks.example.com/x"}}
    )
    assert over.status == 422 and over.body["error_details"] == {"base": ["exceeded_limit"]}


@pytest.mark.parametrize(
    ("fields", "details"),
    [
        ({}, {"webhook_url": ["value_is_mandatory"]}),
        ({"webhook_url": "ftp://x"}, {"webhook_url": ["url_is_invalid"]}),
        ({"webhook_url": 3}, {"webhook_url": ["url_is_invalid"]}),
        (
            {"webhook_url": "http://h/x", "signature_algo": "none"},
            {"signature_algo": ["invalid_value"]},
        ),
        ({"webhook_url": "http://h/x", "event_types": "all"}, {"event_types": ["invalid_value"]}),
    ],
)
async def test_endpoint_input_is_checked(
    hook_api: Api, fields: dict[str, Any], details: dict[str, Any]
) -> None:
    answer = await hook_api.post("/webhook_endpoints", {"webhook_endpoint": fields})
    assert answer.status == 422
    assert answer.body["error_details"] == details


async def test_reset_forgets_endpoints_and_deliveries(quick: FakeLago, receiver: Receiver) -> None:
    quick.add_webhook_endpoint(receiver.url, "hmac")
    quick.add_customer("acme")
    await quick.webhooks_delivered()
    quick.reset()
    assert quick.webhook_endpoints == [] and quick.webhook_deliveries == []


async def test_state_changes_of_the_whole_api_send_their_webhooks(
    quick: FakeLago, receiver: Receiver, hook_api: Api
) -> None:
    """Creating a metric, a plan and a subscription, crediting a wallet and terminating the
    subscription send Lago's webhooks for each, in order; each verifies and parses into its
    typed event through the SDK."""
    from lago_async import AsyncLago
    from lago_async.webhooks import (
        BillableMetricCreatedWebhook,
        PlanCreatedWebhook,
        SubscriptionStartedWebhook,
        SubscriptionTerminatedWebhook,
        WalletTransactionCreatedWebhook,
    )

    wanted = [
        "billable_metric.created",
        "plan.created",
        "subscription.started",
        "wallet_transaction.created",
        "subscription.terminated",
    ]
    await register(hook_api, receiver.url + "/hooks", "hmac", event_types=wanted)
    async with AsyncLago(api_key=quick.api_key, base_url=quick.base_url) as lago:
        metric = await lago.billable_metrics.create(
            code="calls", name="Calls", aggregation_type="count_agg"
        )
        await lago.plans.create(
            code="basic",
            name="Basic",
            interval="monthly",
            amount_cents=0,
            amount_currency="USD",
            pay_in_advance=False,
            charges=[{"billable_metric_id": metric.lago_id, "charge_model": "standard"}],
        )
        await lago.customers.create(external_id="acme")
        await lago.subscriptions.create(
            external_customer_id="acme", plan_code="basic", external_id="sub_1"
        )
        await lago.wallets.create(
            external_customer_id="acme", rate_amount="1", currency="USD", paid_credits="10"
        )
        await lago.subscriptions.delete("sub_1")
        await quick.webhooks_delivered()
        events = [
            await lago.webhooks.verify(r.body, r.headers, hmac_key=quick.webhook_hmac_key)
            for r in receiver.received
        ]
    assert [e.webhook_type for e in events] == wanted
    kinds = [
        BillableMetricCreatedWebhook,
        PlanCreatedWebhook,
        SubscriptionStartedWebhook,
        WalletTransactionCreatedWebhook,
        SubscriptionTerminatedWebhook,
    ]
    assert [type(e) for e in events] == kinds
    assert events[2].object.external_id == "sub_1"  # type: ignore[attr-defined]
    assert events[4].object.status == "terminated"  # type: ignore[attr-defined]
    assert events[3].object.credit_amount == 10  # type: ignore[attr-defined]


async def test_a_usage_alert_triggers_once_when_its_threshold_is_crossed(
    quick: FakeLago, receiver: Receiver, hook_api: Api
) -> None:
    from lago_async import AsyncLago
    from lago_async.webhooks import AlertTriggeredWebhook

    await register(hook_api, receiver.url + "/hooks", "hmac", event_types=["alert.triggered"])
    async with AsyncLago(api_key=quick.api_key, base_url=quick.base_url) as lago:
        metric = await lago.billable_metrics.create(
            code="gb", name="GB", aggregation_type="sum_agg", field_name="gb"
        )
        await lago.plans.create(
            code="basic",
            name="Basic",
            interval="monthly",
            amount_cents=0,
            amount_currency="USD",
            pay_in_advance=False,
            charges=[
                {
                    "billable_metric_id": metric.lago_id,
                    "charge_model": "standard",
                    "properties": {"amount": "1"},
                }
            ],
        )
        await lago.customers.create(external_id="acme")
        await lago.subscriptions.create(
            external_customer_id="acme", plan_code="basic", external_id="sub_1"
        )
        await lago.subscriptions.alerts.create(
            "sub_1",
            {
                "alert": {
                    "alert_type": "current_usage_amount",
                    "code": "spend",
                    "thresholds": [{"value": "1000"}, {"value": "5000"}],
                }
            },
        )
        for n, gb in enumerate([5, 6, 2]):  # 500, then 1100 (crosses 1000), then 1300 cents
            await lago.events.create(
                transaction_id=f"t{n}",
                code="gb",
                external_subscription_id="sub_1",
                properties={"gb": gb},
            )
        await quick.webhooks_delivered()
        (received,) = receiver.received
        event = await lago.webhooks.verify(
            received.body, received.headers, hmac_key=quick.webhook_hmac_key
        )
        assert isinstance(event, AlertTriggeredWebhook)
        assert event.object.alert_code == "spend"
        assert event.object.current_value == 1100
        assert event.object.previous_value == 500
        assert [t.value for t in event.object.crossed_thresholds or []] == [1000]
        assert (await lago.subscriptions.alerts.get("sub_1", "spend")).previous_value == 1300
