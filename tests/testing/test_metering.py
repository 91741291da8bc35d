"""FakeLago's metering engine: aggregations, charge models, filters and pay-in-advance fees.

Expected values come from the worked examples of Lago's public documentation (each test names
its page) or, where the docs give a rule but no total, from that rule computed by hand (the
test says so). The examples are retold in our own words; only the numbers are Lago's.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from lago_async.testing._metering import (
    ALL_FILTER_VALUES,
    Aggregation,
    aggregate,
    amount_cents,
    charge_amount,
    charge_usage,
    pay_in_advance_fee,
)

D = Decimal


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)  # type: ignore[misc]


_ids = itertools.count()


def ev(code: str, timestamp: str, **properties: Any) -> dict[str, Any]:
    """An event as FakeLago stores it."""
    return {
        "transaction_id": f"tx-{next(_ids)}",
        "code": code,
        "external_subscription_id": "sub-1",
        "timestamp": timestamp,
        "properties": properties,
    }


def metric(aggregation_type: str, field_name: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "code": "m",
        "aggregation_type": aggregation_type,
        "field_name": field_name,
        "recurring": False,
        "rounding_function": None,
        "rounding_precision": None,
        "filters": [],
        **extra,
    }


MARCH_2022 = (utc(2022, 3, 1), datetime(2022, 3, 31, 23, 59, 59, 999999, tzinfo=timezone.utc))


def tracked_pages() -> list[dict[str, Any]]:
    """Two page-tracking events: one user, 10 then 20 page views, on 16 and 17 March 2022."""
    return [
        ev("m", "2022-03-16T00:00:00Z", user="1234-5678", pageviews=10),
        ev("m", "2022-03-17T00:00:00Z", user="1234-5678", pageviews=20),
    ]


# -- aggregation types -------------------------------------------------------------------------


def test_count_counts_the_events() -> None:
    """Lago's aggregation examples (two tracked-pages events count as 2 units):
    github.com/getlago/lago-docs docs/guide/04_billable-metrics/aggregation-examples.md and
    getlago.com/docs/guide/billable-metrics/aggregation-types/count."""
    assert aggregate(metric("count_agg"), tracked_pages(), *MARCH_2022) == Aggregation(
        D(2), 2, D(2)
    )


def test_sum_adds_the_field() -> None:
    """getlago.com/docs/guide/billable-metrics/aggregation-types/sum: 20 then 10 requests make
    30 units (the same totals as the tracked-pages example: 10 + 20 page views)."""
    events = [
        ev("m", "2022-03-16T00:00:00Z", total_requests=20),
        ev("m", "2022-03-17T00:00:00Z", total_requests=10),
    ]
    assert aggregate(metric("sum_agg", "total_requests"), events, *MARCH_2022).units == D(30)
    assert aggregate(metric("sum_agg", "pageviews"), tracked_pages(), *MARCH_2022).units == D(30)


def test_max_takes_the_largest_value() -> None:
    """Lago's aggregation examples: the largest of 10 and 20 page views is 20 units
    (lago-docs docs/guide/04_billable-metrics/aggregation-examples.md)."""
    result = aggregate(metric("max_agg", "pageviews"), tracked_pages(), *MARCH_2022)
    assert result == Aggregation(D(20), 2, D(20))


def test_unique_count_counts_distinct_values() -> None:
    """getlago.com/docs/guide/billable-metrics/aggregation-types/count-unique: two events carrying
    the same request id are 1 unit."""
    events = [
        ev("m", "2022-03-16T00:00:00Z", request_id="id_1"),
        ev("m", "2022-03-17T00:00:00Z", request_id="id_1"),
    ]
    assert aggregate(metric("unique_count_agg", "request_id"), events, *MARCH_2022).units == D(1)


def test_latest_takes_the_last_value() -> None:
    """getlago.com/docs/guide/billable-metrics/aggregation-types/latest (20 then 10: 10 units) and
    getlago.com/changelog/latest-aggregation-type (5, 7 then 6 GB: 6 units). The events are
    given out of order: time decides, not the list."""
    docs = [
        ev("m", "2022-03-17T00:00:00Z", total_requests=10),
        ev("m", "2022-03-16T00:00:00Z", total_requests=20),
    ]
    assert aggregate(metric("latest_agg", "total_requests"), docs, *MARCH_2022).units == D(10)
    changelog = [
        ev("m", f"2022-03-0{day}T00:00:00Z", gb=gb) for day, gb in ((2, 5), (3, 7), (4, 6))
    ]
    assert aggregate(metric("latest_agg", "gb"), changelog, *MARCH_2022).units == D(6)


def test_weighted_sum_is_the_time_average_over_the_period() -> None:
    """getlago.com/docs/guide/billable-metrics/aggregation-types/weighted-sum: in March 2022
    (2,678,400 s), 20 GB from 16 March and 10 GB more from 17 March: 20 GB held one day and
    30 GB held the last 15 days average 15.1612903226 GB over the month."""
    events = [
        ev("m", "2022-03-16T00:00:00Z", gb=20),
        ev("m", "2022-03-17T00:00:00Z", gb=10),
    ]
    result = aggregate(
        metric("weighted_sum_agg", "gb", weighted_interval="seconds"), events, *MARCH_2022
    )
    assert round(result.units, 10) == D("15.1612903226")
    assert result.events_count == 2


def test_recurring_weighted_sum_starts_from_the_previous_level() -> None:
    """Lago's weighted sum query (app/services/events/stores/postgres/weighted_sum_query.rb): a
    recurring metric's level opens at the sum of all earlier events. 30 GB carried into April
    (30 days) and 10 GB taken off on 16 April give (30 x 15 + 20 x 15) / 30 = 25."""
    events = [
        ev("m", "2022-03-16T00:00:00Z", gb=20),
        ev("m", "2022-03-17T00:00:00Z", gb=10),
        ev("m", "2022-04-16T00:00:00Z", gb=-10),
    ]
    april = (utc(2022, 4, 1), datetime(2022, 4, 30, 23, 59, 59, 999999, tzinfo=timezone.utc))
    recurring = metric("weighted_sum_agg", "gb", recurring=True)
    assert aggregate(recurring, events, *april).units == D(25)
    metered = metric("weighted_sum_agg", "gb")
    assert aggregate(metered, events, *april).units == D(0)


def test_only_this_metrics_events_inside_the_period_count() -> None:
    """Events of another code, before the period or after it do not count."""
    events = [
        *tracked_pages(),
        ev("other", "2022-03-18T00:00:00Z", pageviews=1000),
        ev("m", "2022-02-28T23:59:59Z", pageviews=1000),
        ev("m", "2022-04-01T00:00:00Z", pageviews=1000),
    ]
    assert aggregate(metric("sum_agg", "pageviews"), events, *MARCH_2022) == Aggregation(
        D(30), 2, D(30)
    )


def test_the_last_instant_of_the_period_belongs_to_it() -> None:
    """An event at 23:59:59.5 on the period's last day counts (to_datetime is end of day)."""
    events = [ev("m", "2022-03-31T23:59:59.500Z", pageviews=3)]
    assert aggregate(metric("sum_agg", "pageviews"), events, *MARCH_2022).units == D(3)


