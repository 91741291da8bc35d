"""Fixtures of the command-line tests: a FakeLago in a thread and a runner of the command."""

from __future__ import annotations

import io
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from lago_async.__main__ import main
from lago_async.testing import FakeLago


@dataclass
class Result:
    status: int
    out: str
    err: str


Run = Callable[..., Result]


@pytest.fixture
def fake() -> Iterator[FakeLago]:
    """A FakeLago served from a background thread (the command runs its own event loop)."""
    with FakeLago.in_thread(seed=0) as server:
        yield server
    assert server.internal_errors == []


@pytest.fixture
def run(fake: FakeLago, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """``run(*args, stdin=b"...")``: the ``lago-async`` command in this process."""
    monkeypatch.setenv("LAGO_API_URL", fake.base_url)
    monkeypatch.setenv("LAGO_API_KEY", fake.api_key)

    def invoke(*args: str, stdin: bytes | None = None) -> Result:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        capsys.readouterr()
        try:
            status = main(["ingest", "--retry-delay", "0.001", "--max-retry-delay", "0.001", *args])
        except SystemExit as exc:  # argparse's usage errors
            status = int(exc.code or 0)
        captured = capsys.readouterr()
        return Result(status, captured.out, captured.err)

    return invoke


def jsonl(path: Path, rows: list[Any]) -> Path:
    """Write ``rows`` (objects, or raw strings for broken lines) as a JSONL file."""
    lines = [row if isinstance(row, str) else orjson.dumps(row).decode() for row in rows]
    path.write_text("".join(line + "\n" for line in lines))
    return path


def read_rejected(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def stored(fake: FakeLago) -> Counter[str]:
    return Counter(e["transaction_id"] for e in fake.events)


def event(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "transaction_id": f"tx-{n}",
        "code": "api_calls",
        "external_subscription_id": f"sub_{n % 3}",
        "timestamp": 1_700_000_000 + n,
        "properties": {"units": n % 5},
        **extra,
    }
