"""FakeLago's answers for every operation of the API that the Store does not serve itself.

Resources live in buckets of plain dicts. The table :data:`COLLECTIONS` says, per path of a
collection, how Lago keys its items (by ``code``, ``external_id`` or ``lago_id``), which path
parameters link them to a parent (a customer's wallets), or in which list field of a parent
they live (a plan's charges). Every operation of the generated table ``_api_table`` is then
one of a few verbs on a collection (create, list, get, update, delete, metadata) or an
action with its own handler below; bodies are checked against the spec's request schema
before anything is stored, and answers are shaped by the response schema (``_conform``).

Fields whose name starts with ``_`` are FakeLago's own bookkeeping (a link to a parent that
the answer does not show): answers never include them.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from ._api_table import ROUTES as _TABLE
from ._conform import check, conform, resolve
from ._metering import (
    amount_cents,
    billing_period,
    charge_usage,
    pay_in_advance_fee,
    period_days,
)
from ._store import (
    ALREADY_EXISTS,
    INVALID,
    MANDATORY,
    ApiError,
    JSONObject,
    Params,
    Query,
    Result,
    bad_request,
    iso,
    not_found,
    paginate,
    to_datetime,
    unprocessable,
)

if TYPE_CHECKING:
    from ._store import Store

__all__ = ["COLLECTIONS", "Api", "Collection", "RouteSpec", "ROUTE_SPECS"]


@dataclass(frozen=True)
class Collection:
    """How Lago keys the items of one collection path.

    ``bucket`` names where top-level items live; an embedded collection has ``field`` (the
    list in its ``parent`` collection's items) instead. ``links`` pairs a path parameter
    with the item field it must equal (a customer's wallets: ``external_customer_id``).
    ``not_found`` is the code of the 404 for an unknown item.
    """

    key: str = "lago_id"
    bucket: str = ""
    field: str = ""
    parent: str = ""
    links: tuple[tuple[str, str], ...] = ()
    not_found: str = ""
    #: ``(field, code)`` pairs refused with ``value_already_exist`` when taken.
    unique: tuple[str, ...] = ()


def _coll(bucket: str, key: str, singular: str, **more: Any) -> Collection:
    unique = (key,) if key in ("code", "external_id") else ()
    return Collection(
        key=key, bucket=bucket, not_found=f"{singular}_not_found", unique=unique, **more
    )


def _embedded(parent: str, field: str, key: str, singular: str) -> Collection:
    return Collection(
        key=key,
        field=field,
        parent=parent,
        not_found=f"{singular}_not_found",
        unique=(key,) if key == "code" else (),
    )


_CUSTOMER = (("external_customer_id", "_external_customer_id"),)
_C = "/customers/{external_customer_id}"
_S = "/subscriptions/{external_id}"

#: Every collection path FakeLago serves generically, and how its items are keyed.
COLLECTIONS: dict[str, Collection] = {
    "/add_ons": _coll("add_ons", "code", "add_on"),
    "/billable_metrics": _coll("billable_metrics", "code", "billable_metric"),
    "/billing_entities": _coll("billing_entities", "code", "billing_entity"),
    "/coupons": _coll("coupons", "code", "coupon"),
    "/features": _coll("features", "code", "feature"),
    "/features/{code}/privileges": _embedded("/features", "privileges", "code", "privilege"),
    "/taxes": _coll("taxes", "code", "tax"),
    "/plans": _coll("plans", "code", "plan"),
    "/plans/{code}/charges": _embedded("/plans", "charges", "code", "charge"),
    "/plans/{code}/charges/{charge_code}/filters": _embedded(
        "/plans/{code}/charges", "filters", "lago_id", "charge_filter"
    ),
    "/plans/{code}/fixed_charges": _embedded("/plans", "fixed_charges", "code", "fixed_charge"),
    "/plans/{code}/entitlements": _embedded("/plans", "entitlements", "code", "entitlement"),
    "/plans/{code}/entitlements/{feature_code}/privileges": _embedded(
        "/plans/{code}/entitlements", "privileges", "code", "privilege"
    ),
    "/subscriptions": _coll("subscriptions", "external_id", "subscription"),
    _S + "/alerts": _coll(
        "alerts", "code", "alert", links=(("external_id", "external_subscription_id"),)
    ),
    _S + "/charges": _embedded("/subscriptions", "_charges", "code", "charge"),
    _S + "/charges/{charge_code}/filters": _embedded(
        _S + "/charges", "filters", "lago_id", "charge_filter"
    ),
    _S + "/fixed_charges": _embedded("/subscriptions", "_fixed_charges", "code", "fixed_charge"),
    _S + "/entitlements": _embedded("/subscriptions", "_entitlements", "code", "entitlement"),
    _S + "/entitlements/{feature_code}/privileges": _embedded(
        _S + "/entitlements", "privileges", "code", "privilege"
    ),
    "/invoices": _coll("invoices", "lago_id", "invoice"),
    "/fees": _coll("fees", "lago_id", "fee"),
    "/credit_notes": _coll("credit_notes", "lago_id", "credit_note"),
    "/wallets": _coll("wallets", "lago_id", "wallet"),
    _C + "/wallets": _coll("wallets", "code", "wallet", links=_CUSTOMER),
    _C + "/wallets/{wallet_code}/alerts": _coll(
        "wallet_alerts",
        "code",
        "alert",
        links=(*_CUSTOMER, ("wallet_code", "_wallet_code")),
    ),
    "/wallet_transactions": _coll("wallet_transactions", "lago_id", "wallet_transaction"),
    "/wallets/{lago_id}/wallet_transactions": _coll(
        "wallet_transactions",
        "lago_id",
        "wallet_transaction",
        links=(("lago_id", "lago_wallet_id"),),
    ),
    "/payments": _coll("payments", "lago_id", "payment"),
    "/payment_requests": _coll("payment_requests", "lago_id", "payment_request"),
    "/payment_receipts": _coll("payment_receipts", "lago_id", "payment_receipt"),
    "/activity_logs": _coll("activity_logs", "activity_id", "activity_log"),
    "/api_logs": _coll("api_logs", "request_id", "api_log"),
    "/applied_coupons": _coll("applied_coupons", "lago_id", "applied_coupon"),
    _C + "/payment_methods": _coll("payment_methods", "lago_id", "payment_method", links=_CUSTOMER),
    _C + "/invoices": _coll("invoices", "lago_id", "invoice", links=_CUSTOMER),
    _C + "/credit_notes": _coll("credit_notes", "lago_id", "credit_note", links=_CUSTOMER),
    _C + "/payments": _coll("payments", "lago_id", "payment", links=_CUSTOMER),
    _C + "/payment_requests": _coll(
        "payment_requests", "lago_id", "payment_request", links=_CUSTOMER
    ),
    _C + "/subscriptions": _coll(
        "subscriptions",
        "external_id",
        "subscription",
        links=(("external_customer_id", "external_customer_id"),),
    ),
}


@dataclass(frozen=True)
class RouteSpec:
    """One operation of the generated table, as FakeLago uses it."""

    method: str
    path: str
    namespace: str
    call: str
    body_key: str | None
    body_schema: Mapping[str, Any] | None
    result: str
    result_key: str | None
    result_keys: str | None
    status: int
    answer: Mapping[str, Any] | None
    statuses: tuple[int, ...] = ()

    @property
    def route(self) -> str:
        """``"METHOD /path"``, the name fault rules and counters use."""
        return f"{self.method} {self.path}"


#: Every operation of the API, from the generated table.
ROUTE_SPECS: tuple[RouteSpec, ...] = tuple(RouteSpec(*row) for row in _TABLE)

_PARAM = re.compile(r"^\{(\w+)\}$")
_PAGING = frozenset({"page", "per_page"})


@functools.cache
def _split(path: str) -> tuple[str, str | None, tuple[str, ...]]:
    """``(collection path, item parameter or None, action segments)`` of a route path
    (cached: each operation asks for its own on every request)."""
    best = ""
    for template in COLLECTIONS:
        if (path == template or path.startswith(template + "/")) and len(template) > len(best):
            best = template
    if not best:
        return "", None, tuple(path.strip("/").split("/"))
    rest = tuple(part for part in path[len(best) :].split("/") if part)
    match = _PARAM.match(rest[0]) if rest else None
    if match is None:
        return best, None, rest
    return best, match.group(1), rest[1:]


Handler = Callable[[RouteSpec, Params, Query, Any], Result]


class Api:
    """The generic half of FakeLago: buckets of objects and the verbs on them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.buckets: dict[str, dict[str, JSONObject]] = {}
        self.organization: JSONObject = {}
        self.reset()

    def reset(self) -> None:
        """Forget every object (and take over the Store's usage of planned subscriptions)."""
        self.store.meter = self.meter
        self.store.in_advance = self.in_advance
        self.store.after_events = self.check_alerts
        self.buckets = {c.bucket: {} for c in COLLECTIONS.values() if c.bucket}
        self.buckets["subscriptions"] = self.store.subscriptions
        self.organization = {}

    # -- lookups ---------------------------------------------------------------------------

    def bucket(self, name: str) -> dict[str, JSONObject]:
        """The objects of one bucket, keyed by their ``lago_id``, in creation order."""
        return self.buckets.setdefault(name, {})

    def items(self, template: str, params: Params) -> tuple[list[JSONObject], JSONObject | None]:
        """The items of the collection at ``template`` that ``params`` select, and their
        parent object (for an embedded collection). Raises 404 for an unknown parent."""
        coll = COLLECTIONS[template]
        if coll.field:
            parent_coll = COLLECTIONS[coll.parent]
            parent_item = _item_param(coll.parent, template)
            parent = self.find(coll.parent, params, params[parent_item])
            if parent_coll.bucket == "subscriptions":
                self._ensure_overrides(parent)
            listed = parent.setdefault(coll.field, [])
            return listed, parent
        for param, _ in coll.links:
            self._check_parent(param, params[param])
        objects = [
            obj
            for obj in self.bucket(coll.bucket).values()
            if all(_field(obj, f) == params[p] for p, f in coll.links)
        ]
        return objects, None

    def find(self, template: str, params: Params, key: str) -> JSONObject:
        """The item ``key`` of the collection at ``template`` (404 with Lago's code)."""
        coll = COLLECTIONS[template]
        if coll.bucket == "subscriptions" and not coll.links:
            sub = self.store.subscriptions.get(key)
            if sub is None:
                raise not_found(coll.not_found)
            self.store_subscription(sub)
            return sub
        objects, _ = self.items(template, params)
        for obj in objects:
            if str(obj.get(coll.key)) == key:
                return obj
        raise not_found(coll.not_found)

    def _check_parent(self, param: str, value: str) -> None:
        if param == "external_customer_id":
            if value not in self.store.customers:
                raise not_found("customer_not_found")
        elif param == "external_id":
            if value not in self.store.subscriptions:
                raise not_found("subscription_not_found")
        elif param == "wallet_code":
            return
        elif param == "lago_id" and value not in self.bucket("wallets"):
            raise not_found("wallet_not_found")

    def add_object(self, collection: str, fields: Mapping[str, Any]) -> JSONObject:
        """Store an object that Lago makes on its own (payment methods, fees, logs...)."""
        name = collection.strip("/")
        coll = next((c for c in COLLECTIONS.values() if c.bucket == name), None)
        if coll is None:
            known = sorted(c.bucket for c in COLLECTIONS.values() if c.bucket)
            raise ValueError(f"unknown collection {collection!r}: one of {sorted(set(known))}")
        obj: JSONObject = {"lago_id": self.store.new_id(), "created_at": self.store.now_iso()}
        obj.update(fields)
        obj.setdefault(coll.key, obj["lago_id"])
        if isinstance(obj.get("external_customer_id"), str):
            obj.setdefault("_external_customer_id", obj["external_customer_id"])
        self.bucket(coll.bucket)[obj["lago_id"]] = obj
        return obj

    # -- the verbs -------------------------------------------------------------------------

    def handler(self, spec: RouteSpec) -> Handler:
        """The function that answers ``spec``'s operation.

        Where Lago would answer 404 for an unknown object named in the body (not the
        path) but the spec documents no 404 for the operation, the answer is the 422 it
        documents, naming the object: ``{"invoice": ["not_found"]}``.
        """
        answer = self._handler(spec)
        if 404 in spec.statuses or 422 not in spec.statuses:
            return answer

        def documented(spec: RouteSpec, params: Params, query: Query, body: Any) -> Result:
            try:
                return answer(spec, params, query, body)
            except ApiError as exc:
                code = exc.body.get("code", "")
                if exc.status != 404 or not code.endswith("_not_found"):
                    raise
                raise unprocessable({code.removesuffix("_not_found"): ["not_found"]}) from None

        return documented

    def _handler(self, spec: RouteSpec) -> Handler:
        special = getattr(self, "op_" + _op_name(spec), None)
        if special is not None:
            return special  # type: ignore[no-any-return]
        template, item, action = _split(spec.path)
        if not template:
            return self.op_not_modelled
        if action and action[0] == "metadata":
            return self.op_metadata
        if action:
            return self.op_action
        if spec.method == "POST" and item is None:
            return self.op_create
        if spec.method == "GET":
            return self.op_get if item else self.op_list
        if spec.method in ("PUT", "PATCH"):
            return self.op_update
        if spec.method == "DELETE":
            return self.op_delete if item else self.op_delete_all
        return self.op_not_modelled

    def body_of(self, spec: RouteSpec, body: Any, *, required: bool = True) -> JSONObject:
        """The object under the body's wrapper key, checked against the request schema."""
        if spec.body_key is None:
            data = body if isinstance(body, dict) else {}
            wrapped = data.get(spec.result_key or "") if len(data) == 1 else None
            if isinstance(wrapped, dict):
                data = wrapped  # Lago also takes these fields under the resource's key
            schema = spec.body_schema
        else:
            value = body.get(spec.body_key) if isinstance(body, dict) else None
            if not isinstance(value, dict):
                raise self.missing(spec, spec.body_key)
            data = value
            outer = resolve(spec.body_schema or {})
            schema = (outer.get("p") or {}).get(spec.body_key)
        if schema is not None:
            errors: dict[str, list[str]] = {}
            check(data, schema, errors, required=required)
            if errors:
                raise unprocessable(errors)
        return dict(data)

    @staticmethod
    def missing(spec: RouteSpec, key: str) -> ApiError:
        """The error for a body without its ``key``: Lago's 400, or the 422 the spec
        documents for operations it lists no 400 for."""
        if 400 in spec.statuses or 422 not in spec.statuses:
            return bad_request(f"param is missing or the value is empty: {key}")
        return unprocessable({key: [MANDATORY]})

    def answer(self, spec: RouteSpec, value: Any, meta: JSONObject | None = None) -> Result:
        """``value`` wrapped and shaped as the operation answers it."""
        outer = resolve(spec.answer or {})
        props = outer.get("p") or {}
        if spec.result == "pager":
            list_key = spec.result_key or ""
            inner = props.get(list_key, {"t": "array"})
            payload: JSONObject = {list_key: conform(_public(value), inner)}
            if meta is not None:
                payload["meta"] = meta
            return spec.status, payload
        if spec.result == "none":
            return spec.status, None
        if spec.result == "one_or_many":
            return spec.status, {spec.result_keys or "": [_public(v) for v in value]}
        key = spec.result_key
        if key is None:
            return spec.status, conform(_public(value), outer)
        inner = props.get(key, outer)
        return spec.status, {key: conform(_public(value), inner)}

    def new_object(self, template: str, params: Params, data: JSONObject) -> JSONObject:
        """A fresh item of the collection at ``template`` from a create body."""
        coll = COLLECTIONS[template]
        obj: JSONObject = {"lago_id": self.store.new_id(), "created_at": self.store.now_iso()}
        obj.update(data)
        for param, field in coll.links:
            obj[field] = params[param]
        customer_id = data.get("external_customer_id")
        if isinstance(customer_id, str):
            obj.setdefault("_external_customer_id", customer_id)
        return obj

    def op_create(self, spec: RouteSpec, params: Params, query: Query, body: Any) -> Result:
        """Create an item; a taken ``code``/``external_id`` is ``value_already_exist``."""
        template, _, _ = _split(spec.path)
        coll = COLLECTIONS[template]
        data = self.body_of(spec, body)
        objects, _ = self.items(template, params)
        for field in coll.unique:
            value = data.get(field)
            if value is not None and any(o.get(field) == value for o in objects):
                raise unprocessable({field: [ALREADY_EXISTS]})
        obj = self.new_object(template, params, data)
        hook = getattr(self, "on_create_" + _hook_name(template), None)
        if hook is not None:
            obj = hook(obj, params) or obj
        if coll.field:
            objects.append(obj)
        else:
            self.bucket(coll.bucket)[obj["lago_id"]] = obj
        self.touched(template, "created", obj)
        return self.answer(spec, obj)

    def op_list(self, spec: RouteSpec, params: Params, query: Query, body: Any = None) -> Result:
        """List items, filtered by query parameters that name one of their fields."""
        template, _, _ = _split(spec.path)
        objects, _ = self.items(template, params)
        selected = [obj for obj in objects if _matches(obj, query)]
        page, meta = paginate(selected, query)
        return self.answer(spec, page, meta)

    def op_get(self, spec: RouteSpec, params: Params, query: Query, body: Any = None) -> Result:
        """One item."""
        template, item, _ = _split(spec.path)
        return self.answer(spec, self.find(template, params, params[item or ""]))

    def op_update(self, spec: RouteSpec, params: Params, query: Query, body: Any) -> Result:
        """Change the fields the body sends."""
        template, item, _ = _split(spec.path)
        data = self.body_of(spec, body, required=False)
        obj = self.find(template, params, params[item or ""])
        coll = COLLECTIONS[template]
        new_key = data.get(coll.key)
        if new_key is not None and str(new_key) != params[item or ""] and coll.unique:
            objects, _ = self.items(template, params)
            if any(o.get(coll.key) == new_key for o in objects):
                raise unprocessable({coll.key: [ALREADY_EXISTS]})
        hook = getattr(self, "on_update_" + _hook_name(template), None)
        if hook is not None:
            data = hook(obj, data, params) or data
        obj.update(data)
        obj["updated_at"] = self.store.now_iso()
        self.touched(template, "updated", obj)
        return self.answer(spec, obj)

    def op_delete(self, spec: RouteSpec, params: Params, query: Query, body: Any = None) -> Result:
        """Remove an item and answer with it as it was."""
        template, item, _ = _split(spec.path)
        coll = COLLECTIONS[template]
        obj = self.find(template, params, params[item or ""])
        hook = getattr(self, "on_delete_" + _hook_name(template), None)
        if hook is not None and hook(obj, params):
            return self.answer(spec, obj)  # the hook keeps it (terminated, say)
        objects, parent = self.items(template, params)
        if coll.field:
            objects.remove(obj)
        else:
            self.bucket(coll.bucket).pop(obj["lago_id"], None)
        obj.setdefault("deleted_at", self.store.now_iso())
        self.touched(template, "deleted", obj)
        if parent is not None and spec.result_key is not None:
            owner = COLLECTIONS[coll.parent].not_found.removesuffix("_not_found")
            if spec.result_key == owner:
                return self.answer(spec, parent)  # removing a privilege answers its feature
        return self.answer(spec, obj)

    def op_delete_all(
        self, spec: RouteSpec, params: Params, query: Query, body: Any = None
    ) -> Result:
        """Remove every item of a (linked) collection."""
        template, _, _ = _split(spec.path)
        coll = COLLECTIONS[template]
        objects, _ = self.items(template, params)
        for obj in list(objects):
            if coll.field:
                objects.remove(obj)
            else:
                self.bucket(coll.bucket).pop(obj["lago_id"], None)
        return self.answer(spec, {})

    def op_metadata(self, spec: RouteSpec, params: Params, query: Query, body: Any) -> Result:
        """Replace (POST), merge (PATCH), or delete one key or all of an item's metadata."""
        template, item, action = _split(spec.path)
        obj = self.find(template, params, params[item or ""])
        current = obj.get("metadata")
        metadata: dict[str, Any] = dict(current) if isinstance(current, dict) else {}
        if spec.method in ("POST", "PATCH"):
            if not isinstance(body, dict) or "metadata" not in body:
                raise self.missing(spec, "metadata")
            sent = body["metadata"] if body["metadata"] is not None else {}
            if not isinstance(sent, dict):
                raise unprocessable({"metadata": [INVALID]})
            bad = {
                k: [INVALID]
                for k, v in sent.items()
                if v is not None and not isinstance(v, str | int | float | bool)
            }
            if bad:
                raise unprocessable(bad)
            metadata = dict(sent) if spec.method == "POST" else {**metadata, **sent}
        elif len(action) > 1:
            key = params.get("key", "")
            if key not in metadata:
                raise not_found("metadata_key_not_found")
            del metadata[key]
        else:
            metadata = {}
        obj["metadata"] = metadata
        return spec.status, {"metadata": metadata}

    def op_action(self, spec: RouteSpec, params: Params, query: Query, body: Any) -> Result:
        """An action on an item (``/invoices/{id}/finalize``): its change, then the item."""
        template, item, action = _split(spec.path)
        obj = self.find(template, params, params[item or ""]) if item else {}
        name = action[-1]
        change = _ACTIONS.get((template, name))
        if change is not None:
            change(self, obj)
        if spec.result == "none":
            return spec.status, None
        if spec.result == "pager":
            page, meta = paginate([], query)
            return self.answer(spec, page, meta)
        if "_payment" in obj:
            return self.answer(spec, obj.pop("_payment"))
        return self.answer(spec, obj)

    def op_not_modelled(
        self, spec: RouteSpec, params: Params, query: Query, body: Any = None
    ) -> Result:
        """An operation FakeLago keeps no state for: an empty answer of the right shape."""
        if spec.body_schema is not None and body is not None:
            self.body_of(spec, body)
        if spec.result == "pager":
            page, meta = paginate([], query)
            return self.answer(spec, page, meta)
        return self.answer(spec, {})

    def touched(self, template: str, change: str, obj: JSONObject) -> None:
        """Send the webhook Lago sends for ``change`` (created, updated...) of ``obj``."""
        found = _WEBHOOKS.get((COLLECTIONS[template].bucket or template, change))
        notify = self.store.notify
        if found is None or notify is None:
            return
        webhook_type, object_type = found
        notify(webhook_type, object_type, conform(_public(obj), _item_schema(template)))

    # -- metering ---------------------------------------------------------------------------

    def period_of(self, sub: JSONObject, plan: JSONObject) -> tuple[datetime, datetime, int]:
        """The open billing period of ``sub`` at FakeLago's clock, and its length in days."""
        anchor = _moment(sub.get("subscription_at") or sub.get("started_at"))
        now = self.store.now()
        billing_time = sub.get("billing_time") or "calendar"
        interval = plan.get("interval") or "monthly"
        start, end = billing_period(billing_time, interval, anchor, now)
        return start, end, period_days(billing_time, interval, anchor, now)

    def meter(
        self, sub: JSONObject, currency: str, projected: bool, code: str | None
    ) -> JSONObject | None:
        """The current (or projected) usage of a subscription that follows a plan, computed
        from its events by the metering rules; ``None`` for one without a plan."""
        plan = self.plan_of(sub)
        if plan is None:
            return None
        self._ensure_overrides(sub)
        start, end, days = self.period_of(sub, plan)
        events = [
            e for e in self.store.events if e.get("external_subscription_id") == sub["external_id"]
        ]
        items = []
        total = 0
        for charge in sub.get("_charges") or []:
            metric = self.metric(charge.get("billable_metric_code") or "")
            if metric is None or (code and metric["code"] != code):
                continue
            usage = charge_usage(charge, metric, events, start, end, period_length_days=days)
            amount = amount_cents(usage.amount)
            total += amount
            item: JSONObject = {
                "units": _text(usage.units),
                "events_count": usage.events_count,
                "amount_cents": amount,
                "amount_currency": currency,
                "pricing_unit_details": None,
                "charge": {
                    "lago_id": charge["lago_id"],
                    "charge_model": charge.get("charge_model"),
                    "invoice_display_name": charge.get("invoice_display_name"),
                },
                "billable_metric": {
                    "lago_id": metric["lago_id"],
                    "name": metric.get("name") or metric["code"],
                    "code": metric["code"],
                    "aggregation_type": metric.get("aggregation_type"),
                },
                "filters": [
                    {
                        "units": _text(f.units),
                        "amount_cents": amount_cents(f.amount),
                        "events_count": f.events_count,
                        "invoice_display_name": f.invoice_display_name,
                        "values": f.values,
                    }
                    for f in usage.filters
                ],
                "grouped_usage": [],
            }
            if projected:
                item["projected_units"] = item["units"]
                item["projected_amount_cents"] = amount
                item["groups"] = []
            else:
                item["total_aggregated_units"] = item["units"]
            items.append(item)
        result: JSONObject = {
            "from_datetime": iso(start),
            "to_datetime": iso(end.replace(microsecond=0)),
            "issuing_date": (end + timedelta(days=1)).date().isoformat(),
            "lago_invoice_id": None,
            "currency": currency,
            "amount_cents": total,
            "taxes_amount_cents": 0,
            "total_amount_cents": total,
            "charges_usage": items,
        }
        if projected:
            result["projected_amount_cents"] = total
        return result

    def in_advance(
        self, sub: JSONObject, event: JSONObject
    ) -> list[tuple[str, str, str, Decimal, Decimal]] | None:
        """The fees ``event`` would create on the pay-in-advance charges of ``sub``'s plan,
        as ``(charge id, metric id, metric code, units, amount)``; ``None`` without a plan."""
        plan = self.plan_of(sub)
        if plan is None:
            return None
        self._ensure_overrides(sub)
        start, end, days = self.period_of(sub, plan)
        candidate = {
            "transaction_id": event.get("transaction_id") or "estimate",
            "code": event.get("code"),
            "external_subscription_id": sub["external_id"],
            "timestamp": self.store.now_iso(),
            "properties": event.get("properties") or {},
        }
        earlier = [
            e for e in self.store.events if e.get("external_subscription_id") == sub["external_id"]
        ]
        out = []
        for charge in sub.get("_charges") or []:
            metric = self.metric(charge.get("billable_metric_code") or "")
            if not charge.get("pay_in_advance") or metric is None:
                continue
            if metric["code"] != candidate["code"]:
                continue
            units, amount = pay_in_advance_fee(
                charge, metric, candidate, earlier, start, end, period_length_days=days
            )
            out.append((charge["lago_id"], metric["lago_id"], metric["code"], units, amount))
        return out

    def check_alerts(self, subscriptions: set[str]) -> None:
        """Send ``alert.triggered`` for each usage alert of ``subscriptions`` whose thresholds
        the current usage just crossed upwards (amounts in cents, units as sent).

        Alerts on the usage amount, a metric's amount or a metric's units are checked;
        the others (lifetime usage, wallets) are stored but never trigger.
        """
        alerts = [
            a
            for a in self.bucket("alerts").values()
            if a.get("external_subscription_id") in subscriptions
            and a.get("alert_type") in _WATCHED
        ]
        usages: dict[str, JSONObject | None] = {}  # one usage per subscription, not per alert
        for alert in alerts:
            sub = self.store.subscriptions.get(alert["external_subscription_id"])
            if sub is None:
                continue
            if sub["external_id"] not in usages:
                customer = self.store.customers.get(sub.get("external_customer_id") or "", {})
                currency = customer.get("currency") or self.store.currency
                usages[sub["external_id"]] = self.meter(sub, currency, False, None)
            usage = usages[sub["external_id"]]
            if usage is None:
                continue
            current = _alert_value(alert, usage)
            previous = _decimal(alert.get("previous_value"))
            crossed = [
                t
                for t in alert.get("thresholds") or []
                if isinstance(t, dict)
                and not t.get("recurring")
                and previous < _decimal(t.get("value")) <= current
            ]
            alert["previous_value"] = _text(current)
            alert["last_processed_at"] = self.store.now_iso()
            notify = self.store.notify
            if not crossed or notify is None:
                continue
            notify(
                "alert.triggered",
                "triggered_alert",
                {
                    "lago_id": self.store.new_id(),
                    "lago_alert_id": alert["lago_id"],
                    "lago_subscription_id": sub["lago_id"],
                    "external_subscription_id": sub["external_id"],
                    "external_customer_id": sub.get("external_customer_id"),
                    "billable_metric_code": alert.get("billable_metric_code"),
                    "alert_type": alert["alert_type"],
                    "alert_code": alert["code"],
                    "alert_name": alert.get("name"),
                    "current_value": _text(current),
                    "previous_value": _text(previous),
                    "triggered_at": self.store.now_iso(),
                    "crossed_thresholds": [
                        {"code": t.get("code"), "value": t.get("value"), "recurring": False}
                        for t in crossed
                    ],
                },
            )

    # -- hooks: what Lago derives when an object is created or changed -----------------------

    def store_subscription(self, sub: JSONObject) -> JSONObject:
        """Fill the fields of a subscription that the Store's short form lacks."""
        sub.setdefault("created_at", self.store.now_iso())
        sub.setdefault("status", "active")
        sub.setdefault("started_at", sub["created_at"])
        sub.setdefault("subscription_at", sub["created_at"])
        sub.setdefault("billing_time", "calendar")
        return sub

    def _ensure_overrides(self, sub: JSONObject) -> None:
        """A subscription's own copy of its plan's charges, for per-subscription overrides."""
        if "_charges" in sub:
            return
        plan = self.plan_of(sub)
        for field in ("charges", "fixed_charges", "entitlements"):
            sub["_" + field] = copy.deepcopy((plan or {}).get(field, []))

    def _by(self, bucket: str, field: str, value: Any) -> JSONObject | None:
        """The first object of ``bucket`` whose ``field`` is ``value``, if any."""
        return next((o for o in self.bucket(bucket).values() if o.get(field) == value), None)

    def plan_of(self, sub: JSONObject) -> JSONObject | None:
        """The plan a subscription follows (``None`` for one FakeLago attached on its own)."""
        code = sub.get("plan_code")
        return None if code is None else self._by("plans", "code", code)

    def metric(self, code: str) -> JSONObject | None:
        """The billable metric ``code``, if created."""
        return self._by("billable_metrics", "code", code)

    def on_create_billable_metrics(self, obj: JSONObject, params: Params) -> None:
        obj.setdefault("recurring", False)
        obj.setdefault("filters", [])
        obj.setdefault("active_subscriptions_count", 0)
        obj.setdefault("draft_invoices_count", 0)
        obj.setdefault("plans_count", 0)

    def on_create_plans(self, obj: JSONObject, params: Params) -> None:
        charges = obj.get("charges") or []
        errors: dict[str, list[str]] = {}
        built = []
        for index, charge in enumerate(charges):
            built.append(self._charge(charge, f"charges.{index}", errors))
        if errors:
            raise unprocessable(errors)
        obj["charges"] = built
        obj.setdefault("pay_in_advance", False)
        obj.setdefault("bill_charges_monthly", None)
        obj.setdefault("active_subscriptions_count", 0)
        obj.setdefault("draft_invoices_count", 0)
        obj.setdefault("taxes", [])
        obj["fixed_charges"] = [
            {"lago_id": self.store.new_id(), "created_at": obj["created_at"], **fixed}
            for fixed in obj.get("fixed_charges") or []
            if isinstance(fixed, dict)
        ]

    def on_update_plans(self, obj: JSONObject, data: JSONObject, params: Params) -> JSONObject:
        if "charges" in data:
            errors: dict[str, list[str]] = {}
            data["charges"] = [
                self._charge(c, f"charges.{i}", errors) for i, c in enumerate(data["charges"])
            ]
            if errors:
                raise unprocessable(errors)
        return data

    def _charge(self, charge: Any, where: str, errors: dict[str, list[str]]) -> JSONObject:
        """A plan's charge as Lago stores it: its metric resolved (422 when unknown)."""
        if not isinstance(charge, dict):
            errors[where] = [INVALID]
            return {}
        metric = self.bucket("billable_metrics").get(str(charge.get("billable_metric_id")))
        if metric is None and charge.get("billable_metric_code") is not None:
            metric = self.metric(charge["billable_metric_code"])
        if metric is None:
            errors.setdefault("billable_metrics", ["not_found"])
            return {}
        out: JSONObject = {
            "lago_id": charge.get("lago_id") or self.store.new_id(),
            "created_at": self.store.now_iso(),
            "invoiceable": True,
            "pay_in_advance": False,
            "prorated": False,
            "min_amount_cents": 0,
            "properties": {},
            "filters": [],
            "taxes": [],
            **charge,
        }
        out["lago_billable_metric_id"] = metric["lago_id"]
        out["billable_metric_code"] = metric["code"]
        out.setdefault("code", charge.get("code") or f"{metric['code']}_{out['lago_id'][-6:]}")
        out["filters"] = [
            {"lago_id": self.store.new_id(), **f} for f in out["filters"] if isinstance(f, dict)
        ]
        return out

    def on_create_plans_code_charges(self, obj: JSONObject, params: Params) -> JSONObject:
        errors: dict[str, list[str]] = {}
        charge = self._charge(obj, "charge", errors)
        if errors:
            raise unprocessable(errors)
        return charge

    def on_create_subscriptions(self, obj: JSONObject, params: Params) -> JSONObject:
        customer_id = obj.get("external_customer_id")
        if not isinstance(customer_id, str) or not customer_id:
            raise unprocessable({"external_customer_id": [MANDATORY]})
        plan = self._by("plans", "code", obj.get("plan_code"))
        if plan is None:
            raise not_found("plan_not_found")
        external_id = obj.get("external_id") or obj["lago_id"]
        existing = self.store.subscriptions.get(external_id)
        base = self.store.add_subscription(external_id, customer_id)
        now = self.store.now_iso()
        base.update(
            {k: v for k, v in obj.items() if k not in ("lago_id",) and not k.startswith("_")}
        )
        if existing is None or "plan_code" not in existing:
            start = obj.get("subscription_at") or now
            base.update(
                {
                    "created_at": now,
                    "started_at": start,
                    "subscription_at": start,
                    "status": "active",
                }
            )
        base["external_id"] = external_id
        base.setdefault("billing_time", "calendar")
        base["plan_code"] = plan["code"]
        base["lago_plan_id"] = plan["lago_id"]
        base["plan_amount_cents"] = plan.get("amount_cents", 0)
        base["plan_amount_currency"] = plan.get("amount_currency")
        base.pop("_charges", None)
        self._ensure_overrides(base)
        return base

    def op_create_subscriptions(
        self, spec: RouteSpec, params: Params, query: Query, body: Any
    ) -> Result:
        """``POST /subscriptions``: create, or change the plan of the same ``external_id``."""
        data = self.body_of(spec, body)
        obj = self.new_object("/subscriptions", params, data)
        sub = self.on_create_subscriptions(obj, params)
        self.touched("/subscriptions", "created", sub)
        return self.answer(spec, sub)

    def on_delete_subscriptions(self, obj: JSONObject, params: Params) -> bool:
        obj["status"] = "terminated"
        obj["terminated_at"] = self.store.now_iso()
        self.touched("/subscriptions", "terminated", obj)
        return True

    def on_create_customers_external_customer_id_wallets(
        self, obj: JSONObject, params: Params
    ) -> None:
        self._new_wallet(obj)

    def on_create_wallets(self, obj: JSONObject, params: Params) -> None:
        customer_id = obj.get("external_customer_id")
        if customer_id not in self.store.customers:
            raise not_found("customer_not_found")
        obj["_external_customer_id"] = customer_id
        self._new_wallet(obj)

    def _new_wallet(self, obj: JSONObject) -> None:
        customer_id = obj.get("_external_customer_id") or obj.get("external_customer_id")
        obj["external_customer_id"] = obj["_external_customer_id"] = customer_id
        customer = self.store.customers.get(customer_id or "")
        if customer is not None:
            obj["lago_customer_id"] = customer["lago_id"]
            obj.setdefault("currency", customer.get("currency") or self.store.currency)
        obj.setdefault("code", obj["lago_id"])
        obj.setdefault("status", "active")
        obj.setdefault("rate_amount", "1")
        obj["balance_cents"] = 0
        obj["credits_balance"] = "0.0"
        obj["ongoing_balance_cents"] = 0
        obj["ongoing_usage_balance_cents"] = 0
        obj["credits_ongoing_balance"] = "0.0"
        obj["credits_ongoing_usage_balance"] = "0.0"
        obj["consumed_credits"] = "0.0"
        obj["consumed_amount_cents"] = 0
        paid = _decimal(obj.get("paid_credits"))
        granted = _decimal(obj.get("granted_credits"))
        self._credit(obj, paid, granted)

    def _credit(self, wallet: JSONObject, paid: Decimal, granted: Decimal) -> list[JSONObject]:
        """Credit ``wallet`` (paid credits settle at once in FakeLago); its transactions."""
        return [
            self._transaction(wallet, amount, kind)
            for amount, kind in ((paid, "purchased"), (granted, "granted"))
            if amount > 0
        ]

    def _transaction(self, wallet: JSONObject, credits: Decimal, kind: str) -> JSONObject:
        """Move ``credits`` into ``wallet`` (out of it for ``voided``): its new balance, and
        the settled transaction that records the move."""
        rate = _decimal(wallet.get("rate_amount")) or Decimal(1)
        sign = -1 if kind == "voided" else 1
        left = _decimal(wallet.get("credits_balance")) + sign * credits
        wallet["credits_balance"] = wallet["credits_ongoing_balance"] = _text(left)
        wallet["balance_cents"] = wallet["ongoing_balance_cents"] = int(left * rate * 100)
        tx = {
            "lago_id": self.store.new_id(),
            "lago_wallet_id": wallet["lago_id"],
            "status": "settled",
            "transaction_status": kind,
            "transaction_type": "outbound" if sign < 0 else "inbound",
            "source": "manual",
            "amount": _text(credits * rate),
            "credit_amount": _text(credits),
            "settled_at": self.store.now_iso(),
            "created_at": self.store.now_iso(),
        }
        self.bucket("wallet_transactions")[tx["lago_id"]] = tx
        self.touched("/wallet_transactions", "created", tx)
        return tx

    def op_create_wallets_transactions(
        self, spec: RouteSpec, params: Params, query: Query, body: Any
    ) -> Result:
        """``POST /wallet_transactions``: top up or void credits; answers the transactions."""
        data = self.body_of(spec, body)
        wallet = self.bucket("wallets").get(str(data.get("wallet_id")))
        if wallet is None:
            raise not_found("wallet_not_found")
        paid = _decimal(data.get("paid_credits"))
        granted = _decimal(data.get("granted_credits"))
        voided = _decimal(data.get("voided_credits"))
        transactions = self._credit(wallet, paid, granted)
        if voided > 0:
            if voided > _decimal(wallet["credits_balance"]):
                raise unprocessable({"voided_credits": ["insufficient_credits"]})
            transactions.append(self._transaction(wallet, voided, "voided"))
        return self.answer(spec, transactions)

    def op_create_applied_coupons(
        self, spec: RouteSpec, params: Params, query: Query, body: Any
    ) -> Result:
        """``POST /applied_coupons``: apply a created coupon to a customer."""
        data = self.body_of(spec, body)
        customer_id = data.get("external_customer_id")
        if customer_id not in self.store.customers:
            raise not_found("customer_not_found")
        coupon = self._by("coupons", "code", data.get("coupon_code"))
        if coupon is None:
            raise not_found("coupon_not_found")
        applied = self.store.add_applied_coupon(
            str(customer_id),
            coupon["code"],
            coupon_name=coupon.get("name"),
            amount_cents=data.get("amount_cents", coupon.get("amount_cents")),
            amount_currency=data.get("amount_currency", coupon.get("amount_currency")),
            percentage_rate=data.get("percentage_rate", coupon.get("percentage_rate")),
            frequency=data.get("frequency") or coupon.get("frequency") or "once",
            frequency_duration=data.get("frequency_duration", coupon.get("frequency_duration")),
        )
        applied["lago_coupon_id"] = coupon["lago_id"]
        return self.answer(spec, applied)

    def op_list_applied_coupons(
        self, spec: RouteSpec, params: Params, query: Query, body: Any = None
    ) -> Result:
        """``GET /applied_coupons``: every customer's applied coupons."""
        applied = [c for coupons in self.store._coupons.values() for c in coupons.values()]
        selected = [obj for obj in applied if _matches(obj, query)]
        page, meta = paginate(selected, query)
        return self.answer(spec, page, meta)

    def op_update_organization(
        self, spec: RouteSpec, params: Params, query: Query, body: Any
    ) -> Result:
        """``PUT /organizations``: the organisation's settings."""
        data = self.body_of(spec, body, required=False)
        self.organization.setdefault("lago_id", self.store.new_id())
        self.organization.setdefault("created_at", self.store.now_iso())
        self.organization.update(data)
        return self.answer(spec, self.organization)

    # -- invoices and what follows them ------------------------------------------------------

    def customer(self, external_id: Any) -> JSONObject:
        """The customer ``external_id`` (404 ``customer_not_found``)."""
        customer = self.store.customers.get(external_id) if isinstance(external_id, str) else None
        if customer is None:
            raise not_found("customer_not_found")
        return customer

    def on_create_invoices(self, obj: JSONObject, params: Params) -> None:
        """A one-off invoice: a fee per add-on line, finalized at once."""
        customer = self.customer(obj.get("external_customer_id"))
        currency = obj.get("currency") or customer.get("currency") or self.store.currency
        fees = []
        total = 0
        for line in obj.get("fees") or []:
            add_on = self._by("add_ons", "code", line.get("add_on_code"))
            if add_on is None:
                raise not_found("add_on_not_found")
            units = _decimal(line.get("units") if line.get("units") is not None else 1)
            unit = line.get("unit_amount_cents")
            unit_cents = _decimal(unit if unit is not None else add_on.get("amount_cents", 0))
            amount = int((units * unit_cents).to_integral_value())
            total += amount
            fee = {
                "lago_id": self.store.new_id(),
                "lago_invoice_id": obj["lago_id"],
                "lago_customer_id": customer["lago_id"],
                "external_customer_id": customer["external_id"],
                "_external_customer_id": customer["external_id"],
                "amount_cents": amount,
                "amount_currency": currency,
                "precise_amount": _text(units * unit_cents / 100),
                "taxes_amount_cents": 0,
                "taxes_precise_amount": "0.0",
                "total_amount_cents": amount,
                "total_amount_currency": currency,
                "units": _text(units),
                "events_count": 0,
                "invoice_display_name": line.get("invoice_display_name") or add_on.get("name"),
                "description": line.get("description"),
                "pay_in_advance": False,
                "invoiceable": True,
                "payment_status": "pending",
                "created_at": obj["created_at"],
                "item": {
                    "type": "add_on",
                    "code": add_on["code"],
                    "name": add_on.get("name") or add_on["code"],
                    "lago_item_id": add_on["lago_id"],
                    "item_type": "AddOn",
                },
            }
            self.bucket("fees")[fee["lago_id"]] = fee
            fees.append(fee)
        self.store._sequential_id += 1
        obj.update(
            {
                "_external_customer_id": customer["external_id"],
                "customer": dict(customer),
                "sequential_id": self.store._sequential_id,
                "number": f"FAKE-{self.store._sequential_id:06d}",
                "issuing_date": self.store.now().date().isoformat(),
                "invoice_type": "one_off",
                "status": "finalized",
                "payment_status": "pending",
                "currency": currency,
                "fees_amount_cents": total,
                "sub_total_excluding_taxes_amount_cents": total,
                "taxes_amount_cents": 0,
                "sub_total_including_taxes_amount_cents": total,
                "total_amount_cents": total,
                "total_due_amount_cents": total,
                "total_paid_amount_cents": 0,
                "credit_notes_amount_cents": 0,
                "coupons_amount_cents": 0,
                "prepaid_credit_amount_cents": 0,
                "progressive_billing_credit_amount_cents": 0,
                "version_number": 4,
                "payment_overdue": False,
                "fees": [_public(fee) for fee in fees],
                "metadata": [],
            }
        )
        obj.pop("fees_input", None)

    def _invoice(self, lago_id: Any) -> JSONObject:
        invoice = self.bucket("invoices").get(lago_id) if isinstance(lago_id, str) else None
        if invoice is None:
            raise not_found("invoice_not_found")
        return invoice

    def on_create_credit_notes(self, obj: JSONObject, params: Params) -> None:
        """A credit note on an invoice's fees; the invoice's due amount shrinks."""
        invoice = self._invoice(obj.get("invoice_id"))
        total = 0
        items = []
        for line in obj.get("items") or []:
            fee = self.bucket("fees").get(line.get("fee_id"))
            if fee is None or fee.get("lago_invoice_id") != invoice["lago_id"]:
                raise not_found("fee_not_found")
            amount = int(line.get("amount_cents") or 0)
            if amount > fee["amount_cents"]:
                raise unprocessable({"amount_cents": ["higher_than_remaining_fee_amount"]})
            total += amount
            items.append(
                {"lago_id": self.store.new_id(), "amount_cents": amount, "fee": _public(fee)}
            )
        credit = int(obj.get("credit_amount_cents") or 0)
        refund = int(obj.get("refund_amount_cents") or 0)
        if credit + refund + int(obj.get("offset_amount_cents") or 0) > total:
            raise unprocessable({"base": ["higher_than_remaining_invoice_amount"]})
        self.store._sequential_id += 1
        obj.update(
            {
                "_external_customer_id": invoice["_external_customer_id"],
                "lago_invoice_id": invoice["lago_id"],
                "invoice_number": invoice["number"],
                "sequential_id": self.store._sequential_id,
                "number": f"FAKE-CN-{self.store._sequential_id:06d}",
                "issuing_date": self.store.now().date().isoformat(),
                "credit_status": "available" if credit else None,
                "refund_status": "pending" if refund else None,
                "currency": invoice["currency"],
                "total_amount_cents": total,
                "credit_amount_cents": credit,
                "balance_amount_cents": credit,
                "refund_amount_cents": refund,
                "sub_total_excluding_taxes_amount_cents": total,
                "taxes_amount_cents": 0,
                "coupons_adjustment_amount_cents": 0,
                "items": items,
                "customer": invoice.get("customer"),
            }
        )
        invoice["credit_notes_amount_cents"] = invoice.get("credit_notes_amount_cents", 0) + total
        invoice["total_due_amount_cents"] = max(0, invoice["total_due_amount_cents"] - total)

    def on_create_payments(self, obj: JSONObject, params: Params) -> None:
        """A manual payment of an invoice: it is paid when nothing is left due."""
        invoice = self._invoice(obj.get("invoice_id"))
        amount = int(obj.get("amount_cents") or 0)
        obj.update(
            {
                "_external_customer_id": invoice["_external_customer_id"],
                "invoice_ids": [invoice["lago_id"]],
                "lago_customer_id": invoice["customer"]["lago_id"],
                "external_customer_id": invoice["_external_customer_id"],
                "amount_currency": invoice["currency"],
                "payment_status": "succeeded",
                "type": "manual",
                "status": "succeeded",
            }
        )
        invoice["total_paid_amount_cents"] = invoice.get("total_paid_amount_cents", 0) + amount
        due = max(0, invoice["total_due_amount_cents"] - amount)
        invoice["total_due_amount_cents"] = due
        if due == 0:
            invoice["payment_status"] = "succeeded"

    def on_create_payment_requests(self, obj: JSONObject, params: Params) -> None:
        """A request to pay overdue invoices of one customer."""
        customer = self.customer(obj.get("external_customer_id"))
        invoices = [self._invoice(i) for i in obj.get("lago_invoice_ids") or []]
        obj.update(
            {
                "_external_customer_id": customer["external_id"],
                "customer": dict(customer),
                "invoices": [_public(i) for i in invoices],
                "amount_cents": sum(i["total_due_amount_cents"] for i in invoices),
                "amount_currency": invoices[0]["currency"]
                if invoices
                else customer.get("currency"),
                "payment_status": "pending",
            }
        )

    # -- entitlements and alerts: bodies of their own shape -------------------------------

    def _entitlements(self, sent: Any) -> list[JSONObject]:
        """``{feature_code: {privilege_code: value}}`` as entitlement objects."""
        if not isinstance(sent, dict):
            raise unprocessable({"entitlements": [MANDATORY]})
        out = []
        for code, values in sent.items():
            feature = self._by("features", "code", code)
            if feature is None:
                raise not_found("feature_not_found")
            if not isinstance(values, dict):
                raise unprocessable({f"entitlements.{code}": [INVALID]})
            privileges = []
            known = {p.get("code"): p for p in feature.get("privileges") or []}
            for privilege_code, value in values.items():
                privilege = known.get(privilege_code)
                if privilege is None:
                    raise not_found("privilege_not_found")
                privileges.append({**privilege, "value": value})
            out.append(
                {
                    "code": code,
                    "name": feature.get("name"),
                    "description": feature.get("description"),
                    "privileges": privileges,
                }
            )
        return out

    def _set_entitlements(
        self, spec: RouteSpec, params: Params, body: Any, field: str, parent: JSONObject
    ) -> Result:
        sent = body.get("entitlements") if isinstance(body, dict) else None
        built = self._entitlements(sent)
        current = {e["code"]: e for e in parent.get(field) or []}
        if spec.method == "POST":
            current = {}
        for entitlement in built:
            previous = current.get(entitlement["code"])
            if previous is not None:
                kept = {p["code"]: p for p in previous["privileges"]}
                kept.update({p["code"]: p for p in entitlement["privileges"]})
                entitlement["privileges"] = list(kept.values())
            current[entitlement["code"]] = entitlement
        parent[field] = list(current.values())
        return self.answer(spec, parent[field])

    def op_create_plans_entitlements(
        self, spec: RouteSpec, params: Params, query: Query, body: Any
    ) -> Result:
        """``POST /plans/{code}/entitlements``: set the plan's entitlements."""
        plan = self.find("/plans", params, params["code"])
        return self._set_entitlements(spec, params, body, "entitlements", plan)

    def op_update_plans_entitlements(
        self, spec: RouteSpec, params: Params, query: Query, body: Any
    ) -> Result:
        """``PATCH /plans/{code}/entitlements``: merge into the plan's entitlements."""
        plan = self.find("/plans", params, params["code"])
        return self._set_entitlements(spec, params, body, "entitlements", plan)

    def op_update_subscriptions_entitlements(
        self, spec: RouteSpec, params: Params, query: Query, body: Any
    ) -> Result:
        """``PATCH /subscriptions/{id}/entitlements``: the subscription's own values."""
        sub = self.find("/subscriptions", params, params["external_id"])
        self._ensure_overrides(sub)
        return self._set_entitlements(spec, params, body, "_entitlements", sub)

    def _create_alerts(
        self, spec: RouteSpec, params: Params, body: Any, template: str, links: JSONObject
    ) -> Result:
        if isinstance(body, dict) and isinstance(body.get("alerts"), list):
            sent = body["alerts"]
        elif isinstance(body, dict) and isinstance(body.get("alert"), dict):
            sent = [body["alert"]]
        else:
            raise self.missing(spec, "alert")
        objects, _ = self.items(template, params)
        created = []
        taken = {o.get("code") for o in objects}
        for index, alert in enumerate(sent):
            if not isinstance(alert, dict):
                raise unprocessable({f"alerts.{index}": [INVALID]})
            errors = {
                field: [MANDATORY]
                for field in ("alert_type", "code", "thresholds")
                if alert.get(field) is None
            }
            if errors:
                raise unprocessable(errors)
            if alert["code"] in taken:
                raise unprocessable({"code": [ALREADY_EXISTS]})
            taken.add(alert["code"])
            obj = self.new_object(template, params, dict(alert))
            obj.update(links)
            obj["previous_value"] = "0.0"
            obj["last_processed_at"] = None
            created.append(obj)
        for obj in created:
            self.bucket(COLLECTIONS[template].bucket)[obj["lago_id"]] = obj
        item = _item_schema(template)
        if isinstance(body.get("alert"), dict) and "alerts" not in body:
            return spec.status, {spec.result_key or "alert": conform(_public(created[0]), item)}
        return spec.status, {
            spec.result_keys or "alerts": [conform(_public(o), item) for o in created]
        }

    def op_create_subscriptions_alerts(
        self, spec: RouteSpec, params: Params, query: Query, body: Any
    ) -> Result:
        """``POST /subscriptions/{id}/alerts``: one alert or several."""
        sub = self.find("/subscriptions", params, params["external_id"])
        links = {
            "lago_subscription_id": sub["lago_id"],
            "external_subscription_id": sub["external_id"],
        }
        return self._create_alerts(spec, params, body, _S + "/alerts", links)

    def op_create_customers_wallets_alerts(
        self, spec: RouteSpec, params: Params, query: Query, body: Any
    ) -> Result:
        """``POST /customers/{id}/wallets/{code}/alerts``: one alert or several."""
        wallet = self.find(_C + "/wallets", params, params["wallet_code"])
        links = {"lago_wallet_id": wallet["lago_id"], "wallet_code": wallet.get("code")}
        return self._create_alerts(spec, params, body, _C + "/wallets/{wallet_code}/alerts", links)


def _void(api: Api, obj: JSONObject) -> None:
    obj["status"] = "voided"
    obj["voided_at"] = api.store.now_iso()
    api.touched("/invoices", "voided", obj)


def _finalize(api: Api, obj: JSONObject) -> None:
    obj["status"] = "finalized"
    obj["issuing_date"] = api.store.now().date().isoformat()


def _void_credit_note(api: Api, obj: JSONObject) -> None:
    obj["credit_status"] = "voided"
    obj["voided_at"] = api.store.now_iso()


def _lose_dispute(api: Api, obj: JSONObject) -> None:
    obj["payment_dispute_lost_at"] = api.store.now_iso()


def _set_default(api: Api, obj: JSONObject) -> None:
    customer = obj.get("_external_customer_id")
    for other in api.bucket("payment_methods").values():
        if other.get("_external_customer_id") == customer:
            other["is_default"] = other is obj


def _wallet_payment_url(api: Api, obj: JSONObject) -> None:
    wallet = api.bucket("wallets").get(obj.get("lago_wallet_id") or "", {})
    customer = api.store.customers.get(wallet.get("external_customer_id") or "", {})
    obj["_payment"] = {
        "lago_wallet_transaction_id": obj["lago_id"],
        "lago_customer_id": customer.get("lago_id"),
        "external_customer_id": customer.get("external_id"),
        "payment_provider": "stripe",
        "payment_url": f"https://pay.example/wallet_transactions/{obj['lago_id']}",
    }


def _invoice_payment_url(api: Api, obj: JSONObject) -> None:
    customer = obj.get("customer") or {}
    obj["_payment"] = {
        "lago_invoice_id": obj["lago_id"],
        "lago_customer_id": customer.get("lago_id"),
        "external_customer_id": customer.get("external_id"),
        "payment_provider": "stripe",
        "payment_url": f"https://pay.example/invoices/{obj['lago_id']}",
    }


_ACTIONS: dict[tuple[str, str], Callable[[Api, JSONObject], None]] = {
    ("/wallet_transactions", "payment_url"): _wallet_payment_url,
    ("/invoices", "payment_url"): _invoice_payment_url,
    ("/invoices", "void"): _void,
    ("/invoices", "finalize"): _finalize,
    ("/invoices", "lose_dispute"): _lose_dispute,
    ("/credit_notes", "void"): _void_credit_note,
    (_C + "/payment_methods", "set_as_default"): _set_default,
}


#: ``(bucket, change) -> (webhook_type, object_type)`` of the webhooks FakeLago sends.
_WEBHOOKS: dict[tuple[str, str], tuple[str, str]] = {
    ("subscriptions", "created"): ("subscription.started", "subscription"),
    ("subscriptions", "updated"): ("subscription.updated", "subscription"),
    ("subscriptions", "terminated"): ("subscription.terminated", "subscription"),
    ("wallet_transactions", "created"): ("wallet_transaction.created", "wallet_transaction"),
    ("plans", "created"): ("plan.created", "plan"),
    ("plans", "updated"): ("plan.updated", "plan"),
    ("plans", "deleted"): ("plan.deleted", "plan"),
    ("billable_metrics", "created"): ("billable_metric.created", "billable_metric"),
    ("billable_metrics", "updated"): ("billable_metric.updated", "billable_metric"),
    ("billable_metrics", "deleted"): ("billable_metric.deleted", "billable_metric"),
    ("features", "created"): ("feature.created", "feature"),
    ("features", "updated"): ("feature.updated", "feature"),
    ("features", "deleted"): ("feature.deleted", "feature"),
    ("invoices", "created"): ("invoice.one_off_created", "invoice"),
    ("invoices", "voided"): ("invoice.voided", "invoice"),
    ("credit_notes", "created"): ("credit_note.created", "credit_note"),
    ("payment_requests", "created"): ("payment_request.created", "payment_request"),
}


@functools.cache
def _item_schema(template: str) -> Mapping[str, Any]:
    """The response schema of one item of the collection at ``template``."""
    for spec in ROUTE_SPECS:
        if spec.method == "GET" and spec.result == "model" and spec.path.startswith(template):
            rest = spec.path[len(template) :]
            if _PARAM.match(rest.strip("/")) and spec.result_key:
                props: Mapping[str, Any] = resolve(spec.answer or {}).get("p") or {}
                found: Mapping[str, Any] = props.get(spec.result_key, spec.answer or {})
                return found
    return {}


def _op_name(spec: RouteSpec) -> str:
    return f"{spec.call}_{spec.namespace}".replace(".", "_")


def _hook_name(template: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", template).strip("_")


def _item_param(parent: str, template: str) -> str:
    """The path parameter naming the parent item of an embedded collection."""
    rest = template[len(parent) :].strip("/").split("/")
    match = _PARAM.match(rest[0])
    if match is None:
        raise KeyError(template)
    return match.group(1)


def _field(obj: JSONObject, name: str) -> Any:
    value = obj.get(name)
    return value if value is None or isinstance(value, str) else str(value)


def _matches(obj: JSONObject, query: Query) -> bool:
    """Whether ``obj`` has the values the query filters on (fields it names, only)."""
    for name in set(query.keys()) - _PAGING:
        field = name[:-2] if name.endswith("[]") else name
        if field not in obj:
            continue
        wanted = query.getall(name)
        value = obj[field]
        if isinstance(value, bool):
            value = "true" if value else "false"
        if isinstance(value, str | int | float) and str(value) not in wanted:
            return False
    return True


def _public(value: Any) -> Any:
    """``value`` without FakeLago's own ``_`` fields (lists and dicts, one level down too)."""
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [_public(v) for v in value]
    return value


_WATCHED = frozenset(
    {
        "current_usage_amount",
        "billable_metric_current_usage_amount",
        "billable_metric_current_usage_units",
    }
)


def _alert_value(alert: JSONObject, usage: JSONObject) -> Decimal:
    """What ``alert`` watches in a usage object: the amount in cents, or a metric's."""
    if alert["alert_type"] == "current_usage_amount":
        return Decimal(usage["amount_cents"])
    code = alert.get("billable_metric_code")
    for charge in usage["charges_usage"]:
        if charge["billable_metric"]["code"] == code:
            if alert["alert_type"] == "billable_metric_current_usage_units":
                return Decimal(charge["units"])
            return Decimal(charge["amount_cents"])
    return Decimal(0)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _moment(value: Any) -> datetime:
    """A stored ISO 8601 time as an aware datetime (UTC when it names no zone)."""
    moment = to_datetime(str(value))
    return _EPOCH if moment is None else moment.astimezone(timezone.utc)


def _decimal(value: Any) -> Decimal:
    if value is None or isinstance(value, bool):
        return Decimal(0)
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise unprocessable({"credits": [INVALID]}) from None
    if not result.is_finite():
        raise unprocessable({"credits": [INVALID]})
    return result


def _text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if "." in text else text + ".0"


def routes(skip: Iterable[str]) -> list[RouteSpec]:
    """The operations of the table except those named in ``skip`` (``"METHOD /path"``)."""
    skipped = set(skip)
    return [spec for spec in ROUTE_SPECS if spec.route not in skipped]