@pytest.mark.parametrize(
    "aggregation_type",
    ["count_agg", "sum_agg", "max_agg", "unique_count_agg", "latest_agg", "weighted_sum_agg"],
)
def test_an_empty_period_gives_zero(aggregation_type: str) -> None:
    """No event: every aggregation type answers 0 units from 0 events."""
    assert aggregate(metric(aggregation_type, "v"), [], *MARCH_2022) == Aggregation(D(0), 0, D(0))


def test_decimals_stay_exact() -> None:
    """Values sent as decimal strings, floats or ints add up without float error."""
    events = [
        ev("m", "2022-03-02T00:00:00Z", v="0.1"),
        ev("m", "2022-03-03T00:00:00Z", v=0.1),
        ev("m", "2022-03-04T00:00:00Z", v=0.1),
        ev("m", "2022-03-05T00:00:00Z", v="12345678901234567890.000000001"),
    ]
    result = aggregate(metric("sum_agg", "v"), events, *MARCH_2022)
    assert result.units == D("12345678901234567890.300000001")
    assert isinstance(result.units, Decimal)


def test_values_that_are_not_numbers_are_skipped() -> None:
    """Lago aggregates numeric properties only (its event store's numeric condition): a missing
    field, text, or a boolean is left out, and not counted as an event."""
    events = [
        ev("m", "2022-03-02T00:00:00Z", v="7"),
        ev("m", "2022-03-03T00:00:00Z", v="seven"),
        ev("m", "2022-03-04T00:00:00Z", v=True),
        ev("m", "2022-03-05T00:00:00Z"),
    ]
    assert aggregate(metric("sum_agg", "v"), events, *MARCH_2022) == Aggregation(D(7), 1, D(7))


