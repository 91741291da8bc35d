"""Answers the spec describes without one JSON object: text, nothing, one object or a list."""

from __future__ import annotations

from typing import Any

import pytest
from aioresponses import aioresponses

from lago_async import APIResponseValidationError, AsyncLago
from lago_async.types import Alert
from tests.conftest import BASE_URL

ALERT: dict[str, Any] = {
    "lago_id": "al_1",
    "lago_organization_id": "org_1",
    "alert_type": "current_usage_amount",
    "code": "usage_alert",
    "previous_value": 0,
    "thresholds": [{"recurring": False, "value": "1000.0"}],
    "created_at": "2026-01-01T00:00:00Z",
}


async def test_creating_one_alert_gives_a_list_of_one(
    mocked: aioresponses, lago: AsyncLago
) -> None:
    mocked.post(f"{BASE_URL}/subscriptions/sub_1/alerts", payload={"alert": ALERT})
    alerts = await lago.subscriptions.alerts.create(
        "sub_1", {"alert": {"alert_type": "current_usage_amount", "code": "usage_alert"}}
    )
    assert [type(a) for a in alerts] == [Alert]
    assert alerts[0].code == "usage_alert"


async def test_creating_several_alerts_gives_them_all(
    mocked: aioresponses, lago: AsyncLago
) -> None:
    second = {**ALERT, "lago_id": "al_2", "code": "second"}
    mocked.post(f"{BASE_URL}/subscriptions/sub_1/alerts", payload={"alerts": [ALERT, second]})
    alerts = await lago.subscriptions.alerts.create("sub_1", {"alerts": []})
    assert [a.code for a in alerts] == ["usage_alert", "second"]


async def test_an_alert_answer_without_either_key_is_refused(
    mocked: aioresponses, lago: AsyncLago
) -> None:
    mocked.post(f"{BASE_URL}/subscriptions/sub_1/alerts", payload={"other": 1})
    with pytest.raises(APIResponseValidationError, match="'alert'"):
        await lago.subscriptions.alerts.create("sub_1", {"alert": {}})


async def test_the_public_key_is_text(mocked: aioresponses, lago: AsyncLago) -> None:
    mocked.get(
        f"{BASE_URL}/webhooks/public_key",
        body=b"LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0K",
        content_type="text/plain",
    )
    key = await lago.webhooks.public_key()
    assert key == "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0K"


async def test_a_payment_retry_returns_nothing(mocked: aioresponses, lago: AsyncLago) -> None:
    mocked.post(f"{BASE_URL}/invoices/inv_1/retry_payment", body=b"", status=200)
    assert await lago.invoices.retry_payment("inv_1") is None


async def test_a_required_nullable_body_field_may_be_sent_as_null() -> None:
    """``subscription.ending_at`` is required and nullable in the spec: ``None`` sends
    ``null`` (no end date) instead of being refused as missing; leaving it out is refused."""
    from lago_async import LagoValidationError

    body = {
        "subscription": {
            "lago_id": "00000000-0000-4000-8000-000000000001",
            "lago_customer_id": "00000000-0000-4000-8000-000000000002",
            "external_id": "sub_1",
            "external_customer_id": "acme",
            "plan_code": "startup",
            "status": "active",
            "created_at": "2026-01-01T00:00:00Z",
        }
    }
    async with AsyncLago(api_key="k", base_url=BASE_URL) as lago:
        with aioresponses() as mocked:
            mocked.put(f"{BASE_URL}/subscriptions/sub_1", payload=body)
            await lago.subscriptions.update("sub_1", name="Renamed", ending_at=None)
            (request,) = [c for calls in mocked.requests.values() for c in calls]
            assert request.kwargs["data"] == b'{"subscription":{"name":"Renamed","ending_at":null}}'
        with pytest.raises(LagoValidationError, match=r"subscription\.ending_at"):
            await lago.subscriptions.update("sub_1", name="Renamed")
