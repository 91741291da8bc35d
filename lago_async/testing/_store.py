"""The in-memory state and API semantics of FakeLago, free of HTTP.

Every operation takes the decoded path parameters, the query and the JSON body (``None`` for
the routes without one), and returns ``(status, payload)`` or raises :class:`ApiError`.
Objects are plain dicts shaped like the Lago API's, built once and served as they are.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from sys import intern
from typing import Any

from multidict import MultiMapping

from .._convert import _parse_rfc3339
from ._shapes import CUSTOMER, check

JSONObject = dict[str, Any]
Result = tuple[int, Any]
Operation = Callable[[Mapping[str, str], MultiMapping[str], Any], Result]
Params = Mapping[str, str]
Query = MultiMapping[str]
Units = int | Decimal

MANDATORY = "value_is_mandatory"
ALREADY_EXISTS = "value_already_exist"
INVALID = "invalid_value"
DEFAULT_PER_PAGE = 100

_UTC = timezone.utc
_ZERO = Decimal(0)
_HUNDRED = Decimal(100)


class ApiError(Exception):
    """An error answer: ``status`` and the ``{status, error, code, error_details}`` body."""

    def __init__(self, status: int, body: JSONObject) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


def bad_request(detail: str = "") -> ApiError:
    """A 400, as Lago answers a missing root parameter or an unreadable body."""
    error = f"BadRequest: {detail}" if detail else "Bad Request"
    return ApiError(400, {"status": 400, "error": error})


def not_found(code: str) -> ApiError:
    """A 404 with a ``<resource>_not_found`` code."""
    return ApiError(404, {"status": 404, "error": "Not Found", "code": code})


def unprocessable(details: JSONObject, code: str = "validation_errors") -> ApiError:
    """A 422 with per-field (or per-index) error details."""
    return ApiError(
        422,
        {"status": 422, "error": "Unprocessable Entity", "code": code, "error_details": details},
    )


# -- time ----------------------------------------------------------------------------------


def iso(dt: datetime) -> str:
    """``dt`` (aware) as fixed-width UTC ISO 8601 with milliseconds: sorts like time."""
    return dt.astimezone(_UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def now_iso() -> str:
    """The current time as :func:`iso` formats it."""
    return iso(datetime.now(_UTC))


_TIMESTAMPS: dict[Any, str | None] = {}
_TIMESTAMPS_MAX = 4096


def parse_timestamp(value: Any) -> str | None:
    """An event timestamp (unix seconds as int/float/str, or ISO 8601) as :func:`iso`.

    Returns ``None`` when the value cannot be read. Naive ISO datetimes are taken as UTC.
    Recent answers are cached: senders tend to repeat timestamps (same second, same batch).
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    if value in _TIMESTAMPS:
        return _TIMESTAMPS[value]
    try:
        if isinstance(value, str):
            try:
                seconds = float(value)
            except ValueError:
                result = parse_datetime(value)
            else:
                result = iso(datetime.fromtimestamp(seconds, _UTC))
        else:
            result = iso(datetime.fromtimestamp(value, _UTC))
    except (OverflowError, OSError, ValueError):
        result = None
    if len(_TIMESTAMPS) >= _TIMESTAMPS_MAX:
        _TIMESTAMPS.clear()
    _TIMESTAMPS[value] = result
    return result


def to_datetime(value: str) -> datetime | None:
    """An ISO 8601 date or datetime string as an aware datetime (naive ones are UTC), or
    ``None`` when unreadable."""
    text = value.strip()
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        try:  # Python 3.10 refuses "Z" and fractions other than 3 or 6 digits
            dt = _parse_rfc3339(text)
        except ValueError:
            return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=_UTC)


def parse_datetime(value: str, *, clamp: bool = False) -> str | None:
    """An ISO 8601 date or datetime string as :func:`iso`, or ``None`` when unreadable.

    A moment that falls outside years 1 to 9999 once moved to UTC (``0001-01-01T00:00+05:00``)
    is unreadable, unless ``clamp``: then it becomes the first or last representable moment,
    which is what it means as a filter bound.
    """
    dt = to_datetime(value)
    if dt is None:
        return None
    try:
        return iso(dt)
    except OverflowError:
        if not clamp:
            return None
        edge = datetime.min if dt.year == 1 else datetime.max
        return iso(edge.replace(tzinfo=_UTC))


def _month_bounds(now: datetime) -> tuple[str, str, str]:
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    nxt = (start + timedelta(days=32)).replace(day=1)
    end = nxt - timedelta(seconds=1)
    return iso(start), iso(end), nxt.date().isoformat()


# -- units and money -----------------------------------------------------------------------


def event_units(properties: Mapping[str, Any]) -> Units:
    """Units of one event: its first numeric property value, else 1.

    A property counts as numeric when it is a JSON number (not a boolean) or a string
    holding a plain decimal number such as ``"10"``, ``"-2"`` or ``"2.5"``.
    """
    for value in properties.values():
        kind = type(value)
        if kind is int:
            return int(value)
        if kind is float:
            return Decimal(repr(value))
        if kind is str and value.isascii() and value.lstrip("-").replace(".", "", 1).isdigit():
            return Decimal(value)
    return 1


