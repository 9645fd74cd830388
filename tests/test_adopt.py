"""Adopting the plugin in another repository: the messages a new user meets are true there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.project import make_project

REPO = Path(__file__).resolve().parents[1]

#: Makes `import psutil` fail as it does in a venv without the test extra.
HIDE_PSUTIL = """
import sys

class _Hide:
    def find_spec(self, name, path=None, target=None):
        if name == "psutil":
            raise ModuleNotFoundError("No module named 'psutil'", name="psutil")
        return None

sys.meta_path.insert(0, _Hide())
"""


def test_a_gate_without_a_release_says_what_to_do_in_any_repository(pytester: pytest.Pytester) -> None:
    make_project(pytester)  # a repository with gates and no tests/ folder
    result = pytester.runpytest_subprocess("gates/test_gate1_intake.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    line = next(line for line in result.stderr.lines if "is a protocol gate" in line)
    assert line == (
        "ERROR: test_gate1_intake.py is a protocol gate: run it with --predeploy-release=TAG "
        "(without a release pytest runs no gate: name other test paths, or deselect the gates' folder)."
    )
    assert "tests/" not in line


def test_plain_pytest_without_the_test_extra_says_to_install_it(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(HIDE_PSUTIL)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout[-2000:]
    assert "ERROR: this project's own tests need the test extra: pip install -e '.[test]' (psutil is not installed)" in run.stderr
    assert "ModuleNotFoundError" not in run.stdout + run.stderr
