"""A bounded fuzz test of FakeLago: requests drawn from the spec's own schemas.

For every route FakeLago serves (customers, events, webhook endpoints and keys), hypothesis draws
request bodies from the operation's request schema (``tests._schema_strategies``), query
parameters from their schemas and path identifiers among known and unknown ones. Every
answer must be below 500, JSON, and valid under the spec's response schema for its status.
The spec is read from ``../shared`` (skipped when absent), its known defects patched as
``tests._spec`` does.
"""

from __future__ import annotations

import asyncio
import copy
import os
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lago_async.testing import FakeLago
from tests._schema_strategies import from_schema
from tests._spec import load_spec, resolve
from tests.testing._api import Api
from tests.testing._world import GHOST, build_world, fill
from tests.testing.test_spec_conformance import operation, seeded
from tests.testing.test_whole_api import GENERIC, STORE_ROUTES, validate

PATH_VALUES = {
    "external_customer_id": st.sampled_from(["acme", "plain", "nobody", "a b/c"]),
    "transaction_id": st.sampled_from(["seed-1", "seed-4", "missing"]) | st.text(min_size=1),
    "applied_coupon_id": st.sampled_from(["{coupon}", "00000000-0000-4000-8000-000000000000"]),
    "lago_id": st.sampled_from(["{endpoint}", "00000000-0000-4000-8000-000000000000", "x y"]),
}


def inline(node: Any, depth: int = 0) -> Any:
    """``node`` with every local ``$ref`` replaced by (a copy of) what it points to.

    The spec's known defects are patched on the way, as tests/_spec.py does for validation:
    ``oneOf`` branches that overlap (integer and number) become ``anyOf``.
    """
    if depth > 40:
        raise RecursionError("the schema is too deep to inline")
    if isinstance(node, dict):
        if "$ref" in node:
            target = inline(copy.deepcopy(resolve(node["$ref"])), depth + 1)
            rest = {k: v for k, v in node.items() if k not in ("$ref", "description", "example")}
            return {**target, **inline(rest, depth + 1)} if rest else target
        out = {
            k: inline(v, depth + 1)
            for k, v in node.items()
            if k not in ("description", "example", "examples")
        }
        branches = out.get("oneOf")
        if isinstance(branches, list) and _overlapping(branches):
            out["anyOf"] = out.pop("oneOf")
        return out
    if isinstance(node, list):
        return [inline(item, depth + 1) for item in node]
    return node


def _overlapping(branches: list[Any]) -> bool:
    types = {b.get("type") for b in branches if isinstance(b, dict)}
    return "integer" in types and "number" in types


def drawn_parts(route: str, *, path_params: bool) -> dict[str, st.SearchStrategy[Any]]:
    """Strategies for one route's query parameters (``query:<name>``) and body (``body``)
    from the spec's schemas, and with ``path_params`` its path identifiers
    (``path:<name>``, from :data:`PATH_VALUES`)."""
    template = route.split(" ", 1)[1]
    op = operation(route)
    parts: dict[str, st.SearchStrategy[Any]] = {}
    shared = load_spec()["paths"][template].get("parameters", [])
    params = [resolve(p) for p in [*shared, *op.get("parameters", [])]]
    for param in params:
        if param["in"] == "path" and path_params:
            parts[f"path:{param['name']}"] = PATH_VALUES[param["name"]]
        elif param["in"] == "query":
            schema = inline(param.get("schema", {}))
            parts[f"query:{param['name']}"] = st.none() | from_schema(schema)
    if "requestBody" in op:
        schema = inline(resolve(op["requestBody"])["content"]["application/json"]["schema"])
        parts["body"] = from_schema(schema)
    return parts


def request_strategy(route: str) -> st.SearchStrategy[dict[str, Any]]:
    """Draws ``{"path": ..., "params": ..., "body": ...}`` for one route."""
    template = route.split(" ", 1)[1]
    parts = drawn_parts(route, path_params=True)
    return st.fixed_dictionaries(parts).map(lambda drawn: _request(template, drawn))


