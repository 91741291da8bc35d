"""Every answer FakeLago gives, success or error, validates against Lago's OpenAPI document.

For each route FakeLago serves, the scenarios below exercise the 200 and every error status
the spec documents for that operation (except 403, which Lago uses for premium features
FakeLago does not model), and validate the body with JSON Schema (Draft 2020-12, formats
checked) against the spec's response schema for that operation and status. The spec is read
from ``../shared`` through ``tests._spec``; the tests skip when it is absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

import aiohttp
import pytest
from jsonschema import FormatChecker

from lago_async.testing import ROUTES, FakeLago
from tests._spec import load_spec, resolve, schema_validator
from tests.testing._api import Api

NOT_MODELLED = {"403"}
# Statuses FakeLago has no cause to answer on one route: the spec lists 405 for deleting a
# webhook endpoint, a refusal FakeLago does not model.
NOT_MODELLED_ON = {"DELETE /webhook_endpoints/{lago_id}": {"405"}}
# Routes whose 200 is text/plain (checked by test_plain_text_public_key).
PLAIN_TEXT = {"GET /webhooks/public_key": {"200"}}
LOCAL_URL = "http://127.0.0.1:9/lago/webhooks"  # never called: no change follows in a test
GHOST_UUID = "00000000-0000-4000-8000-000000000000"


class Scenario(NamedTuple):
    route: str
    status: int
    path: str
    body: Any = None
    params: Mapping[str, str] | None = None
    strict: bool = False  # FakeLago(auto_subscriptions=False)
    api_key: str | None = None


def ev(tx: str, sub: str = "sub_1", **extra: Any) -> dict[str, Any]:
    return {"transaction_id": tx, "code": "storage", "external_subscription_id": sub, **extra}


ESTIMATE = {"code": "storage", "external_subscription_id": "sub_1", "properties": {"gb": 2}}
GHOST = {**ESTIMATE, "external_subscription_id": "ghost"}
C = "/customers/{external_customer_id}"


def scenarios() -> list[Scenario]:
    out = [
        Scenario(
            "POST /customers",
            200,
            "/customers",
            {
                "customer": {
                    "external_id": "new",
                    "name": "New Co",
                    "currency": "USD",
                    "country": "DE",
                    "email": "billing@new.example",
                    "timezone": "Europe/Paris",
                    "metadata": [{"key": "k", "value": "v", "display_in_invoice": False}],
                }
            },
        ),
        Scenario("POST /customers", 400, "/customers", {"external_id": "x"}),
        Scenario("POST /customers", 422, "/customers", {"customer": {"name": "x"}}),
        Scenario("GET /customers", 200, "/customers", params={"per_page": "1", "page": "2"}),
        Scenario("GET " + C, 200, "/customers/acme"),
        Scenario("GET " + C, 404, "/customers/nobody"),
        Scenario("DELETE " + C, 200, "/customers/plain"),
        Scenario("DELETE " + C, 404, "/customers/nobody"),
        Scenario(
            f"GET {C}/current_usage",
            200,
            "/customers/acme/current_usage",
            params={"external_subscription_id": "sub_1"},
        ),
        Scenario(
            f"GET {C}/current_usage",
            404,
            "/customers/nobody/current_usage",
            params={"external_subscription_id": "sub_1"},
        ),
        Scenario(
            f"GET {C}/projected_usage",
            200,
            "/customers/acme/projected_usage",
            params={"external_subscription_id": "sub_1"},
        ),
        Scenario(
            f"GET {C}/projected_usage",
            404,
            "/customers/acme/projected_usage",
            params={"external_subscription_id": "ghost"},
            strict=True,
        ),
        Scenario(
            f"GET {C}/past_usage",
            200,
            "/customers/acme/past_usage",
            params={"external_subscription_id": "sub_1"},
        ),
        Scenario(
            f"GET {C}/past_usage",
            404,
            "/customers/nobody/past_usage",
            params={"external_subscription_id": "sub_1"},
        ),
        Scenario(f"GET {C}/past_usage", 422, "/customers/acme/past_usage"),
        Scenario(f"POST {C}/checkout_url", 200, "/customers/acme/checkout_url"),
        Scenario(f"POST {C}/checkout_url", 404, "/customers/nobody/checkout_url"),
        Scenario(f"POST {C}/checkout_url", 422, "/customers/plain/checkout_url"),
        Scenario(f"GET {C}/portal_url", 200, "/customers/acme/portal_url"),
        Scenario(f"GET {C}/portal_url", 404, "/customers/nobody/portal_url"),
        Scenario(f"GET {C}/applied_coupons", 200, "/customers/acme/applied_coupons"),
        Scenario(f"GET {C}/applied_coupons", 404, "/customers/nobody/applied_coupons"),
        Scenario(
            f"DELETE {C}/applied_coupons/{{applied_coupon_id}}",
            200,
            "/customers/acme/applied_coupons/{coupon}",
        ),
        Scenario(
            f"DELETE {C}/applied_coupons/{{applied_coupon_id}}",
            404,
            f"/customers/acme/applied_coupons/{GHOST_UUID}",
        ),
        Scenario(
            "POST /events",
            200,
            "/events",
            {
                "event": ev(
                    "new-1",
                    timestamp=1700000000,
                    precise_total_amount_cents="10.5",
                    properties={"gb": 3, "ratio": 0.5, "region": "eu"},
                )
            },
        ),
        Scenario("POST /events", 400, "/events", {"events": []}),
        Scenario("POST /events", 422, "/events", {"event": {"transaction_id": "x"}}),
        Scenario("GET /events", 200, "/events", params={"external_subscription_id": "sub_1"}),
        Scenario("GET /events", 422, "/events", params={"timestamp_from": "not a date"}),
        Scenario(
            "POST /events/batch",
            200,
            "/events/batch",
            {"events": [ev("b-1", timestamp="1700000000.5"), ev("b-2", properties={"n": "4"})]},
        ),
        Scenario("POST /events/batch", 400, "/events/batch", {"event": ev("b-1")}),
        Scenario("POST /events/batch", 422, "/events/batch", {"events": [ev("e-1"), {}]}),
        Scenario("POST /events/estimate_fees", 200, "/events/estimate_fees", {"event": ESTIMATE}),
        Scenario("POST /events/estimate_fees", 400, "/events/estimate_fees", {}),
        Scenario(
            "POST /events/estimate_fees",
            404,
            "/events/estimate_fees",
            {"event": GHOST},
            strict=True,
        ),
        Scenario(
            "POST /events/estimate_fees", 422, "/events/estimate_fees", {"event": {"code": "x"}}
        ),
        Scenario(
            "POST /events/estimate_instant_fees",
            200,
            "/events/estimate_instant_fees",
            {"event": {**ESTIMATE, "transaction_id": "est-1"}},
        ),
        Scenario("POST /events/estimate_instant_fees", 400, "/events/estimate_instant_fees", []),
        Scenario(
            "POST /events/estimate_instant_fees",
            404,
            "/events/estimate_instant_fees",
            {"event": GHOST},
            strict=True,
        ),
        Scenario(
            "POST /events/estimate_instant_fees",
            422,
            "/events/estimate_instant_fees",
            {"event": {"external_subscription_id": "sub_1"}},
        ),
        Scenario(
            "POST /events/batch_estimate_instant_fees",
            200,
            "/events/batch_estimate_instant_fees",
            {"events": [{"event": ESTIMATE}, {"event": {**ESTIMATE, "transaction_id": "e"}}]},
        ),
        Scenario(
            "POST /events/batch_estimate_instant_fees",
            400,
            "/events/batch_estimate_instant_fees",
            {"event": ESTIMATE},
        ),
        Scenario(
            "POST /events/batch_estimate_instant_fees",
            404,
            "/events/batch_estimate_instant_fees",
            {"events": [{"event": GHOST}]},
            strict=True,
        ),
        Scenario(
            "POST /events/batch_estimate_instant_fees",
            422,
            "/events/batch_estimate_instant_fees",
            {"events": []},
        ),
        Scenario("GET /events/{transaction_id}", 200, "/events/seed-1"),
        Scenario("GET /events/{transaction_id}", 404, "/events/nope"),
        Scenario(
            "POST /webhook_endpoints",
            200,
            "/webhook_endpoints",
            {
                "webhook_endpoint": {
                    "webhook_url": "https://hooks.example.com/lago",
                    "signature_algo": "hmac",
                    "name": "prod",
                    "event_types": ["customer.created"],
                }
            },
        ),
        Scenario("POST /webhook_endpoints", 400, "/webhook_endpoints", {"url": "x"}),
        Scenario(
            "POST /webhook_endpoints",
            422,
            "/webhook_endpoints",
            {"webhook_endpoint": {"webhook_url": "not a url"}},
        ),
        Scenario("GET /webhook_endpoints", 200, "/webhook_endpoints", params={"per_page": "1"}),
        Scenario("GET /webhook_endpoints/{lago_id}", 200, "/webhook_endpoints/{endpoint}"),
        Scenario("GET /webhook_endpoints/{lago_id}", 404, f"/webhook_endpoints/{GHOST_UUID}"),
        Scenario(
            "PUT /webhook_endpoints/{lago_id}",
            200,
            "/webhook_endpoints/{endpoint}",
            {"webhook_endpoint": {"webhook_url": LOCAL_URL + "/v2", "signature_algo": "jwt"}},
        ),
        Scenario(
            "PUT /webhook_endpoints/{lago_id}", 400, "/webhook_endpoints/{endpoint}", {"x": 1}
        ),
        Scenario(
            "PUT /webhook_endpoints/{lago_id}",
            404,
            f"/webhook_endpoints/{GHOST_UUID}",
            {"webhook_endpoint": {"webhook_url": LOCAL_URL}},
        ),
        Scenario(
            "PUT /webhook_endpoints/{lago_id}",
            422,
            "/webhook_endpoints/{endpoint}",
            {"webhook_endpoint": {"webhook_url": LOCAL_URL, "signature_algo": "rsa"}},
        ),
        Scenario("DELETE /webhook_endpoints/{lago_id}", 200, "/webhook_endpoints/{endpoint}"),
        Scenario("DELETE /webhook_endpoints/{lago_id}", 404, f"/webhook_endpoints/{GHOST_UUID}"),
        Scenario("GET /webhooks/json_public_key", 200, "/webhooks/json_public_key"),
    ]
    # every route above refuses a wrong key with Lago's 401 body (the rest of the API is
    # checked route by route in test_whole_api.py)
    for route in sorted({s.route for s in out}):
        template = route.split(" ", 1)[1]
        path = template.replace("{external_customer_id}", "acme")
        path = path.replace("{applied_coupon_id}", GHOST_UUID).replace("{transaction_id}", "t")
        path = path.replace("{lago_id}", GHOST_UUID)
        out.append(Scenario(route, 401, path, api_key="not-the-key"))
    return out


SCENARIOS = scenarios()


def operation(route: str) -> dict[str, Any]:
    method, path = route.split(" ", 1)
    spec = load_spec()
    assert path in spec["paths"], f"{path} is not in the spec"
    op: dict[str, Any] = spec["paths"][path][method.lower()]
    return op


def json_schema(container: Mapping[str, Any]) -> Any:
    return resolve(container)["content"]["application/json"]["schema"]


FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if "T" not in value or not value.endswith(("Z", "+00:00")):
        raise ValueError(f"not an RFC 3339 UTC date-time: {value!r}")
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


async def seeded(strict: bool) -> tuple[FakeLago, dict[str, str]]:
    fake = FakeLago(api_key="spec-key", auto_subscriptions=not strict)
    await fake.start()
    fake.add_customer(
        "acme",
        name="Acme",
        currency="EUR",
        billing_configuration={"payment_provider": "stripe", "payment_provider_code": "main"},
    )
    fake.add_customer("plain")
    fake.add_subscription("sub_1", "acme")
    coupon = fake.add_applied_coupon("acme", "WELCOME", amount_cents=500)
    fake.add_applied_coupon("acme", "TEN", percentage_rate="10.0", frequency="recurring")
    async with aiohttp.ClientSession() as session:
        api = Api(session, fake.base_url, fake.api_key)
        seed_events = [ev("seed-1", properties={"gb": 1.5}), ev("seed-2"), ev("seed-3", "sub_2")]
        assert (await api.post("/events/batch", {"events": seed_events})).status == 200
        fake.close_period("sub_1")
        assert (await api.post("/events", {"event": ev("seed-4")})).status == 200
    endpoint = fake.add_webhook_endpoint(LOCAL_URL, "hmac")  # last: no webhook is sent to it
    return fake, {"coupon": coupon["lago_id"], "endpoint": endpoint["lago_id"]}


@pytest.mark.parametrize(
    "scenario", SCENARIOS, ids=[f"{s.status} {s.route}{' strict' * s.strict}" for s in SCENARIOS]
)
async def test_answer_matches_the_spec(scenario: Scenario) -> None:
    op = operation(scenario.route)
    documented = op["responses"]
    assert str(scenario.status) in documented, (
        f"{scenario.route} answers {scenario.status}, which the spec does not document"
    )
    if scenario.status == 200 and scenario.body is not None:
        schema_validator(json_schema(op["requestBody"])).validate(scenario.body)

    fake, names = await seeded(scenario.strict)
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, fake.base_url, fake.api_key)
            method = scenario.route.split(" ", 1)[0]
            answer = await api(
                method,
                scenario.path.format(**names),
                scenario.body,
                params=scenario.params,
                api_key=scenario.api_key,
            )
    finally:
        await fake.stop()

    assert answer.status == scenario.status, answer.body
    assert answer.headers["Content-Type"].startswith("application/json")
    validator = schema_validator(json_schema(documented[str(scenario.status)]))
    validator = validator.evolve(format_checker=FORMATS)
    errors = sorted(validator.iter_errors(answer.body), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    if scenario.status == 200:
        assert answer.body  # a real object, not an empty body
    else:
        assert answer.body["status"] == scenario.status


def test_scenarios_cover_every_route_and_documented_status() -> None:
    covered: dict[str, set[str]] = {}
    for scenario in SCENARIOS:
        covered.setdefault(scenario.route, set()).add(str(scenario.status))
    # the routes of the Store (customers, events, usage, webhooks) have a scenario per
    # documented status; test_whole_api.py covers every other operation
    assert set(covered) <= set(ROUTES)
    assert len(covered) == 24  # and GET /webhooks/public_key, text: test_plain_text_public_key
    for route in covered:
        documented = set(operation(route)["responses"]) - NOT_MODELLED
        documented -= NOT_MODELLED_ON.get(route, set()) | PLAIN_TEXT.get(route, set())
        assert covered[route] == documented, route


async def test_plain_text_public_key() -> None:
    """``GET /webhooks/public_key`` answers the same key as the JSON route, as text/plain."""
    documented = operation("GET /webhooks/public_key")["responses"]["200"]["content"]
    assert set(documented) == {"text/plain"}
    async with FakeLago(api_key="spec-key") as fake:
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bearer {fake.api_key}"}
            url = fake.base_url + "/webhooks/public_key"
            async with session.get(url, headers=headers) as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                text = await response.text()
            async with session.get(
                url.replace("public_key", "json_public_key"), headers=headers
            ) as r:
                assert (await r.json())["webhook"]["public_key"] == text
    schema_validator(documented["text/plain"]["schema"]).validate(text)