@pytest.mark.parametrize(
    ("function", "precision", "expected"),
    [
        ("round", 2, "1.24"),
        ("round", 0, "1"),
        ("ceil", 1, "1.3"),
        ("floor", 2, "1.23"),
        ("ceil", 0, "2"),
        ("round", -1, "0"),
        (None, None, "1.235"),
    ],
)
def test_rounding_function_and_precision(
    function: str | None, precision: int | None, expected: str
) -> None:
    """The billable metric object (getlago.com/docs/api-reference/billable-metrics/object):
    ``rounding_function`` round/ceil/floor at ``rounding_precision`` decimal places, which may
    be negative. Half rounds up, as Ruby's BigDecimal#round in Lago's apply_rounding_service."""
    events = [ev("m", "2022-03-02T00:00:00Z", v="1.235")]
    rounded = metric("sum_agg", "v", rounding_function=function, rounding_precision=precision)
    assert aggregate(rounded, events, *MARCH_2022).units == D(expected)


def test_negative_precision_rounds_to_tens() -> None:
    """A precision of -1 rounds 125 to 130 and -2 floors 199 to 100 (plain digits, no exponent)."""
    events = [ev("m", "2022-03-02T00:00:00Z", v=125)]
    tens = metric("sum_agg", "v", rounding_function="round", rounding_precision=-1)
    assert str(aggregate(tens, events, *MARCH_2022).units) == "130"
    hundreds = metric("sum_agg", "v", rounding_function="floor", rounding_precision=-2)
    events = [ev("m", "2022-03-02T00:00:00Z", v=199)]
    assert str(aggregate(hundreds, events, *MARCH_2022).units) == "100"


def test_filter_values_keep_matching_events() -> None:
    """``filter_values`` keeps the events whose property holds one of the listed values."""
    events = [
        ev("m", "2022-03-02T00:00:00Z", v=1, region="us"),
        ev("m", "2022-03-03T00:00:00Z", v=10, region="eu"),
        ev("m", "2022-03-04T00:00:00Z", v=100, region="asia"),
        ev("m", "2022-03-05T00:00:00Z", v=1000),
    ]
    sums = metric("sum_agg", "v")
    assert aggregate(sums, events, *MARCH_2022, filter_values={"region": ["us"]}).units == D(1)
    both = {"region": ["us", "eu"]}
    assert aggregate(sums, events, *MARCH_2022, filter_values=both).units == D(11)


# -- persisted (recurring) metrics -------------------------------------------------------------


SEPTEMBER = (utc(2023, 9, 1), datetime(2023, 9, 30, 23, 59, 59, 999999, tzinfo=timezone.utc))
OCTOBER = (utc(2023, 10, 1), datetime(2023, 10, 31, 23, 59, 59, 999999, tzinfo=timezone.utc))
NOVEMBER = (utc(2023, 11, 1), datetime(2023, 11, 30, 23, 59, 59, 999999, tzinfo=timezone.utc))


def seats() -> list[dict[str, Any]]:
    """Seat "ann" added on 15 September and removed on 22 October; "bob" added on 20 September."""
    return [
        ev("m", "2023-09-15T09:00:00Z", user="ann", operation_type="add"),
        ev("m", "2023-09-20T09:00:00Z", user="bob", operation_type="add"),
        ev("m", "2023-10-22T17:00:00Z", user="ann", operation_type="remove"),
    ]


def test_persisted_seats_carry_over_until_removed() -> None:
    """The persisted-events guide and the recurring-count changelog
    (getlago.com/changelog/recurring-count; lago-docs docs/guide/04_billable-metrics/
    aggregation-types.md): an added seat stays billed period after period without new events,
    and a removed one leaves at the end of the period it was removed in. So 2 seats in
    September, 1 in October (ann left) and still 1 in November, with no November event."""
    seat_metric = metric("unique_count_agg", "user", recurring=True)
    assert aggregate(seat_metric, seats(), *SEPTEMBER).units == D(2)
    assert aggregate(seat_metric, seats(), *OCTOBER).units == D(1)
    assert aggregate(seat_metric, seats(), *NOVEMBER) == Aggregation(D(1), 0, D(1))


def test_prorated_seats_pay_for_their_days() -> None:
    """getlago.com/changelog/recurring-count: a seat added on 15 September is billed from 15 to
    30 September (16 of 30 days) and, removed on 22 October, from 1 to 22 October (22 of 31
    days). Bob, added on 20 September, pays 11/30 then all of October. Lago rounds the prorated
    units up at 5 decimals; the unprorated units stay in ``full_units``."""
    seat_metric = metric("unique_count_agg", "user", recurring=True)
    september = aggregate(seat_metric, seats(), *SEPTEMBER, prorated=True)
    assert september.units == D("0.90000")  # (16 + 11) / 30
    assert september.full_units == D(2)
    october = aggregate(seat_metric, seats(), *OCTOBER, prorated=True)
    assert october.units == D("1.70968")  # (22 + 31) / 31 = 1.709677...
    assert october.full_units == D(1)
    assert aggregate(seat_metric, seats(), *NOVEMBER, prorated=True).units == D(1)


