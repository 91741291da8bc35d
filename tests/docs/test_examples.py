"""Every Python example of the documentation and the README runs, against a FakeLago.

Rules the examples follow (docs/index.md says so to readers too):

* A fenced ```python block is a complete program, run as ``__main__`` with
  ``LAGO_API_URL``/``LAGO_API_KEY`` pointing at a FakeLago served from a background thread.
  That server already knows customer ``acme`` with subscription ``sub_1``.
* A block with a top-level ``await`` (``await``, ``async for``, ``async with``) is a snippet:
  it runs inside an event loop with ``lago``, an open ``AsyncLago`` on that FakeLago, already
  defined.
* Placeholders readers replace are rewritten to that FakeLago: ``api_key="..."`` and the
  public Lago URLs (``https://api.getlago.com/api/v1``, the EU one and
  ``https://lago.example.com/api/v1``).
* ``<!-- example: skip -->`` on the line before a block leaves it out (rare: code for
  another library). ``docs/testing.md`` is run by tests/testing/test_docs.py.
* ``<!-- receiver: NAME -->`` on the line before a block marks a webhook receiver (a web
  app, not a program): tests/webhooks/test_receivers.py serves it and sends it webhooks.
* Blocks that use ``lago_sync`` are skipped while it cannot be imported.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import logging
import os
import re
import signal
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lago_async.testing import FakeLago

REPO = Path(__file__).resolve().parents[2]
SOURCES = [REPO / "README.md", *sorted((REPO / "docs").glob("**/*.md"))]
RUN_ELSEWHERE = {REPO / "docs" / "testing.md"}  # tests/testing/test_docs.py runs these
SKIP_MARK = "<!-- example: skip -->"
RECEIVER_MARK = "<!-- receiver:"
PUBLIC_URLS = (
    "https://api.getlago.com/api/v1",
    "https://api.eu.getlago.com/api/v1",
    "https://lago.example.com/api/v1",
)
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[^\n]*$")
TIME_LIMIT = 20  # seconds one example may take


@dataclass(frozen=True)
class Example:
    path: Path
    line: int
    code: str
    skipped: bool

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def collect(path: Path) -> list[Example]:
    """The ```python blocks of a Markdown file, indented ones (inside tabs) included."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Example] = []
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match or not match["lang"]:
            index += 1
            continue
        indent, start = match["indent"], index
        index += 1
        body: list[str] = []
        while index < len(lines) and lines[index].strip() != "```":
            body.append(lines[index])
            index += 1
        index += 1
        if match["lang"] != "python":
            continue
        previous = next((ln.strip() for ln in reversed(lines[:start]) if ln.strip()), "")
        if previous.startswith(RECEIVER_MARK):
            continue  # served by tests/webhooks/test_receivers.py
        code = textwrap.dedent("\n".join(body)) if indent else "\n".join(body)
        found.append(Example(path, start + 1, code + "\n", previous == SKIP_MARK))
    return found


EXAMPLES = [ex for src in SOURCES if src not in RUN_ELSEWHERE for ex in collect(src)]


def test_examples_are_collected() -> None:
    per_file = {ex.path.name for ex in EXAMPLES}
    assert {"README.md", "index.md", "ingestion.md", "errors.md"} <= per_file
    assert sum(ex.skipped for ex in EXAMPLES) <= 5, "keep skipped examples rare"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLago]:
    with FakeLago.in_thread(api_key="docs_example_key") as fake:
        yield fake


@pytest.fixture
def fake(server: FakeLago, monkeypatch: pytest.MonkeyPatch) -> FakeLago:
    server.reset()
    server.add_customer("acme", name="Acme", currency="EUR")
    server.add_subscription("sub_1", "acme")
    monkeypatch.setenv("LAGO_API_URL", server.base_url)
    monkeypatch.setenv("LAGO_API_KEY", server.api_key)
    return server


def _localise(code: str, fake: FakeLago) -> str:
    code = code.replace('api_key="..."', f'api_key="{fake.api_key}"')
    for url in PUBLIC_URLS:
        code = code.replace(url, fake.base_url)
    return code


def _top_level_await(code: str) -> bool:
    try:
        compile(code, "<example>", "exec")
    except SyntaxError as exc:
        if "outside" in str(exc) and ("await" in str(exc) or "async" in str(exc)):
            return True
        raise
    return False


@contextlib.contextmanager
def _logging_restored() -> Iterator[None]:
    """Undo what an example does to logging (``basicConfig``, levels)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in ("lago_async", "billing")}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, value in levels.items():
            logging.getLogger(name).setLevel(value)


@contextlib.contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"the example ran longer than {seconds}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _run_snippet(code: str, filename: str) -> None:
    from lago_async import AsyncLago

    compiled = compile(code, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)

    async def main() -> None:
        async with AsyncLago() as lago:
            result = eval(compiled, {"__name__": "__main__", "lago": lago})
            if asyncio.iscoroutine(result):
                await result

    asyncio.run(main())


@pytest.mark.parametrize("example", EXAMPLES, ids=[ex.id for ex in EXAMPLES])
def test_example_runs(example: Example, fake: FakeLago) -> None:
    if example.skipped:
        pytest.skip(f"marked {SKIP_MARK}")
    code = _localise(example.code, fake)
    if "lago_sync" in code:
        lago_sync = pytest.importorskip("lago_sync")
        if not hasattr(lago_sync, "Lago"):
            pytest.skip("lago_sync.Lago is not generated yet")
    filename = example.id
    with (
        _time_limit(TIME_LIMIT),
        _logging_restored(),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        if _top_level_await(code):
            _run_snippet(code, filename)
        else:
            exec(compile(code, filename, "exec"), {"__name__": "__main__"})
    assert os.environ["LAGO_API_URL"] == fake.base_url  # the example left the env alone
