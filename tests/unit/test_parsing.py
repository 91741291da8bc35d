"""How answers are read and values written, through the public methods, on every Python.

Each test pins a behaviour users rely on: aware UTC timestamps whatever the server's format,
amounts that never silently become 0, exact decimals on the wire.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from aioresponses import aioresponses

from lago_async import APIResponseValidationError, AsyncLago
from tests.conftest import BASE_URL, customer_json, event_json, sent

UTC = dt.timezone.utc
CUSTOMER_URL = f"{BASE_URL}/customers/acme"
EVENTS_URL = f"{BASE_URL}/events"


def customer_body(**fields: Any) -> dict[str, Any]:
    return {"customer": customer_json(**fields)}


async def read_created_at(lago: AsyncLago, mocked: aioresponses, value: Any) -> dt.datetime:
    mocked.get(CUSTOMER_URL, payload=customer_body(created_at=value))
    customer = await lago.customers.get("acme")
    assert customer.created_at is not None
    return customer.created_at


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-04T05:06:07.1Z", dt.datetime(2026, 3, 4, 5, 6, 7, 100000, tzinfo=UTC)),
        ("2026-03-04T05:06:07.12Z", dt.datetime(2026, 3, 4, 5, 6, 7, 120000, tzinfo=UTC)),
        ("2026-03-04T05:06:07.123Z", dt.datetime(2026, 3, 4, 5, 6, 7, 123000, tzinfo=UTC)),
        ("2026-03-04T05:06:07.1234Z", dt.datetime(2026, 3, 4, 5, 6, 7, 123400, tzinfo=UTC)),
        ("2026-03-04T05:06:07.12345Z", dt.datetime(2026, 3, 4, 5, 6, 7, 123450, tzinfo=UTC)),
        ("2026-03-04T05:06:07.123456Z", dt.datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)),
        # Digits past the microsecond are cut, never rounded into the next second.
        ("2026-03-04T05:06:07.1234567Z", dt.datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)),
        ("2026-03-04T05:06:07.99999999Z", dt.datetime(2026, 3, 4, 5, 6, 7, 999999, tzinfo=UTC)),
        ("2026-03-04T05:06:07.123456789Z", dt.datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)),
        ("2026-03-04 05:06:07.5+02:00", dt.datetime(2026, 3, 4, 3, 6, 7, 500000, tzinfo=UTC)),
        ("2026-03-04t05:06:07z", dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)),
        ("2026-03-04T05:06:07-05:30", dt.datetime(2026, 3, 4, 10, 36, 7, tzinfo=UTC)),
        ("2026-03-04T05:06:07.25+0100", dt.datetime(2026, 3, 4, 4, 6, 7, 250000, tzinfo=UTC)),
    ],
)
async def test_rfc3339_timestamps_parse_on_every_python(
    lago: AsyncLago, mocked: aioresponses, text: str, expected: dt.datetime
) -> None:
    created_at = await read_created_at(lago, mocked, text)
    assert created_at == expected
    assert created_at.utcoffset() is not None


async def test_offset_is_kept(lago: AsyncLago, mocked: aioresponses) -> None:
    created_at = await read_created_at(lago, mocked, "2026-03-04T05:06:07.5+02:00")
    assert created_at.utcoffset() == dt.timedelta(hours=2)
    assert (created_at.hour, created_at.microsecond) == (5, 500000)


async def test_timestamp_without_offset_is_utc(lago: AsyncLago, mocked: aioresponses) -> None:
    created_at = await read_created_at(lago, mocked, "2026-03-04T05:06:07.25")
    assert created_at.tzinfo is not None
    assert created_at.utcoffset() == dt.timedelta(0)
    assert created_at == dt.datetime(2026, 3, 4, 5, 6, 7, 250000, tzinfo=UTC)


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run the test with the process in a time zone far from UTC."""
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset is not available on this platform")
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("far_from_utc")
@pytest.mark.parametrize("epoch", [1_772_600_767, 1_772_600_767.5])
async def test_epoch_timestamp_is_aware_utc(
    lago: AsyncLago, mocked: aioresponses, epoch: float
) -> None:
    created_at = await read_created_at(lago, mocked, epoch)
    assert created_at.utcoffset() == dt.timedelta(0)
    assert created_at == dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC) + dt.timedelta(
        seconds=epoch - 1_772_600_767
    )


