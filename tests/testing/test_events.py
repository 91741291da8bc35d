"""FakeLago's event routes: single, batch (atomic), lookups, listing, estimates, usage."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from lago_async.testing import FakeLago
from tests.testing._api import Api, event

EVENT_KEYS = {
    "lago_id",
    "transaction_id",
    "lago_customer_id",
    "code",
    "timestamp",
    "precise_total_amount_cents",
    "properties",
    "lago_subscription_id",
    "external_subscription_id",
    "created_at",
}


def unprocessable(details: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": 422,
        "error": "Unprocessable Entity",
        "code": "validation_errors",
        "error_details": details,
    }


# -- POST /events -------------------------------------------------------------------------


async def test_create_event_answers_the_stored_event(api: Api, fake: FakeLago) -> None:
    answer = await api.post(
        "/events",
        {"event": event(1, properties={"gb": 10}, precise_total_amount_cents="12.5")},
    )
    assert answer.status == 200
    stored = answer.body["event"]
    assert set(stored) == EVENT_KEYS
    assert stored["transaction_id"] == "tx-1"
    assert stored["code"] == "storage"
    assert stored["external_subscription_id"] == "sub_1"
    assert stored["properties"] == {"gb": 10}
    assert stored["precise_total_amount_cents"] == "12.5"
    assert stored["lago_customer_id"] is None
    assert stored["timestamp"].endswith("Z")
    assert fake.events == [stored]


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (1700000000, "2023-11-14T22:13:20.000Z"),
        (1700000000.25, "2023-11-14T22:13:20.250Z"),
        ("1700000000", "2023-11-14T22:13:20.000Z"),
        ("1700000000.5", "2023-11-14T22:13:20.500Z"),
        ("2024-02-29T12:00:00Z", "2024-02-29T12:00:00.000Z"),
        ("2024-02-29T13:00:00+01:00", "2024-02-29T12:00:00.000Z"),
    ],
)
async def test_timestamps_are_normalised_to_utc_iso(api: Api, sent: Any, expected: str) -> None:
    answer = await api.post("/events", {"event": event(1, timestamp=sent)})
    assert answer.body["event"]["timestamp"] == expected


@pytest.mark.parametrize(("sent", "expected"), [(12, "12"), (0.5, "0.5"), ("1.25", "1.25")])
async def test_precise_total_amount_cents_is_kept_as_text(
    api: Api, sent: Any, expected: str
) -> None:
    answer = await api.post("/events", {"event": event(1, precise_total_amount_cents=sent)})
    assert answer.body["event"]["precise_total_amount_cents"] == expected


@pytest.mark.parametrize("sent", ["lots", "NaN", {"cents": 1}, True])
async def test_unreadable_precise_total_amount_cents_is_422(api: Api, sent: Any) -> None:
    answer = await api.post("/events", {"event": event(1, precise_total_amount_cents=sent)})
    assert answer.status == 422
    assert answer.body["error_details"] == {"precise_total_amount_cents": ["invalid_value"]}


async def test_missing_timestamp_defaults_to_now(api: Api) -> None:
    stored = (await api.post("/events", {"event": event(1)})).body["event"]
    assert stored["timestamp"] == stored["created_at"]


async def test_unreadable_timestamp_is_422(api: Api, fake: FakeLago) -> None:
    answer = await api.post("/events", {"event": event(1, timestamp="yesterday")})
    assert answer.status == 422
    assert answer.body["error_details"] == {"timestamp": ["invalid_value"]}
    assert fake.events == []


@pytest.mark.parametrize("field", ["transaction_id", "code", "external_subscription_id"])
@pytest.mark.parametrize("value", ["absent", None, ""])
async def test_mandatory_event_fields(api: Api, fake: FakeLago, field: str, value: Any) -> None:
    sent = event(1)
    if value == "absent":
        del sent[field]
    else:
        sent[field] = value
    answer = await api.post("/events", {"event": sent})
    assert answer.status == 422
    assert answer.body == unprocessable({field: ["value_is_mandatory"]})
    assert fake.events == []


async def test_duplicate_event_is_422_value_already_exist(api: Api, fake: FakeLago) -> None:
    assert (await api.post("/events", {"event": event(1)})).status == 200
    again = await api.post("/events", {"event": event(1, properties={"other": 1})})
    assert again.status == 422
    assert again.body == unprocessable({"transaction_id": ["value_already_exist"]})
    assert len(fake.events) == 1


async def test_same_transaction_id_on_another_subscription_is_distinct(
    api: Api, fake: FakeLago
) -> None:
    assert (await api.post("/events", {"event": event(1, sub="a")})).status == 200
    assert (await api.post("/events", {"event": event(1, sub="b")})).status == 200
    assert len(fake.events) == 2


async def test_missing_event_root_is_400(api: Api) -> None:
    assert (await api.post("/events", {"transaction_id": "x"})).status == 400


# -- POST /events/batch -------------------------------------------------------------------


async def test_batch_stores_every_event_in_order(api: Api, fake: FakeLago) -> None:
    sent = [event(n, properties={"gb": n}) for n in range(100)]
    answer = await api.post("/events/batch", {"events": sent})
    assert answer.status == 200
    assert [e["transaction_id"] for e in answer.body["events"]] == [f"tx-{n}" for n in range(100)]
    assert all(set(e) == EVENT_KEYS for e in answer.body["events"])
    assert fake.events == answer.body["events"]
    assert fake.requests["POST /events/batch"] == 1


async def test_empty_batch_is_no_events(api: Api) -> None:
    answer = await api.post("/events/batch", {"events": []})
    assert answer.status == 422
    assert answer.body == unprocessable({"events": ["no_events"]})


async def test_batch_over_the_limit_is_too_many_events(api: Api, fake: FakeLago) -> None:
    answer = await api.post("/events/batch", {"events": [event(n) for n in range(101)]})
    assert answer.status == 422
    assert answer.body == unprocessable({"events": ["too_many_events"]})
    assert fake.events == []


async def test_batch_limit_is_configurable() -> None:
    async with FakeLago(batch_limit=3) as fake:
        assert fake.batch_limit == 3
        import aiohttp

        async with aiohttp.ClientSession() as session:
            api = Api(session, fake.base_url, fake.api_key)
            too_many = await api.post("/events/batch", {"events": [event(n) for n in range(4)]})
            assert too_many.body["error_details"] == {"events": ["too_many_events"]}
            assert (await api.post("/events/batch", {"events": [event(1)] * 1})).status == 200
            fake.batch_limit = 4
            ok = await api.post("/events/batch", {"events": [event(n) for n in range(2, 6)]})
            assert ok.status == 200
    with pytest.raises(ValueError):
        FakeLago(batch_limit=0)


async def test_a_bad_event_refuses_the_whole_batch(api: Api, fake: FakeLago) -> None:
    assert (await api.post("/events", {"event": event(3)})).status == 200
    sent = [event(n) for n in range(10)]
    del sent[7]["code"]
    answer = await api.post("/events/batch", {"events": sent})
    assert answer.status == 422
    assert answer.body == unprocessable(
        {
            "3": {"transaction_id": ["value_already_exist"]},
            "7": {"code": ["value_is_mandatory"]},
        }
    )
    assert [e["transaction_id"] for e in fake.events] == ["tx-3"]  # nothing else stored


async def test_duplicates_inside_one_batch_refuse_it(api: Api, fake: FakeLago) -> None:
    sent = [event(1), event(2), event(1), event(2, sub="other"), event(2)]
    answer = await api.post("/events/batch", {"events": sent})
    assert answer.status == 422
    assert answer.body["error_details"] == {
        "2": {"transaction_id": ["value_already_exist"]},
        "4": {"transaction_id": ["value_already_exist"]},
    }
    assert fake.events == []
    # the same batch without its duplicates goes through
    ok = await api.post("/events/batch", {"events": sent[:2] + sent[3:4]})
    assert ok.status == 200
    assert len(fake.events) == 3


async def test_a_retried_batch_is_refused_as_duplicates(api: Api, fake: FakeLago) -> None:
    sent = [event(n) for n in range(5)]
    assert (await api.post("/events/batch", {"events": sent})).status == 200
    again = await api.post("/events/batch", {"events": sent})
    assert again.status == 422
    assert again.body["error_details"] == {
        str(n): {"transaction_id": ["value_already_exist"]} for n in range(5)
    }
    assert len(fake.events) == 5


async def test_batch_reports_every_problem_of_an_event(api: Api) -> None:
    answer = await api.post("/events/batch", {"events": [{"transaction_id": "t"}, "junk"]})
    assert answer.body["error_details"] == {
        "0": {
            "code": ["value_is_mandatory"],
            "external_subscription_id": ["value_is_mandatory"],
        },
        "1": {"event": ["invalid_value"]},
    }


async def test_batch_without_events_list_is_400(api: Api) -> None:
    assert (await api.post("/events/batch", {"event": event(1)})).status == 400


# -- GET /events/{transaction_id} and GET /events ---------------------------------------------


async def test_get_event_by_url_encoded_transaction_id(api: Api, fake: FakeLago) -> None:
    fake.add_subscription("sub_1", "acme")
    tx = "order 42/line#1?x=é"
    stored = (await api.post("/events", {"event": {**event(0), "transaction_id": tx}})).body
    from urllib.parse import quote

    answer = await api.get("/events/" + quote(tx, safe=""))
    assert answer.status == 200
    found = answer.body["event"]
    assert found["transaction_id"] == tx
    assert found["lago_id"] == stored["event"]["lago_id"]
    assert found["lago_subscription_id"] == fake.subscriptions["sub_1"]["lago_id"]
    assert found["lago_customer_id"] == fake.customers["acme"]["lago_id"]


async def test_unknown_event_is_404(api: Api) -> None:
    answer = await api.get("/events/nope")
    assert answer.status == 404
    assert answer.body == {"status": 404, "error": "Not Found", "code": "event_not_found"}


async def test_list_events_pages_newest_first(api: Api) -> None:
    await api.post("/events/batch", {"events": [event(n) for n in range(5)]})
    body = (await api.get("/events", per_page=2, page=2)).body
    assert [e["transaction_id"] for e in body["events"]] == ["tx-2", "tx-1"]
    assert body["meta"] == {
        "current_page": 2,
        "next_page": 3,
        "prev_page": 1,
        "total_pages": 3,
        "total_count": 5,
    }


async def test_list_events_filters(api: Api) -> None:
    sent = [
        event(1, sub="a", code="calls", timestamp="2024-01-01T00:00:00Z"),
        event(2, sub="a", code="storage", timestamp="2024-01-02T00:00:00Z"),
        event(3, sub="b", code="calls", timestamp="2024-01-03T00:00:00Z"),
        event(4, sub="a", code="calls", timestamp="2024-01-04T00:00:00Z"),
    ]
    await api.post("/events/batch", {"events": sent})

    async def txs(**params: Any) -> list[str]:
        return [e["transaction_id"] for e in (await api.get("/events", **params)).body["events"]]

    assert await txs(external_subscription_id="a") == ["tx-4", "tx-2", "tx-1"]
    assert await txs(code="calls") == ["tx-4", "tx-3", "tx-1"]
    assert await txs(external_subscription_id="a", code="calls") == ["tx-4", "tx-1"]
    assert await txs(
        timestamp_from="2024-01-02T00:00:00Z", timestamp_to="2024-01-03T00:00:00Z"
    ) == ["tx-3", "tx-2"]
    assert await txs(timestamp_from="2024-01-03") == ["tx-4", "tx-3"]
    bad = await api.get("/events", timestamp_from="soon")
    assert bad.status == 422
    assert bad.body["error_details"] == {"timestamp_from": ["invalid_date"]}


# -- usage --------------------------------------------------------------------------------


async def test_current_usage_sums_units_per_code(api: Api, fake: FakeLago) -> None:
    fake.add_customer("acme", currency="EUR")
    fake.add_subscription("sub_1", "acme")
    fake.prices["calls"] = 2
    sent = [
        event(1, properties={"gb": 10}),
        event(2, properties={"region": "eu", "gb": "2.5"}),  # first numeric value counts
        event(3, properties={"gb": 1.25}),
        event(4, code="calls"),  # no numeric property: 1 unit
        event(5, code="calls", properties={"region": "eu"}),
        event(6, code="calls", sub="sub_2"),  # another subscription
    ]
    assert (await api.post("/events/batch", {"events": sent})).status == 200
    answer = await api.get("/customers/acme/current_usage", external_subscription_id="sub_1")
    assert answer.status == 200
    usage = answer.body["customer_usage"]
    charges = {c["billable_metric"]["code"]: c for c in usage["charges_usage"]}
    assert charges["storage"]["events_count"] == 3
    assert charges["storage"]["units"] == "13.75"
    assert charges["storage"]["amount_cents"] == 1375  # 100 cents per unit by default
    assert charges["calls"]["events_count"] == 2
    assert charges["calls"]["units"] == "2"
    assert charges["calls"]["amount_cents"] == 4
    assert usage["amount_cents"] == usage["total_amount_cents"] == 1379
    assert usage["currency"] == "EUR"
    assert fake.usage("sub_1") == {"storage": (3, Decimal("13.75")), "calls": (2, 2)}

    filtered = await api.get(
        "/customers/acme/current_usage",
        external_subscription_id="sub_1",
        billable_metric_code="calls",
    )
    assert [c["billable_metric"]["code"] for c in filtered.body["customer_usage"]["charges_usage"]]
    assert filtered.body["customer_usage"]["amount_cents"] == 4

    projected = await api.get("/customers/acme/projected_usage", external_subscription_id="sub_1")
    assert projected.status == 200
    assert projected.body["customer_projected_usage"]["projected_amount_cents"] == 1379


async def test_unknown_subscription_auto_attaches_to_the_customer(api: Api, fake: FakeLago) -> None:
    fake.add_customer("acme")
    await api.post("/events", {"event": event(1, sub="fresh")})
    answer = await api.get("/customers/acme/current_usage", external_subscription_id="fresh")
    assert answer.status == 200
    assert answer.body["customer_usage"]["charges_usage"][0]["events_count"] == 1
    assert fake.subscriptions["fresh"]["external_customer_id"] == "acme"
    fake.add_customer("other")
    taken = await api.get("/customers/other/current_usage", external_subscription_id="fresh")
    assert taken.status == 404
    assert taken.body["code"] == "subscription_not_found"


async def test_usage_errors(api: Api, fake: FakeLago) -> None:
    nobody = await api.get("/customers/nobody/current_usage", external_subscription_id="s")
    assert nobody.body["code"] == "customer_not_found"
    fake.add_customer("acme")
    no_sub = await api.get("/customers/acme/current_usage")
    assert no_sub.status == 404
    assert no_sub.body["code"] == "subscription_not_found"
    past = await api.get("/customers/acme/past_usage")
    assert past.status == 422
    assert past.body["error_details"] == {"external_subscription_id": ["value_is_mandatory"]}


async def test_strict_subscriptions_are_404_until_added() -> None:
    import aiohttp

    async with FakeLago(auto_subscriptions=False) as fake, aiohttp.ClientSession() as session:
        api = Api(session, fake.base_url, fake.api_key)
        fake.add_customer("acme")
        assert (await api.post("/events", {"event": event(1)})).status == 200  # still stored
        usage = await api.get("/customers/acme/current_usage", external_subscription_id="sub_1")
        assert usage.body["code"] == "subscription_not_found"
        fees = await api.post("/events/estimate_fees", {"event": event(2)})
        assert fees.status == 404
        assert fees.body["code"] == "subscription_not_found"
        fake.add_subscription("sub_1", "acme")
        usage = await api.get("/customers/acme/current_usage", external_subscription_id="sub_1")
        assert usage.body["customer_usage"]["amount_cents"] == 100


async def test_close_period_moves_usage_to_past_usage(api: Api, fake: FakeLago) -> None:
    fake.add_subscription("sub_1", "acme")
    await api.post("/events/batch", {"events": [event(n, properties={"n": 2}) for n in range(3)]})
    fake.close_period("sub_1")
    await api.post("/events", {"event": event(9, code="calls")})
    fake.close_period("sub_1")

    current = await api.get("/customers/acme/current_usage", external_subscription_id="sub_1")
    assert current.body["customer_usage"]["charges_usage"] == []
    past = (await api.get("/customers/acme/past_usage", external_subscription_id="sub_1")).body
    assert past["meta"]["total_count"] == 2
    newest, oldest = past["usage_periods"]
    assert newest["amount_cents"] == 100
    assert oldest["amount_cents"] == 600
    assert oldest["charges_usage"][0]["events_count"] == 3
    assert oldest["to_datetime"] <= newest["from_datetime"]
    paged = await api.get(
        "/customers/acme/past_usage", external_subscription_id="sub_1", per_page=1, page=2
    )
    assert paged.body["usage_periods"] == [oldest]
    counted = await api.get(
        "/customers/acme/past_usage", external_subscription_id="sub_1", periods_count=1
    )
    assert counted.body["usage_periods"] == [newest]
    by_code = await api.get(
        "/customers/acme/past_usage", external_subscription_id="sub_1", billable_metric_code="x"
    )
    assert [p["amount_cents"] for p in by_code.body["usage_periods"]] == [0, 0]


# -- fee estimates --------------------------------------------------------------------------


async def test_estimate_fees(api: Api, fake: FakeLago) -> None:
    fake.add_customer("acme", currency="EUR")
    fake.add_subscription("sub_1", "acme")
    fake.prices["storage"] = 25
    answer = await api.post(
        "/events/estimate_fees",
        {"event": {"code": "storage", "external_subscription_id": "sub_1", "properties": {"n": 3}}},
    )
    assert answer.status == 200
    (fee,) = answer.body["fees"]
    assert fee["amount_cents"] == fee["total_amount_cents"] == 75
    assert fee["units"] == "3"
    assert fee["amount_currency"] == "EUR"
    assert fee["item"]["code"] == "storage"
    assert fee["external_customer_id"] == "acme"
    assert fake.events == []  # an estimate stores nothing


async def test_estimate_instant_fees_and_batch(api: Api) -> None:
    one = await api.post(
        "/events/estimate_instant_fees",
        {"event": {**event(1), "properties": {"gb": "1.5"}}},
    )
    assert one.status == 200
    (fee,) = one.body["fees"]
    assert fee["amount_cents"] == 150
    assert fee["precise_amount"] == 1.5
    assert fee["event_transaction_id"] == "tx-1"
    assert fee["external_customer_id"] == "sub_1"  # auto-attached to a customer of its name

    batch = await api.post(
        "/events/batch_estimate_instant_fees",
        {"events": [{"event": event(1)}, {"event": event(2, properties={"gb": 4})}]},
    )
    assert [f["amount_cents"] for f in batch.body["fees"]] == [100, 400]

    bad = await api.post(
        "/events/batch_estimate_instant_fees", {"events": [{"event": event(1)}, {"event": {}}]}
    )
    assert bad.status == 422
    assert bad.body["error_details"] == {
        "1": {"code": ["value_is_mandatory"], "external_subscription_id": ["value_is_mandatory"]}
    }


async def test_estimate_needs_code_and_subscription(api: Api) -> None:
    answer = await api.post("/events/estimate_fees", {"event": {"code": "storage"}})
    assert answer.status == 422
    assert answer.body["error_details"] == {"external_subscription_id": ["value_is_mandatory"]}


# -- helpers, reset ------------------------------------------------------------------------------


async def test_reset_forgets_everything(api: Api, fake: FakeLago) -> None:
    fake.add_subscription("sub_1", "acme")
    fake.faults.latency(0.0)
    await api.post("/events", {"event": event(1)})
    fake.reset()
    assert fake.events == []
    assert fake.customers == {}
    assert fake.subscriptions == {}
    assert fake.faults.rules == ()
    assert fake.faults.fired == {}
    assert fake.requests == {}
    assert fake.request_log == []
    assert (await api.post("/events", {"event": event(1)})).status == 200  # not a duplicate


async def test_request_counters_and_log(api: Api, fake: FakeLago) -> None:
    await api.post("/events", {"event": event(1)})
    await api.post("/events", {"event": event(1)})
    await api.get("/events/tx-1")
    assert fake.requests == {"POST /events": 2, "GET /events/{transaction_id}": 1}
    assert [(r.route, r.status) for r in fake.request_log] == [
        ("POST /events", 200),
        ("POST /events", 422),
        ("GET /events/{transaction_id}", 200),
    ]
    assert fake.request_log[-1].path == "/api/v1/events/tx-1"


async def test_request_log_is_bounded() -> None:
    import aiohttp

    async with FakeLago(request_log_size=3) as fake, aiohttp.ClientSession() as session:
        api = Api(session, fake.base_url, fake.api_key)
        for _ in range(5):
            await api.get("/customers")
        assert len(fake.request_log) == 3
        assert fake.requests["GET /customers"] == 5
