"""FakeLago's auth, error bodies and customer routes, over raw HTTP."""

from __future__ import annotations

import pytest

from lago_async.testing import FakeLago
from tests.testing._api import Api

UNAUTHORIZED = {"status": 401, "error": "Unauthorized"}


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer wrong-key"},
        {"Authorization": "fake-lago-key"},
        {"Authorization": "Basic fake-lago-key"},
        {"Authorization": ""},
    ],
)
async def test_wrong_credentials_are_401(api: Api, headers: dict[str, str]) -> None:
    answer = await api.session.get(api.base_url + "/customers", headers=headers)
    assert answer.status == 401
    assert await answer.json() == UNAUTHORIZED


async def test_missing_credentials_are_401_and_store_nothing(api: Api, fake: FakeLago) -> None:
    answer = await api.session.post(
        api.base_url + "/events",
        json={"event": {"transaction_id": "t", "code": "c", "external_subscription_id": "s"}},
    )
    assert answer.status == 401
    assert await answer.json() == UNAUTHORIZED
    assert fake.events == []


async def test_right_key_is_accepted(api: Api) -> None:
    assert (await api.get("/customers")).status == 200


async def test_unknown_path_is_a_json_404(api: Api, fake: FakeLago) -> None:
    answer = await api.get("/no_such_resource")
    assert answer.status == 404
    assert answer.body == {"status": 404, "error": "Not Found", "code": "route_not_found"}
    assert fake.request_log[-1].route is None


async def test_invalid_json_is_400(api: Api) -> None:
    answer = await api("POST", "/customers", raw=b"{not json")
    assert answer.status == 400
    assert answer.body["status"] == 400
    assert isinstance(answer.body["error"], str)


async def test_missing_root_key_is_400(api: Api) -> None:
    answer = await api.post("/customers", {"external_id": "acme"})
    assert answer.status == 400


async def test_create_customer(api: Api, fake: FakeLago) -> None:
    answer = await api.post(
        "/customers",
        {"customer": {"external_id": "acme", "name": "Acme", "currency": "EUR", "country": "FR"}},
    )
    assert answer.status == 200
    customer = answer.body["customer"]
    assert customer["external_id"] == "acme"
    assert customer["name"] == "Acme"
    assert customer["currency"] == "EUR"
    assert customer["country"] == "FR"
    assert customer["sequential_id"] == 1
    assert customer["applicable_timezone"] == "UTC"
    assert customer["created_at"].endswith("Z")
    assert fake.customers["acme"]["lago_id"] == customer["lago_id"]


async def test_post_customers_upserts_by_external_id(api: Api, fake: FakeLago) -> None:
    first = (await api.post("/customers", {"customer": {"external_id": "acme", "name": "A"}})).body
    second = (
        await api.post("/customers", {"customer": {"external_id": "acme", "email": "a@b.co"}})
    ).body
    assert second["customer"]["lago_id"] == first["customer"]["lago_id"]
    assert second["customer"]["sequential_id"] == 1
    assert second["customer"]["name"] == "A"  # fields not sent are kept
    assert second["customer"]["email"] == "a@b.co"
    assert list(fake.customers) == ["acme"]


async def test_customer_metadata_gets_ids(api: Api) -> None:
    body = {
        "customer": {
            "external_id": "acme",
            "metadata": [{"key": "tier", "value": "gold", "display_in_invoice": True}],
        }
    }
    metadata = (await api.post("/customers", body)).body["customer"]["metadata"]
    assert metadata[0]["key"] == "tier"
    assert metadata[0]["value"] == "gold"
    assert metadata[0]["display_in_invoice"] is True
    assert metadata[0]["lago_id"]
    assert metadata[0]["created_at"]


@pytest.mark.parametrize("external_id", [None, "", "absent"])
async def test_customer_without_external_id_is_422(api: Api, external_id: str | None) -> None:
    customer = {"name": "Nameless"}
    if external_id != "absent":
        customer["external_id"] = external_id  # type: ignore[assignment]
    answer = await api.post("/customers", {"customer": customer})
    assert answer.status == 422
    assert answer.body == {
        "status": 422,
        "error": "Unprocessable Entity",
        "code": "validation_errors",
        "error_details": {"external_id": ["value_is_mandatory"]},
    }


async def test_invalid_currency_is_422(api: Api) -> None:
    answer = await api.post("/customers", {"customer": {"external_id": "x", "currency": "eur"}})
    assert answer.status == 422
    assert answer.body["error_details"] == {"currency": ["invalid_value"]}


async def test_get_and_delete_customer(api: Api, fake: FakeLago) -> None:
    created = (await api.post("/customers", {"customer": {"external_id": "acme"}})).body
    assert (await api.get("/customers/acme")).body == created
    deleted = await api.delete("/customers/acme")
    assert deleted.status == 200
    assert deleted.body["customer"]["lago_id"] == created["customer"]["lago_id"]
    assert fake.customers == {}
    assert (await api.get("/customers/acme")).status == 404


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_unknown_customer_is_404_customer_not_found(api: Api, method: str) -> None:
    answer = await api(method, "/customers/nobody")
    assert answer.status == 404
    assert answer.body == {"status": 404, "error": "Not Found", "code": "customer_not_found"}


async def test_customer_ids_are_url_decoded(api: Api) -> None:
    await api.post("/customers", {"customer": {"external_id": "a/b c"}})
    answer = await api.get("/customers/a%2Fb%20c")
    assert answer.status == 200
    assert answer.body["customer"]["external_id"] == "a/b c"


