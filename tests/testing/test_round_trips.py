"""Round trips through the SDK, resource by resource: what is created is read back, listed,
changed and removed as Lago does it, keyed as Lago keys it.

Each test runs against a FakeLago holding one of every resource (``_world.py``), through
``AsyncLago`` over real sockets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from lago_async import AsyncLago, NotFoundError, UnprocessableEntityError
from lago_async.testing import FakeLago
from tests.testing._api import Api
from tests.testing._world import GHOST, build_world


@pytest.fixture
async def world() -> AsyncIterator[tuple[AsyncLago, FakeLago, dict[tuple[str, str], str]]]:
    async with FakeLago(api_key="round-trips") as fake:
        async with aiohttp.ClientSession() as session:
            names = await build_world(Api(session, fake.base_url, fake.api_key), fake)
        async with AsyncLago(api_key=fake.api_key, base_url=fake.base_url, max_retries=0) as lago:
            yield lago, fake, names
        assert fake.internal_errors == []


World = tuple[AsyncLago, FakeLago, dict[tuple[str, str], str]]


async def codes(pager: Any, field: str = "code") -> list[Any]:
    return [getattr(item, field) async for item in pager]


async def test_add_ons_by_code(world: World) -> None:
    lago, _, _ = world
    created = await lago.add_ons.create(
        code="support", name="Support", amount_cents=900, amount_currency="USD"
    )
    assert (await lago.add_ons.get("support")).lago_id == created.lago_id
    assert "support" in await codes(lago.add_ons.list())
    updated = await lago.add_ons.update("support", amount_cents=1200)
    assert updated.amount_cents == 1200
    assert (await lago.add_ons.get("support")).amount_cents == 1200
    assert (await lago.add_ons.delete("support")).code == "support"
    with pytest.raises(NotFoundError) as caught:
        await lago.add_ons.get("support")
    assert caught.value.code == "add_on_not_found"


async def test_a_taken_code_is_value_already_exist(world: World) -> None:
    lago, _, _ = world
    with pytest.raises(UnprocessableEntityError) as caught:
        await lago.add_ons.create(code="setup", name="Again", amount_cents=1, amount_currency="USD")
    assert caught.value.error_details == {"code": ["value_already_exist"]}


async def test_billable_metrics_taxes_coupons_features_by_code(world: World) -> None:
    lago, _, _ = world
    metric = await lago.billable_metrics.create(
        code="calls", name="Calls", aggregation_type="count_agg"
    )
    assert (await lago.billable_metrics.get("calls")).lago_id == metric.lago_id
    await lago.billable_metrics.update("calls", description="API calls")
    assert (await lago.billable_metrics.get("calls")).description == "API calls"
    await lago.billable_metrics.delete("calls")
    assert "calls" not in await codes(lago.billable_metrics.list())

    await lago.taxes.create(code="gst", name="GST", rate="5.0")
    await lago.taxes.update("gst", rate="7.5")
    assert str((await lago.taxes.get("gst")).rate) == "7.5"
    await lago.taxes.delete("gst")
    with pytest.raises(NotFoundError):
        await lago.taxes.get("gst")

    await lago.coupons.create(
        code="tenoff",
        name="Ten off",
        coupon_type="percentage",
        percentage_rate="10.0",
        frequency="once",
        expiration="no_expiration",
    )
    await lago.coupons.update("tenoff", name="Ten percent off")
    assert (await lago.coupons.get("tenoff")).name == "Ten percent off"
    assert "tenoff" in await codes(lago.coupons.list())
    await lago.coupons.delete("tenoff")

    feature = await lago.features.create(code="sso", name="SSO")
    assert (await lago.features.get("sso")).code == feature.code
    await lago.features.delete("sso")
    with pytest.raises(NotFoundError) as caught:
        await lago.features.get("sso")
    assert caught.value.code == "feature_not_found"


async def test_plan_with_charges_filters_and_fixed_charges(world: World) -> None:
    lago, _, names = world
    plan = await lago.plans.get("startup")
    assert [c.billable_metric_code for c in plan.charges or []] == ["storage"]
    charge_code = names[("charges", "charge_code")]
    charge = await lago.plans.charges.get("startup", charge_code)
    assert str(charge.properties.amount) == "0.5"  # type: ignore[union-attr]
    await lago.plans.charges.update("startup", charge_code, {"invoice_display_name": "GB"})
    assert (await lago.plans.charges.get("startup", charge_code)).invoice_display_name == "GB"

    filters = [f async for f in lago.plans.charges.filters.list("startup", charge_code)]
    assert [f.values for f in filters] == [{"region": ["eu"]}]
    added = await lago.plans.charges.filters.create(
        "startup", charge_code, {"values": {"region": ["us"]}, "properties": {"amount": "0.4"}}
    )
    assert len([f async for f in lago.plans.charges.filters.list("startup", charge_code)]) == 2
    await lago.plans.charges.filters.delete("startup", charge_code, added.lago_id)
    with pytest.raises(NotFoundError):
        await lago.plans.charges.filters.get("startup", charge_code, added.lago_id)

    fixed = await lago.plans.fixed_charges.get(
        "startup", names[("fixed_charges", "fixed_charge_code")]
    )
    assert fixed.code == "setup_fee"
    await lago.plans.update("startup", name="Startup 2027")
    assert (await lago.plans.get("startup")).name == "Startup 2027"


async def test_a_charge_on_an_unknown_metric_is_refused(world: World) -> None:
    lago, _, _ = world
    with pytest.raises(UnprocessableEntityError) as caught:
        await lago.plans.create(
            code="broken",
            name="Broken",
            interval="monthly",
            amount_cents=0,
            amount_currency="USD",
            pay_in_advance=False,
            charges=[{"billable_metric_id": GHOST, "charge_model": "standard"}],
        )
    assert caught.value.error_details == {"billable_metrics": ["not_found"]}
    with pytest.raises(NotFoundError):
        await lago.plans.get("broken")


async def test_subscriptions_by_external_id(world: World) -> None:
    lago, _, _ = world
    sub = await lago.subscriptions.create(
        external_customer_id="acme", plan_code="startup", external_id="sub_2"
    )
    assert sub.status == "active"
    assert (await lago.subscriptions.get("sub_2")).lago_id == sub.lago_id
    listed = await codes(lago.customers.subscriptions("acme"), "external_id")
    assert set(listed) == {"sub_1", "sub_2"}
    # the spec (so the SDK) requires ending_at on every update; None sends null
    await lago.subscriptions.update("sub_2", name="Second", ending_at=None)
    assert (await lago.subscriptions.get("sub_2")).name == "Second"
    terminated = await lago.subscriptions.delete("sub_2")
    assert terminated.status == "terminated"
    assert terminated.terminated_at is not None
    assert (await lago.subscriptions.get("sub_2")).status == "terminated"
    with pytest.raises(NotFoundError) as caught:
        await lago.subscriptions.get("nobody")
    assert caught.value.code == "subscription_not_found"
    with pytest.raises(NotFoundError) as caught:
        await lago.subscriptions.create(
            external_customer_id="acme", plan_code="nope", external_id="sub_3"
        )
    assert caught.value.code == "plan_not_found"


async def test_subscription_charge_overrides_leave_the_plan_alone(world: World) -> None:
    lago, _, names = world
    charge_code = names[("charges", "charge_code")]
    await lago.subscriptions.charges.update(
        "sub_1", charge_code, {"properties": {"amount": "0.45"}}
    )
    override = await lago.subscriptions.charges.get("sub_1", charge_code)
    assert str(override.properties.amount) == "0.45"  # type: ignore[union-attr]
    plan_charge = await lago.plans.charges.get("startup", charge_code)
    assert str(plan_charge.properties.amount) == "0.5"  # type: ignore[union-attr]


async def test_alerts_of_a_subscription_by_code(world: World) -> None:
    lago, _, _ = world
    created = await lago.subscriptions.alerts.create(
        "sub_1",
        {
            "alerts": [
                {
                    "alert_type": "lifetime_usage_amount",
                    "code": "lifetime",
                    "thresholds": [{"value": "1000"}],
                }
            ]
        },
    )
    assert [a.code for a in created] == ["lifetime"]
    assert set(await codes(lago.subscriptions.alerts.list("sub_1"))) == {"spend", "lifetime"}
    await lago.subscriptions.alerts.update("sub_1", "lifetime", name="Lifetime")
    assert (await lago.subscriptions.alerts.get("sub_1", "lifetime")).name == "Lifetime"
    await lago.subscriptions.alerts.delete("sub_1", "lifetime")
    await lago.subscriptions.alerts.delete_all("sub_1")
    assert await codes(lago.subscriptions.alerts.list("sub_1")) == []


async def test_wallets_credit_through_transactions(world: World) -> None:
    lago, _, _ = world
    wallet = await lago.customers.wallets.get("acme", "prepaid")
    assert str(wallet.credits_balance) == "25.0"  # 20 paid and 5 granted by the world
    assert wallet.balance_cents == 2500
    transactions = await lago.wallets.transactions.create(
        wallet_id=wallet.lago_id, paid_credits="10.0", voided_credits="5.0"
    )
    assert [t.transaction_status for t in transactions] == ["purchased", "voided"]
    again = await lago.wallets.get(wallet.lago_id)
    assert str(again.credits_balance) == "30.0"
    assert again.balance_cents == 3000
    listed = [t async for t in lago.wallets.transactions.list(wallet.lago_id)]
    assert len(listed) == 4
    await lago.customers.wallets.update("acme", "prepaid", {"name": "Prepaid"})
    assert (await lago.wallets.get(wallet.lago_id)).name == "Prepaid"
    with pytest.raises(UnprocessableEntityError):
        await lago.wallets.transactions.create(wallet_id=wallet.lago_id, voided_credits="99")
    await lago.customers.wallets.delete("acme", "prepaid")
    with pytest.raises(NotFoundError) as caught:
        await lago.wallets.get(wallet.lago_id)
    assert caught.value.code == "wallet_not_found"


async def test_metadata_replace_merge_and_delete(world: World) -> None:
    lago, _, _ = world
    assert await lago.plans.metadata.replace("startup", {"team": "billing"}) == {"team": "billing"}
    merged = await lago.plans.metadata.merge("startup", {"region": "eu"})
    assert merged == {"team": "billing", "region": "eu"}
    assert await lago.plans.metadata.delete("startup", "team") == {"region": "eu"}
    assert await lago.plans.metadata.delete_all("startup") == {}


async def test_invoices_credit_notes_and_payments(world: World) -> None:
    lago, _, _ = world
    invoice = await lago.invoices.create(
        external_customer_id="acme", fees=[{"add_on_code": "setup", "units": "3"}]
    )
    assert invoice.total_amount_cents == 15000
    fee_id = (invoice.fees or [])[0].lago_id
    assert (await lago.fees.get(fee_id)).amount_cents == 15000  # type: ignore[arg-type]
    note = await lago.credit_notes.create(
        invoice_id=invoice.lago_id,
        reason="other",
        credit_amount_cents=1000,
        items=[{"fee_id": fee_id, "amount_cents": 1000}],
    )
    assert note.credit_amount_cents == 1000
    await lago.payments.create(invoice_id=invoice.lago_id, amount_cents=10000, reference="w")
    assert (await lago.invoices.get(invoice.lago_id)).payment_status == "pending"  # 4000 due
    await lago.payments.create(invoice_id=invoice.lago_id, amount_cents=4000, reference="w2")
    assert (await lago.invoices.get(invoice.lago_id)).payment_status == "succeeded"
    voided = await lago.credit_notes.void(note.lago_id)
    assert voided.credit_status == "voided"
    invoices = [i.lago_id async for i in lago.customers.invoices("acme")]
    assert invoice.lago_id in invoices
    assert (await lago.invoices.void(invoice.lago_id)).status == "voided"


async def test_organization_and_entitlements(world: World) -> None:
    lago, _, _ = world
    org = await lago.organization.update({"name": "Acme Holdings"})
    assert org.name == "Acme Holdings"
    entitlements = await lago.plans.entitlements.update("startup", {"seats": {"max": 30}})
    assert [(e.code, [p.value for p in e.privileges or []]) for e in entitlements] == [
        ("seats", [30])
    ]
    with pytest.raises(NotFoundError):
        await lago.plans.entitlements.update("startup", {"nope": {"max": 1}})


async def test_billing_entities_applied_coupons_and_payment_requests(world: World) -> None:
    lago, _, names = world
    await lago.billing_entities.create(code="eu", name="EU entity")
    await lago.billing_entities.update("eu", name="EU entity (Dublin)")
    assert (await lago.billing_entities.get("eu")).name == "EU entity (Dublin)"
    assert set(await codes(lago.billing_entities.list())) == {"main", "eu"}

    applied = await lago.applied_coupons.create(external_customer_id="acme", coupon_code="welcome")
    assert applied.coupon_code == "welcome"
    assert applied.lago_id in await codes(lago.customers.applied_coupons("acme"), "lago_id")
    with pytest.raises(NotFoundError) as caught:
        await lago.applied_coupons.create(external_customer_id="acme", coupon_code="nope")
    assert caught.value.code == "coupon_not_found"

    invoice_id = names[("invoices", "lago_id")]
    request = await lago.payment_requests.create(
        external_customer_id="acme", email="billing@acme.example", lago_invoice_ids=[invoice_id]
    )
    assert (await lago.payment_requests.get(request.lago_id)).lago_id == request.lago_id
    assert request.lago_id in await codes(lago.customers.payment_requests("acme"), "lago_id")


async def test_fees_payment_methods_and_logs_made_by_lago(world: World) -> None:
    lago, fake, names = world
    fee_id = names[("fees", "lago_id")]
    await lago.fees.update(fee_id, payment_status="succeeded")
    assert (await lago.fees.get(fee_id)).payment_status == "succeeded"
    assert fee_id in await codes(lago.fees.list(), "lago_id")

    second = fake.add_object("payment_methods", external_customer_id="acme", is_default=False)
    await lago.customers.payment_methods.set_as_default("acme", second["lago_id"])
    methods = {m.lago_id: m.is_default async for m in lago.customers.payment_methods.list("acme")}
    assert methods == {names[("payment_methods", "lago_id")]: False, second["lago_id"]: True}
    await lago.customers.payment_methods.delete("acme", second["lago_id"])
    assert second["lago_id"] not in await codes(
        lago.customers.payment_methods.list("acme"), "lago_id"
    )

    log_id = names[("api_logs", "request_id")]
    assert (await lago.api_logs.get(log_id)).request_id == log_id
    activity = names[("activity_logs", "activity_id")]
    assert (await lago.activity_logs.get(activity)).activity_id == activity
    with pytest.raises(NotFoundError) as caught:
        await lago.payment_receipts.get(GHOST)
    assert caught.value.code == "payment_receipt_not_found"


async def test_wallet_alerts_by_code(world: World) -> None:
    lago, _, _ = world
    assert await codes(lago.customers.wallets.alerts.list("acme", "prepaid")) == ["low"]
    await lago.customers.wallets.alerts.update("acme", "prepaid", "low", name="Low")
    assert (await lago.customers.wallets.alerts.get("acme", "prepaid", "low")).name == "Low"
    await lago.customers.wallets.alerts.delete("acme", "prepaid", "low")
    with pytest.raises(NotFoundError) as caught:
        await lago.customers.wallets.alerts.get("acme", "prepaid", "low")
    assert caught.value.code == "alert_not_found"
