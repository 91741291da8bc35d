"""Project sessions: ``nox -s tests notebook lint typecheck api_check sync_check package docs``
is what CI runs."""

from __future__ import annotations

import glob
import os
import shutil
import sys
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = [
    "tests",
    "notebook",
    "lint",
    "typecheck",
    "api_check",
    "sync_check",
    "package",
    "docs",
]

PYTHON = ["3.11"]
"""Where lint, type checks and the generators run."""
TEST_PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
"""Every Python the package supports: the test suite runs on each of them."""


def _expose_pyenv_pythons() -> None:
    """Put the interpreters pyenv installed for ``TEST_PYTHONS`` on PATH.

    pyenv's shims answer ``python3.10`` only for the versions it has made visible; adding the
    installed versions' own folders lets nox find every one by name on a fresh machine, so
    nothing (uv included) tries to download a Python.
    """
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    folders = []
    for version in TEST_PYTHONS:
        installed = sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin")))
        if installed:
            folders.append(installed[-1])
    if folders:
        os.environ["PATH"] = os.pathsep.join([*folders, os.environ.get("PATH", "")])


_expose_pyenv_pythons()
# Only the interpreters on this machine: never download one (the network may not allow it).
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")


@nox.session(python=TEST_PYTHONS)
def tests(session: nox.Session) -> None:
    """Unit, integration and fault tests (pytest) on every supported Python.

    The tests of the generators' own mechanics (marked ``generator``: each regenerates
    lago_sync, about 30 s) run in the primary Python's session only; the generated code is
    exercised by the rest of the suite everywhere.
    """
    session.install("-e", ".[tests,cli]")
    select = [] if session.python == PYTHON[0] else ["-m", "not generator"]
    session.run("pytest", "-q", *select, *session.posargs)


@nox.session(python=PYTHON)
def notebook(session: nox.Session) -> None:
    """lago_sync and lago_async in a real Jupyter kernel (ipykernel driven by nbclient)."""
    session.install("-e", ".[tests,notebook]")
    session.run("pytest", "-q", "tests/notebook", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole project."""
    session.install("ruff==0.17.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on both packages."""
    session.install("-e", ".[lint,cli]")
    session.run("mypy", "--strict", "lago_async", "lago_sync")


@nox.session(python=PYTHON)
def api_check(session: nox.Session) -> None:
    """Fail when the committed API code differs from a fresh generation from the spec."""
    session.install("-e", ".[lint]")
    session.run("python", "tools/generate_api.py", "--check", *session.posargs)


@nox.session(python=PYTHON)
def sync_check(session: nox.Session) -> None:
    """Fail when the committed lago_sync differs from a fresh generation."""
    session.install("-e", ".[lint]")
    session.run("python", "tools/generate_sync.py", "--check")


@nox.session(python=PYTHON)
def package(session: nox.Session) -> None:
    """Build the sdist and wheel, ``twine check`` them, and import the wheel from a clean venv."""
    session.install("uv", "twine")
    dist = Path(session.create_tmp()).resolve() / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run("uv", "build", "--quiet", "--out-dir", str(dist))
    built = sorted(str(p) for p in dist.iterdir() if p.suffix in (".whl", ".gz"))
    session.run("twine", "check", "--strict", *built)
    wheel = next(p for p in built if p.endswith(".whl"))
    clean = dist.parent / "clean-venv"
    shutil.rmtree(clean, ignore_errors=True)
    session.run("uv", "venv", "--quiet", "--python", sys.executable, str(clean))
    python = str(clean / "bin" / "python")
    session.run("uv", "pip", "install", "--quiet", "--python", python, wheel)
    # Outside the checkout, so that only the installed wheel can be imported.
    check = str(Path("tools/check_wheel.py").resolve())
    session.chdir(str(dist.parent))
    session.run(python, check, external=True)


@nox.session(python=PYTHON)
def generate_sync(session: nox.Session) -> None:
    """Regenerate lago_sync from lago_async."""
    session.install("-e", ".[lint]")
    session.run("python", "tools/generate_sync.py")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks against raw aiohttp and the official client; writes docs/benchmarks.md."""
    session.install("-e", ".[bench]")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site with --strict."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The README's main job: ingest 100,000 events and read usage back."""
    session.install("-e", ".")
    session.run("python", "-m", "lago_async.demo", *session.posargs)
