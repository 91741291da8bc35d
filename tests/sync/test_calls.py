"""Blocking calls against a FakeLago: results, pages, typed errors, options and lifecycle."""

from __future__ import annotations

import gc
import threading
import warnings

import pytest

from lago_async import AsyncLago
from lago_async.testing import FakeLago
from lago_sync import (
    Customer,
    Event,
    EventIngestor,
    Lago,
    LagoError,
    LagoValidationError,
    NotFoundError,
    Page,
    Pager,
    UnprocessableEntityError,
)
from tests.sync.conftest import portal_threads


def test_a_single_call_returns_a_model(lago: Lago) -> None:
    customer = lago.customers.get("acme")
    assert isinstance(customer, Customer)
    assert customer.external_id == "acme"
    assert customer.currency == "EUR"


def test_keyword_and_positional_arguments_reach_the_server(lago: Lago, fake: FakeLago) -> None:
    event = lago.events.create(
        transaction_id="tx-1", code="storage", external_subscription_id="sub_1"
    )
    assert isinstance(event, Event)
    assert event.transaction_id == "tx-1"
    again = lago.events.create(
        {"transaction_id": "tx-2", "code": "storage", "external_subscription_id": "sub_1"}
    )
    assert again.transaction_id == "tx-2"
    assert [e["transaction_id"] for e in fake.events] == ["tx-1", "tx-2"]
    assert lago.events.get("tx-2").code == "storage"


def test_a_typed_error_is_raised_with_its_code(lago: Lago) -> None:
    with pytest.raises(NotFoundError) as caught:
        lago.customers.get("nobody")
    assert caught.value.status == 404
    assert caught.value.code == "customer_not_found"


def test_a_refused_input_raises_unprocessable_entity(lago: Lago) -> None:
    lago.events.create(transaction_id="dup", code="storage", external_subscription_id="sub_1")
    with pytest.raises(UnprocessableEntityError) as caught:
        lago.events.create(transaction_id="dup", code="storage", external_subscription_id="sub_1")
    assert caught.value.error_details == {"transaction_id": ["value_already_exist"]}


def test_bad_input_raises_before_anything_is_sent(lago: Lago, fake: FakeLago) -> None:
    with pytest.raises(LagoValidationError) as caught:
        lago.events.create(code="storage", external_subscription_id="sub_1")
    assert caught.value.field.endswith("transaction_id")
    assert not fake.events


def test_paging_walks_every_page(lago: Lago, fake: FakeLago) -> None:
    for n in range(45):
        fake.add_customer(f"c-{n:02d}")
    pager = lago.customers.list(per_page=10)
    assert isinstance(pager, Pager)
    ids = [customer.external_id for customer in pager]
    assert len(ids) == 46 and len(set(ids)) == 46
    pages = list(pager.pages())
    assert [len(page.items) for page in pages] == [10, 10, 10, 10, 6]
    assert all(isinstance(page, Page) for page in pages)
    assert pages[-1].meta.next_page is None and pages[0].meta.total_count == 46
    assert [c.external_id for c in pager.to_list()] == ids  # each iteration starts over
    first = pager.first_page()
    assert first.meta.current_page == 1 and len(first.items) == 10
    assert fake.requests["GET /customers"] == 5 + 5 + 5 + 1


def test_paging_from_a_given_page_and_stopping_early(lago: Lago, fake: FakeLago) -> None:
    for n in range(29):
        fake.add_customer(f"c-{n:02d}")
    pager = lago.customers.list(per_page=10, page=2)
    assert len(pager.to_list()) == 20
    for customer in lago.customers.list(per_page=10):
        assert customer.external_id
        break  # the async generator under it is closed in the loop
    assert fake.requests["GET /customers"] == 2 + 1


def test_with_options_shares_the_portal_and_the_pool(lago: Lago, fake: FakeLago) -> None:
    lago.customers.get("acme")
    patient = lago.with_options(max_retries=5, timeout=3)
    assert isinstance(patient, Lago)
    assert (patient.max_retries, patient.timeout) == (5, 3)
    assert (lago.max_retries, lago.timeout) == (2, 60)
    assert patient.customers.get("acme").external_id == "acme"
    assert lago._b is not None and patient._b is not None
    assert patient._b.live is lago._b.live  # one portal thread
    assert patient._b.client._transport._holder is lago._b.client._transport._holder
    assert len(portal_threads()) == 1
    with pytest.raises(LagoValidationError):
        lago.with_options(timeout=0)  # checked at once, in the caller's thread


