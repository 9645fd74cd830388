"""Shared by the Gate 4 tests: a project whose Gate 4 needs two sign-offs, a real parity report,
and ``predeploy approve`` run as a user runs it. No tests here."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_predeploy.intake.parity import ParityReport, ParitySummary
from tests.project import GATES, base_config, make_project

REPO = Path(__file__).resolve().parents[1]


def parity_report(**overrides: Any) -> str:
    """A real staging-parity-report.json (Gate 4 re-checks the sealed evidence with the model)."""
    zero = dict.fromkeys(ParitySummary.model_fields, 0)
    fields: dict[str, Any] = {
        "release": "v1.0",
        "source": "staging",
        "target": "production",
        "passed": True,
        "summary": ParitySummary(**zero),
        "items": [],
        "secrets": [],
        "inputs": [],
    }
    fields.update(overrides)
    return ParityReport(**fields).model_dump_json()


#: Writes a clean parity report to its first argument.
PARITY_CLEAN = f"""
import sys
open(sys.argv[1], "w").write({parity_report()!r})
"""

GATE1_PARITY = """
    import pytest
    from pytest_predeploy.harness.gates import load, require
    from pytest_predeploy.intake.parity import ParityReport, parity_problems
    pytestmark = pytest.mark.gate(1, "Intake Confirmation")

    @pytest.mark.must
    def test_parity_clean(parity):
        require(parity_problems(load(parity, ParityReport)), "critical drift")
"""


def project(pytester: pytest.Pytester, parity: str = PARITY_CLEAN) -> Path:
    gates = {name: body for name, body in GATES.items() if "gate10" not in name}
    gates["test_gate1_intake.py"] = GATE1_PARITY
    config = base_config(
        package={"required": ["staging-parity-report.json"]}, readiness={"required_roles": ["release-manager", "qa-lead"], "forbid_self_approval": True}
    )
    root = make_project(pytester, config=config, parity_script=parity, gates=gates)
    shutil.copy(REPO / "gates" / "test_gate4_readiness.py", root / "gates")
    return root


def approve(root: Path, role: str, by: str, decision: str = "go") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_predeploy",
            "approve",
            ".artifacts/pre-deployment/PRE-DEPLOYMENT-PACKAGE.zip",
            "--role",
            role,
            "--by",
            by,
            "--decision",
            decision,
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