def test_prorated_seat_example_of_the_docs() -> None:
    """getlago.com/docs/guide/plans/charges/prorated-vs-full: a 10-dollar seat used 22 days of
    a 30-day month costs 7.33 when prorated and the full 10 otherwise."""
    june = (utc(2023, 6, 1), datetime(2023, 6, 30, 23, 59, 59, 999999, tzinfo=timezone.utc))
    seat_metric = metric("unique_count_agg", "user", recurring=True)
    events = [ev("m", "2023-06-09T10:00:00Z", user="ann")]  # 9 to 30 June: 22 days
    charge = {"charge_model": "standard", "properties": {"amount": "10"}, "prorated": True}
    assert amount_cents(charge_usage(charge, seat_metric, events, *june).amount) == 733
    full = {**charge, "prorated": False}
    assert charge_usage(full, seat_metric, events, *june).amount == D(10)


def test_a_seat_removed_and_added_back_the_same_day_is_not_interrupted() -> None:
    """Lago's prorated unique count query (postgres/unique_count_query.rb) drops a remove that
    is followed the same day by an add: the seat pays all 30 days of September, not 31."""
    events = [
        ev("m", "2023-09-01T08:00:00Z", user="ann"),
        ev("m", "2023-09-10T08:00:00Z", user="ann", operation_type="remove"),
        ev("m", "2023-09-10T18:00:00Z", user="ann", operation_type="add"),
    ]
    seat_metric = metric("unique_count_agg", "user", recurring=True)
    assert aggregate(seat_metric, events, *SEPTEMBER, prorated=True).units == D(1)


def test_metered_unique_count_resets_each_period() -> None:
    """A metered (not recurring) unique count starts again from zero each period
    (getlago.com/docs/guide/billable-metrics/recurring-vs-metered)."""
    metered = metric("unique_count_agg", "user")
    assert aggregate(metered, seats(), *SEPTEMBER).units == D(2)
    assert aggregate(metered, seats(), *OCTOBER).units == D(0)  # ann's remove only


def test_recurring_sum_carries_over_and_prorates_new_units() -> None:
    """A recurring sum keeps earlier periods' total (recurring-vs-metered page); prorated, a unit
    added on 21 September (10 of 30 days) counts 1/3 and the 3 carried units count fully."""
    events = [
        ev("m", "2023-08-10T00:00:00Z", gb=3),
        ev("m", "2023-09-21T00:00:00Z", gb=1),
    ]
    storage = metric("sum_agg", "gb", recurring=True)
    assert aggregate(storage, events, *SEPTEMBER).units == D(4)
    prorated = aggregate(storage, events, *SEPTEMBER, prorated=True)
    assert prorated.units == D("3.33334")
    assert prorated.full_units == D(4)
    assert aggregate(metric("sum_agg", "gb"), events, *SEPTEMBER).units == D(1)


def test_first_period_proration_uses_the_whole_period_length() -> None:
    """A subscription started on 16 September pays a carried unit 15/30 of the month (the
    denominator is the whole period, as Lago's charges duration)."""
    events = [ev("m", "2023-09-16T00:00:00Z", gb=1)]
    storage = metric("sum_agg", "gb", recurring=True)
    started = (utc(2023, 9, 16), SEPTEMBER[1])
    result = aggregate(storage, events, *started, prorated=True, period_length_days=30)
    assert result.units == D("0.5")


# -- charge models -----------------------------------------------------------------------------


def test_standard_model() -> None:
    """getlago.com/docs/guide/plans/charges/charge-models/standard: 1,000 API calls at 0.05
    cost 50."""
    assert charge_amount("standard", {"amount": "0.05"}, D(1000)) == D(50)


def test_package_model() -> None:
    """getlago.com/docs/guide/plans/charges/charge-models/package: 5 per package of 100, the
    first 100 units free: 201 units cost 0 + 5 + 5 = 10."""
    properties = {"amount": "5", "package_size": 100, "free_units": 100}
    assert charge_amount("package", properties, D(201)) == D(10)
    assert charge_amount("package", properties, D(100)) == D(0)
    assert charge_amount("package", properties, D(101)) == D(5)


