"""FakeLago's metering engine: billing periods, aggregations and charge models, as pure functions.

Everything here takes API-shaped dicts (a billable metric, a charge, stored events) and aware
datetimes, and answers :class:`~decimal.Decimal` values: no state, no I/O, no floats. The rules
follow Lago's public documentation and, where the documentation is silent, its server's source
(``getlago/lago-api``): the module and function docstrings say which rule came from where and
which choices are ours.

Conventions shared by every function:

* Amounts are in currency units (``Decimal("7.3334")``), never rounded here: round them with
  :func:`amount_cents` where an API field wants cents.
* Times are compared in UTC; a customer's timezone is not modelled (Lago shifts period
  boundaries to the customer's timezone; FakeLago's customers all live in UTC).
* The caller passes the events of one subscription; they are selected here by metric ``code``,
  by period and by property filters.
* A billable metric's ``expression`` is ignored: events are aggregated on ``field_name`` as
  sent. Charges grouped by property (``grouped_by``/``pricing_group_keys``) are not split into
  groups either.
"""

from __future__ import annotations

import calendar
import functools
import itertools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, localcontext
from typing import Any, Final, NamedTuple, ParamSpec, TypeVar

__all__ = [
    "ALL_FILTER_VALUES",
    "Aggregation",
    "ChargeUsage",
    "FilterUsage",
    "aggregate",
    "amount_cents",
    "billing_period",
    "charge_amount",
    "charge_usage",
    "event_time",
    "pay_in_advance_fee",
    "period_days",
]

#: The charge filter value that stands for every value the metric's filter allows.
ALL_FILTER_VALUES: Final = "__ALL_FILTER_VALUES__"

