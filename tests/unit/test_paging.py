"""Auto-paging as users rely on it: driven by the server's ``meta``, never looping, never
yielding an item twice."""

from __future__ import annotations

from typing import Any

import pytest
from aioresponses import aioresponses

from lago_async import AsyncLago, LagoError
from tests.conftest import BASE_URL, customer_json, sent

CUSTOMERS = f"{BASE_URL}/customers"


def customer(external_id: str) -> dict[str, Any]:
    return customer_json(external_id=external_id, name=external_id)


def page(ids: list[str], *, current: int, next_page: int | None, total: int = 99) -> Any:
    return {
        "customers": [customer(i) for i in ids],
        "meta": {
            "current_page": current,
            "next_page": next_page,
            "prev_page": None,
            "total_pages": total,
            "total_count": total * 2,
        },
    }


def pages_asked(mocked: aioresponses) -> list[int]:
    return [int(dict(call["params"])["page"]) for call in sent(mocked, "GET", CUSTOMERS)]


async def test_empty_page_naming_a_next_page_stops(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.get(f"{CUSTOMERS}?page=1", payload=page(["a", "b"], current=1, next_page=2))
    mocked.get(f"{CUSTOMERS}?page=2", payload=page([], current=2, next_page=3))
    mocked.get(f"{CUSTOMERS}?page=3", payload=page(["never"], current=3, next_page=None))
    ids = [c.external_id async for c in lago.customers.list()]
    assert ids == ["a", "b"]
    assert pages_asked(mocked) == [1, 2]


async def test_next_page_pointing_backwards_raises(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.get(f"{CUSTOMERS}?page=2", payload=page(["c"], current=2, next_page=3))
    mocked.get(f"{CUSTOMERS}?page=3", payload=page(["d"], current=3, next_page=1))
    mocked.get(f"{CUSTOMERS}?page=1", payload=page(["a"], current=1, next_page=2))
    seen: list[str] = []
    with pytest.raises(LagoError, match="did not advance"):
        async for c in lago.customers.list(page=2):
            seen.append(c.external_id)
    assert seen == ["c", "d"]
    assert pages_asked(mocked) == [2, 3]


async def test_list_without_meta_is_one_page(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.get(f"{CUSTOMERS}?page=1", payload={"customers": [customer("a"), customer("b")]})
    mocked.get(f"{CUSTOMERS}?page=2", payload={"customers": [customer("never")]})
    pages = [p async for p in lago.customers.list().pages()]
    assert len(pages) == 1
    assert [c.external_id for c in pages[0].items] == ["a", "b"]
    assert pages[0].meta.total_count == 2
    assert pages[0].meta.next_page is None
    assert pages_asked(mocked) == [1]


async def test_paging_follows_next_page_not_a_count(lago: AsyncLago, mocked: aioresponses) -> None:
    mocked.get(f"{CUSTOMERS}?page=1", payload=page(["a"], current=1, next_page=3, total=5))
    mocked.get(f"{CUSTOMERS}?page=2", payload=page(["never"], current=2, next_page=3, total=5))
    mocked.get(f"{CUSTOMERS}?page=3", payload=page(["c"], current=3, next_page=None, total=5))
    ids = [c.external_id async for c in lago.customers.list()]
    assert ids == ["a", "c"]
    assert pages_asked(mocked) == [1, 3]
