"""Project sessions: ``nox -s tests lint typecheck sync_check`` is what CI runs."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "lint", "typecheck", "api_check", "sync_check"]

PYTHON = ["3.11"]


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit, integration and fault tests (pytest, 2 workers' worth of work)."""
    session.install("-e", ".[tests]")
    session.run("pytest", "-q", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole project."""
    session.install("ruff==0.17.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on both packages."""
    session.install("-e", ".[lint]")
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