GRADUATED_DOCS = [
    {"from_value": 0, "to_value": 100, "per_unit_amount": "1", "flat_amount": "0"},
    {"from_value": 101, "to_value": 200, "per_unit_amount": "0.5", "flat_amount": "0"},
    {"from_value": 201, "to_value": None, "per_unit_amount": "0.1", "flat_amount": "0"},
]


def test_graduated_model() -> None:
    """getlago.com/docs/guide/plans/charges/charge-models/graduated gives the tiers (1 each for
    the first 100 units, 0.50 for the next 100, 0.10 beyond) but no total; by that rule 250
    units cost 100 + 50 + 5 = 155 (our arithmetic). Ranges written with shared bounds
    (0-100, 100-200, 200-) price the same, as Lago's adjacent ranges."""
    properties = {"graduated_ranges": GRADUATED_DOCS}
    assert charge_amount("graduated", properties, D(250)) == D(155)
    assert charge_amount("graduated", properties, D(100)) == D(100)
    assert charge_amount("graduated", properties, D(101)) == D("100.5")
    adjacent = [
        {**GRADUATED_DOCS[0]},
        {**GRADUATED_DOCS[1], "from_value": 100},
        {**GRADUATED_DOCS[2], "from_value": 200},
    ]
    assert charge_amount("graduated", {"graduated_ranges": adjacent}, D(250)) == D(155)


def test_graduated_flat_amount_is_due_once_a_tier_is_reached() -> None:
    """The graduated docs' "flat fee to an entire tier" (and Lago's graduated_service): reaching
    the second tier adds its whole flat amount once."""
    ranges = [
        {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "2"},
        {"from_value": 11, "to_value": None, "per_unit_amount": "0.5", "flat_amount": "3"},
    ]
    properties = {"graduated_ranges": ranges}
    assert charge_amount("graduated", properties, D(10)) == D(12)
    assert charge_amount("graduated", properties, D(12)) == D(16)


def test_volume_model() -> None:
    """getlago.com/docs/guide/plans/charges/charge-models/volume: 65,000 API calls fall in the
    50,001-100,000 tier (0.0006 each, 10 flat): 65,000 x 0.0006 + 10 = 49."""
    ranges = [
        {"from_value": 0, "to_value": 10000, "per_unit_amount": "0.0010", "flat_amount": "10"},
        {"from_value": 10001, "to_value": 50000, "per_unit_amount": "0.0008", "flat_amount": "10"},
        {
            "from_value": 50001,
            "to_value": 100000,
            "per_unit_amount": "0.0006",
            "flat_amount": "10",
        },
        {"from_value": 100001, "to_value": None, "per_unit_amount": "0.0004", "flat_amount": "10"},
    ]
    assert charge_amount("volume", {"volume_ranges": ranges}, D(65000)) == D(49)


def test_percentage_model_with_free_units() -> None:
    """getlago.com/docs/guide/plans/charges/charge-models/percentage: 1.2% plus 0.10 per
    transaction, the first 3 events or the first 500 free. Transactions of 200, 100, 100 and
    50: only the fourth is charged, 0.10 + 1.2% of 50 = 0.70."""
    properties = {
        "rate": "1.2",
        "fixed_amount": "0.10",
        "free_units_per_events": 3,
        "free_units_per_total_aggregation": "500",
    }
    values = [D(200), D(100), D(100), D(50)]
    assert charge_amount("percentage", properties, D(450), event_values=values) == D("0.70")
    assert charge_amount("percentage", {"rate": "1.2"}, D(450), event_values=values) == D("5.4")


def test_percentage_per_transaction_minimum_and_maximum() -> None:
    """The percentage docs' per-transaction spending minimum and maximum (rule from Lago's
    percentage_service, no worked example in the docs): at 1% + 0.10, a 10 transaction's 0.20
    is raised to the 1.00 minimum and a 1,000 one's 10.10 capped at 5.00 (our arithmetic)."""
    properties = {
        "rate": "1",
        "fixed_amount": "0.10",
        "per_transaction_min_amount": "1.00",
        "per_transaction_max_amount": "5.00",
    }
    values = [D(10), D(1000)]
    assert charge_amount("percentage", properties, D(1010), event_values=values) == D(6)