def test_the_ingestor_is_a_with_block(lago: Lago, fake: FakeLago) -> None:
    def event(n: int | str) -> dict[str, str]:
        return {"transaction_id": f"i-{n}", "code": "api", "external_subscription_id": "sub_1"}

    with lago.events.ingestor(batch_size=10) as ingest:
        assert isinstance(ingest, EventIngestor)
        for n in range(95):
            ingest.send(event(n))
        ingest.send_nowait(event(95))
        ingest.flush()
        assert ingest.stats.delivered == 96
        ingest.send(event(3))  # stored already: a duplicate, not an error
        with pytest.raises(LagoValidationError):  # checked in the caller's thread
            ingest.send({"code": "api", "external_subscription_id": "sub_1"})
    stats = ingest.stats  # readable after the block
    assert (stats.accepted, stats.delivered, stats.duplicates) == (97, 96, 1)
    assert ingest.rejected == [] and ingest.failed == []
    assert ingest.batch_size == 10
    assert len(fake.events) == 96


def test_the_ingestor_needs_its_with_block(lago: Lago, fake: FakeLago) -> None:
    # The blocking send hands events over with send_threadsafe, which needs the ingestor
    # started in the portal's loop: entering the block (or __enter__) does that.
    ingest = lago.events.ingestor()
    event = {"transaction_id": "solo", "code": "api", "external_subscription_id": "sub_1"}
    with pytest.raises(LagoError, match="enter its block"):
        ingest.send(event)
    ingest.__enter__()
    ingest.send(event)
    ingest.close()
    assert ingest.stats.delivered == 1
    assert [e["transaction_id"] for e in fake.events] == ["solo"]


def test_configuration_errors_raise_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAGO_API_KEY", raising=False)
    before = portal_threads()
    with pytest.raises(LagoError, match="no API key"):
        Lago()
    with pytest.raises(LagoValidationError, match="timeout"):
        Lago(api_key="k", timeout=-1)
    assert portal_threads() == before  # nothing started


async def test_an_aiohttp_session_is_refused() -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        with pytest.raises(LagoValidationError) as caught:
            Lago(api_key="k", session=session)
    assert caught.value.field == "session"


def test_the_portal_starts_on_first_call_and_stops_on_close(fake: FakeLago) -> None:
    before = set(threading.enumerate())
    lago = Lago(api_key=fake.api_key, base_url=fake.base_url)
    assert repr(lago).startswith("Lago(base_url=")
    assert lago.base_url == fake.base_url  # configuration reads start nothing
    assert set(threading.enumerate()) == before
    lago.customers.get("acme")
    assert len(set(threading.enumerate()) - before) == 1
    lago.close()
    lago.close()  # twice is fine
    assert set(threading.enumerate()) == before
    # Like AsyncLago after aclose(), a closed client opens again on its next call...
    assert lago.customers.get("acme").external_id == "acme"
    lago.close()
    assert set(threading.enumerate()) == before


def test_objects_of_a_closed_portal_refuse_clearly(fake: FakeLago) -> None:
    with Lago(api_key=fake.api_key, base_url=fake.base_url) as lago:
        pager = lago.customers.list()
    with pytest.raises(LagoError, match="closed"):
        pager.to_list()
    with pytest.raises(LagoError, match="closed"):
        list(pager)


def test_a_forgotten_client_stops_its_thread_when_collected(fake: FakeLago) -> None:
    before = set(threading.enumerate())
    lago = Lago(api_key=fake.api_key, base_url=fake.base_url)
    lago.customers.get("acme")
    assert len(set(threading.enumerate()) - before) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Unclosed client session"
        del lago
        gc.collect()
    assert set(threading.enumerate()) == before


def test_a_one_line_call_on_a_temporary_client(fake: FakeLago) -> None:
    before = set(threading.enumerate())
    pager = Lago(api_key=fake.api_key, base_url=fake.base_url).customers.list()
    gc.collect()
    assert [c.external_id for c in pager] == ["acme"]  # the pager keeps its portal alive
    del pager
    gc.collect()
    assert set(threading.enumerate()) == before


def test_the_async_client_lives_in_the_portal_thread(lago: Lago) -> None:
    lago.customers.get("acme")
    bound = lago._b
    assert bound is not None
    assert isinstance(bound.client, AsyncLago)
    session = bound.client._transport._holder.session
    assert session is not None and not session.closed
    assert bound.live.thread_id != threading.get_ident()
    lago.close()
    assert session.closed
