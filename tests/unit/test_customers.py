"""lago.customers: each operation's method, path, query, body and typed result."""

from __future__ import annotations

from typing import Any

import pytest
from aioresponses import aioresponses

from lago_async import (
    AppliedCoupon,
    AsyncLago,
    Customer,
    CustomerCheckoutUrl,
    CustomerInput,
    CustomerProjectedUsage,
    CustomerUsage,
    LagoValidationError,
    NotFoundError,
)
from tests.conftest import BASE_URL, sent

CUSTOMERS = f"{BASE_URL}/customers"
UUID = "1a901a90-1a90-1a90-1a90-1a901a901a90"


def customer(external_id: str = "acme", **extra: Any) -> dict[str, Any]:
    return {
        "lago_id": UUID,
        "external_id": external_id,
        "name": "Acme",
        "currency": "EUR",
        "created_at": "2026-01-01T00:00:00Z",
        "applicable_timezone": "UTC",
        "billing_configuration": {"payment_provider": "stripe"},
        "metadata": [],
        **extra,
    }


def meta(page: int, pages: int, count: int) -> dict[str, Any]:
    return {
        "current_page": page,
        "next_page": page + 1 if page < pages else None,
        "prev_page": page - 1 if page > 1 else None,
        "total_pages": pages,
        "total_count": count,
    }


USAGE = {
    "from_datetime": "2026-11-01T00:00:00Z",
    "to_datetime": "2026-11-30T23:59:59Z",
    "issuing_date": "2026-12-01",
    "lago_invoice_id": None,
    "currency": "EUR",
    "amount_cents": 123,
    "taxes_amount_cents": 0,
    "total_amount_cents": 123,
    "charges_usage": [],
}


