"""``lago.request(...)``: any endpoint, with the same retries, errors and key handling."""

from __future__ import annotations

from typing import Any

import pytest
from aioresponses import aioresponses

from lago_async import (
    APIResponseValidationError,
    AsyncLago,
    Customer,
    LagoValidationError,
    NotFoundError,
)
from tests.conftest import API_KEY, BASE_URL, customer_json, sent

CUSTOMER = customer_json()


async def test_a_get_goes_through_retries_and_is_cast(
    lago: AsyncLago, mocked: aioresponses, sleeps: list[float]
) -> None:
    url = f"{BASE_URL}/customers/acme?per_page=5"
    mocked.get(url, status=503)
    mocked.get(url, payload={"customer": CUSTOMER})
    customer = await lago.request(
        "get", "/customers/acme", params={"per_page": 5}, key="customer", cast_to=Customer
    )
    assert isinstance(customer, Customer) and customer.external_id == "acme"
    assert len(sleeps) == 1  # retried once, as any call
    assert len(sent(mocked, "GET", f"{BASE_URL}/customers/acme")) == 2


async def test_a_post_sends_the_body_as_json_and_returns_decoded_json(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    url = f"{BASE_URL}/some/new_endpoint"
    mocked.post(url, payload={"thing": {"id": 1}})
    answer = await lago.request("POST", "/some/new_endpoint", body={"thing": {"name": "x"}})
    assert answer == {"thing": {"id": 1}}
    (call,) = sent(mocked, "POST", url)
    assert call["json"] == {"thing": {"name": "x"}}
    mocked.post(url, payload={"thing": {"id": 2}})
    assert await lago.request("POST", "/some/new_endpoint", key="thing") == {"id": 2}


async def test_errors_are_the_sdks(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.get(
        f"{BASE_URL}/customers/nobody",
        status=404,
        payload={"status": 404, "error": "Not Found", "code": "customer_not_found"},
    )
    with pytest.raises(NotFoundError) as info:
        await lago.request("GET", "/customers/nobody")
    assert info.value.code == "customer_not_found"
    mocked.get(f"{BASE_URL}/customers/acme", payload={"other": {}})
    with pytest.raises(APIResponseValidationError, match="'customer'"):
        await lago.request("GET", "/customers/acme", key="customer", cast_to=Customer)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("FETCH", "/customers"), "method"),
        (("GET", "customers"), "path"),
        (("GET", "/customers/../plans"), "path"),
        (("GET", 3), "path"),
    ],
)
async def test_bad_input_is_refused_before_sending(
    lago: AsyncLago, mocked: aioresponses, args: tuple[Any, Any], field: str
) -> None:
    with pytest.raises(LagoValidationError) as info:
        await lago.request(*args)
    assert info.value.field == field
    assert not mocked.requests


async def test_nan_in_the_body_is_refused(lago: AsyncLago, mocked: aioresponses) -> None:
    with pytest.raises(LagoValidationError) as info:
        await lago.request("POST", "/x", body={"a": {"b": float("nan")}})
    assert info.value.field == "body.a.b"
    assert not mocked.requests


def test_the_blocking_client_has_it_too() -> None:
    from lago_async.testing import FakeLago
    from lago_sync import Lago

    with FakeLago.in_thread() as fake, Lago(api_key=fake.api_key, base_url=fake.base_url) as lago:
        fake.add_customer("acme", name="Acme")
        customer = lago.request("GET", "/customers/acme", key="customer", cast_to=Customer)
        assert customer.name == "Acme"
    assert API_KEY not in repr(lago)
