"""extra_headers, extra_query and extra_body: what the SDK does not model, sent anyway."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aioresponses import aioresponses

import lago_sync
from lago_async import AsyncLago, LagoValidationError
from tests.conftest import BASE_URL, event_json, sent
from tests.unit.test_api_inputs import PLAN

META = {"current_page": 1, "next_page": 2, "prev_page": None, "total_pages": 2, "total_count": 2}


async def test_a_call_sends_its_extras(mocked: aioresponses, lago: AsyncLago) -> None:
    mocked.put(
        re.compile(re.escape(f"{BASE_URL}/plans/premium") + r"(\?.*)?$"), payload={"plan": PLAN}
    )
    await lago.plans.update(
        "premium",
        name="Premium",
        extra_headers={"X-Trace": "t-1"},
        extra_query={"beta": "yes"},
        extra_body={"dry_run": True},
    )
    [request] = sent(mocked, "PUT", f"{BASE_URL}/plans/premium")
    assert request["headers"]["X-Trace"] == "t-1"
    assert request["params"] == [("beta", "yes")]
    # extra_body's keys sit beside the wrapper key; the modelled fields are untouched
    assert request["json"] == {"plan": {"name": "Premium"}, "dry_run": True}


async def test_every_page_of_a_list_carries_the_extras(
    mocked: aioresponses, lago: AsyncLago
) -> None:
    url = re.compile(re.escape(f"{BASE_URL}/plans") + r"(\?.*)?$")
    mocked.get(url, payload={"plans": [PLAN], "meta": META})
    mocked.get(
        url, payload={"plans": [PLAN], "meta": {**META, "current_page": 2, "next_page": None}}
    )
    plans = [
        p async for p in lago.plans.list(extra_headers={"X-Trace": "t-2"}, extra_query={"x": "1"})
    ]
    assert len(plans) == 2
    requests = sent(mocked, "GET", f"{BASE_URL}/plans")
    assert [r["headers"]["X-Trace"] for r in requests] == ["t-2", "t-2"]
    assert [dict(r["params"]) for r in requests] == [
        {"x": "1", "page": "1"},
        {"x": "1", "page": "2"},
    ]


async def test_the_hand_written_event_creation_takes_them_too(
    mocked: aioresponses, lago: AsyncLago
) -> None:
    mocked.post(f"{BASE_URL}/events", payload={"event": event_json()})
    await lago.events.create(
        transaction_id="tx-1",
        code="api_calls",
        external_subscription_id="sub_1",
        extra_headers={"X-Trace": "t-3"},
        extra_body={"source": "import"},
    )
    [request] = sent(mocked, "POST", f"{BASE_URL}/events")
    assert request["headers"]["X-Trace"] == "t-3"
    assert request["json"]["source"] == "import"
    assert request["json"]["event"]["transaction_id"] == "tx-1"


@pytest.mark.parametrize(
    ("extras", "field"),
    [
        ({"extra_headers": {"X-A": 1}}, "extra_headers['X-A']"),
        ({"extra_headers": {"X-A": "a\r\nX-Injected: 1"}}, "extra_headers['X-A']"),
        ({"extra_headers": ["X-A"]}, "extra_headers"),
        ({"extra_query": "a=1"}, "extra_query"),
        ({"extra_body": {"x": float("nan")}}, "extra_body.x"),
    ],
)
async def test_bad_extras_are_refused_before_sending(
    mocked: aioresponses, lago: AsyncLago, extras: dict[str, Any], field: str
) -> None:
    with pytest.raises(LagoValidationError) as caught:
        await lago.plans.update("premium", name="P", **extras)
    assert caught.value.field == field
    assert not mocked.requests


async def test_a_get_takes_no_extra_body(mocked: aioresponses, lago: AsyncLago) -> None:
    with pytest.raises(LagoValidationError, match="GET") as caught:
        await lago.plans.get("premium", extra_body={"x": 1})
    assert caught.value.field == "extra_body"
    with pytest.raises(LagoValidationError):
        lago.plans.list(extra_body={"x": 1})
    assert not mocked.requests


def test_the_blocking_client_sends_them(mocked: aioresponses) -> None:
    mocked.get(f"{BASE_URL}/plans/premium", payload={"plan": PLAN})
    with lago_sync.Lago(api_key="k", base_url=BASE_URL) as lago:
        plan = lago.plans.get("premium", extra_headers={"X-Trace": "t-4"})
    assert plan.code == "premium"
    [request] = sent(mocked, "GET", f"{BASE_URL}/plans/premium")
    assert request["headers"]["X-Trace"] == "t-4"
