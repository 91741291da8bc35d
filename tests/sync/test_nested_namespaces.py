"""The blocking twin of the generated namespaces: nested calls run through the portal."""

from __future__ import annotations

import re

from aioresponses import aioresponses

from lago_sync import Lago, Pager
from lago_sync.resources._generated.plans import Plans, PlansCharges, PlansChargesFilters
from tests.conftest import BASE_URL

CHARGE = {
    "lago_id": "ch_1",
    "code": "storage",
    "charge_model": "standard",
    "lago_billable_metric_id": "bm_1",
    "created_at": "2026-01-01T00:00:00Z",
    "properties": {"amount": "0.5"},
}
META = {"current_page": 1, "next_page": None, "total_pages": 1, "total_count": 1}


def test_a_nested_namespace_lists_and_updates_through_the_portal() -> None:
    with aioresponses() as mocked, Lago(api_key="k", base_url=BASE_URL) as lago:
        assert isinstance(lago.plans, Plans)
        assert isinstance(lago.plans.charges, PlansCharges)
        assert isinstance(lago.plans.charges.filters, PlansChargesFilters)
        mocked.get(
            re.compile(re.escape(f"{BASE_URL}/plans/premium/charges") + r"(\?.*)?$"),
            payload={"charges": [CHARGE], "meta": META},
        )
        pager = lago.plans.charges.list("premium")
        assert isinstance(pager, Pager)
        assert [charge.code for charge in pager] == ["storage"]
        mocked.put(f"{BASE_URL}/plans/premium/charges/storage", payload={"charge": CHARGE})
        charge = lago.plans.charges.update("premium", "storage", invoice_display_name=None)
        assert charge.lago_id == "ch_1"
        [(_, request)] = [
            (key, calls[0]) for key, calls in mocked.requests.items() if key[0] == "PUT"
        ]
        assert request.kwargs["data"] == b'{"charge":{"invoice_display_name":null}}'