def test_graduated_percentage_model_fees_in_advance() -> None:
    """getlago.com/docs/guide/plans/charges/charge-models/graduated-percentage: tiers 0-1,000 at
    1% + 200 flat, 1,001-10,000 at 2% + 300 flat, beyond at 3% + 400. Transactions of 500, 550
    and 4,000 cost 205, then 306 (5 + 1 + 300), then 80; the period's total is their sum."""
    ranges = [
        {"from_value": 0, "to_value": 1000, "rate": "1", "flat_amount": "200"},
        {"from_value": 1001, "to_value": 10000, "rate": "2", "flat_amount": "300"},
        {"from_value": 10001, "to_value": None, "rate": "3", "flat_amount": "400"},
    ]
    charge = {
        "billable_metric_code": "m",
        "charge_model": "graduated_percentage",
        "pay_in_advance": True,
        "properties": {"graduated_percentage_ranges": ranges},
    }
    amounts = metric("sum_agg", "amount")
    events = [
        ev("m", "2022-03-02T00:00:00Z", amount=500),
        ev("m", "2022-03-03T00:00:00Z", amount=550),
        ev("m", "2022-03-04T00:00:00Z", amount=4000),
    ]
    fees = [
        pay_in_advance_fee(charge, amounts, event, events[:index], *MARCH_2022)
        for index, event in enumerate(events)
    ]
    assert fees == [(D(500), D(205)), (D(550), D(306)), (D(4000), D(80))]
    usage = charge_usage(charge, amounts, events, *MARCH_2022)
    assert usage.amount == D(591)


def test_dynamic_model() -> None:
    """getlago.com/docs/guide/plans/charges/charge-models/dynamic: events of 7, 5 and 10 units
    priced 0.70, 0.55 and 2.20 (``precise_total_amount_cents`` 70, 55, 220) make one fee of 22
    units and 3.45."""
    events = [
        {**ev("m", "2024-10-10T10:00:00Z", units=u), "precise_total_amount_cents": cents}
        for u, cents in ((7, "70"), (5, "55"), (10, "220"))
    ]
    charge = {"charge_model": "dynamic", "properties": {}}
    october = (utc(2024, 10, 1), datetime(2024, 10, 31, 23, 59, 59, 999999, tzinfo=timezone.utc))
    usage = charge_usage(charge, metric("sum_agg", "units"), events, *october)
    assert (usage.units, usage.events_count, usage.amount) == (D(22), 3, D("3.45"))


def test_amount_cents_rounds_half_up() -> None:
    """Fees are rounded to the currency's cents half up (Lago's BigDecimal#round)."""
    assert amount_cents(D("7.3334")) == 733
    assert amount_cents(D("0.005")) == 1
    assert amount_cents(D("1.5"), subunit_to_unit=1) == 2


def test_unknown_models_and_types_are_refused() -> None:
    with pytest.raises(ValueError, match="charge_model"):
        charge_amount("tiered", {}, D(1))
    with pytest.raises(ValueError, match="aggregation_type"):
        aggregate(metric("avg_agg", "v"), [], *MARCH_2022)


# -- charge filters ----------------------------------------------------------------------------


def regional_metric() -> dict[str, Any]:
    return metric(
        "sum_agg",
        "gb",
        filters=[
            {"key": "region", "values": ["us", "eu", "asia"]},
            {"key": "tier", "values": ["hot", "cold"]},
        ],
    )


def regional_charge() -> dict[str, Any]:
    return {
        "billable_metric_code": "m",
        "charge_model": "standard",
        "properties": {"amount": "1"},
        "filters": [
            {
                "invoice_display_name": "US",
                "properties": {"amount": "2"},
                "values": {"region": ["us"]},
            },
            {
                "invoice_display_name": "US hot",
                "properties": {"amount": "5"},
                "values": {"region": ["us"], "tier": ["hot"]},
            },
            {
                "invoice_display_name": "Anywhere cold",
                "properties": {"amount": "3"},
                "values": {"region": [ALL_FILTER_VALUES], "tier": ["cold"]},
            },
        ],
    }


def test_charge_filters_price_each_event_with_its_most_specific_filter() -> None:
    """Charge filters (getlago.com/docs/api-reference/plans/charges/filters/object; Lago's
    charge_filters/event_matching_service.rb): an event goes to the matching filter with the
    most keys, and events matching no filter are priced by the charge's own properties."""
    events = [
        ev("m", "2022-03-02T00:00:00Z", gb=1, region="us"),  # US: 2
        ev("m", "2022-03-03T00:00:00Z", gb=10, region="us", tier="hot"),  # US hot: 50
        ev("m", "2022-03-04T00:00:00Z", gb=100, region="eu", tier="cold"),  # cold: 300
        ev("m", "2022-03-05T00:00:00Z", gb=1000, region="eu"),  # default: 1000
        ev("m", "2022-03-06T00:00:00Z", gb=7, region="mars", tier="cold"),  # default: 7
    ]
    usage = charge_usage(regional_charge(), regional_metric(), events, *MARCH_2022)
    by_name = {f.invoice_display_name: (f.units, f.events_count, f.amount) for f in usage.filters}
    assert by_name == {
        "US": (D(1), 1, D(2)),
        "US hot": (D(10), 1, D(50)),
        "Anywhere cold": (D(100), 1, D(300)),
        None: (D(1007), 2, D(1007)),
    }
    # The usage shows a filter's values as configured, the "all values" marker included
    # (Lago's charge usage serializer: charge_filter.to_h).
    assert usage.filters[2].values == {"region": [ALL_FILTER_VALUES], "tier": ["cold"]}
    assert usage.filters[0].values == {"region": ["us"]}
    assert (usage.units, usage.events_count, usage.amount) == (D(1118), 5, D(1359))


