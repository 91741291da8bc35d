"""Importing the packages loads no namespace and no model module: they load on first use."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
import {package}
PLUMBING = {{"lago_async.resources._base", "lago_async.resources._generated",
            "lago_async.resources._generated._namespaces"}}
WATCHED = ("lago_async.resources.", "lago_async.types.", "lago_sync.resources.",
           "lago_async._ingest", "lago_async.webhooks")
def heavy():
    return sorted(m for m in sys.modules if m.startswith(WATCHED) and m not in PLUMBING)
loaded = heavy()
{use}
print(json.dumps([loaded, heavy()]))
"""


@pytest.mark.parametrize(
    ("package", "use", "eager"),
    [
        ("lago_async", "lago_async.AsyncLago(api_key='k').plans; lago_async.Plan", []),
        # lago_sync's EventIngestor twin is a class of its top level: the ingestor module loads
        (
            "lago_sync",
            "lago_sync.Lago(api_key='k').plans; lago_sync.Plan",
            ["lago_async._ingest"],
        ),
    ],
)
def test_import_loads_nothing_until_used(package: str, use: str, eager: list[str]) -> None:
    code = PROBE.format(package=package, use=use)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded, after = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == eager
    # first use loads what it needs (the plans namespace and the Plan model)
    assert any(m.endswith(".plans") for m in after)
    assert any(m.startswith("lago_async.types._generated") for m in after)
