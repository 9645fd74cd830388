"""CI integration: the GitHub step summary, and the workflow example uses commands that exist."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pytest_predeploy.harness.gates import ExitStatus
from pytest_predeploy.tooling.cli import SUBCOMMANDS
from tests.project import make_project

REPO = Path(__file__).resolve().parents[1]


def test_github_step_summary_gets_the_gate_table(pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    make_project(pytester)
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0")
    assert result.ret == ExitStatus.NOT_JUDGED
    text = summary.read_text()
    assert text.startswith("earlier step\n")  # appended, not overwritten
    lines = text.splitlines()
    assert lines[1:3] == ["## NOT JUDGED (NOT GO): release v1.0", ""] and lines[3].startswith("**NOT JUDGED: ")  # the verdict leads
    assert "| 1 | Intake Confirmation | PASSED |" in text
    assert "| 10 | Extra | PASSED |" in text


def test_no_step_summary_outside_github(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    root = make_project(pytester)
    assert pytester.runpytest_inprocess("--predeploy-release=v1.0").ret == ExitStatus.NOT_JUDGED
    assert not list(root.glob("*.md"))


def test_github_actions_example_uses_real_options_and_commands() -> None:
    workflow = yaml.safe_load((REPO / "docs/ci/github-actions.yml").read_text())
    runs = "\n".join(step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"])
    assert "pytest --predeploy-release=" in runs and "gates/test_gate4_readiness.py" in runs
    commands = {line.split()[1] for line in runs.splitlines() if line.strip().startswith("predeploy ")}
    # Reviewers sign on their own machines: CI verifies and refreshes advisories, never approves.
    assert commands == {"verify", "advisories"} and commands <= {c.name for c in SUBCOMMANDS}

    for option in ("--predeploy-release", "--predeploy-previous"):
        assert option in runs
        assert option in (REPO / "pytest_predeploy/plugin.py").read_text()


def test_ci_runs_the_readmes_test_command_as_written() -> None:
    # Rule of the house: .ci/run calls the README's test command and nothing cleverer, and
    # bench/suite.py times that same command (it reads it from the README).
    readme = (REPO / "README.md").read_text()
    block = readme[readme.index("Install and run the test suite") :]
    command = next(line for line in block.splitlines() if ".venv/bin/python -m pytest" in line)
    test_command = command[command.index(".venv/bin/python -m pytest") :].split("#")[0].strip()
    ci_pytest_lines = [line.strip() for line in (REPO / ".ci/run").read_text().splitlines() if "-m pytest" in line]
    assert ci_pytest_lines == [test_command]
    assert readme.count(test_command) == 2  # the quickstart and the development section say the same
