"""MkDocs hook: render what the SDK's docstrings say in reST the way readers expect.

* Sphinx cross-reference roles (``:class:`~lago_async.APIError```), which mkdocstrings'
  Google-style parser leaves as text (``:class:<code>~lago_async.APIError</code>``), become
  plain code: the role dropped, ``~``-prefixed paths shortened to their last part, the title
  of ``title <target>`` references kept, as Sphinx would show them.
* A paragraph ending in reST's ``::`` before a code block ends in one ``:``, as Sphinx
  renders it.
* Defaults that are named constants (``timeout = DEFAULT_TIMEOUT``) show their values, in
  signatures and in parameter tables: the value is what a reader needs.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|meth|attr|func|data|mod|exc|obj):<code>(?P<ref>.*?)</code>")
_TITLED = re.compile(r"^(?P<title>.+?)\s*&lt;[^&]+&gt;$")


def _render(match: re.Match[str]) -> str:
    ref = match["ref"]
    titled = _TITLED.match(ref)
    if titled:
        ref = titled["title"]
    elif ref.startswith("~"):
        ref = ref[1:].rsplit(".", 1)[-1]
    return f"<code>{ref}</code>"


_LITERAL_BLOCK = re.compile(r"::(</p>\s*<div class=\"highlight\">)")
_CONSTANT = re.compile(r"(?<![\w.])(?P<name>[A-Z][A-Z0-9_]{3,})(?![\w.])")
_SIGNATURE = re.compile(r'<div class="doc-signature highlight">.*?</div>', re.S)
_DEFAULT_CELL = re.compile(
    r'<code><span title="(?P<path>[\w.]+)">(?P<name>[A-Z][A-Z0-9_]+)</span></code>'
)


def _constants() -> dict[str, str]:
    """Numeric module constants of the SDK used as defaults, with their values as text."""
    import importlib

    values: dict[str, str] = {}
    for module in ("lago_async._transport", "lago_async._client", "lago_async._ingest"):
        for name, value in vars(importlib.import_module(module)).items():
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            if numeric and _CONSTANT.fullmatch(name):
                values[name] = repr(value)
    return values


def _with_values(html: str, values: dict[str, str]) -> str:
    def signature(match: re.Match[str]) -> str:
        return re.sub(
            r'(<span class="n">)(?P<name>[A-Z][A-Z0-9_]+)(</span>)',
            lambda m: m[1] + values.get(m["name"], m["name"]) + m[3],
            match[0],
        )

    html = _SIGNATURE.sub(signature, html)
    return _DEFAULT_CELL.sub(
        lambda m: f"<code>{values[m['name']]}</code>" if m["name"] in values else m[0], html
    )


def on_page_content(html: str, **kwargs: Any) -> str:
    html = _ROLE.sub(_render, html)
    html = _LITERAL_BLOCK.sub(r":\1", html)
    return _with_values(html, _constants())
