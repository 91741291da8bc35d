"""MkDocs hook: render the Sphinx roles of the SDK's docstrings as plain code.

The docstrings use Sphinx cross-reference roles (``:class:`~lago_async.APIError```), which
mkdocstrings' Google-style parser leaves as text: ``:class:<code>~lago_async.APIError</code>``.
This hook drops the role, shortens ``~``-prefixed paths to their last part and keeps the
title of ``title <target>`` references, as Sphinx would show them.
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


def on_page_content(html: str, **kwargs: Any) -> str:
    return _ROLE.sub(_render, html)
