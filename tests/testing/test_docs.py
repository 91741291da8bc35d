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


def test_pytest_examples_pass(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["lago_async.testing.pytest_plugin"]\n')
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
        "addopts = --strict-markers -p no:cacheprovider\n"
    )
    (tmp_path / "test_doc_examples.py").write_text("\n\n".join(TESTS))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