@pytest.mark.parametrize("value", ["2026-13-01T00:00:00Z", "yesterday", "2026-03-04T25:00:00Z"])
async def test_garbage_timestamp_is_a_validation_error(
    lago: AsyncLago, mocked: aioresponses, value: str
) -> None:
    mocked.get(CUSTOMER_URL, payload=customer_body(created_at=value))
    with pytest.raises(APIResponseValidationError, match="created_at"):
        await lago.customers.get("acme")


async def test_non_numeric_amount_is_an_error_not_zero(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    usage = {
        "from_datetime": "2026-11-01T00:00:00Z",
        "to_datetime": "2026-11-30T23:59:59Z",
        "issuing_date": "2026-12-01",
        "currency": "EUR",
        "amount_cents": "twelve",
        "taxes_amount_cents": 0,
        "total_amount_cents": 123,
        "charges_usage": [],
    }
    mocked.get(
        f"{BASE_URL}/customers/acme/current_usage?external_subscription_id=sub_1",
        payload={"customer_usage": usage},
    )
    with pytest.raises(APIResponseValidationError, match="amount_cents"):
        await lago.customers.current_usage("acme", external_subscription_id="sub_1")


async def test_malformed_response_raises_response_validation_error(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    mocked.get(CUSTOMER_URL, payload=customer_body(metadata="not a list"))
    with pytest.raises(APIResponseValidationError, match="metadata"):
        await lago.customers.get("acme")


@pytest.mark.parametrize(
    ("when", "sent_as"),
    [
        (dt.datetime(2026, 3, 4, 12, 0, 0, 5000, tzinfo=UTC), "1772625600.005"),
        (dt.datetime(2026, 3, 4, 12, 0, 0, 50, tzinfo=UTC), "1772625600.00005"),
        (dt.datetime(2026, 3, 4, 12, 0, 0, 1, tzinfo=UTC), "1772625600.000001"),
        (dt.datetime(2026, 3, 4, 12, 0, 0, 500000, tzinfo=UTC), "1772625600.5"),
        (dt.datetime(2026, 3, 4, 12, 0, 0, tzinfo=UTC), 1772625600),
    ],
)
async def test_fractional_seconds_keep_their_digits(
    lago: AsyncLago, mocked: aioresponses, when: dt.datetime, sent_as: Any
) -> None:
    mocked.post(EVENTS_URL, payload={"event": stored_event()})
    await lago.events.create(
        transaction_id="tx-1", code="calls", external_subscription_id="sub_1", timestamp=when
    )
    (call,) = sent(mocked, "POST", EVENTS_URL)
    assert call["json"]["event"]["timestamp"] == sent_as


def stored_event() -> dict[str, Any]:
    return event_json(external_subscription_id="sub_1")


async def test_decimal_in_a_mapping_body_keeps_its_precision(
    lago: AsyncLago, mocked: aioresponses
) -> None:
    mocked.post(EVENTS_URL, payload={"event": stored_event()})
    exact = "1.000000000000000000001"
    await lago.events.create(
        {
            "transaction_id": "tx-1",
            "code": "calls",
            "external_subscription_id": "sub_1",
            "precise_total_amount_cents": Decimal(exact),
            "properties": {"gb": Decimal("0.30000000000000000004")},
        }
    )
    (call,) = sent(mocked, "POST", EVENTS_URL)
    raw = mocked.requests[("POST", call["url"])][0].kwargs["data"]
    assert f'"precise_total_amount_cents":"{exact}"'.encode() in raw
    assert b"0.30000000000000000004" in raw
