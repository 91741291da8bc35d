"""FakeLago's billing periods: calendar and anniversary, every interval, month ends, leap years.

The rules are those of Lago's subscription date services (getlago/lago-api,
``app/services/subscriptions/dates/{weekly,monthly,quarterly,semiannual,yearly}_service.rb``)
and of Lago's docs: getlago.com/docs/guide/subscriptions/assign-plan (billing cycles),
getlago.com/changelog/anniversary-date (a plan assigned on 10 August renews every 10th) and
getlago.com/changelog/weekly-plan-interval (calendar weeks run Monday to Sunday). The dates
below are worked out by hand from those rules.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lago_async.testing._metering import billing_period, period_days

INTERVALS = ["weekly", "monthly", "quarterly", "semiannual", "yearly"]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)  # type: ignore[misc]


def day_span(first: date, last: date) -> tuple[datetime, datetime]:
    """From midnight of ``first`` to the last microsecond of ``last``, in UTC."""
    start = datetime(first.year, first.month, first.day, tzinfo=timezone.utc)
    end = datetime(last.year, last.month, last.day, 23, 59, 59, 999999, tzinfo=timezone.utc)
    return start, end


# Sunday 29 November 2026, for a subscription started long before.
NOW = utc(2026, 11, 29, 12, 0)


@pytest.mark.parametrize(
    ("interval", "first", "last", "days"),
    [
        ("weekly", date(2026, 11, 23), date(2026, 11, 29), 7),  # Monday to Sunday
        ("monthly", date(2026, 11, 1), date(2026, 11, 30), 30),
        ("quarterly", date(2026, 10, 1), date(2026, 12, 31), 92),
        ("semiannual", date(2026, 7, 1), date(2026, 12, 31), 184),
        ("yearly", date(2026, 1, 1), date(2026, 12, 31), 365),
    ],
)
def test_calendar_periods(interval: str, first: date, last: date, days: int) -> None:
    """Calendar billing: periods are calendar weeks (from Monday), months, quarters, halves and
    years; ``to_datetime`` is the last instant of the last day (Lago's end_of_day)."""
    anchor = utc(2024, 5, 17, 8, 30)
    assert billing_period("calendar", interval, anchor, NOW) == day_span(first, last)
    assert period_days("calendar", interval, anchor, NOW) == days


@pytest.mark.parametrize(
    ("interval", "first", "last", "days"),
    [
        # 15 January 2026 is a Thursday: weeks run Thursday to Wednesday.
        ("weekly", date(2026, 11, 26), date(2026, 12, 2), 7),
        ("monthly", date(2026, 11, 15), date(2026, 12, 14), 30),
        ("quarterly", date(2026, 10, 15), date(2027, 1, 14), 92),
        ("semiannual", date(2026, 7, 15), date(2027, 1, 14), 184),
        ("yearly", date(2026, 1, 15), date(2027, 1, 14), 365),
    ],
)
def test_anniversary_periods(interval: str, first: date, last: date, days: int) -> None:
    """Anniversary billing: periods start on the subscription's day of week, month or year (the
    anniversary-date changelog: assigned on the 10th, billed every 10th)."""
    anchor = utc(2026, 1, 15)
    assert billing_period("anniversary", interval, anchor, NOW) == day_span(first, last)
    assert period_days("anniversary", interval, anchor, NOW) == days


@pytest.mark.parametrize("interval", INTERVALS)
def test_first_calendar_period_starts_at_the_subscription(interval: str) -> None:
    """A calendar subscription started mid-period opens its first period at its start (Lago's
    dates service clamps the period to started_at); the period's length stays whole."""
    started = utc(2026, 11, 26, 8, 30)  # a Thursday
    whole = billing_period("calendar", interval, utc(2020, 1, 1), NOW)
    first = billing_period("calendar", interval, started, NOW)
    assert first == (started, whole[1])
    assert period_days("calendar", interval, started, NOW) == period_days(
        "calendar", interval, utc(2020, 1, 1), NOW
    )


def test_first_anniversary_period_starts_at_the_subscription_time() -> None:
    """An anniversary subscription started at 08:30 counts events from 08:30 in its first
    period, then from midnight in the next ones."""
    started = utc(2026, 1, 15, 8, 30)
    assert billing_period("anniversary", "monthly", started, utc(2026, 1, 20))[0] == started
    assert billing_period("anniversary", "monthly", started, utc(2026, 2, 20))[0] == utc(
        2026, 2, 15
    )


@pytest.mark.parametrize(
    ("now", "first", "last"),
    [
        (utc(2027, 1, 31), date(2027, 1, 31), date(2027, 2, 27)),
        (utc(2027, 2, 27, 23, 59), date(2027, 1, 31), date(2027, 2, 27)),
        (utc(2027, 2, 28), date(2027, 2, 28), date(2027, 3, 30)),
        (utc(2027, 3, 30), date(2027, 2, 28), date(2027, 3, 30)),
        (utc(2027, 3, 31), date(2027, 3, 31), date(2027, 4, 29)),
        (utc(2027, 4, 30), date(2027, 4, 30), date(2027, 5, 30)),
        (utc(2027, 5, 31), date(2027, 5, 31), date(2027, 6, 29)),
    ],
)
def test_month_end_anniversary_clamps_to_short_months(
    now: datetime, first: date, last: date
) -> None:
    """Started on 31 January: renewals on the last day of shorter months (28 February, 30 April)
    and back on the 31st when the month has one, never drifting (Lago's monthly_service)."""
    assert billing_period("anniversary", "monthly", utc(2027, 1, 31), now) == day_span(first, last)


def test_month_end_anniversary_in_a_leap_year() -> None:
    """Started on 31 January 2028 (a leap year): February's renewal is on the 29th."""
    anchor = utc(2028, 1, 31)
    assert billing_period("anniversary", "monthly", anchor, utc(2028, 2, 28)) == day_span(
        date(2028, 1, 31), date(2028, 2, 28)
    )
    assert billing_period("anniversary", "monthly", anchor, utc(2028, 2, 29)) == day_span(
        date(2028, 2, 29), date(2028, 3, 30)
    )


def test_quarterly_anniversary_from_a_month_end() -> None:
    """Started on 31 August: quarters renew on 30 November, then 28 February (Lago's
    quarterly_service resolves each renewal from the subscription's day)."""
    anchor = utc(2026, 8, 31)
    assert billing_period("anniversary", "quarterly", anchor, utc(2026, 12, 1)) == day_span(
        date(2026, 11, 30), date(2027, 2, 27)
    )
    assert billing_period("anniversary", "quarterly", anchor, utc(2027, 3, 1)) == day_span(
        date(2027, 2, 28), date(2027, 5, 30)
    )


def test_yearly_anniversary_on_the_29th_of_february() -> None:
    """Started on 29 February 2028: renewals on 28 February in common years, on the 29th again
    in 2032 (Lago's yearly_service)."""
    anchor = utc(2028, 2, 29)
    assert billing_period("anniversary", "yearly", anchor, utc(2029, 2, 27)) == day_span(
        date(2028, 2, 29), date(2029, 2, 27)
    )
    assert billing_period("anniversary", "yearly", anchor, utc(2029, 3, 1)) == day_span(
        date(2029, 2, 28), date(2030, 2, 27)
    )
    assert billing_period("anniversary", "yearly", anchor, utc(2032, 2, 29)) == day_span(
        date(2032, 2, 29), date(2033, 2, 27)
    )


def test_leap_year_lengths() -> None:
    """February 2028 has 29 days and 2028 has 366; a leap quarter has 91."""
    anchor = utc(2020, 1, 1)
    assert period_days("calendar", "monthly", anchor, utc(2028, 2, 10)) == 29
    assert period_days("calendar", "yearly", anchor, utc(2028, 2, 10)) == 366
    assert period_days("calendar", "quarterly", anchor, utc(2028, 2, 10)) == 91
    assert period_days("calendar", "quarterly", anchor, utc(2027, 2, 10)) == 90


def test_times_in_other_offsets_are_read_in_utc() -> None:
    """23:30 on 30 November at UTC-2 is already 1 December in UTC: December's period."""
    minus_two = timezone(timedelta(hours=-2))
    now = datetime(2026, 11, 30, 23, 30, tzinfo=minus_two)
    assert billing_period("calendar", "monthly", utc(2020, 1, 1), now)[0] == utc(2026, 12, 1)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="interval"):
        billing_period("calendar", "daily", utc(2020, 1, 1), NOW)
    with pytest.raises(ValueError, match="billing_time"):
        billing_period("monthly", "monthly", utc(2020, 1, 1), NOW)
    with pytest.raises(ValueError, match="aware"):
        billing_period("calendar", "monthly", datetime(2020, 1, 1), NOW)


moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)
)


@settings(max_examples=300, deadline=None)
@given(
    billing_time=st.sampled_from(["calendar", "anniversary"]),
    interval=st.sampled_from(INTERVALS),
    anchor=moments,
    now=moments,
)
def test_periods_hold_now_and_tile_the_timeline(
    billing_time: str, interval: str, anchor: datetime, now: datetime
) -> None:
    """For any start and any moment after it: the period holds the moment, and the next period
    starts right after it ends (no gap, no overlap)."""
    if now < anchor:
        anchor, now = now, anchor
    start, end = billing_period(billing_time, interval, anchor, now)
    assert start <= now <= end
    assert start >= anchor
    following = billing_period(billing_time, interval, anchor, end + timedelta(microseconds=1))
    assert following[0] == end + timedelta(microseconds=1)
    assert following[1] > following[0]
    length = period_days(billing_time, interval, anchor, now)
    assert 7 <= length <= 366