async def test_list_customers_pages_with_lago_meta(api: Api, fake: FakeLago) -> None:
    for n in range(5):
        fake.add_customer(f"c{n}")
    page1 = (await api.get("/customers", per_page=2)).body
    assert [c["external_id"] for c in page1["customers"]] == ["c4", "c3"]  # newest first
    assert page1["meta"] == {
        "current_page": 1,
        "next_page": 2,
        "prev_page": None,
        "total_pages": 3,
        "total_count": 5,
    }
    page3 = (await api.get("/customers", per_page=2, page=3)).body
    assert [c["external_id"] for c in page3["customers"]] == ["c0"]
    assert page3["meta"] == {
        "current_page": 3,
        "next_page": None,
        "prev_page": 2,
        "total_pages": 3,
        "total_count": 5,
    }
    beyond = (await api.get("/customers", per_page=2, page=9)).body
    assert beyond["customers"] == []
    assert beyond["meta"]["total_count"] == 5


async def test_list_customers_defaults_to_100_per_page(api: Api, fake: FakeLago) -> None:
    for n in range(101):
        fake.add_customer(f"c{n}")
    body = (await api.get("/customers")).body
    assert len(body["customers"]) == 100
    assert body["meta"]["total_pages"] == 2
    assert body["meta"]["next_page"] == 2
    empty = (await api.get("/customers", per_page=0)).body  # invalid: default
    assert len(empty["customers"]) == 100


async def test_empty_customer_list_meta(api: Api) -> None:
    assert (await api.get("/customers")).body == {
        "customers": [],
        "meta": {
            "current_page": 1,
            "next_page": None,
            "prev_page": None,
            "total_pages": 0,
            "total_count": 0,
        },
    }


async def test_list_customers_filters(api: Api, fake: FakeLago) -> None:
    fake.add_customer("acme", name="Acme Corp", currency="EUR", country="FR")
    fake.add_customer("globex", name="Globex", currency="USD", email="ops@acme.io")
    fake.add_customer("initech", currency="GBP", customer_type="company")

    async def ids(params: list[tuple[str, str]]) -> list[str]:
        body = (await api("GET", "/customers", params=params)).body
        return sorted(c["external_id"] for c in body["customers"])

    assert await ids([("search_term", "ACME")]) == ["acme", "globex"]
    assert await ids([("currencies[]", "EUR"), ("currencies[]", "GBP")]) == ["acme", "initech"]
    assert await ids([("countries[]", "FR")]) == ["acme"]
    assert await ids([("customer_type", "company")]) == ["initech"]
    assert await ids([("has_customer_type", "false")]) == ["acme", "globex"]
    assert await ids([("search_term", "acme"), ("currencies[]", "USD")]) == ["globex"]


async def test_portal_and_checkout_urls(api: Api, fake: FakeLago) -> None:
    fake.add_customer("acme")
    portal = await api.get("/customers/acme/portal_url")
    assert portal.status == 200
    assert portal.body["customer"]["portal_url"].startswith("https://")

    refused = await api.post("/customers/acme/checkout_url")
    assert refused.status == 422
    assert refused.body["error_details"] == {"base": ["no_linked_payment_provider"]}

    fake.add_customer("acme", billing_configuration={"payment_provider": "stripe"})
    checkout = await api.post("/customers/acme/checkout_url")
    assert checkout.status == 200
    assert checkout.body["customer"]["external_customer_id"] == "acme"
    assert checkout.body["customer"]["payment_provider"] == "stripe"
    assert checkout.body["customer"]["checkout_url"].startswith("https://")

    for answer in (
        await api.get("/customers/nobody/portal_url"),
        await api.post("/customers/nobody/checkout_url"),
    ):
        assert answer.status == 404
        assert answer.body["code"] == "customer_not_found"


async def test_applied_coupons_list_page_and_delete(api: Api, fake: FakeLago) -> None:
    first = fake.add_applied_coupon("acme", "WELCOME", amount_cents=500)
    fake.add_applied_coupon("acme", "LOYAL", percentage_rate="10.0", frequency="recurring")
    fake.add_applied_coupon("acme", "SPRING")
    page = (await api.get("/customers/acme/applied_coupons", per_page=2)).body
    assert [c["coupon_code"] for c in page["applied_coupons"]] == ["SPRING", "LOYAL"]
    assert page["meta"]["total_count"] == 3
    assert page["meta"]["next_page"] == 2

    deleted = await api.delete(f"/customers/acme/applied_coupons/{first['lago_id']}")
    assert deleted.status == 200
    assert deleted.body["applied_coupon"]["status"] == "terminated"
    assert deleted.body["applied_coupon"]["terminated_at"]
    active = (await api.get("/customers/acme/applied_coupons", status="active")).body
    assert {c["coupon_code"] for c in active["applied_coupons"]} == {"LOYAL", "SPRING"}
    by_code = (
        await api("GET", "/customers/acme/applied_coupons", params=[("coupon_code[]", "LOYAL")])
    ).body
    assert [c["coupon_code"] for c in by_code["applied_coupons"]] == ["LOYAL"]

    again = await api.delete(f"/customers/acme/applied_coupons/{first['lago_id']}")
    assert again.status == 404
    assert again.body["code"] == "applied_coupon_not_found"
    missing_customer = await api.get("/customers/nobody/applied_coupons")
    assert missing_customer.body["code"] == "customer_not_found"


async def test_add_customer_rejects_invalid_fields(fake: FakeLago) -> None:
    with pytest.raises(ValueError, match="currency"):
        fake.add_customer("x", currency="euro")