def fmt_decimal(value: Units | Decimal) -> str:
    """A decimal as Lago prints units: plain notation, never an exponent."""
    if isinstance(value, int):
        return str(value)
    return format(value, "f")


def amount_cents(units: Units, unit_amount_cents: int | Decimal) -> tuple[int, Decimal]:
    """``(amount_cents rounded half up, precise amount in cents)`` for ``units``.

    An amount past what Lago stores (64-bit cents) is refused with 422, as a sum Lago cannot
    hold would be, rather than crashing the answer.
    """
    precise = Decimal(units) * unit_amount_cents
    amount = int(precise.to_integral_value(rounding=ROUND_HALF_UP))
    if not -_MAX_INT <= amount <= _MAX_INT:
        raise unprocessable({"amount_cents": ["value_is_out_of_range"]})
    return amount, precise


# -- paging and query helpers --------------------------------------------------------------


_MAX_INT = 2**63 - 1
"""The largest integer Lago's database (and its JSON answers) can hold."""


def _int_param(query: Query, name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        return default
    if value > _MAX_INT:
        raise bad_request(f"{name} must be at most {_MAX_INT}")
    return value if value >= 1 else default


def paginate(
    items: Sequence[Any], query: Query, *, newest_first: bool = False
) -> tuple[list[Any], JSONObject]:
    """The page of ``items`` that ``page``/``per_page`` select, and Lago's ``meta``.

    With ``newest_first``, ``items`` are in arrival order and pages run from the end
    (without copying the whole sequence).
    """
    page = _int_param(query, "page", 1)
    per_page = _int_param(query, "per_page", DEFAULT_PER_PAGE)
    total = len(items)
    total_pages = -(-total // per_page)
    start = min((page - 1) * per_page, total)
    end = min(start + per_page, total)
    meta = {
        "current_page": page,
        "next_page": page + 1 if page < total_pages else None,
        "prev_page": page - 1 if page > 1 else None,
        "total_pages": total_pages,
        "total_count": total,
    }
    if newest_first:
        return list(items[total - end : total - start])[::-1], meta
    return list(items[start:end]), meta


def _list_param(query: Query, name: str) -> list[str]:
    return [*query.getall(f"{name}[]", ()), *query.getall(name, ())]


def _bool_param(query: Query, name: str) -> bool | None:
    raw = query.get(name)
    if raw is None:
        return None
    return raw.strip().lower() in ("true", "1", "yes")


def _root(body: Any, key: str) -> JSONObject:
    """``body[key]`` as an object, or the 400 Lago gives for a missing root parameter."""
    value = body.get(key) if isinstance(body, dict) else None
    if not isinstance(value, dict):
        raise bad_request(f"param is missing or the value is empty: {key}")
    return value


def _text(value: Any) -> str | None:
    """An identifier field: strings as given, numbers as text, anything else ``None``."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


# -- customers -----------------------------------------------------------------------------

_CUSTOMER_FIELDS = (
    "address_line1",
    "address_line2",
    "city",
    "country",
    "currency",
    "email",
    "legal_name",
    "legal_number",
    "logo_url",
    "name",
    "firstname",
    "lastname",
    "customer_type",
    "phone",
    "state",
    "tax_identification_number",
    "timezone",
    "url",
    "zipcode",
    "net_payment_term",
)
_CUSTOMER_SEARCHED = ("external_id", "name", "firstname", "lastname", "legal_name", "email")
_RENAMED_ZONES = {
    "America/Godthab": "America/Nuuk",
    "Asia/Rangoon": "Asia/Yangon",
    "Europe/Kiev": "Europe/Kyiv",
}
"""Time zones Lago accepts under their former IANA names but applies under the current ones."""

_ADDRESS_FIELDS = ("address_line1", "address_line2", "city", "country", "state", "zipcode")


class Store:
    """All data of one FakeLago, and the operations of the routes it serves."""

    def __init__(
        self,
        *,
        seed: int | str | None,
        batch_limit: int,
        unit_amount_cents: int,
        currency: str,
        auto_subscriptions: bool,
    ) -> None:
        self.batch_limit = batch_limit
        self.unit_amount_cents = unit_amount_cents
        self.currency = currency
        self.auto_subscriptions = auto_subscriptions
        self.prices: dict[str, int] = {}
        self._seed = seed
        #: The moment FakeLago's clock is set to (``None``: the real time); see :meth:`now`.
        self.frozen: datetime | None = None
        #: Computes the usage of a subscription that follows a plan (set by FakeLago's
        #: ``Api``): ``(subscription, currency, projected, metric code)`` to the usage
        #: object, or ``None`` for a subscription without a plan.
        self.meter: Callable[[JSONObject, str, bool, str | None], JSONObject | None] | None = None
        #: The pay-in-advance fees one event would create on a subscription that follows a
        #: plan (set by ``Api``): ``(subscription, event)`` to ``[(charge lago_id, metric
        #: lago_id, metric code, units, amount in currency units)]``, or ``None`` without a
        #: plan.
        #: Called with the subscriptions that just received events (set by ``Api``, which
        #: checks their usage alerts).
        self.after_events: Callable[[set[str]], None] | None = None
        self.in_advance: (
            Callable[[JSONObject, JSONObject], list[tuple[str, str, str, Decimal, Decimal]] | None]
            | None
        ) = None
        #: Called with ``(webhook_type, object_type, object)`` for each change Lago reports
        #: by webhook (FakeLago sends them).
        self.notify: Callable[[str, str, JSONObject], object] | None = None
        self.reset()

    def reset(self) -> None:
        """Forget everything (ids restart from the seed)."""
        rng = random.Random(None if self._seed is None else f"ids:{self._seed}")
        self._id_prefix = str(uuid.UUID(int=rng.getrandbits(128), version=4))[:24]
        self._id_counter = 0
        self.events: list[JSONObject] = []
        self._events_by_key: dict[tuple[str, str], JSONObject] = {}
        self._events_by_tx: dict[str, JSONObject] = {}
        # subscription -> code -> [events_count, units] of the open period
        self._usage: dict[str, dict[str, list[Any]]] = {}
        self._period_start: dict[str, str] = {}
        self._past_usage: dict[str, list[JSONObject]] = {}
        self.customers: dict[str, JSONObject] = {}
        self._sequential_id = 0
        self.subscriptions: dict[str, JSONObject] = {}
        self._coupons: dict[str, dict[str, JSONObject]] = {}
        self._coupon_ids: dict[str, str] = {}
        self._metric_ids: dict[str, tuple[str, str]] = {}

    def now(self) -> datetime:
        """FakeLago's current time: the real UTC time, or the moment the clock is set to."""
        frozen = self.frozen
        return datetime.now(_UTC) if frozen is None else frozen

    def now_iso(self) -> str:
        """:meth:`now` as :func:`iso` formats it."""
        return iso(self.now())

    def new_id(self) -> str:
        """A fresh lago_id: a valid UUID, unique in this store, deterministic under a seed."""
        self._id_counter += 1
        return f"{self._id_prefix}{self._id_counter:012x}"

    def price(self, code: str) -> int:
        """Unit price in cents of the billable metric ``code``."""
        return self.prices.get(code, self.unit_amount_cents)

    def _metric(self, code: str) -> tuple[str, str]:
        """``(billable metric lago_id, charge lago_id)`` of ``code``, stable per store."""
        ids = self._metric_ids.get(code)
        if ids is None:
            ids = self._metric_ids[code] = (self.new_id(), self.new_id())
        return ids

    # customers ----------------------------------------------------------------------------

    def upsert_customer(self, params: Params, query: Query, body: Any) -> Result:
        """``POST /customers``: create, or update the customer with this ``external_id``."""
        data = _root(body, "customer")
        errors = check(data, CUSTOMER)
        if errors:
            raise unprocessable(dict(errors))
        return 200, {"customer": self._save_customer(data["external_id"], data)}

    def _save_customer(self, external_id: str, data: Mapping[str, Any]) -> JSONObject:
        now = self.now_iso()
        customer = self.customers.get(external_id)
        created = customer is None
        if customer is None:
            self._sequential_id += 1
            customer = {
                "lago_id": self.new_id(),
                "sequential_id": self._sequential_id,
                "slug": f"FAKE-{self._sequential_id:04d}",
                "external_id": external_id,
                **dict.fromkeys(_CUSTOMER_FIELDS),
                "applicable_timezone": "UTC",
                "account_type": "customer",
                "created_at": now,
                "updated_at": now,
                "finalize_zero_amount_invoice": "inherit",
                "skip_invoice_custom_sections": False,
                "billing_configuration": {},
                "shipping_address": dict.fromkeys(_ADDRESS_FIELDS),
                "metadata": [],
                "integration_customers": [],
                "taxes": [],
                "applicable_invoice_custom_sections": [],
            }
            self.customers[external_id] = customer
        for key in _CUSTOMER_FIELDS:
            if key in data:
                customer[key] = data[key]
        if customer["timezone"]:
            zone = customer["timezone"]
            customer["applicable_timezone"] = _RENAMED_ZONES.get(zone, zone)
        for key in ("account_type", "finalize_zero_amount_invoice", "billing_entity_code"):
            if isinstance(data.get(key), str):
                customer[key] = data[key]
        if isinstance(data.get("skip_invoice_custom_sections"), bool):
            customer["skip_invoice_custom_sections"] = data["skip_invoice_custom_sections"]
        for key in ("billing_configuration", "shipping_address"):
            if isinstance(data.get(key), dict):
                customer[key] = {**customer[key], **data[key]}
        if isinstance(data.get("metadata"), list):
            customer["metadata"] = [
                {
                    "lago_id": self.new_id(),
                    "key": str(item.get("key", "")),
                    "value": str(item.get("value", "")),
                    "display_in_invoice": bool(item.get("display_in_invoice", False)),
                    "created_at": now,
                }
                for item in data["metadata"]
                if isinstance(item, dict)
            ]
        if isinstance(data.get("integration_customers"), list):
            customer["integration_customers"] = [
                {
                    "lago_id": self.new_id(),
                    "type": str(item.get("integration_type", "")),
                    "integration_code": str(item.get("integration_code", "")),
                    "external_customer_id": str(item.get("external_customer_id", "")),
                    "sync_with_provider": item.get("sync_with_provider"),
                }
                for item in data["integration_customers"]
                if isinstance(item, dict)
            ]
        customer["updated_at"] = now
        if self.notify is not None:
            kind = "customer.created" if created else "customer.updated"
            self.notify(kind, "customer", customer)
        return customer

    def ensure_customer(self, external_id: str) -> JSONObject:
        """The customer ``external_id``, created with only that id when missing."""
        customer = self.customers.get(external_id)
        if customer is None:
            customer = self._save_customer(external_id, {})
        return customer

    def _customer(self, params: Params) -> JSONObject:
        customer = self.customers.get(params["external_customer_id"])
        if customer is None:
            raise not_found("customer_not_found")
        return customer

    def list_customers(self, params: Params, query: Query, body: Any = None) -> Result:
        """``GET /customers``: newest first, with Lago's simple filters."""
        customers: Iterable[JSONObject] = self.customers.values()
        term = (query.get("search_term") or "").strip().lower()
        if term:
            customers = [
                c
                for c in customers
                if any(term in str(c.get(f) or "").lower() for f in _CUSTOMER_SEARCHED)
            ]
        for param, field in (
            ("currencies", "currency"),
            ("countries", "country"),
            ("states", "state"),
            ("zipcodes", "zipcode"),
            ("account_type", "account_type"),
            ("billing_entity_codes", "billing_entity_code"),
        ):
            wanted = _list_param(query, param)
            if wanted:
                customers = [c for c in customers if c.get(field) in wanted]
        customer_type = query.get("customer_type")
        if customer_type:
            customers = [c for c in customers if c.get("customer_type") == customer_type]
        for param, field in (
            ("has_customer_type", "customer_type"),
            ("has_tax_identification_number", "tax_identification_number"),
        ):
            flag = _bool_param(query, param)
            if flag is not None:
                customers = [c for c in customers if bool(c.get(field)) is flag]
        for key, value in query.items():
            if key.startswith("metadata[") and key.endswith("]"):
                meta_key = key[len("metadata[") : -1]
                customers = [
                    c
                    for c in customers
                    if any(m["key"] == meta_key and m["value"] == value for m in c["metadata"])
                ]
        page, meta = paginate(list(customers), query, newest_first=True)
        return 200, {"customers": page, "meta": meta}

    def get_customer(self, params: Params, query: Query, body: Any = None) -> Result:
        """``GET /customers/{external_customer_id}``."""
        return 200, {"customer": self._customer(params)}

    def delete_customer(self, params: Params, query: Query, body: Any = None) -> Result:
        """``DELETE /customers/{external_customer_id}``: its subscriptions and coupons go too."""
        customer = self._customer(params)
        external_id = customer["external_id"]
        del self.customers[external_id]
        self._coupons.pop(external_id, None)
        for sub_id, sub in list(self.subscriptions.items()):
            if sub["external_customer_id"] == external_id:
                del self.subscriptions[sub_id]
        return 200, {"customer": customer}

    def checkout_url(self, params: Params, query: Query, body: Any) -> Result:
        """``POST /customers/{id}/checkout_url``: needs a payment provider on the customer."""
        customer = self._customer(params)
        billing = customer["billing_configuration"]
        provider = billing.get("payment_provider")
        if not provider:
            raise unprocessable({"base": ["no_linked_payment_provider"]})
        return 200, {
            "customer": {
                "lago_customer_id": customer["lago_id"],
                "external_customer_id": customer["external_id"],
                "payment_provider": provider,
                "payment_provider_code": str(billing.get("payment_provider_code") or provider),
                "checkout_url": f"https://checkout.example.com/{customer['lago_id']}",
            }
        }

    def portal_url(self, params: Params, query: Query, body: Any = None) -> Result:
        """``GET /customers/{id}/portal_url``."""
        customer = self._customer(params)
        return 200, {
            "customer": {
                "portal_url": f"https://portal.example.com/customer-portal/{customer['lago_id']}"
            }
        }

    # applied coupons ----------------------------------------------------------------------

    def add_applied_coupon(
        self,
        external_customer_id: str,
        coupon_code: str,
        *,
        coupon_name: str | None = None,
        amount_cents: int | None = None,
        amount_currency: str | None = None,
        percentage_rate: str | None = None,
        frequency: str = "once",
        frequency_duration: int | None = None,
    ) -> JSONObject:
        """Apply a coupon to a customer (created if missing); returns the applied coupon."""
        customer = self.ensure_customer(external_customer_id)
        coupon_id = self._coupon_ids.get(coupon_code)
        if coupon_id is None:
            coupon_id = self._coupon_ids[coupon_code] = self.new_id()
        if amount_cents is not None and amount_currency is None:
            amount_currency = customer["currency"] or self.currency
        applied = {
            "lago_id": self.new_id(),
            "lago_coupon_id": coupon_id,
            "coupon_code": coupon_code,
            "coupon_name": coupon_name or coupon_code,
            "lago_customer_id": customer["lago_id"],
            "external_customer_id": external_customer_id,
            "status": "active",
            "amount_cents": amount_cents,
            "amount_cents_remaining": amount_cents,
            "amount_currency": amount_currency,
            "percentage_rate": percentage_rate,
            "frequency": frequency,
            "frequency_duration": frequency_duration,
            "frequency_duration_remaining": frequency_duration,
            "expiration_at": None,
            "created_at": self.now_iso(),
            "terminated_at": None,
            "credits": [],
        }
        self._coupons.setdefault(external_customer_id, {})[applied["lago_id"]] = applied
        return applied

    def list_applied_coupons(self, params: Params, query: Query, body: Any = None) -> Result:
        """``GET /customers/{id}/applied_coupons``: filters ``status``, ``coupon_code[]``."""
        customer = self._customer(params)
        coupons = list(self._coupons.get(customer["external_id"], {}).values())
        status = query.get("status")
        if status:
            coupons = [c for c in coupons if c["status"] == status]
        codes = _list_param(query, "coupon_code")
        if codes:
            coupons = [c for c in coupons if c["coupon_code"] in codes]
        page, meta = paginate(coupons, query, newest_first=True)
        return 200, {"applied_coupons": page, "meta": meta}

    def delete_applied_coupon(self, params: Params, query: Query, body: Any = None) -> Result:
        """``DELETE /customers/{id}/applied_coupons/{applied_coupon_id}``: terminates it."""
        customer = self._customer(params)
        applied = self._coupons.get(customer["external_id"], {}).get(params["applied_coupon_id"])
        if applied is None or applied["status"] != "active":
            raise not_found("applied_coupon_not_found")
        applied["status"] = "terminated"
        applied["terminated_at"] = self.now_iso()
        return 200, {"applied_coupon": {k: v for k, v in applied.items() if k != "credits"}}

    # subscriptions ------------------------------------------------------------------------

    def add_subscription(
        self, external_subscription_id: str, external_customer_id: str
    ) -> JSONObject:
        """Attach a subscription to a customer (created if missing); re-attaching moves it."""
        customer = self.ensure_customer(external_customer_id)
        sub = self.subscriptions.get(external_subscription_id)
        lago_id = sub["lago_id"] if sub else self.new_id()
        sub = {
            "lago_id": lago_id,
            "external_id": external_subscription_id,
            "external_customer_id": external_customer_id,
            "lago_customer_id": customer["lago_id"],
        }
        self.subscriptions[external_subscription_id] = sub
        return sub

    def _subscription(self, external_id: str | None, customer_id: str | None) -> JSONObject:
        """The subscription ``external_id``; auto-attached or 404 when unknown.

        With ``auto_subscriptions``, an unknown subscription is attached to ``customer_id``
        when the route names a customer, else to a customer whose external_id is the
        subscription's own id. A subscription of another customer is a 404 either way.
        """
        if not external_id:
            raise not_found("subscription_not_found")
        sub = self.subscriptions.get(external_id)
        if sub is None:
            if not self.auto_subscriptions:
                raise not_found("subscription_not_found")
            sub = self.add_subscription(external_id, customer_id or external_id)
        if customer_id is not None and sub["external_customer_id"] != customer_id:
            raise not_found("subscription_not_found")
        return sub

    def close_period(self, external_subscription_id: str) -> None:
        """End the open billing period of a subscription: its usage moves to past usage."""
        now = self.now()
        start = self._period_start.get(external_subscription_id) or _month_bounds(now)[0]
        charges = {
            code: (agg[0], agg[1])
            for code, agg in self._usage.pop(external_subscription_id, {}).items()
        }
        self._past_usage.setdefault(external_subscription_id, []).append(
            {
                "from_datetime": start,
                "to_datetime": iso(now),
                "issuing_date": now.date().isoformat(),
                "charges": charges,
            }
        )
        self._period_start[external_subscription_id] = iso(now)

    # events -------------------------------------------------------------------------------

    def _prepare_event(
        self, raw: Any, now: str, seen: set[tuple[str, str]] | None
    ) -> tuple[JSONObject | None, JSONObject | None]:
        """``(event object, None)`` for a storable event, else ``(None, error details)``."""
        if not isinstance(raw, dict):
            return None, {"event": [INVALID]}
        errors: JSONObject = {}
        tx = raw.get("transaction_id")
        if type(tx) is not str:
            tx = _text(tx)
        if not tx:
            errors["transaction_id"] = [MANDATORY]
        code = raw.get("code")
        if type(code) is not str:
            code = _text(code)
        if not code:
            errors["code"] = [MANDATORY]
        sub = raw.get("external_subscription_id")
        if type(sub) is not str:
            sub = _text(sub)
        if not sub:
            errors["external_subscription_id"] = [MANDATORY]
        elif tx:
            key = (sub, tx)
            if key in self._events_by_key or (seen is not None and key in seen):
                errors["transaction_id"] = [ALREADY_EXISTS]
            elif seen is not None:
                seen.add(key)
        timestamp = raw.get("timestamp")
        if timestamp is None:
            timestamp = now
        else:
            timestamp = parse_timestamp(timestamp)
            if timestamp is None:
                errors["timestamp"] = [INVALID]
        properties = raw.get("properties")
        if properties is None:
            properties = {}
        elif not isinstance(properties, dict):
            errors["properties"] = [INVALID]
        precise = raw.get("precise_total_amount_cents")
        if precise is not None:
            if type(precise) is not str:
                precise = _text(precise)
            if precise is None or not _is_decimal(precise):
                errors["precise_total_amount_cents"] = [INVALID]
        if errors or not (tx and code and sub):  # (the second test only informs mypy)
            return None, errors
        return {
            "lago_id": self.new_id(),
            "transaction_id": tx,
            "lago_customer_id": None,
            "code": intern(code),  # codes and subscriptions repeat: keep one copy
            "timestamp": timestamp,
            "precise_total_amount_cents": precise,
            "properties": properties,
            "lago_subscription_id": None,
            "external_subscription_id": intern(sub),
            "created_at": now,
        }, None

    def _commit(self, event: JSONObject) -> None:
        sub: str = event["external_subscription_id"]
        tx: str = event["transaction_id"]
        self.events.append(event)
        self._events_by_key[(sub, tx)] = event
        if tx not in self._events_by_tx:
            self._events_by_tx[tx] = event
        units = event_units(event["properties"])
        by_code = self._usage.get(sub)
        if by_code is None:
            by_code = self._usage[sub] = {}
        agg = by_code.get(event["code"])
        if agg is None:
            by_code[event["code"]] = [1, units]
        else:
            agg[0] += 1
            agg[1] += units

    def create_event(self, params: Params, query: Query, body: Any) -> Result:
        """``POST /events``: store one event; duplicates and missing fields are 422."""
        event, errors = self._prepare_event(_root(body, "event"), self.now_iso(), None)
        if event is None:
            raise unprocessable(errors or {})
        self._commit(event)
        if self.after_events is not None:
            self.after_events({event["external_subscription_id"]})
        return 200, {"event": event}

    def _batch(self, body: Any) -> list[Any]:
        """The ``events`` list of a batch body: 400 when absent, 422 when empty or too long."""
        raw_events = body.get("events") if isinstance(body, dict) else None
        if not isinstance(raw_events, list):
            raise bad_request("param is missing or the value is empty: events")
        if not raw_events:
            raise unprocessable({"events": ["no_events"]})
        if len(raw_events) > self.batch_limit:
            raise unprocessable({"events": ["too_many_events"]})
        return raw_events

    def create_batch(self, params: Params, query: Query, body: Any) -> Result:
        """``POST /events/batch``: all events are stored, or none (422 with per-index details)."""
        return 200, {"events": self.store_events(self._batch(body))}

    def store_events(self, raw_events: Sequence[Any]) -> list[JSONObject]:
        """Store every event, or none (422 with per-index details); no limit on the count."""
        now = self.now_iso()
        seen: set[tuple[str, str]] = set()
        prepared: list[JSONObject] = []
        failures: JSONObject = {}
        for index, raw in enumerate(raw_events):
            event, errors = self._prepare_event(raw, now, seen)
            if event is None:
                failures[str(index)] = errors
            else:
                prepared.append(event)
        if failures:
            raise unprocessable(failures)
        for event in prepared:
            self._commit(event)
        if self.after_events is not None:
            self.after_events({event["external_subscription_id"] for event in prepared})
        return prepared

    def _with_ids(self, event: JSONObject) -> JSONObject:
        sub = self.subscriptions.get(event["external_subscription_id"])
        if sub is None:
            return event
        return {
            **event,
            "lago_customer_id": sub["lago_customer_id"],
            "lago_subscription_id": sub["lago_id"],
        }

    def get_event(self, params: Params, query: Query, body: Any = None) -> Result:
        """``GET /events/{transaction_id}`` (the first event stored with that id)."""
        event = self._events_by_tx.get(params["transaction_id"])
        if event is None:
            raise not_found("event_not_found")
        return 200, {"event": self._with_ids(event)}

    def list_events(self, params: Params, query: Query, body: Any = None) -> Result:
        """``GET /events``: newest first; filters by subscription, code and timestamp range."""
        events: Sequence[JSONObject] = self.events
        sub = query.get("external_subscription_id")
        if sub:
            events = [e for e in events if e["external_subscription_id"] == sub]
        code = query.get("code")
        if code:
            events = [e for e in events if e["code"] == code]
        bounds: dict[str, str] = {}
        for name in ("timestamp_from", "timestamp_to"):
            raw = query.get(name)
            if raw:
                parsed = parse_datetime(raw, clamp=True)
                if parsed is None:
                    raise unprocessable({name: ["invalid_date"]})
                bounds[name] = parsed
        if "timestamp_from" in bounds:
            events = [e for e in events if e["timestamp"] >= bounds["timestamp_from"]]
        if "timestamp_to" in bounds:
            events = [e for e in events if e["timestamp"] <= bounds["timestamp_to"]]
        page, meta = paginate(events, query, newest_first=True)
        return 200, {"events": [self._with_ids(e) for e in page], "meta": meta}

    # fee estimates ------------------------------------------------------------------------

    def _estimate_input(self, raw: Any) -> tuple[str, JSONObject, JSONObject, Units, Any]:
        """Validate one estimate input: ``(code, subscription, customer, units, tx)``."""
        if isinstance(raw, dict) and isinstance(raw.get("event"), dict):
            raw = raw["event"]
        if not isinstance(raw, dict):
            raise unprocessable({"event": [INVALID]})
        errors: JSONObject = {}
        code = _text(raw.get("code"))
        if not code:
            errors["code"] = [MANDATORY]
        sub_id = _text(raw.get("external_subscription_id"))
        if not sub_id:
            errors["external_subscription_id"] = [MANDATORY]
        properties = raw.get("properties")
        if properties is None:
            properties = {}
        elif not isinstance(properties, dict):
            errors["properties"] = [INVALID]
        if errors or not code:
            raise unprocessable(errors)
        sub = self._subscription(sub_id, None)
        customer = self.customers[sub["external_customer_id"]]
        return code, sub, customer, event_units(properties), raw.get("transaction_id")

    def _fees(self, raw: Any, *, instant: bool) -> list[JSONObject]:
        """The fees one event would create, as ``FeeObject``s.

        For a subscription that follows a plan, one per pay-in-advance charge of the
        event's metric, priced by the charge model (none when there is no such charge);
        else one fee at the flat unit price. With ``instant``, as ``FeeEstimateObject``s
        instead: precise amounts are numbers rather than strings, and a missing transaction
        id is left out.
        """
        code, sub, customer, units, tx = self._estimate_input(raw)
        event = raw["event"] if isinstance(raw.get("event"), dict) else raw
        planned = self.in_advance(sub, event) if self.in_advance is not None else None
        if planned is None:
            metric_id, charge_id = self._metric(code)
            price = Decimal(self.price(code))
            return [self._fee(code, sub, customer, units, price, tx, metric_id, charge_id, instant)]
        fees = []
        for charge_id, metric_id, metric_code, fee_units, amount in planned:
            price = amount * _HUNDRED / fee_units if fee_units else _ZERO
            fees.append(
                self._fee(
                    metric_code, sub, customer, fee_units, price, tx, metric_id, charge_id, instant
                )
            )
        return fees

    def _fee(
        self,
        code: str,
        sub: JSONObject,
        customer: JSONObject,
        units: Units,
        price: Decimal,
        tx: Any,
        metric_id: str,
        charge_id: str,
        instant: bool,
    ) -> JSONObject:
        """One fee of ``units`` at ``price`` cents each."""
        currency = customer["currency"] or self.currency
        amount, precise = amount_cents(units, price)
        number: Callable[[Decimal], Any] = float if instant else fmt_decimal
        fee: JSONObject = {
            "lago_id": None,
            "lago_charge_id": charge_id,
            "lago_charge_filter_id": None,
            "lago_invoice_id": None,
            "lago_true_up_fee_id": None,
            "lago_true_up_parent_fee_id": None,
            "lago_subscription_id": sub["lago_id"],
            "lago_customer_id": customer["lago_id"],
            "external_customer_id": customer["external_id"],
            "external_subscription_id": sub["external_id"],
            "amount_cents": amount,
            "precise_amount": number(precise / _HUNDRED),
            "precise_total_amount": number(precise / _HUNDRED),
            "amount_currency": currency,
            "taxes_amount_cents": 0,
            "taxes_precise_amount": number(_ZERO),
            "taxes_rate": 0.0,
            "units": fmt_decimal(units),
            "precise_unit_amount": number(Decimal(price) / _HUNDRED),
            "precise_coupons_amount_cents": "0",
            "total_amount_cents": amount,
            "total_amount_currency": currency,
            "events_count": 1,
            "pay_in_advance": True,
            "invoiceable": True,
            "payment_status": "pending",
            "created_at": None,
            "succeeded_at": None,
            "failed_at": None,
            "refunded_at": None,
            "item": {
                "type": "charge",
                "code": code,
                "name": code,
                "invoice_display_name": code,
                "filter_invoice_display_name": None,
                "filters": None,
                "lago_item_id": metric_id,
                "item_type": "BillableMetric",
                "grouped_by": {},
            },
        }
        tx_text = _text(tx)
        if instant:
            fee["amount_details"] = None
            if tx_text is not None:
                fee["event_transaction_id"] = tx_text
        else:
            fee["event_transaction_id"] = tx_text
            fee["total_aggregated_units"] = fee["units"]
            fee["from_date"] = fee["to_date"] = None
            fee["sub_total_excluding_taxes_amount_cents"] = amount
            fee["sub_total_excluding_taxes_precise_amount_cents"] = fmt_decimal(precise)
            fee["applied_taxes"] = []
        return fee

    def estimate_fees(self, params: Params, query: Query, body: Any) -> Result:
        """``POST /events/estimate_fees``: the pay-in-advance fee one event would create."""
        return 200, {"fees": self._fees(_root(body, "event"), instant=False)}

    def estimate_instant_fees(self, params: Params, query: Query, body: Any) -> Result:
        """``POST /events/estimate_instant_fees``: the instant fee one event would create."""
        return 200, {"fees": self._fees(_root(body, "event"), instant=True)}

    def batch_estimate_instant_fees(self, params: Params, query: Query, body: Any) -> Result:
        """``POST /events/batch_estimate_instant_fees``: one instant fee per event."""
        raw_events = self._batch(body)
        fees: list[JSONObject] = []
        failures: JSONObject = {}
        for index, raw in enumerate(raw_events):
            try:
                fees.extend(self._fees(raw, instant=True))
            except ApiError as exc:
                if exc.status != 422:
                    raise
                failures[str(index)] = exc.body["error_details"]
        if failures:
            raise unprocessable(failures)
        return 200, {"fees": fees}

    # usage --------------------------------------------------------------------------------

    def _usage_subscription(self, params: Params, query: Query) -> tuple[JSONObject, JSONObject]:
        customer = self._customer(params)
        sub = self._subscription(query.get("external_subscription_id"), customer["external_id"])
        return customer, sub

    def _charges_usage(
        self, charges: Mapping[str, Sequence[Any]], currency: str, projected: bool
    ) -> tuple[list[JSONObject], int]:
        items: list[JSONObject] = []
        total = 0
        for code, (count, units) in charges.items():
            amount, _ = amount_cents(units, self.price(code))
            total += amount
            metric_id, charge_id = self._metric(code)
            item: JSONObject = {
                "units": fmt_decimal(units),
                "events_count": count,
                "amount_cents": amount,
                "amount_currency": currency,
                "charge": {
                    "lago_id": charge_id,
                    "charge_model": "standard",
                    "invoice_display_name": code,
                },
                "billable_metric": {
                    "lago_id": metric_id,
                    "name": code,
                    "code": code,
                    "aggregation_type": "sum_agg",
                },
                "filters": [],
                "grouped_usage": [],
            }
            if projected:
                item["projected_units"] = item["units"]
                item["projected_amount_cents"] = amount
                item["groups"] = []
            else:
                item["total_aggregated_units"] = item["units"]
            items.append(item)
        return items, total

    def _usage_object(
        self,
        charges: Mapping[str, Sequence[Any]],
        currency: str,
        bounds: tuple[str, str, str],
        projected: bool = False,
    ) -> JSONObject:
        items, total = self._charges_usage(charges, currency, projected)
        usage: JSONObject = {
            "from_datetime": bounds[0],
            "to_datetime": bounds[1],
            "issuing_date": bounds[2],
            "lago_invoice_id": None,
            "currency": currency,
            "amount_cents": total,
            "taxes_amount_cents": 0,
            "total_amount_cents": total,
            "charges_usage": items,
        }
        if projected:
            usage["projected_amount_cents"] = total
        return usage

    def _open_period(self, sub_id: str) -> tuple[str, str, str]:
        start, end, issuing = _month_bounds(self.now())
        return self._period_start.get(sub_id, start), end, issuing

    def current_usage(self, params: Params, query: Query, body: Any = None) -> Result:
        """``GET /customers/{id}/current_usage``: every event of the open period, by code."""
        customer, sub = self._usage_subscription(params, query)
        charges = self._usage.get(sub["external_id"], {})
        code = query.get("billable_metric_code")
        currency = customer["currency"] or self.currency
        metered = self.meter(sub, currency, False, code) if self.meter is not None else None
        if metered is not None:
            return 200, {"customer_usage": metered}
        if code:
            charges = {c: v for c, v in charges.items() if c == code}
        usage = self._usage_object(charges, currency, self._open_period(sub["external_id"]))
        return 200, {"customer_usage": usage}

    def projected_usage(self, params: Params, query: Query, body: Any = None) -> Result:
        """``GET /customers/{id}/projected_usage``: FakeLago projects the current usage as is."""
        customer, sub = self._usage_subscription(params, query)
        charges = self._usage.get(sub["external_id"], {})
        currency = customer["currency"] or self.currency
        metered = self.meter(sub, currency, True, None) if self.meter is not None else None
        if metered is not None:
            return 200, {"customer_projected_usage": metered}
        usage = self._usage_object(
            charges, currency, self._open_period(sub["external_id"]), projected=True
        )
        return 200, {"customer_projected_usage": usage}

    def past_usage(self, params: Params, query: Query, body: Any = None) -> Result:
        """``GET /customers/{id}/past_usage``: closed periods, newest first, paged."""
        customer = self._customer(params)
        if not query.get("external_subscription_id"):
            raise unprocessable({"external_subscription_id": [MANDATORY]})
        _, sub = self._usage_subscription(params, query)
        periods = self._past_usage.get(sub["external_id"], [])[::-1]
        count = _int_param(query, "periods_count", 0)
        if count:
            periods = periods[:count]
        code = query.get("billable_metric_code")
        currency = customer["currency"] or self.currency
        usage_periods = [
            self._usage_object(
                {c: v for c, v in p["charges"].items() if not code or c == code},
                currency,
                (p["from_datetime"], p["to_datetime"], p["issuing_date"]),
            )
            for p in periods
        ]
        page, meta = paginate(usage_periods, query)
        return 200, {"usage_periods": page, "meta": meta}

    def usage(self, external_subscription_id: str) -> dict[str, tuple[int, Units]]:
        """``{code: (events_count, units)}`` of a subscription's open period."""
        return {
            code: (agg[0], agg[1])
            for code, agg in self._usage.get(external_subscription_id, {}).items()
        }


def _is_decimal(text: str) -> bool:
    """Whether ``text`` is a finite decimal number, as Lago requires of amounts."""
    try:
        return Decimal(text).is_finite()
    except ArithmeticError:
        return False