def test_a_charge_without_filters_has_no_filter_usage() -> None:
    charge = {"charge_model": "standard", "properties": {"amount": "2"}}
    usage = charge_usage(charge, metric("count_agg"), tracked_pages(), *MARCH_2022)
    assert usage == (D(2), 2, D(4), [])


# -- pay in advance ----------------------------------------------------------------------------


def test_pay_in_advance_standard_fee_is_the_events_units() -> None:
    """events.estimate_fees on a standard charge: the event's own units at the unit amount."""
    charge = {"charge_model": "standard", "pay_in_advance": True, "properties": {"amount": "0.5"}}
    earlier = [ev("m", "2022-03-02T00:00:00Z", gb=10)]
    new = ev("m", "2022-03-03T00:00:00Z", gb=3)
    assert pay_in_advance_fee(charge, metric("sum_agg", "gb"), new, earlier, *MARCH_2022) == (
        D(3),
        D("1.5"),
    )


def test_pay_in_advance_graduated_fee_is_the_marginal_amount() -> None:
    """Lago's apply_pay_in_advance_charge_model_service: the fee is the amount with the event
    minus the amount without it. With the graduated docs' tiers, 90 units already used and 20
    more cost 10 x 1 + 10 x 0.5 = 15 (our arithmetic)."""
    charge = {
        "charge_model": "graduated",
        "pay_in_advance": True,
        "properties": {"graduated_ranges": GRADUATED_DOCS},
    }
    earlier = [ev("m", "2022-03-02T00:00:00Z", calls=90)]
    new = ev("m", "2022-03-03T00:00:00Z", calls=20)
    assert pay_in_advance_fee(charge, metric("sum_agg", "calls"), new, earlier, *MARCH_2022) == (
        D(20),
        D(15),
    )


def test_pay_in_advance_package_fee_bills_a_started_package() -> None:
    """The package docs' 5 per 100 after 100 free: the 101st unit starts a package (5), the
    102nd costs nothing more."""
    charge = {
        "charge_model": "package",
        "pay_in_advance": True,
        "properties": {"amount": "5", "package_size": 100, "free_units": 100},
    }
    counted = metric("count_agg")
    earlier = [ev("m", f"2022-03-02T00:00:{s:02d}Z") for s in range(60)] * 1
    earlier += [ev("m", f"2022-03-02T00:01:{s:02d}Z") for s in range(40)]
    first = ev("m", "2022-03-03T00:00:00Z")
    assert pay_in_advance_fee(charge, counted, first, earlier, *MARCH_2022) == (D(1), D(5))
    second = ev("m", "2022-03-04T00:00:00Z")
    assert pay_in_advance_fee(charge, counted, second, [*earlier, first], *MARCH_2022) == (
        D(1),
        D(0),
    )


def test_pay_in_advance_seat_already_present_costs_nothing() -> None:
    """Lago's unique count in advance: adding a seat that is already active adds no unit; a seat
    carried from an earlier period counts as present; a new one costs one unit."""
    charge = {"charge_model": "standard", "pay_in_advance": True, "properties": {"amount": "10"}}
    seat_metric = metric("unique_count_agg", "user", recurring=True)
    earlier = seats()[:2]  # ann and bob, added in September
    again = ev("m", "2023-10-05T00:00:00Z", user="ann")
    assert pay_in_advance_fee(charge, seat_metric, again, earlier, *OCTOBER) == (D(0), D(0))
    carol = ev("m", "2023-10-05T00:00:00Z", user="carol")
    assert pay_in_advance_fee(charge, seat_metric, carol, earlier, *OCTOBER) == (D(1), D(10))