def _request(template: str, drawn: dict[str, Any]) -> dict[str, Any]:
    path = template
    query: list[tuple[str, str]] = []
    for key, value in drawn.items():
        kind, _, name = key.partition(":")
        if kind == "path":
            encoded = value if value in ("{coupon}", "{endpoint}") else quote(value, safe="")
            path = path.replace("{" + name + "}", encoded)
        elif kind == "query" and value is not None:
            values = value if isinstance(value, list) else [value]
            query.extend((name, _text(v)) for v in values)
    return {"path": path, "params": query, "body": drawn.get("body")}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def exchange(route: str, request: dict[str, Any]) -> tuple[int, Any]:
    fake, names = await seeded(strict=False)
    try:
        async with aiohttp.ClientSession() as session:
            method = route.split(" ", 1)[0]
            body = request["body"]
            async with session.request(
                method,
                fake.base_url + request["path"].format(**names),
                params=request["params"],
                data=None if body is None else orjson.dumps(body),
                headers={
                    "Authorization": f"Bearer {fake.api_key}",
                    "Content-Type": "application/json",
                },
            ) as response:
                raw = await response.read()
                status = response.status
                plain = (route, status) == ("GET /webhooks/public_key", 200)  # text/plain
                expected = "text/plain" if plain else "application/json"
                assert response.headers["Content-Type"].startswith(expected), raw[:200]
        assert fake.internal_errors == []
    finally:
        await fake.stop()
    if plain:
        return status, raw.decode()
    return status, orjson.loads(raw) if raw else None


def check_answer(route: str, status: int, body: Any) -> None:
    assert status < 500, body
    validate(route, status, body)


load_spec_or_skip = load_spec  # the spec helpers skip the test when ../shared is absent


@pytest.mark.parametrize("route", sorted(STORE_ROUTES))
def test_fuzzed_requests_get_valid_answers(route: str) -> None:
    load_spec_or_skip()
    strategy = request_strategy(route)

    @settings(
        max_examples=40,
        deadline=None,
        # Random locally, to keep exploring; the same examples in CI, so that a run is
        # reproducible and a new finding shows up in a developer's run, not as a red CI.
        derandomize=bool(os.environ.get("CI")),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        database=None,
    )
    @given(request=strategy)
    def run(request: dict[str, Any]) -> None:
        status, body = asyncio.run(exchange(route, request))
        check_answer(route, status, body)

    run()


def whole_api_request(
    route: str, names: dict[tuple[str, str], str]
) -> st.SearchStrategy[dict[str, Any]]:
    """Draws ``{"path": ..., "params": ..., "body": ...}`` for one route of the whole API:
    each path parameter names the world's object, nothing, or odd text; the body and query
    come from the spec's schemas."""
    template = route.split(" ", 1)[1]
    known = fill(template, names)
    ghost = fill(template, names, ghost=True)
    odd = fill(template, names, odd="x y/ü")
    paths = st.sampled_from([known, ghost, odd] if "{" in template else [known])
    parts = drawn_parts(route, path_params=False)
    return st.tuples(paths, st.fixed_dictionaries(parts)).map(
        lambda drawn: _request(drawn[0], drawn[1])
    )


@pytest.mark.parametrize("route", GENERIC)
def test_fuzzed_requests_to_the_whole_api_get_valid_answers(route: str) -> None:
    """No 5xx, and every answer valid under the spec, for requests drawn from its schemas
    (a few per operation: 177 operations), sent to a FakeLago holding one of everything."""
    load_spec_or_skip()
    method = route.split(" ", 1)[0]
    with FakeLago.in_thread(api_key="fuzz") as fake:

        async def world() -> dict[tuple[str, str], str]:
            async with aiohttp.ClientSession() as session:
                return await build_world(Api(session, fake.base_url, fake.api_key), fake)

        names = asyncio.run(world())

        async def send(request: dict[str, Any]) -> tuple[int, Any]:
            async with aiohttp.ClientSession() as session:
                api = Api(session, fake.base_url, fake.api_key)
                answer = await api(
                    method, request["path"], request["body"], params=request["params"]
                )
            return answer.status, answer.body

        @settings(
            max_examples=6,
            deadline=None,
            derandomize=bool(os.environ.get("CI")),
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            database=None,
        )
        @given(request=whole_api_request(route, names))
        def run(request: dict[str, Any]) -> None:
            status, body = asyncio.run(send(request))
            check_answer(route, status, body)

        run()
        assert fake.internal_errors == []
    _ = GHOST
