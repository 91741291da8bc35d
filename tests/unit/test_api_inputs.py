"""Input rules of the generated methods: checks before sending, and NOT_GIVEN versus None."""

from __future__ import annotations

import copy
import pickle
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aioresponses import aioresponses

import lago_async
import lago_sync
from lago_async import NOT_GIVEN, AsyncLago, LagoValidationError, NotGiven
from tests.conftest import BASE_URL, sent

PLAN = {
    "lago_id": "p1",
    "code": "premium",
    "name": "Premium",
    "created_at": "2026-01-01T00:00:00Z",
    "interval": "monthly",
    "amount_cents": 1000,
    "amount_currency": "EUR",
}


def any_url() -> re.Pattern[str]:
    return re.compile(re.escape(BASE_URL) + r"/.*")


BAD_INPUT: list[tuple[str, Callable[[AsyncLago], Awaitable[Any]], str]] = [
    (
        "a plan without code",
        lambda c: c.plans.create(
            name="Premium",
            interval="monthly",
            amount_cents=1000,
            amount_currency="EUR",
            pay_in_advance=False,
        ),
        "plan.code",
    ),
    (
        "a plan given as a mapping without code",
        lambda c: c.plans.create(
            {
                "name": "Premium",
                "interval": "monthly",
                "amount_cents": 1000,
                "amount_currency": "EUR",
                "pay_in_advance": False,
            }
        ),
        "plan.code",
    ),
    (
        "a plan with a non-integer amount_cents",
        lambda c: c.plans.create(
            code="premium",
            name="Premium",
            interval="monthly",
            amount_cents="lots",
            amount_currency="EUR",
            pay_in_advance=False,
        ),
        "plan.amount_cents",
    ),
    (
        "a subscription without external_customer_id",
        lambda c: c.subscriptions.create(plan_code="premium", external_id="sub_1"),
        "subscription.external_customer_id",
    ),
    (
        "a wallet transaction with a non-numeric amount",
        lambda c: c.wallets.transactions.create(wallet_id="w_1", paid_credits="ten"),
        "wallet_transaction.paid_credits",
    ),
    (
        "a wallet without currency",
        lambda c: c.wallets.create(external_customer_id="acme", rate_amount="1"),
        "wallet.currency",
    ),
    (
        "a plan charge without billable_metric_id",
        lambda c: c.plans.create(
            code="premium",
            name="Premium",
            interval="monthly",
            amount_cents=1000,
            amount_currency="EUR",
            pay_in_advance=False,
            charges=[
                {"billable_metric_id": "bm_1", "charge_model": "standard"},
                {"charge_model": "standard"},
            ],
        ),
        "plan.charges[1].billable_metric_id",
    ),
    (
        "a plan charge that is not a mapping",
        lambda c: c.plans.create(
            code="premium",
            name="Premium",
            interval="monthly",
            amount_cents=1000,
            amount_currency="EUR",
            pay_in_advance=False,
            charges=["bm_1"],
        ),
        "plan.charges[0]",
    ),
    (
        "an empty path identifier",
        lambda c: c.plans.charges.get("premium", ""),
        "charge_code",
    ),
    (
        "a coupon code given as a number",
        lambda c: c.applied_coupons.create(external_customer_id="acme", coupon_code=7),
        "applied_coupon.coupon_code",
    ),
]


@pytest.mark.parametrize(
    ("call", "field"),
    [(call, field) for _, call, field in BAD_INPUT],
    ids=[i for i, *_ in BAD_INPUT],
)
async def test_bad_input_is_refused_naming_the_field_before_sending(
    lago: AsyncLago,
    mocked: aioresponses,
    call: Callable[[AsyncLago], Awaitable[Any]],
    field: str,
) -> None:
    mocked.add(any_url(), "POST", payload={}, repeat=True)
    mocked.add(any_url(), "GET", payload={}, repeat=True)
    with pytest.raises(LagoValidationError) as info:
        await call(lago)
    assert info.value.field == field
    assert not mocked.requests, "nothing may be sent"


async def test_an_update_sends_none_as_null_and_leaves_out_what_is_not_given(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    mocked.put(f"{BASE_URL}/plans/premium", payload={"plan": PLAN})
    plan = await lago.plans.update("premium", description=None, name="Premium")
    assert plan.code == "premium"
    [request] = sent(mocked, "PUT", f"{BASE_URL}/plans/premium")
    assert request["json"] == {"plan": {"description": None, "name": "Premium"}}


async def test_a_customer_field_can_be_cleared_with_none(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    body = {"lago_id": "c1", "external_id": "acme", "applicable_timezone": "UTC"}
    body["created_at"] = "2026-01-01T00:00:00Z"
    mocked.post(f"{BASE_URL}/customers", payload={"customer": body})
    await lago.customers.create(external_id="acme", email=None)
    [request] = sent(mocked, "POST", f"{BASE_URL}/customers")
    assert request["json"] == {"customer": {"external_id": "acme", "email": None}}


async def test_the_body_as_a_mapping_and_keywords_merge(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    mocked.put(f"{BASE_URL}/plans/premium", payload={"plan": PLAN})
    await lago.plans.update("premium", {"name": "Premium"}, description="Top tier")
    [request] = sent(mocked, "PUT", f"{BASE_URL}/plans/premium")
    assert request["json"] == {"plan": {"name": "Premium", "description": "Top tier"}}


async def test_a_query_parameter_takes_its_api_name_without_brackets(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    mocked.get(
        re.compile(re.escape(f"{BASE_URL}/subscriptions") + r"\?.*"),
        payload={
            "subscriptions": [],
            "meta": {"current_page": 1, "next_page": None, "total_pages": 1, "total_count": 0},
        },
    )
    await lago.subscriptions.list(status=["active", "pending"], plan_code="premium").to_list()
    [request] = sent(mocked, "GET", f"{BASE_URL}/subscriptions")
    assert ("status[]", "active") in request["params"]
    assert ("status[]", "pending") in request["params"]
    assert ("plan_code", "premium") in request["params"]


def test_not_given_is_a_falsy_singleton_exported_by_both_packages() -> None:
    assert not NOT_GIVEN
    assert repr(NOT_GIVEN) == "NOT_GIVEN"
    assert NotGiven() is NOT_GIVEN
    assert copy.deepcopy(NOT_GIVEN) is NOT_GIVEN
    assert pickle.loads(pickle.dumps(NOT_GIVEN)) is NOT_GIVEN
    assert lago_async.NOT_GIVEN is lago_sync.NOT_GIVEN
    assert "NOT_GIVEN" in lago_async.__all__
    assert "NotGiven" in lago_sync.__all__