def test_pay_in_advance_prorated_standard_fee() -> None:
    """getlago.com/docs/guide/plans/charges/prorated-vs-full: a prorated pay-in-advance seat
    (standard model) is billed for the days left: 22 of June's 30 days of 10 = 7.33."""
    charge = {
        "charge_model": "standard",
        "pay_in_advance": True,
        "prorated": True,
        "properties": {"amount": "10"},
    }
    june = (utc(2023, 6, 1), datetime(2023, 6, 30, 23, 59, 59, 999999, tzinfo=timezone.utc))
    seat_metric = metric("unique_count_agg", "user", recurring=True)
    units, amount = pay_in_advance_fee(
        charge, seat_metric, ev("m", "2023-06-09T10:00:00Z", user="ann"), [], *june
    )
    assert (units, amount_cents(amount)) == (D(1), 733)


def test_pay_in_advance_percentage_fee_is_the_events_share() -> None:
    """The percentage docs' example in advance: the fourth transaction (50) pays 0.70, the first
    three nothing."""
    charge = {
        "charge_model": "percentage",
        "pay_in_advance": True,
        "properties": {
            "rate": "1.2",
            "fixed_amount": "0.10",
            "free_units_per_events": 3,
            "free_units_per_total_aggregation": "500",
        },
    }
    amounts = metric("sum_agg", "amount")
    events = [
        ev("m", f"2022-03-0{day}T00:00:00Z", amount=value)
        for day, value in ((2, 200), (3, 100), (4, 100), (5, 50))
    ]
    fees = [
        pay_in_advance_fee(charge, amounts, event, events[:index], *MARCH_2022)[1]
        for index, event in enumerate(events)
    ]
    assert fees == [D(0), D(0), D(0), D("0.70")]


def test_pay_in_advance_uses_the_events_filter() -> None:
    """An event in advance is priced by its filter, against the earlier events of that filter
    only."""
    charge = {**regional_charge(), "pay_in_advance": True}
    earlier = [ev("m", "2022-03-02T00:00:00Z", gb=1000, region="eu")]
    new = ev("m", "2022-03-03T00:00:00Z", gb=4, region="us", tier="hot")
    assert pay_in_advance_fee(charge, regional_metric(), new, earlier, *MARCH_2022) == (
        D(4),
        D(20),
    )


def test_events_of_another_metric_make_no_fee() -> None:
    charge: Mapping[str, Any] = {"charge_model": "standard", "properties": {"amount": "1"}}
    other = ev("other", "2022-03-03T00:00:00Z", gb=4)
    assert pay_in_advance_fee(charge, metric("sum_agg", "gb"), other, [], *MARCH_2022) == (
        D(0),
        D(0),
    )


def test_pay_in_advance_units_are_not_rounded() -> None:
    """Lago's aggregation base service applies the metric's rounding to the period's usage, not
    to in-advance fees: 0.4 GB on a metric rounded up to whole units is billed as 0.4."""
    charge = {"charge_model": "standard", "pay_in_advance": True, "properties": {"amount": "10"}}
    rounded = metric("sum_agg", "gb", rounding_function="ceil", rounding_precision=0)
    new = ev("m", "2022-03-03T00:00:00Z", gb="0.4")
    assert pay_in_advance_fee(charge, rounded, new, [], *MARCH_2022) == (D("0.4"), D(4))
    assert charge_usage(charge, rounded, [new], *MARCH_2022).units == D(1)


def test_pay_in_advance_bills_only_new_highs() -> None:
    """Lago's sum in advance (aggregations/sum_service.rb, compute_pay_in_advance_aggregation)
    never refunds: after +10 and -4, a +3 that stays under the earlier high of 10 adds nothing,
    and a +5 (level 14) adds the 4 units above that high."""
    charge = {"charge_model": "standard", "pay_in_advance": True, "properties": {"amount": "1"}}
    sums = metric("sum_agg", "gb")
    events = [
        ev("m", f"2022-03-0{day}T00:00:00Z", gb=value)
        for day, value in ((2, 10), (3, -4), (4, 3), (5, 5))
    ]
    units = [
        pay_in_advance_fee(charge, sums, event, events[:index], *MARCH_2022)[0]
        for index, event in enumerate(events)
    ]
    assert units == [D(10), D(0), D(0), D(4)]


def test_float_properties_are_read_as_their_decimal_text() -> None:
    """A JSON number is a number however it is written: 1e-05 is 0.00001."""
    events = [ev("m", "2022-03-02T00:00:00Z", v=1e-05), ev("m", "2022-03-03T00:00:00Z", v=2.5)]
    assert aggregate(metric("sum_agg", "v"), events, *MARCH_2022).units == D("2.50001")
