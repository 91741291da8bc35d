"""Check an installed lago-async the way a user gets it from PyPI.

Run by ``nox -s package`` with the interpreter of a clean virtual environment where only the
built wheel (and its dependencies) is installed, outside the source tree::

    python tools/check_wheel.py

It imports both packages, checks that they come from site-packages rather than the checkout,
that each ships its ``py.typed`` marker, that the licence travels with the distribution and
that the ``lago-async`` command is installed.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from pathlib import Path


def main() -> int:
    """Return 0 when the installed distribution is complete, else print why and return 1."""
    problems: list[str] = []
    for name in ("lago_async", "lago_sync"):
        module = importlib.import_module(name)
        folder = Path(module.__file__ or "").parent
        if "site-packages" not in folder.parts:
            problems.append(f"{name} was imported from {folder}, not from the installed wheel")
        if not (folder / "py.typed").is_file():
            problems.append(f"{name} has no py.typed marker")
    lago_async = importlib.import_module("lago_async")
    dist = importlib.metadata.distribution("lago-async")
    if dist.version != lago_async.__version__:
        problems.append(f"wheel version {dist.version} != __version__ {lago_async.__version__}")
    files = [str(f) for f in dist.files or ()]
    if not any(f.endswith("LICENSE") for f in files):
        problems.append("the wheel carries no LICENSE file")
    scripts = {e.name: e.value for e in dist.entry_points if e.group == "console_scripts"}
    if scripts.get("lago-async") != "lago_async.__main__:main":
        problems.append(f"no lago-async console script (found {scripts})")
    client = lago_async.AsyncLago(api_key="check", base_url="http://127.0.0.1:9/api/v1")
    if "check" in repr(client):
        problems.append("the API key shows in the client's repr")
    for problem in problems:
        print(f"package check: {problem}", file=sys.stderr)
    if not problems:
        print(f"package check: lago-async {dist.version} installs and imports cleanly")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