async def test_create_upserts_with_keywords(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.post(CUSTOMERS, payload={"customer": customer()})
    result = await lago.customers.create(
        external_id="acme",
        name="Acme",
        currency="EUR",
        billing_configuration={"payment_provider": "stripe", "sync": True},
        metadata=[{"key": "tier", "value": "gold", "display_in_invoice": False}],
        tax_codes=("vat_fr",),
    )
    (call,) = sent(mocked, "POST", CUSTOMERS)
    assert call["json"] == {
        "customer": {
            "external_id": "acme",
            "name": "Acme",
            "currency": "EUR",
            "billing_configuration": {"payment_provider": "stripe", "sync": True},
            "metadata": [{"key": "tier", "value": "gold", "display_in_invoice": False}],
            "tax_codes": ["vat_fr"],
        }
    }
    assert isinstance(result, Customer)
    assert result.external_id == "acme"
    assert result.created_at.tzinfo is not None


async def test_create_takes_the_input_model(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.post(CUSTOMERS, payload={"customer": customer()})
    await lago.customers.create(CustomerInput(external_id="acme", name="Acme"))
    (call,) = sent(mocked, "POST", CUSTOMERS)
    assert call["json"] == {"customer": {"external_id": "acme", "name": "Acme"}}


async def test_create_requires_external_id(lago: AsyncLago, mocked: aioresponses) -> None:
    with pytest.raises(LagoValidationError) as info:
        await lago.customers.create(name="Acme")
    assert info.value.field == "customer.external_id"
    with pytest.raises(LagoValidationError) as info:
        await lago.customers.create({"external_id": "a"}, external_id="b")
    assert info.value.field == "customer.external_id"
    with pytest.raises(LagoValidationError) as info:
        await lago.customers.create(external_id="a", tax_codes="vat")  # type: ignore[arg-type]
    assert info.value.field == "customer.tax_codes"
    assert not mocked.requests


async def test_get_and_not_found(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.get(f"{CUSTOMERS}/acme", payload={"customer": customer()})
    mocked.get(
        f"{CUSTOMERS}/ghost",
        status=404,
        payload={"status": 404, "error": "Not Found", "code": "customer_not_found"},
    )
    assert (await lago.customers.get("acme")).name == "Acme"
    with pytest.raises(NotFoundError) as info:
        await lago.customers.get("ghost")
    assert info.value.code == "customer_not_found"
    with pytest.raises(LagoValidationError):
        await lago.customers.get("")


async def test_list_walks_all_pages_with_filters(lago: AsyncLago, mocked: aioresponses) -> None:
    query = (
        "account_type%5B%5D=customer&currencies%5B%5D=EUR&currencies%5B%5D=USD"
        "&has_tax_identification_number=false&metadata%5Btier%5D=gold&per_page=1"
    )
    mocked.get(
        f"{CUSTOMERS}?{query}&page=1", payload={"customers": [customer("a")], "meta": meta(1, 2, 2)}
    )
    mocked.get(
        f"{CUSTOMERS}?{query}&page=2", payload={"customers": [customer("b")], "meta": meta(2, 2, 2)}
    )
    pager = lago.customers.list(
        account_type=["customer"],
        currencies=["EUR", "USD"],
        has_tax_identification_number=False,
        metadata={"tier": "gold"},
        per_page=1,
    )
    assert [c.external_id async for c in pager] == ["a", "b"]
    calls = sent(mocked, "GET", CUSTOMERS)
    assert sorted(calls[0]["params"]) == sorted(
        [
            ("account_type[]", "customer"),
            ("currencies[]", "EUR"),
            ("currencies[]", "USD"),
            ("has_tax_identification_number", "false"),
            ("metadata[tier]", "gold"),
            ("per_page", "1"),
            ("page", "1"),
        ]
    )


async def test_list_starts_at_the_given_page(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.get(f"{CUSTOMERS}?page=3", payload={"customers": [customer("c")], "meta": meta(3, 3, 3)})
    assert [c.external_id for c in await lago.customers.list(page=3).to_list()] == ["c"]


async def test_delete(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.delete(f"{CUSTOMERS}/acme", payload={"customer": customer()})
    assert (await lago.customers.delete("acme")).external_id == "acme"


async def test_current_usage(lago: AsyncLago, mocked: aioresponses) -> None:
    url = f"{CUSTOMERS}/acme/current_usage"
    mocked.get(
        f"{url}?external_subscription_id=sub_1&apply_taxes=false&group%5Bcloud%5D=aws",
        payload={"customer_usage": USAGE},
    )
    usage = await lago.customers.current_usage(
        "acme", external_subscription_id="sub_1", apply_taxes=False, group={"cloud": "aws"}
    )
    assert isinstance(usage, CustomerUsage)
    assert usage.amount_cents == 123
    with pytest.raises(LagoValidationError, match="external_subscription_id"):
        await lago.customers.current_usage("acme", external_subscription_id="")


async def test_projected_usage(lago: AsyncLago, mocked: aioresponses) -> None:
    url = f"{CUSTOMERS}/acme/projected_usage?external_subscription_id=sub_1"
    mocked.get(
        url,
        payload={
            "customer_projected_usage": {
                **USAGE,
                "projected_amount_cents": 400,
                "projected_taxes_amount_cents": 0,
                "projected_total_amount_cents": 400,
            }
        },
    )
    usage = await lago.customers.projected_usage("acme", external_subscription_id="sub_1")
    assert isinstance(usage, CustomerProjectedUsage)
    assert usage.projected_amount_cents == 400


async def test_past_usage_is_paged(lago: AsyncLago, mocked: aioresponses) -> None:
    url = f"{CUSTOMERS}/acme/past_usage?external_subscription_id=sub_1&periods_count=2"
    mocked.get(f"{url}&page=1", payload={"usage_periods": [USAGE], "meta": meta(1, 2, 2)})
    mocked.get(f"{url}&page=2", payload={"usage_periods": [USAGE], "meta": meta(2, 2, 2)})
    periods = await lago.customers.past_usage(
        "acme", external_subscription_id="sub_1", periods_count=2
    ).to_list()
    assert len(periods) == 2
    assert all(isinstance(p, CustomerUsage) for p in periods)


async def test_checkout_and_portal_urls(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.post(
        f"{CUSTOMERS}/acme/checkout_url",
        payload={
            "customer": {
                "lago_customer_id": UUID,
                "external_customer_id": "acme",
                "payment_provider": "stripe",
                "checkout_url": "https://pay.example/x",
            }
        },
    )
    mocked.get(
        f"{CUSTOMERS}/acme/portal_url",
        payload={"customer": {"portal_url": "https://portal.example/y"}},
    )
    checkout = await lago.customers.checkout_url("acme")
    assert isinstance(checkout, CustomerCheckoutUrl)
    assert checkout.checkout_url == "https://pay.example/x"
    assert await lago.customers.portal_url("acme") == "https://portal.example/y"


APPLIED = {
    "lago_id": UUID,
    "lago_coupon_id": UUID,
    "coupon_code": "BLACK_FRIDAY",
    "coupon_name": "Black Friday",
    "lago_customer_id": UUID,
    "external_customer_id": "acme",
    "status": "active",
    "amount_cents": 1000,
    "amount_cents_remaining": 500,
    "amount_currency": "EUR",
    "percentage_rate": None,
    "frequency": "once",
    "frequency_duration": None,
    "frequency_duration_remaining": None,
    "expiration_at": None,
    "created_at": "2026-01-01T00:00:00Z",
    "terminated_at": None,
}


async def test_applied_coupons_and_delete(lago: AsyncLago, mocked: aioresponses) -> None:
    url = f"{CUSTOMERS}/acme/applied_coupons"
    mocked.get(
        f"{url}?status=active&coupon_code%5B%5D=BLACK_FRIDAY&page=1",
        payload={"applied_coupons": [APPLIED], "meta": meta(1, 1, 1)},
    )
    mocked.delete(f"{url}/{UUID}", payload={"applied_coupon": {**APPLIED, "status": "terminated"}})
    coupons = await lago.customers.applied_coupons(
        "acme", status="active", coupon_code=["BLACK_FRIDAY"]
    ).to_list()
    assert isinstance(coupons[0], AppliedCoupon)
    assert coupons[0].amount_cents_remaining == 500
    removed = await lago.customers.delete_applied_coupon("acme", UUID)
    assert removed.status == "terminated"
