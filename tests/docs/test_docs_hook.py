"""The mkdocs hook that renders the docstrings' reST as readers expect (docs/hooks)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from lago_async._transport import DEFAULT_TIMEOUT

HOOK = Path(__file__).resolve().parents[2] / "docs" / "hooks" / "sphinx_roles.py"


def load_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sphinx_roles", HOOK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_literal_block_marker_renders_as_one_colon() -> None:
    html = '<p>Use it like this::</p>\n<div class="highlight"><pre><code>x</code></pre></div>'
    out = load_hook().on_page_content(html)
    assert "::" not in out
    assert out.startswith("<p>Use it like this:</p>")
    # a "::" that does not introduce a block is text and stays
    assert load_hook().on_page_content("<p>a::b</p>") == "<p>a::b</p>"


def test_named_defaults_render_as_their_values() -> None:
    signature = (
        '<div class="doc-signature highlight"><pre><code><span class="n">timeout</span>'
        '<span class="o">=</span> <span class="n">DEFAULT_TIMEOUT</span></code></pre></div>'
    )
    cell = (
        '<td><code><span title="lago_async._transport.DEFAULT_TIMEOUT">'
        "DEFAULT_TIMEOUT</span></code></td>"
    )
    out = load_hook().on_page_content(signature + cell)
    assert "DEFAULT_TIMEOUT" not in out
    assert out.count(repr(DEFAULT_TIMEOUT)) == 2
    # outside signatures and default cells, a constant's name is prose and stays
    prose = "<p>DEFAULT_TIMEOUT is exported</p>"
    assert load_hook().on_page_content(prose) == prose


def test_sphinx_roles_render_as_code() -> None:
    out = load_hook().on_page_content(":class:<code>~lago_async.APIError</code>")
    assert out == "<code>APIError</code>"
