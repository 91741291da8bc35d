"""Access to Lago's OpenAPI document for tests: loading, ``$ref`` lookup, JSON-Schema validators.

The document lives outside the repository (``../shared``, AGPL data never copied here). Every
helper skips the calling test, with the reason, when it is absent.

    from tests._spec import load_spec, resolve, schema_validator

    schema_validator("#/components/schemas/EventInputObject").validate(body)
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

__all__ = ["SHARED_DIR", "load_spec", "resolve", "schema_validator"]

SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"
"""The shared ground-truth directory (OpenAPI document, peer fixtures), next to the repo."""

_SPEC_PATH = Path(
    os.environ.get("LAGO_OPENAPI_SPEC") or SHARED_DIR / "lago-openapi" / "openapi.yaml"
)
"""Where the spec is read from: ``$LAGO_OPENAPI_SPEC``, else ``../shared/lago-openapi``."""
_SPEC_URI = "urn:lago:openapi"


@functools.cache
def _load(path: Path) -> dict[str, Any]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open("rb") as fh:
        document: dict[str, Any] = yaml.load(fh, Loader=loader)
    return document


def load_spec() -> dict[str, Any]:
    """The parsed OpenAPI document (cached and shared: do not mutate it).

    Skips the calling test (or module) when ``../shared`` is not there.
    """
    if not _SPEC_PATH.is_file():
        pytest.skip(
            f"Lago OpenAPI document not found at {_SPEC_PATH} (set LAGO_OPENAPI_SPEC, or check "
            "out the ../shared ground truth next to the repository)",
            allow_module_level=True,
        )
    return _load(_SPEC_PATH)


def _lookup(ref: str) -> Any:
    if not ref.startswith("#/"):
        raise ValueError(f"only local references are supported, got {ref!r}")
    node: Any = load_spec()
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def resolve(ref: str | Mapping[str, Any]) -> Any:
    """Follow a local reference.

    ``ref`` is a reference string (``"#/components/schemas/X"``) or a node of the document: a
    node holding ``$ref`` is replaced by its target (followed until no ``$ref`` is left; keys
    written next to the ``$ref``, such as ``example``, override the target's); any other node
    comes back unchanged. The result is shared with the cached document: do not mutate it.
    """
    node: Any = _lookup(ref) if isinstance(ref, str) else ref
    seen: set[str] = set()
    while isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
        target_ref = node["$ref"]
        if target_ref in seen:
            raise ValueError(f"circular reference: {target_ref}")
        seen.add(target_ref)
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        target = _lookup(target_ref)
        node = {**target, **siblings} if siblings and isinstance(target, Mapping) else target
    return node


def _scalar_types(branches: Any) -> set[str] | None:
    """The plain ``type`` names of a list of ``{"type": ...}`` branches, or None."""
    if not isinstance(branches, list):
        return None
    names: set[str] = set()
    for branch in branches:
        if not isinstance(branch, Mapping) or set(branch) - {"type", "description"}:
            return None
        if not isinstance(branch.get("type"), str):
            return None
        names.add(branch["type"])
    return names


def _relax_overlapping_one_of(node: Any) -> None:
    """Turn ``oneOf: [integer, number, ...]`` into ``anyOf`` (known spec bug), in place.

    An integer is also a number, so it matches two branches and ``oneOf`` refuses it, although
    Lago accepts integers in event properties.
    """
    if isinstance(node, dict):
        types = _scalar_types(node.get("oneOf"))
        if types is not None and {"integer", "number"} <= types:
            node["anyOf"] = node.pop("oneOf")
        for value in node.values():
            _relax_overlapping_one_of(value)
    elif isinstance(node, list):
        for value in node:
            _relax_overlapping_one_of(value)


def _absolutise_refs(node: Any) -> Any:
    """A copy of ``node`` whose local ``$ref`` values point into the registered document."""
    if isinstance(node, Mapping):
        out = {key: _absolutise_refs(value) for key, value in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith("#"):
            out["$ref"] = _SPEC_URI + ref
        return out
    if isinstance(node, list):
        return [_absolutise_refs(value) for value in node]
    return node


@functools.cache
def _registry() -> Any:
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    document = copy.deepcopy(load_spec())
    _relax_overlapping_one_of(document)
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    return Registry().with_resource(_SPEC_URI, resource)


def schema_validator(schema_or_ref: str | Mapping[str, Any]) -> Any:
    """A ``Draft202012Validator`` for a schema of the document.

    ``schema_or_ref`` is a local reference (``"#/components/schemas/EventInputObject"``) or a
    schema taken from the document (its ``$ref`` values resolve against the document). The
    known ``oneOf [string, integer, number]`` bug is relaxed to ``anyOf`` in the copy used for
    validation only.
    """
    from jsonschema import Draft202012Validator

    registry = _registry()
    if isinstance(schema_or_ref, str):
        if not schema_or_ref.startswith("#"):
            raise ValueError(
                f"expected a local reference (#/components/...), got {schema_or_ref!r}"
            )
        schema: dict[str, Any] = {"$ref": _SPEC_URI + schema_or_ref}
    else:
        relaxed = copy.deepcopy(dict(schema_or_ref))
        _relax_overlapping_one_of(relaxed)
        schema = _absolutise_refs(relaxed)
    return Draft202012Validator(schema, registry=registry)