_MONTHS: Final = {"monthly": 1, "quarterly": 3, "semiannual": 6, "yearly": 12}
_INTERVALS: Final = frozenset({"weekly", *_MONTHS})
_BILLING_TIMES: Final = frozenset({"calendar", "anniversary"})
_END_OF_DAY: Final = time(23, 59, 59, 999999)
_ZERO: Final = Decimal(0)
_HUNDRED: Final = Decimal(100)
# Lago reads a property as a number only when its text looks like this (its event stores'
# numeric condition): "12", "-3.5"; not "1e3", not " 4".
_NUMERIC: Final = re.compile(r"-?\d+(\.\d+)?")
# Significant digits of every computation here (the default context keeps 28, which would cut
# the cents off a 20-digit total). Lago computes with BigDecimal.
_PRECISION: Final = 60
_RECURRING_TYPES: Final = frozenset({"sum_agg", "unique_count_agg", "weighted_sum_agg"})
_AGGREGATION_TYPES: Final = frozenset(
    {"count_agg", "sum_agg", "max_agg", "unique_count_agg", "latest_agg", "weighted_sum_agg"}
)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _precise(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``function`` with :data:`_PRECISION` significant digits."""

    @functools.wraps(function)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with localcontext() as context:
            context.prec = _PRECISION
            return function(*args, **kwargs)

    return wrapper


class Aggregation(NamedTuple):
    """The result of aggregating a metric's events over one period.

    ``units`` are the units a charge model prices: prorated when the aggregation was asked for
    proration. ``full_units`` are the same units without proration: what Lago's usage shows
    as ``units``, and what the volume model uses to pick its range. Without proration both are
    equal.
    """

    units: Decimal
    events_count: int
    full_units: Decimal


class FilterUsage(NamedTuple):
    """The usage of one charge filter, or of the charge's default bucket (``values`` None)."""

    values: dict[str, list[str]] | None
    invoice_display_name: str | None
    units: Decimal
    events_count: int
    amount: Decimal


class ChargeUsage(NamedTuple):
    """The usage of one charge over a period: totals over its buckets, and the buckets.

    ``filters`` is empty for a charge without filters; otherwise it holds one entry per charge
    filter, in the charge's order, then the default bucket (``values`` None) for the events
    that match no filter.
    """

    units: Decimal
    events_count: int
    amount: Decimal
    filters: list[FilterUsage]


# -- periods -----------------------------------------------------------------------------------


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime")
    return moment.astimezone(timezone.utc)


def _add_months(anchor: date, months: int) -> date:
    """``anchor`` moved by whole months, its day clamped to the target month's length."""
    years, month_index = divmod(anchor.month - 1 + months, 12)
    year = anchor.year + years
    month = month_index + 1
    return date(year, month, min(anchor.day, calendar.monthrange(year, month)[1]))


def _period_dates(billing_time: str, interval: str, anchor: date, today: date) -> tuple[date, date]:
    """First and last day of the whole period holding ``today`` (not clamped to the anchor)."""
    if billing_time not in _BILLING_TIMES:
        raise ValueError(f"billing_time must be 'calendar' or 'anniversary', not {billing_time!r}")
    if interval not in _INTERVALS:
        raise ValueError(f"unknown interval {interval!r}")
    if interval == "weekly":
        if billing_time == "calendar":
            start = today - timedelta(days=today.weekday())
        else:
            start = anchor + timedelta(days=(today - anchor).days // 7 * 7)
        return start, start + timedelta(days=6)
    step = _MONTHS[interval]
    if billing_time == "calendar":
        start = date(today.year, (today.month - 1) // step * step + 1, 1)
        return start, _add_months(start, step) - timedelta(days=1)
    # Anniversary: periods start on the anchor's day every `step` months, always measured from
    # the anchor itself, so a short month (31 Jan -> 28 Feb) never drags later periods.
    index = ((today.year - anchor.year) * 12 + today.month - anchor.month) // step
    if _add_months(anchor, index * step) > today:
        index -= 1
    start = _add_months(anchor, index * step)
    return start, _add_months(anchor, (index + 1) * step) - timedelta(days=1)


def billing_period(
    billing_time: str, interval: str, anchor: datetime, now: datetime
) -> tuple[datetime, datetime]:
    """The billing period holding ``now``: ``(from_datetime, to_datetime)``, both in UTC.

    ``billing_time`` is ``"calendar"`` (periods aligned on calendar weeks starting Monday,
    months, quarters, half years or years) or ``"anniversary"`` (aligned on ``anchor``, the
    subscription's start: a monthly subscription started on 31 January renews on 28 February
    (29 in leap years), then 31 March; a yearly one started on 29 February renews on
    28 February). ``interval`` is ``weekly``, ``monthly``, ``quarterly``, ``semiannual`` or
    ``yearly``.

    ``from_datetime`` is midnight of the period's first day, or ``anchor`` itself when the
    subscription started inside this period (Lago's first calendar period starts at the
    subscription's start). ``to_datetime`` is the last instant of the period's last day,
    23:59:59.999999, as Lago's ``end_of_day``: events up to that instant belong to the period,
    and the API shows it as ``...T23:59:59Z``. (Lago's
    ``app/services/subscriptions/dates/*_service.rb``.)
    """
    start_of_subscription = _utc(anchor, "anchor")
    start, end = _period_dates(
        billing_time, interval, start_of_subscription.date(), _utc(now, "now").date()
    )
    from_datetime = datetime.combine(start, time(), timezone.utc)
    to_datetime = datetime.combine(end, _END_OF_DAY, timezone.utc)
    if from_datetime < start_of_subscription <= to_datetime:
        from_datetime = start_of_subscription
    return from_datetime, to_datetime


def period_days(billing_time: str, interval: str, anchor: datetime, now: datetime) -> int:
    """How many days the whole period holding ``now`` lasts (7, 28 to 31, 90 to 92, ...).

    A first period shortened by a mid-period start still counts its whole length: this is the
    denominator of proration and of ``weighted_sum_agg``, as in Lago.
    """
    start, end = _period_dates(
        billing_time, interval, _utc(anchor, "anchor").date(), _utc(now, "now").date()
    )
    return (end - start).days + 1


# -- events ------------------------------------------------------------------------------------


def event_time(event: Mapping[str, Any]) -> datetime:
    """An event's ``timestamp`` as an aware UTC datetime.

    Accepts what FakeLago stores and what the API accepts: an ISO 8601 string (``Z`` or an
    offset; no offset means UTC), Unix seconds (number or digit string), or a datetime.
    """
    raw = event.get("timestamp")
    if isinstance(raw, datetime):
        return raw.astimezone(timezone.utc) if raw.tzinfo else raw.replace(tzinfo=timezone.utc)
    if isinstance(raw, (int, float, Decimal)) and not isinstance(raw, bool):
        return datetime.fromtimestamp(float(raw), timezone.utc)
    if isinstance(raw, str):
        text = raw.strip()
        if _NUMERIC.fullmatch(text):
            return datetime.fromtimestamp(float(text), timezone.utc)
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(_six_digit_fraction(text))
        return (
            parsed.astimezone(timezone.utc)
            if parsed.tzinfo
            else parsed.replace(tzinfo=timezone.utc)
        )
    raise ValueError(f"event {event.get('transaction_id')!r} has no usable timestamp")


def _six_digit_fraction(text: str) -> str:
    """Pad or cut a fractional second to six digits (Python 3.10's fromisoformat needs 3 or 6)."""
    match = re.search(r"\.(\d+)", text)
    if not match:
        return text
    digits = (match.group(1) + "000000")[:6]
    return text[: match.start()] + "." + digits + text[match.end() :]


def _properties(event: Mapping[str, Any]) -> Mapping[str, Any]:
    props = event.get("properties")
    return props if isinstance(props, Mapping) else {}


def _text(value: Any) -> str:
    """A property value as Lago's JSON ``->>`` reads it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(value: Any) -> Decimal | None:
    """A property value as a Decimal, or None when Lago would not read it as a number.

    JSON numbers count; text counts only when it is plain digits with an optional sign and
    decimals (Lago's numeric condition on the stored text): "12", "-3.5", not "1e3" or " 4".
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # A JSON number: any finite float is a number, 1e-05 included.
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, str) and _NUMERIC.fullmatch(value):
        return Decimal(value)
    return None


def _decimal(value: Any, default: Decimal = _ZERO) -> Decimal:
    """A configuration amount (decimal string, int or Decimal) as a Decimal."""
    if value is None or value == "":
        return default
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


def _matches(event: Mapping[str, Any], filter_values: Mapping[str, Sequence[Any]] | None) -> bool:
    if not filter_values:
        return True
    props = _properties(event)
    return all(
        key in props and _text(props[key]) in {_text(v) for v in values}
        for key, values in filter_values.items()
    )


# -- aggregations ------------------------------------------------------------------------------


def _ceil(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_CEILING)


def _apply_rounding(units: Decimal, function: Any, precision: Any) -> Decimal:
    """``rounding_function`` (round half up, ceil, floor) at ``rounding_precision`` places.

    A negative precision rounds to tens, hundreds...: ``round`` at -1 makes 125 into 130.
    (Lago's ``apply_rounding_service.rb``, Ruby's BigDecimal rounding.)
    """
    modes = {"round": ROUND_HALF_UP, "ceil": ROUND_CEILING, "floor": ROUND_FLOOR}
    if function not in modes:
        return units
    places = int(precision or 0)
    shifted = units.scaleb(places).quantize(Decimal(1), rounding=modes[function])
    if places < 0:
        return Decimal(int(shifted) * 10**-places)  # plain digits: 130, not 1.3E+2
    return shifted.scaleb(-places)


@_precise
def aggregate(
    metric: Mapping[str, Any],
    events: Iterable[Mapping[str, Any]],
    period_from: datetime,
    period_to: datetime,
    *,
    filter_values: Mapping[str, Sequence[Any]] | None = None,
    prorated: bool = False,
    period_length_days: int | None = None,
) -> Aggregation:
    """Aggregate ``metric`` over the events of one subscription in ``[period_from, period_to]``.

    Only events whose ``code`` is the metric's and, with ``filter_values`` (``{key: [values]}``),
    whose properties hold one of the listed values for every key, count. Events whose
    ``field_name`` property is missing or not a number are skipped by the numeric types, and
    missing ones by ``unique_count_agg``. ``events_count`` counts the period's events used.

    * ``count_agg``: the number of events. ``sum_agg``: their field's sum. ``max_agg``: the
      largest value. ``latest_agg``: the value of the last event by timestamp (send order
      breaks ties), negatives read as 0. (getlago.com/docs/guide/billable-metrics/
      aggregation-types/*.)
    * ``unique_count_agg``: distinct field values; ``properties.operation_type`` ``"remove"``
      takes a value out again, ``"add"`` (the default) puts it back. A repeated add or remove
      changes nothing, and a remove of an absent value is ignored.
    * ``weighted_sum_agg``: each event adds its value to a running level; the result is the
      level's time average over the whole period, in seconds: sum(level x seconds held) /
      seconds of the period (``period_length_days`` x 86400).
    * ``recurring`` metrics (sum, unique count, weighted sum) carry over: every event up to
      ``period_to`` counts, including those of earlier periods, so a seat added in September
      is still there in October until a ``remove`` event (the persisted-events rule).
    * ``prorated`` (a prorated charge on a recurring sum or unique count) weighs each unit by
      the share of the period's days it was present, counting both the first and the last day
      (whole days in UTC): a seat added on 9 June of a 30-day period counts 22/30. A value
      carried from an earlier period counts for the days of ``[period_from, period_to]``; a
      value removed and re-added on the same day is not interrupted. The result is rounded up
      at 5 decimals, as Lago's. ``full_units`` keeps the unprorated count.
      (Lago's ``prorated_aggregations/*`` and ``postgres/unique_count_query.rb``; the docs'
      "prorated vs full" page.)
    * The metric's ``rounding_function``/``rounding_precision`` apply to the result last.
    * Units never go below zero.

    ``period_length_days`` is the whole period's length for proration and weighted sums; it
    defaults to the days from ``period_from`` to ``period_to`` (pass :func:`period_days` when
    the first period was shortened by a mid-period start).
    """
    kind = metric.get("aggregation_type")
    if kind not in _AGGREGATION_TYPES:
        raise ValueError(f"unknown aggregation_type {kind!r}")
    start = _utc(period_from, "period_from")
    end = _utc(period_to, "period_to")
    days = period_length_days or (end.date() - start.date()).days + 1
    field = metric.get("field_name")
    recurring = bool(metric.get("recurring")) and kind in _RECURRING_TYPES
    timed = sorted(
        (
            (event_time(ev), index, ev)
            for index, ev in enumerate(events)
            if ev.get("code") == metric.get("code") and _matches(ev, filter_values)
        ),
        key=lambda row: (row[0], row[1]),
    )
    timed = [row for row in timed if row[0] <= end]
    earlier = [(at, ev) for at, _, ev in timed if at < start]
    inside = [(at, ev) for at, _, ev in timed if at >= start]

    if kind == "count_agg":
        units = full = Decimal(len(inside))
        count = len(inside)
    elif kind == "unique_count_agg":
        units, full, count = _unique_count(
            earlier if recurring else [], inside, field, start, end, days, prorated and recurring
        )
    else:
        numbers = _numbers(inside, field)
        numbers_before = _numbers(earlier, field)
        count = len(numbers)
        if kind == "sum_agg":
            carried = sum((v for _, v in numbers_before), _ZERO) if recurring else _ZERO
            full = carried + sum((v for _, v in numbers), _ZERO)
            units = full
            if prorated and recurring:
                share = Decimal((end.date() - start.date()).days + 1) / days
                weighted = sum(
                    (v * ((end.date() - at.date()).days + 1) / days for at, v in numbers), _ZERO
                )
                units = _ceil(carried * share + weighted, 5)
        elif kind == "max_agg":
            units = full = max((v for _, v in numbers), default=_ZERO)
        elif kind == "latest_agg":
            units = full = numbers[-1][1] if numbers else _ZERO
        else:
            initial = sum((v for _, v in numbers_before), _ZERO) if recurring else _ZERO
            units = full = _weighted_sum(initial, numbers, start, end, days)
    rounding = (metric.get("rounding_function"), metric.get("rounding_precision"))
    return Aggregation(
        max(_apply_rounding(units, *rounding), _ZERO),
        count,
        max(_apply_rounding(full, *rounding), _ZERO),
    )


def _numbers(
    rows: Sequence[tuple[datetime, Mapping[str, Any]]], field: Any
) -> list[tuple[datetime, Decimal]]:
    numbers: list[tuple[datetime, Decimal]] = []
    for at, event in rows:
        value = _number(_field(event, field))
        if value is not None:
            numbers.append((at, value))
    return numbers


def _field(event: Mapping[str, Any], field: Any) -> Any:
    return _properties(event).get(field) if isinstance(field, str) else None


def _weighted_sum(
    initial: Decimal,
    numbers: Sequence[tuple[datetime, Decimal]],
    start: datetime,
    end: datetime,
    days: int,
) -> Decimal:
    """Time-weighted level over the period (Lago's ``postgres/weighted_sum_query.rb``).

    The level starts at ``initial`` at ``start``; each event adds its value at its timestamp;
    the last level holds until ``end`` rounded up to the whole second (23:59:59.999999 counts as
    midnight). Lago rounds the result up at 20 decimals.
    """
    stop = end if end.microsecond == 0 else end.replace(microsecond=0) + timedelta(seconds=1)
    points = [(start, initial), *numbers, (stop, _ZERO)]
    level = _ZERO
    total = _ZERO
    for (at, value), (next_at, _) in itertools.pairwise(points):
        level += value
        total += level * _seconds(next_at - at)
    return _ceil(total / (Decimal(days) * 86400), 20)


def _seconds(delta: timedelta) -> Decimal:
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds).scaleb(-6)


def _unique_count(
    earlier: Sequence[tuple[datetime, Mapping[str, Any]]],
    inside: Sequence[tuple[datetime, Mapping[str, Any]]],
    field: Any,
    start: datetime,
    end: datetime,
    days: int,
    prorated: bool,
) -> tuple[Decimal, Decimal, int]:
    """Units (prorated or not), full units and events count of a unique count.

    Per value, in time order, an operation counts only when it differs from the previous one
    (the first "previous" being a remove): so the full count is the number of values whose last
    counting operation is an add. (Lago's ``postgres/unique_count_query.rb``.)
    """
    by_value: dict[str, list[tuple[datetime, str]]] = {}
    count = 0
    for position, (at, event) in enumerate([*earlier, *inside]):
        value = _field(event, field)
        if value is None:
            continue
        if position >= len(earlier):
            count += 1
        operation = _properties(event).get("operation_type")
        by_value.setdefault(_text(value), []).append(
            (at, "remove" if operation == "remove" else "add")
        )
    full = 0
    present_days = 0
    for operations in by_value.values():
        previous = "remove"
        for _, operation in operations:
            if operation != previous:
                full += 1 if operation == "add" else -1
            previous = operation
        if prorated:
            present_days += _days_present(operations, start, end)
    units = _ceil(Decimal(present_days) / days, 5) if prorated else Decimal(full)
    return units, Decimal(full), count


def _days_present(
    operations: Sequence[tuple[datetime, str]], start: datetime, end: datetime
) -> int:
    """Days of ``[start, end]`` one value was present, both end days included.

    A remove followed the same day by an add of the same value is dropped (no interruption);
    then only operations that change the state count; each add lasts until the next remove
    (that day included) or the period's end.
    """
    kept = [
        (at, op)
        for index, (at, op) in enumerate(operations)
        if not (
            op == "remove"
            and any(
                later_op != op and later_at.date() == at.date() and later_at > at
                for later_at, later_op in operations[index + 1 :]
            )
        )
    ]
    changes: list[tuple[datetime, str]] = []
    previous = "remove"
    for at, op in kept:
        if op != previous:
            changes.append((at, op))
        previous = op
    total = 0
    for index, (at, op) in enumerate(changes):
        if op != "add":
            continue
        until = changes[index + 1][0] if index + 1 < len(changes) else end
        if until < start:
            continue
        total += (until.date() + timedelta(days=1) - max(at, start).date()).days
    return total


# -- charge models -----------------------------------------------------------------------------


def _ranges(properties: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    ranges = properties.get(key) or []
    return [r for r in ranges if isinstance(r, Mapping)]


def _bound(value: Any) -> Decimal | None:
    return None if value is None else _decimal(value)


@_precise
def charge_amount(
    charge_model: str,
    properties: Mapping[str, Any],
    units: Decimal,
    *,
    event_values: Sequence[Decimal] = (),
    precise_total_amount_cents: Decimal | None = None,
    full_units: Decimal | None = None,
    subunit_to_unit: int = 100,
) -> Decimal:
    """The amount, in currency units, that ``charge_model`` with ``properties`` gives ``units``.

    * ``standard``: ``units x amount``.
    * ``package``: ``free_units`` are free, the rest is billed by whole packages of
      ``package_size`` at ``amount`` each (a started package is due).
    * ``graduated``: each range of ``graduated_ranges`` prices the units falling in it at its
      ``per_unit_amount``, plus its ``flat_amount`` once reached (the first range's flat amount
      is due even at zero units). Ranges written ``0-100, 101-200`` and ``0-100, 100-200``
      both work, as in Lago.
    * ``graduated_percentage``: the same with a ``rate`` (percent) per range, on amounts.
    * ``volume``: every unit at the price of the one range holding the total (``full_units``
      when prorated), plus that range's ``flat_amount``.
    * ``percentage``: ``rate`` percent of ``units``, plus ``fixed_amount`` per event; the
      first ``free_units_per_events`` events and the first ``free_units_per_total_aggregation``
      of amount are free (whichever runs out first), and with ``per_transaction_min_amount``/
      ``per_transaction_max_amount`` each event's fee is clamped (FakeLago acts as a premium
      licence). ``event_values`` are the period's per-event values, in time order.
    * ``dynamic``: the sum of the events' ``precise_total_amount_cents``, in currency units.

    (getlago.com/docs/guide/plans/charges/charge-models/*; Lago's ``app/services/
    charge_models/*``.) Amounts are never negative.
    """
    return max(
        _amount(
            charge_model,
            properties,
            units,
            event_values=event_values,
            precise_total_amount_cents=precise_total_amount_cents,
            full_units=full_units,
            subunit_to_unit=subunit_to_unit,
            before_event=False,
        ),
        _ZERO,
    )


def _amount(
    charge_model: str,
    properties: Mapping[str, Any],
    units: Decimal,
    *,
    event_values: Sequence[Decimal],
    precise_total_amount_cents: Decimal | None,
    full_units: Decimal | None,
    subunit_to_unit: int,
    before_event: bool,
) -> Decimal:
    if charge_model == "standard":
        return units * _decimal(properties.get("amount"))
    if charge_model == "package":
        paid = units - _decimal(properties.get("free_units"))
        size = _decimal(properties.get("package_size"), Decimal(1))
        if paid <= 0 or size <= 0:
            return _ZERO
        packages = (paid / size).to_integral_value(rounding=ROUND_CEILING)
        return packages * _decimal(properties.get("amount"))
    if charge_model == "graduated":
        if before_event and units == 0:
            return _ZERO
        return _graduated(_ranges(properties, "graduated_ranges"), units)
    if charge_model == "graduated_percentage":
        return _graduated_percentage(
            _ranges(properties, "graduated_percentage_ranges"), units, before_event
        )
    if charge_model == "volume":
        return _volume(_ranges(properties, "volume_ranges"), units, full_units)
    if charge_model == "percentage":
        return _percentage(properties, units, event_values)
    if charge_model == "dynamic":
        if units == 0 or precise_total_amount_cents is None:
            return _ZERO
        return precise_total_amount_cents / subunit_to_unit
    raise ValueError(f"unknown charge_model {charge_model!r}")


def _graduated(ranges: Sequence[Mapping[str, Any]], units: Decimal) -> Decimal:
    adjacent = len(ranges) >= 2 and all(
        _decimal(current.get("from_value")) == _decimal(before.get("to_value"))
        for before, current in itertools.pairwise(ranges)
    )
    total = _ZERO
    for tier in ranges:
        low = _decimal(tier.get("from_value"))
        high = _bound(tier.get("to_value"))
        reached = high if high is not None and units >= high else units
        # Lago counts "101-200" as 100 units and, when ranges share bounds ("100-200"), also 100.
        in_tier = reached - low if low == 0 or adjacent else reached - low + 1
        in_tier = max(in_tier, _ZERO)
        total += in_tier * _decimal(tier.get("per_unit_amount")) + _decimal(tier.get("flat_amount"))
        if high is None or high >= units:
            break
    return total


def _graduated_percentage(
    ranges: Sequence[Mapping[str, Any]], units: Decimal, before_event: bool
) -> Decimal:
    total = _ZERO
    for tier in ranges:
        low = _decimal(tier.get("from_value"))
        high = _bound(tier.get("to_value"))
        if high is not None and units >= high:
            in_tier = high - (1 if low == 0 else low) + 1
        else:
            in_tier = units if low == 0 else units - low + 1
        flat = _ZERO if before_event and units == 0 else _decimal(tier.get("flat_amount"))
        total += max(in_tier, _ZERO) * _decimal(tier.get("rate")) / _HUNDRED + flat
        if high is None or high >= units:
            break
    return total


def _volume(
    ranges: Sequence[Mapping[str, Any]], units: Decimal, full_units: Decimal | None
) -> Decimal:
    volume = units if full_units is None else full_units
    ordered = sorted(ranges, key=lambda tier: _decimal(tier.get("from_value")))
    for tier in ordered:
        high = _bound(tier.get("to_value"))
        low = _decimal(tier.get("from_value"))
        if low <= volume.to_integral_value(rounding=ROUND_CEILING) and (
            high is None or volume <= high
        ):
            per_unit = _decimal(tier.get("per_unit_amount"))
            return units * per_unit + _decimal(tier.get("flat_amount"))
    return _ZERO


def _percentage(
    properties: Mapping[str, Any], units: Decimal, event_values: Sequence[Decimal]
) -> Decimal:
    rate = _decimal(properties.get("rate"))
    fixed = _decimal(properties.get("fixed_amount"))
    free_events = int(properties.get("free_units_per_events") or 0)
    free_amount = _decimal(properties.get("free_units_per_total_aggregation"))
    minimum = _bound(properties.get("per_transaction_min_amount"))
    maximum = _bound(properties.get("per_transaction_max_amount"))
    if minimum is not None or maximum is not None:
        return _percentage_per_transaction(
            event_values, rate, fixed, free_events, free_amount, minimum, maximum
        )
    running: list[Decimal] = []
    total = _ZERO
    for value in event_values:
        if free_events > 0:
            if len(running) >= free_events:
                break
        elif free_amount <= 0 or total > free_amount:
            break
        total += value
        running.append(total)
    last = running[-1] if running else _ZERO
    if last == 0:
        free_value = _ZERO
    elif free_amount == 0 or last <= free_amount:
        free_value = last
    else:
        free_value = free_amount
    counts = [n for n in (free_events, sum(1 for r in running if r < free_amount)) if n > 0]
    free_count = min(counts, default=0)
    percent = _ZERO if free_value > units else (units - free_value) * rate / _HUNDRED
    paid_events = len(event_values) - free_count
    fees = fixed * paid_events if units != 0 and paid_events > 0 else _ZERO
    return percent + fees


def _percentage_per_transaction(
    event_values: Sequence[Decimal],
    rate: Decimal,
    fixed: Decimal,
    free_events: int,
    free_amount: Decimal,
    minimum: Decimal | None,
    maximum: Decimal | None,
) -> Decimal:
    """Each event's fee, clamped to the per-transaction minimum and maximum, summed."""
    total = _ZERO
    for raw in event_values:
        value = raw
        if free_events > 0 or free_amount > 0:
            free_events -= 1
            if free_amount <= 0:
                continue
            if free_amount > value:
                free_amount -= value
                continue
            value -= free_amount
            free_amount = _ZERO
            free_events = 0
        fee = value * rate / _HUNDRED + fixed
        if minimum is not None and fee < minimum:
            fee = minimum
        elif maximum is not None and fee > maximum:
            fee = maximum
        total += fee
    return total


@_precise
def amount_cents(amount: Decimal, subunit_to_unit: int = 100) -> int:
    """An amount in currency units as whole cents, half up (Lago rounds each fee this way)."""
    return int((amount * subunit_to_unit).quantize(Decimal(1), rounding=ROUND_HALF_UP))


# -- charges -----------------------------------------------------------------------------------


def _filter_values(
    metric: Mapping[str, Any], charge_filter: Mapping[str, Any]
) -> dict[str, list[str]]:
    """A charge filter's ``values``, ``__ALL_FILTER_VALUES__`` expanded to the metric's values."""
    allowed = {
        str(f.get("key")): [str(v) for v in f.get("values") or []]
        for f in metric.get("filters") or []
        if isinstance(f, Mapping)
    }
    values: dict[str, list[str]] = {}
    for key, listed in (charge_filter.get("values") or {}).items():
        texts = [_text(v) for v in listed]
        values[str(key)] = allowed.get(str(key), []) if texts == [ALL_FILTER_VALUES] else texts
    return values


def _given_values(charge_filter: Mapping[str, Any]) -> dict[str, list[str]]:
    """A charge filter's ``values`` as configured (Lago's usage shows them unexpanded)."""
    return {
        str(key): [_text(v) for v in listed]
        for key, listed in (charge_filter.get("values") or {}).items()
    }


def _bucket(
    metric: Mapping[str, Any], filters: Sequence[Mapping[str, Any]], event: Mapping[str, Any]
) -> int | None:
    """Index of the charge filter an event belongs to, or None for the default bucket.

    An event matches a filter when, for each of the filter's keys, its property holds one of the
    filter's values; only the metric's filter keys are read. Of several matching filters, the
    one with the most keys wins (the first listed on a tie). (Lago's
    ``charge_filters/event_matching_service.rb``.)
    """
    keys = {str(f.get("key")) for f in metric.get("filters") or [] if isinstance(f, Mapping)}
    props = {k: v for k, v in _properties(event).items() if k in keys}
    best: int | None = None
    best_size = -1
    for index, charge_filter in enumerate(filters):
        values = _filter_values(metric, charge_filter)
        matched = values and all(k in props and _text(props[k]) in v for k, v in values.items())
        if matched and len(values) > best_size:
            best, best_size = index, len(values)
    return best


def _charge_filters(charge: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [f for f in charge.get("filters") or [] if isinstance(f, Mapping)]


def _properties_of(charge: Mapping[str, Any], bucket: int | None) -> Mapping[str, Any]:
    base = charge.get("properties") or {}
    if bucket is None:
        return base
    return {**base, **(_charge_filters(charge)[bucket].get("properties") or {})}


def _event_values(
    metric: Mapping[str, Any], events: Iterable[Mapping[str, Any]], start: datetime, end: datetime
) -> tuple[list[Decimal], Decimal | None]:
    """Per-event values (time order) in the period, and the sum of their precise amounts."""
    rows = sorted(
        (
            (event_time(ev), index, ev)
            for index, ev in enumerate(events)
            if ev.get("code") == metric.get("code")
        ),
        key=lambda row: (row[0], row[1]),
    )
    values: list[Decimal] = []
    precise: Decimal | None = None
    for at, _, ev in rows:
        if not start <= at <= end:
            continue
        if metric.get("aggregation_type") == "count_agg":
            values.append(Decimal(1))
        else:
            value = _number(_field(ev, metric.get("field_name")))
            if value is None:
                continue
            values.append(value)
        cents = _number(ev.get("precise_total_amount_cents"))
        if cents is not None:
            precise = (precise or _ZERO) + cents
    return values, precise


def _price(
    charge: Mapping[str, Any],
    properties: Mapping[str, Any],
    aggregation: Aggregation,
    values: Sequence[Decimal],
    precise: Decimal | None,
    subunit_to_unit: int,
) -> Decimal:
    return charge_amount(
        str(charge.get("charge_model")),
        properties,
        aggregation.units,
        event_values=values,
        precise_total_amount_cents=precise,
        full_units=aggregation.full_units,
        subunit_to_unit=subunit_to_unit,
    )


@_precise
def charge_usage(
    charge: Mapping[str, Any],
    metric: Mapping[str, Any],
    events: Iterable[Mapping[str, Any]],
    period_from: datetime,
    period_to: datetime,
    *,
    period_length_days: int | None = None,
    subunit_to_unit: int = 100,
) -> ChargeUsage:
    """Units, events and amount of one charge over a period, split by its filters.

    Each event goes to the most specific charge filter it matches (see the filters rule in
    ``_bucket``) or, failing all, to the charge's default bucket. Each bucket is aggregated on
    its own (:func:`aggregate`, prorated when the charge is ``prorated``) and priced with its
    filter's ``properties`` (over the charge's) or the charge's. The totals add the buckets up;
    ``units`` are the unprorated units, as Lago's usage shows them.

    Pay-in-advance charges are priced the same way here (the period's whole usage); the fees
    they create event by event come from :func:`pay_in_advance_fee`. ``min_amount_cents`` (a
    charge's minimum spending) is an invoicing true-up and is not applied to usage.
    """
    start = _utc(period_from, "period_from")
    end = _utc(period_to, "period_to")
    filters = _charge_filters(charge)
    buckets: dict[int | None, list[Mapping[str, Any]]] = {None: []}
    for index in range(len(filters)):
        buckets[index] = []
    for event in events:
        if event.get("code") == metric.get("code"):
            buckets[_bucket(metric, filters, event)].append(event)
    prorated = bool(charge.get("prorated"))
    usages: list[FilterUsage] = []
    for bucket in [*range(len(filters)), None]:
        chosen = buckets[bucket]
        aggregation = aggregate(
            metric, chosen, start, end, prorated=prorated, period_length_days=period_length_days
        )
        values, precise = _event_values(metric, chosen, start, end)
        amount = _price(
            charge, _properties_of(charge, bucket), aggregation, values, precise, subunit_to_unit
        )
        usages.append(
            FilterUsage(
                values=None if bucket is None else _given_values(filters[bucket]),
                invoice_display_name=(
                    None if bucket is None else filters[bucket].get("invoice_display_name")
                ),
                units=aggregation.full_units,
                events_count=aggregation.events_count,
                amount=amount,
            )
        )
    return ChargeUsage(
        units=sum((u.units for u in usages), _ZERO),
        events_count=sum(u.events_count for u in usages),
        amount=sum((u.amount for u in usages), _ZERO),
        filters=usages if filters else [],
    )


@_precise
def _high_water(
    metric: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    start: datetime,
    end: datetime,
) -> Decimal:
    """The highest level the period's aggregation reached with ``events`` (time order).

    It starts from the level carried into the period (recurring metrics) and rises with each
    event of the period. Sums, counts and unique counts are followed event by event; the other
    types are re-aggregated on each prefix.
    """
    ordered = sorted(events, key=event_time)
    first_inside = next(
        (i for i, ev in enumerate(ordered) if event_time(ev) >= start), len(ordered)
    )
    carried = aggregate(metric, ordered[:first_inside], start, end).full_units
    inside = [ev for ev in ordered[first_inside:] if event_time(ev) <= end]
    kind = metric.get("aggregation_type")
    if kind in ("count_agg", "sum_agg"):
        level = highest = carried
        for ev in inside:
            value = (
                Decimal(1) if kind == "count_agg" else _number(_field(ev, metric.get("field_name")))
            )
            level += value or _ZERO
            highest = max(highest, level)
        return highest
    if kind == "unique_count_agg":
        recurring = bool(metric.get("recurring"))
        state: dict[str, str] = {}
        for ev in ordered[:first_inside] if recurring else []:
            _apply_operation(state, ev, metric.get("field_name"))
        highest = level = Decimal(sum(1 for op in state.values() if op == "add"))
        for ev in inside:
            _apply_operation(state, ev, metric.get("field_name"))
            level = Decimal(sum(1 for op in state.values() if op == "add"))
            highest = max(highest, level)
        return highest
    levels = [
        aggregate(metric, inside[:count], start, end).full_units for count in range(len(inside) + 1)
    ]
    return max(carried, *levels)


def _apply_operation(state: dict[str, str], event: Mapping[str, Any], field: Any) -> None:
    value = _field(event, field)
    if value is not None:
        operation = _properties(event).get("operation_type")
        state[_text(value)] = "remove" if operation == "remove" else "add"


def pay_in_advance_fee(
    charge: Mapping[str, Any],
    metric: Mapping[str, Any],
    event: Mapping[str, Any],
    earlier_events: Iterable[Mapping[str, Any]],
    period_from: datetime,
    period_to: datetime,
    *,
    period_length_days: int | None = None,
    subunit_to_unit: int = 100,
) -> tuple[Decimal, Decimal]:
    """``(units, amount)`` of the fee ``event`` creates on a pay-in-advance charge.

    ``earlier_events`` are the subscription's events sent before this one (for a recurring
    metric, those of earlier periods too). Only the event's own filter bucket counts.

    The fee is the difference the event makes, priced at the margin: ``units`` is how far the
    event lifts the period's aggregation above its highest level so far (a seat already
    present, a negative value or a value below an earlier maximum adds 0: Lago never refunds
    in advance), and ``amount`` is the charge model's amount at that new level minus its
    amount at the old one. So a graduated, volume or package model bills the tier the event
    crosses into, and a percentage model bills the event's own percentage and fixed fee.
    ``standard`` bills ``units x amount``, prorated over the remaining days of the period when
    the charge is ``prorated``. (Lago's ``charges/apply_pay_in_advance_charge_model_service.rb``
    and the graduated-percentage docs' worked example.)
    """
    if event.get("code") != metric.get("code"):
        return _ZERO, _ZERO
    start = _utc(period_from, "period_from")
    end = _utc(period_to, "period_to")
    filters = _charge_filters(charge)
    bucket = _bucket(metric, filters, event)
    same = [
        ev
        for ev in earlier_events
        if ev.get("code") == metric.get("code") and _bucket(metric, filters, ev) == bucket
    ]
    # Lago rounds no in-advance aggregation: the metric's rounding is for the period's usage.
    unrounded = {**metric, "rounding_function": None, "rounding_precision": None}
    high_water = _high_water(unrounded, same, start, end)
    after = aggregate(unrounded, [*same, event], start, end).full_units
    units = max(after - high_water, _ZERO)
    properties = _properties_of(charge, bucket)
    model = str(charge.get("charge_model"))
    if model == "standard":
        priced = units
        if charge.get("prorated") and metric.get("recurring"):
            days = period_length_days or (end.date() - start.date()).days + 1
            remaining = (end.date() - event_time(event).date()).days + 1
            priced = _ceil(units * remaining / days, 5)
        return units, priced * _decimal(properties.get("amount"))
    values_before, precise_before = _event_values(metric, same, start, end)
    values_after, precise_after = _event_values(metric, [*same, event], start, end)
    with_event = _amount(
        model,
        properties,
        high_water + units,
        event_values=values_after,
        precise_total_amount_cents=precise_after,
        full_units=None,
        subunit_to_unit=subunit_to_unit,
        before_event=False,
    )
    without_event = _amount(
        model,
        properties,
        high_water,
        event_values=values_before,
        precise_total_amount_cents=precise_before,
        full_units=None,
        subunit_to_unit=subunit_to_unit,
        before_event=True,
    )
    return units, max(with_event - without_event, _ZERO)
