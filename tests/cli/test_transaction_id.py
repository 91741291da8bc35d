"""``lago_async.transaction_id``: the same event always gets the same id, another event another."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lago_async
import lago_sync
from lago_async import EventInput, LagoValidationError, transaction_id

EVENT: dict[str, Any] = {
    "code": "api_calls",
    "external_subscription_id": "sub_1",
    "timestamp": 1_700_000_000,
    "properties": {"units": 3, "region": "eu", "tags": {"a": 1, "b": [1, 2]}},
}


def test_the_id_has_a_fixed_shape_and_is_exported_by_both_packages() -> None:
    assert re.fullmatch(r"tx_[0-9a-f]{32}", transaction_id(EVENT))
    assert "transaction_id" in lago_async.__all__
    assert lago_sync.transaction_id is lago_async.transaction_id


def test_the_same_event_gets_the_same_id_every_time() -> None:
    # A fixed value: the id must not change between versions, processes or machines, or a
    # re-run backfill would bill everything a second time.
    assert transaction_id(EVENT) == "tx_84a2147c92974cf1e925a1a2699f4520"
    assert transaction_id(EVENT) == transaction_id(dict(EVENT))


def test_key_order_does_not_matter_at_any_depth() -> None:
    reordered = {
        "properties": {"tags": {"b": [1, 2], "a": 1}, "region": "eu", "units": 3},
        "timestamp": 1_700_000_000,
        "external_subscription_id": "sub_1",
        "code": "api_calls",
    }
    assert transaction_id(reordered) == transaction_id(EVENT)


def test_the_events_own_transaction_id_and_null_fields_are_left_out() -> None:
    with_id = {**EVENT, "transaction_id": "anything", "precise_total_amount_cents": None}
    assert transaction_id(with_id) == transaction_id(EVENT)
    # so an event keeps its id once the id is added to it
    event = dict(EVENT)
    event["transaction_id"] = transaction_id(event)
    assert transaction_id(event) == event["transaction_id"]


@pytest.mark.parametrize(
    "change",
    [
        {"code": "storage"},
        {"external_subscription_id": "sub_2"},
        {"timestamp": 1_700_000_001},
        {"timestamp": "1700000000"},  # types count: a string is not a number
        {"properties": {"units": 3, "region": "eu", "tags": {"a": 1, "b": [2, 1]}}},
        {"properties": {"units": "3", "region": "eu", "tags": {"a": 1, "b": [1, 2]}}},
        {"properties": {"units": 3.0, "region": "eu", "tags": {"a": 1, "b": [1, 2]}}},
        {"precise_total_amount_cents": "12.5"},
        {"properties": None},
    ],
)
def test_any_other_value_gives_another_id(change: dict[str, Any]) -> None:
    assert transaction_id({**EVENT, **change}) != transaction_id(EVENT)


def test_a_salt_separates_identical_rows() -> None:
    one, two = transaction_id(EVENT, salt="line 1"), transaction_id(EVENT, salt="line 2")
    assert len({one, two, transaction_id(EVENT)}) == 3
    assert transaction_id(EVENT, salt="line 1") == one
    # the salt's length is part of the hash: no salt/event boundary ambiguity
    assert transaction_id(EVENT, salt="") != transaction_id(EVENT)


def test_models_datetimes_and_decimals_hash_as_they_are_sent() -> None:
    model = EventInput(
        transaction_id="ignored",
        code="api_calls",
        external_subscription_id="sub_1",
        timestamp=1_700_000_000,
        properties=EVENT["properties"],
    )
    assert transaction_id(model) == transaction_id(EVENT)
    when = dt.datetime.fromtimestamp(1_700_000_000, tz=dt.timezone.utc)
    assert transaction_id({**EVENT, "timestamp": when}) == transaction_id(EVENT)
    assert transaction_id({**EVENT, "precise_total_amount_cents": Decimal("1.50")}) == (
        transaction_id({**EVENT, "precise_total_amount_cents": "1.50"})
    )


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({**EVENT, "properties": {"units": float("nan")}}, "event.properties.units"),
        ({**EVENT, "properties": {"units": float("inf")}}, "event.properties.units"),
        ({**EVENT, "properties": {"when": object()}}, "event.properties.when"),
        (["not", "a", "mapping"], "event"),
    ],
)
def test_what_cannot_be_sent_is_refused_naming_the_field(event: Any, field: str) -> None:
    with pytest.raises(LagoValidationError) as caught:
        transaction_id(event)
    assert caught.value.field == field


_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=6), _values, max_size=6), st.randoms())
def test_key_order_never_matters(event: dict[str, Any], random: Any) -> None:
    def shuffled(value: Any) -> Any:
        if isinstance(value, dict):
            items = list(value.items())
            random.shuffle(items)
            return {key: shuffled(item) for key, item in items}
        if isinstance(value, list):
            return [shuffled(item) for item in value]
        return value

    assert transaction_id(shuffled(event)) == transaction_id(event)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=8), st.text(max_size=8))
def test_different_properties_give_different_ids(a: str, b: str) -> None:
    ids = {transaction_id({**EVENT, "properties": {"k": value}}) for value in (a, b)}
    assert len(ids) == (1 if a == b else 2)
