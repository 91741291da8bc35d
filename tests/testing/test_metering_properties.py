"""Bounded properties of FakeLago's charge models (hypothesis, a few seconds at most)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lago_async.testing._metering import charge_amount, charge_usage, pay_in_advance_fee

MARCH = (
    datetime(2022, 3, 1, tzinfo=timezone.utc),
    datetime(2022, 3, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
)

amounts = st.decimals(min_value=0, max_value=1000, places=4).map(str)
units = st.decimals(min_value=0, max_value=100000, places=3)
whole_units = st.integers(min_value=0, max_value=5000).map(Decimal)


@st.composite
def graduated_ranges(draw: st.DrawFn) -> list[dict[str, Any]]:
    """1 to 4 contiguous ranges ``0-a, a+1-b, ..., z+1-`` with random prices."""
    bounds = sorted(draw(st.sets(st.integers(min_value=1, max_value=3000), max_size=3)))
    lows = [0, *(b + 1 for b in bounds)]
    highs: list[int | None] = [*bounds, None]
    return [
        {
            "from_value": low,
            "to_value": high,
            "per_unit_amount": draw(amounts),
            "flat_amount": draw(amounts),
        }
        for low, high in zip(lows, highs, strict=True)
    ]


@settings(max_examples=200, deadline=None)
@given(per_unit=amounts, flat=amounts, quantity=units)
def test_one_range_graduated_equals_volume(per_unit: str, flat: str, quantity: Decimal) -> None:
    """With a single open range, graduated and volume price alike: units x price + flat."""
    tier = [{"from_value": 0, "to_value": None, "per_unit_amount": per_unit, "flat_amount": flat}]
    graduated = charge_amount("graduated", {"graduated_ranges": tier}, quantity)
    volume = charge_amount("volume", {"volume_ranges": tier}, quantity)
    assert graduated == volume == quantity * Decimal(per_unit) + Decimal(flat)


@settings(max_examples=200, deadline=None)
@given(
    model=st.sampled_from(["standard", "package", "graduated", "volume", "percentage"]),
    ranges=graduated_ranges(),
    price=amounts,
    size=st.integers(min_value=1, max_value=500),
    free=st.integers(min_value=0, max_value=500),
    values=st.lists(st.decimals(min_value=-50, max_value=500, places=2), max_size=8),
)
def test_amounts_are_never_negative(
    model: str,
    ranges: list[dict[str, Any]],
    price: str,
    size: int,
    free: int,
    values: list[Decimal],
) -> None:
    """Whatever the model and the units, an amount is a Decimal of zero or more."""
    properties = {
        "amount": price,
        "package_size": size,
        "free_units": free,
        "graduated_ranges": ranges,
        "volume_ranges": ranges,
        "rate": price,
        "fixed_amount": price,
        "free_units_per_events": free % 5,
    }
    total = sum(values, Decimal(0))
    amount = charge_amount(model, properties, max(total, Decimal(0)), event_values=values)
    assert isinstance(amount, Decimal)
    assert amount >= 0


@settings(max_examples=60, deadline=None)
@given(ranges=graduated_ranges(), sizes=st.lists(st.integers(1, 400), min_size=1, max_size=6))
def test_graduated_fees_in_advance_add_up_to_the_periods_amount(
    ranges: list[dict[str, Any]], sizes: list[int]
) -> None:
    """Billing a graduated charge event by event in advance sums to the period's amount."""
    metric = {"code": "m", "aggregation_type": "sum_agg", "field_name": "n", "filters": []}
    charge = {
        "charge_model": "graduated",
        "pay_in_advance": True,
        "properties": {"graduated_ranges": ranges},
    }
    events = [
        {"code": "m", "timestamp": f"2022-03-{day + 2:02d}T00:00:00Z", "properties": {"n": n}}
        for day, n in enumerate(sizes)
    ]
    fees = sum(
        (
            pay_in_advance_fee(charge, metric, e, events[:i], *MARCH)[1]
            for i, e in enumerate(events)
        ),
        Decimal(0),
    )
    assert fees == charge_usage(charge, metric, events, *MARCH).amount
