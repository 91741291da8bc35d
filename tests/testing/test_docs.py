"""The Python examples of docs/testing.md run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "testing.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
SCRIPTS = [b for b in BLOCKS if "def test_" not in b and not b.startswith("pytest_plugins")]
TESTS = [b for b in BLOCKS if "def test_" in b]


def test_the_doc_has_examples() -> None:
    assert len(SCRIPTS) >= 4
    assert TESTS


@pytest.mark.parametrize("code", SCRIPTS, ids=[f"script{n}" for n in range(len(SCRIPTS))])
def test_script_examples_run(code: str) -> None:
    if "lago_sync" in code:
        lago_sync = pytest.importorskip("lago_sync")
        if not hasattr(lago_sync, "Lago"):
            pytest.skip("lago_sync.Lago is not generated yet")
    exec(compile(code, str(DOC), "exec"), {"__name__": "__main__"})


CONFIG = re.findall(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def _run_pytest(project: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--strict-markers"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize("config", ["default", "documented"])
def test_pytest_examples_pass_in_a_fresh_project(tmp_path: Path, config: str) -> None:
    """As a user's project runs them: no settings but the doc's (pytest-asyncio's strict
    default mode, or the auto mode the doc shows)."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text('pytest_plugins = ["lago_async.testing.pytest_plugin"]\n')
    # a config file of the project's own, so pytest does not look further up
    if config == "documented":
        assert CONFIG, "docs/testing.md shows the pytest configuration"
        (project / "pyproject.toml").write_text(CONFIG[0])
    else:
        (project / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (project / "test_doc_examples.py").write_text("\n\n".join(TESTS))
    result = _run_pytest(project)
    assert result.returncode == 0, result.stdout + result.stderr
    counts = re.search(r"(\d+) passed", result.stdout)
    assert counts is not None and int(counts[1]) == sum(b.count("def test_") for b in TESTS)
