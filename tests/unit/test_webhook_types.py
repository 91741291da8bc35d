"""Every webhook type of the spec parses into its typed event, from bodies its schema allows."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from lago_async.webhooks import EVENTS, WebhookEvent, parse_event
from tests._schema_strategies import example_of
from tests._spec import load_spec
from tests.testing.test_fuzz import inline

DECIMAL_PATTERN = "^[0-9]+.?[0-9]*$"
"""The spec's pattern for decimal strings: its unescaped dot lets through "0:", which no
server sends and no decimal parser reads; the tests draw from the pattern it means."""


def _fix_patterns(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (
                r"^[0-9]+\.?[0-9]*$"
                if k == "pattern" and v == DECIMAL_PATTERN
                else _fix_patterns(v)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_fix_patterns(v) for v in node]
    return node


@functools.cache
def webhooks() -> dict[str, dict[str, Any]]:
    """webhook_type -> the inlined schema of its body."""
    spec = load_spec()
    out = {}
    for item in spec.get("webhooks", {}).values():
        schema = item["post"]["requestBody"]["content"]["application/json"]["schema"]
        webhook_type = schema["properties"]["webhook_type"]["enum"][0]
        out[webhook_type] = inline(schema)
    return out


def test_the_spec_has_61_webhook_types_and_each_has_its_class() -> None:
    types = webhooks()
    assert len(types) == 61
    assert set(EVENTS) == set(types)
    assert len({cls for cls, _ in EVENTS.values()}) == 61


@pytest.mark.parametrize("full", [False, True], ids=["required fields", "every field"])
@pytest.mark.parametrize("webhook_type", sorted(webhooks()))
def test_a_body_its_schema_allows_parses_into_its_event(webhook_type: str, full: bool) -> None:
    payload = example_of(webhooks()[webhook_type], full=full)
    cls, model = EVENTS[webhook_type]
    event = parse_event(payload, "wh-1")
    assert type(event) is cls, f"{webhook_type} fell back to {type(event).__name__}"
    assert event.webhook_type == webhook_type
    assert event.unique_key == "wh-1"
    assert model is Any or isinstance(event.object, model)
    assert event.payload is payload


def test_an_unknown_type_or_shape_gives_a_generic_event_never_an_error() -> None:
    unknown = parse_event({"webhook_type": "meter.exploded", "object_type": "meter", "meter": {}})
    assert type(unknown) is WebhookEvent and unknown.object == {}
    odd = parse_event(
        {"webhook_type": "invoice.created", "object_type": "invoice", "invoice": [1, 2]}
    )
    assert type(odd) is WebhookEvent and odd.object == [1, 2]
    missing = parse_event({"webhook_type": "invoice.created", "object_type": "invoice"})
    assert type(missing) is WebhookEvent and missing.object is None
