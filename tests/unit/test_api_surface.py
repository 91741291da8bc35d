"""Every operation of Lago's OpenAPI document, walked one by one against the real surface.

For each of the spec's operations (read from ../shared; skipped when absent):

* ``docs/api.md`` lists it, with the call that sends it, and nothing else;
* that call exists on :class:`AsyncLago` and on :class:`lago_sync.Lago` with the same signature;
* a request built from the spec's examples, sent through the method, reaches the server as
  the spec describes (method, path) and validates against the operation's request schema;
* the spec's example answer, served over HTTP, parses through the method;
* every field of the answer's schema exists on the model the method returns.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from aioresponses import aioresponses

import lago_async.types as lago_types
from lago_async import AsyncLago, AsyncPager
from lago_sync import Lago
from tests._spec import load_spec, resolve, schema_validator
from tests.conftest import BASE_URL
from tests.sync.test_surface import expected
from tests.unit.test_spec_requests import OPERATIONS as HAND_WRITTEN_CALLS

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
VERBS = ("get", "post", "put", "patch", "delete")
ROW = re.compile(r"^\| `(\w+) (\S+)` \| `lago\.([\w.]+)\(([^)]*)\)` \| `([^`]+)` \|$")

# Operations whose spec example request cannot validate for a reason of the spec (see
# DESIGN.md, "Known defects of the spec"): operationId -> why.
REQUEST_DEFECTS: dict[str, str] = {}


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in load_spec()["paths"].items():
        for verb in VERBS:
            if verb in item:
                yield verb.upper(), path, item[verb]


def doc_rows() -> dict[tuple[str, str], tuple[str, str, str]]:
    rows: dict[tuple[str, str], tuple[str, str, str]] = {}
    for line in API_DOC.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            method, path, call, args, returns = match.groups()
            assert (method, path) not in rows, f"{method} {path} is listed twice"
            rows[(method, path)] = (call, args, returns)
    return rows


def op_ids() -> list[str]:
    try:
        return [op["operationId"] for _, _, op in operations()]
    except pytest.skip.Exception:
        return ["spec-absent"]


def find(op_id: str) -> tuple[str, str, dict[str, Any]]:
    for method, path, op in operations():
        if op["operationId"] == op_id:
            return method, path, op
    raise AssertionError(op_id)


def attribute(root: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        root = getattr(root, part)
    return root


def test_docs_list_exactly_the_spec_operations() -> None:
    spec_ops = {(method, path) for method, path, _ in operations()}
    assert len(spec_ops) == 202
    assert set(doc_rows()) == spec_ops


# -- building requests and answers from the spec's examples ---------------------------------------


def example(schema: Any, depth: int = 0) -> Any:
    """A value for ``schema`` from its examples (or a plain one of its type)."""
    schema = resolve(schema) if isinstance(schema, dict) else schema
    if not isinstance(schema, dict) or depth > 30:
        return None
    if "example" in schema:
        return schema["example"]
    if schema.get("examples"):
        return schema["examples"][0]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return example(schema[key][0], depth + 1)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            value = example(part, depth + 1)
            if isinstance(value, dict):
                merged.update(value)
        return merged
    kinds = schema.get("type")
    kind = next((k for k in kinds if k != "null"), None) if isinstance(kinds, list) else kinds
    if kind == "object" or "properties" in schema:
        return {
            name: example(sub, depth + 1) for name, sub in (schema.get("properties") or {}).items()
        }
    if kind == "array":
        item = example(schema.get("items", {}), depth + 1)
        return [] if item is None else [item]
    if kind == "string" and schema.get("pattern") == "^[0-9]+.?[0-9]*$":
        return "1"
    return {
        "string": "x",
        "integer": 1,
        "number": 1,
        "boolean": True,
    }.get(str(kind))


def request_schema(op: dict[str, Any]) -> dict[str, Any] | None:
    body = resolve(op["requestBody"]) if "requestBody" in op else None
    if not body:
        return None
    return dict(body["content"]["application/json"]["schema"])


def answer_schema(op: dict[str, Any]) -> dict[str, Any] | None:
    ok = [code for code in op["responses"] if str(code).startswith("2")]
    response = resolve(op["responses"][ok[0]])
    content = response.get("content", {}).get("application/json")
    return None if not content else dict(content["schema"])


def call_arguments(method: Any, path_count: int, body: Any) -> tuple[list[Any], dict[str, Any]]:
    """Positional and keyword arguments sending ``body`` through ``method``."""
    args: list[Any] = [f"id{i}" for i in range(path_count)]
    kwargs: dict[str, Any] = {}
    parameters = list(inspect.signature(method).parameters.values())[1:]
    positional = [p for p in parameters if p.kind is inspect.Parameter.POSITIONAL_ONLY]
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default is (
            inspect.Parameter.empty
        ):
            kwargs[parameter.name] = "x"  # a required query parameter
    if body is None:
        return args, kwargs
    extra = positional[path_count:]
    if extra and extra[0].name == "body":
        args.append(body)
    elif extra and isinstance(body, dict) and extra[0].name in body:
        args.append(body[extra[0].name])
        kwargs.update({k: v for k, v in body.items() if k != extra[0].name})
    elif isinstance(body, dict) and len(body) == 1:
        inner = next(iter(body.values()))
        kwargs.update(inner if isinstance(inner, dict) else {})
    return args, kwargs


def model_of(returns: str) -> type | None:
    names = re.findall(r"\w+", returns)
    name = names[-1] if names else ""
    value = getattr(lago_types, name, None) if name in lago_types.__all__ else None
    return value if isinstance(value, type) else None


def answer_item_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    resolved = resolve(schema)
    props = dict(resolved.get("properties") or {})
    for part in resolved.get("allOf", []):
        props.update(resolve(part).get("properties") or {})
    keys = [k for k in props if k != "meta"]
    if len(keys) != 1:
        return resolved if props else None
    inner = resolve(props[keys[0]])
    if "items" in inner:
        inner = resolve(inner["items"])
    return dict(inner)


def properties_of(schema: dict[str, Any]) -> set[str]:
    names = set((schema.get("properties") or {}).keys())
    for part in schema.get("allOf", []):
        names |= properties_of(resolve(part))
    return names


# -- the walk -------------------------------------------------------------------------------------


@pytest.mark.parametrize("op_id", op_ids())
async def test_operation(op_id: str, mocked: aioresponses) -> None:
    method, path, op = find(op_id)
    call, args_text, returns = doc_rows()[(method, path)]
    path_count = len(re.findall(r"{\w+}", path))
    assert len([a for a in args_text.split(", ") if a]) == path_count, call

    # the same method, with the same signature, in both clients
    namespace, _, name = call.rpartition(".")
    async_cls = type(attribute(AsyncLago(api_key="k"), namespace))
    sync_cls = type(attribute(Lago(api_key="k"), namespace))
    async_method = getattr(async_cls, name)
    sync_method = getattr(sync_cls, name)
    assert inspect.signature(sync_method) == expected(inspect.signature(async_method))
    annotation = str(inspect.signature(async_method).return_annotation)
    assert annotation.replace("builtins.", "") == returns, "docs/api.md shows another type"

    # a request from the spec's examples is sent as the spec says, and validates
    schema = request_schema(op)
    body = example(schema) if schema else None
    answer = answer_schema(op)
    served = example(answer) if answer else {}
    url = re.compile(re.escape(BASE_URL) + r"/[^?]*(\?.*)?$")
    mocked.add(url, method, status=200, body=json.dumps(served, default=str), repeat=True)
    args, kwargs = call_arguments(async_method, path_count, body)
    async with AsyncLago(api_key="k", base_url=BASE_URL, max_retries=0) as lago:
        if op_id in HAND_WRITTEN_CALLS:  # a signature of its own (events, kept from before)
            result = HAND_WRITTEN_CALLS[op_id](lago)
        else:
            result = attribute(lago, call)(*args, **kwargs)
        if isinstance(result, AsyncPager):
            result = await result.first_page()
        else:
            result = await result
    sent = [(m, u, c) for (m, u), calls in mocked.requests.items() for c in calls]
    assert sent, "nothing was sent"
    verb, url_sent, request = sent[0]
    assert verb == method
    pattern = re.sub(r"{\w+}", "[^/]+", path)
    sent_path = str(url_sent).split("?")[0][len(BASE_URL) :]
    assert re.fullmatch(pattern, sent_path), (sent_path, path)
    if schema and op_id not in REQUEST_DEFECTS:
        payload = request.kwargs.get("data")
        document = json.loads(payload) if payload else {}
        errors = sorted(str(e.message) for e in schema_validator(schema).iter_errors(document))
        assert not errors, f"{op_id}: {errors[:3]}"

    # every field of the answer's schema exists on the model
    model = model_of(returns)
    if model is not None and answer is not None and attrs.has(model):
        item = answer_item_schema(answer)
        if item is not None:
            fields = {f.alias or f.name for f in attrs.fields(model)} | {
                f.name for f in attrs.fields(model)
            }
            missing = properties_of(item) - fields
            assert not missing, f"{model.__name__} lacks {sorted(missing)}"
        typing.get_type_hints(model)


def test_every_resource_group_has_a_reference_page_in_the_site() -> None:
    root = API_DOC.parent
    nav = (root.parent / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted((root / "reference" / "api").glob("*.md"))
    groups = {row[0].split(".")[0] for row in doc_rows().values()}
    assert {page.stem for page in pages} == groups
    for page in pages:
        assert f"reference/api/{page.name}" in nav, f"{page.name} is not in mkdocs.yml's nav"
        for target in re.findall(r"^::: (\S+)$", page.read_text(encoding="utf-8"), re.M):
            module, _, name = target.rpartition(".")
            assert hasattr(importlib.import_module(module), name), target
