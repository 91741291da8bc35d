"""Raw answers: with_raw_response and capture_responses, in both clients."""

from __future__ import annotations

import re

import pytest
from aioresponses import aioresponses

import lago_sync
from lago_async import (
    AsyncLago,
    AsyncPager,
    LagoError,
    LagoValidationError,
    NotFoundError,
    RawResponse,
    capture_responses,
)
from lago_async.types import Customer, Plan
from tests.conftest import API_KEY, BASE_URL, customer_json
from tests.unit.test_api_inputs import PLAN

META = {"current_page": 1, "next_page": None, "prev_page": None, "total_pages": 1, "total_count": 1}


async def test_with_raw_response_gives_the_answer_and_its_parse(
    mocked: aioresponses, lago: AsyncLago
) -> None:
    mocked.get(
        f"{BASE_URL}/customers/acme",
        payload={"customer": customer_json()},
        headers={"X-Request-Id": "req-1", "X-RateLimit-Remaining": "49"},
    )
    raw = await lago.with_raw_response.customers.get("acme")
    assert isinstance(raw, RawResponse)
    assert (raw.method, raw.path, raw.status, raw.attempt) == ("GET", "/customers/acme", 200, 1)
    assert raw.request_id == "req-1"
    assert raw.headers["x-ratelimit-remaining"] == "49"  # case-insensitive
    assert raw.json()["customer"]["external_id"] == "acme"
    assert b'"acme"' in raw.content
    customer = raw.parse()
    assert isinstance(customer, Customer) and customer.external_id == "acme"
    assert API_KEY not in repr(raw) and API_KEY not in str(dict(raw.headers))


async def test_with_raw_response_raises_like_the_plain_call(
    mocked: aioresponses, lago: AsyncLago
) -> None:
    mocked.get(
        f"{BASE_URL}/customers/nobody",
        status=404,
        payload={"status": 404, "error": "Not Found", "code": "customer_not_found"},
    )
    with pytest.raises(NotFoundError):
        await lago.with_raw_response.customers.get("nobody")


async def test_with_raw_response_of_a_list_is_its_first_page(
    mocked: aioresponses, lago: AsyncLago
) -> None:
    mocked.get(
        re.compile(re.escape(f"{BASE_URL}/plans") + r"(\?.*)?$"),
        payload={"plans": [PLAN], "meta": META},
    )
    raw = await lago.with_raw_response.plans.list()
    assert raw.status == 200 and raw.json()["meta"]["total_count"] == 1
    assert isinstance(raw.parse(), AsyncPager)


async def test_nested_namespaces_and_unknown_names(mocked: aioresponses, lago: AsyncLago) -> None:
    with pytest.raises(AttributeError):
        lago.with_raw_response.no_such_namespace  # noqa: B018
    assert callable(lago.with_raw_response.plans.charges.get)


async def test_a_capture_records_every_answer_and_keeps_typed_results(
    mocked: aioresponses, lago: AsyncLago, sleeps: list[float]
) -> None:
    url = f"{BASE_URL}/plans/premium"
    mocked.get(url, status=503, payload={"status": 503, "error": "Service Unavailable"})
    mocked.get(url, payload={"plan": PLAN})
    with capture_responses() as captured:
        plan = await lago.plans.get("premium")
    assert isinstance(plan, Plan)
    assert [(r.status, r.attempt) for r in captured] == [(503, 1), (200, 2)]
    assert captured.last.status == 200
    with pytest.raises(LagoError, match="capture_responses"):
        captured.last.parse()
    # nothing is recorded once the block is left
    mocked.get(url, payload={"plan": PLAN})
    await lago.plans.get("premium")
    assert len(captured) == 2


def test_an_empty_capture_says_so() -> None:
    with capture_responses() as captured:
        pass
    with pytest.raises(LagoError, match="no answer"):
        captured.last  # noqa: B018


async def test_a_capture_keeps_the_latest_answers_up_to_its_limit(
    mocked: aioresponses, lago: AsyncLago
) -> None:
    for n in range(3):
        mocked.get(
            f"{BASE_URL}/plans/premium", payload={"plan": PLAN}, headers={"X-Request-Id": f"r{n}"}
        )
    with capture_responses(limit=2) as captured:
        for _ in range(3):
            await lago.plans.get("premium")
    assert [r.request_id for r in captured] == ["r1", "r2"]
    with pytest.raises(LagoValidationError) as caught:
        with capture_responses(limit=0):
            pass
    assert caught.value.field == "limit"


def test_the_blocking_client_has_both(mocked: aioresponses) -> None:
    mocked.get(f"{BASE_URL}/plans/premium", payload={"plan": PLAN}, headers={"X-Request-Id": "r2"})
    mocked.get(f"{BASE_URL}/plans/premium", payload={"plan": PLAN}, headers={"X-Request-Id": "r3"})
    with lago_sync.Lago(api_key=API_KEY, base_url=BASE_URL) as lago:
        raw = lago.with_raw_response.plans.get("premium")
        assert raw.request_id == "r2"
        assert isinstance(raw.parse(), Plan)
        # the caller's block records the answers although the calls run on the portal thread
        with lago_sync.capture_responses() as captured:
            plan = lago.plans.get("premium")
        assert plan.code == "premium"
        assert [r.request_id for r in captured] == ["r3"]
