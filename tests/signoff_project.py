"""Shared by the Gate 4 tests: a project whose Gate 4 needs two sign-offs, a real parity report,
and ``predeploy approve`` run as a user runs it. No tests here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_predeploy.intake.parity import ParityReport, ParitySummary
from pytest_predeploy.readiness.package import verify_package
from pytest_predeploy.readiness.signing import load_signing_key
from pytest_predeploy.readiness.signoff import record_signoff
from tests.project import base_config, make_complete_project
from tests.sshkeys import make_key

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
    config = base_config(
        readiness={"required_roles": ["release-manager", "qa-lead"], "forbid_self_approval": True, "signers": "signers.yaml"},
    )
    root = make_complete_project(pytester, config=config, parity_script=parity)
    # Riley and Quinn review; Ops runs the rehearsal (as rehearsal-operator) and may also sign
    # release-manager; Ana may sign both roles. Each has a real key pair under keys/.
    keys = {name: make_key(root / "keys", name).public_line for name in ("riley", "quinn", "ops", "ana")}
    (root / "signers.yaml").write_text(
        "signers:\n"
        f"  - {{identity: Riley Manager, roles: [release-manager], keys: ['{keys['riley']}']}}\n"
        f"  - {{identity: Quinn QA, roles: [qa-lead], keys: ['{keys['quinn']}']}}\n"
        f"  - {{identity: ops@example.com, aliases: [rehearsal-operator], roles: [release-manager], keys: ['{keys['ops']}']}}\n"
        f"  - {{identity: Ana Release, roles: [release-manager, qa-lead], keys: ['{keys['ana']}']}}\n"
    )
    return root


PACKAGE = ".artifacts/pre-deployment/PRE-DEPLOYMENT-PACKAGE.zip"


def record_directly(root: Path, role: str, approver: str, key: str | None) -> None:
    """A sign-off written without `predeploy approve`'s checks (what anyone with write access can do)."""
    sha256 = verify_package(root / PACKAGE).sha256
    record_signoff(
        root / ".artifacts/pre-deployment/readiness-approval.json",
        package_sha256=sha256,
        release="v1.0",
        role=role,
        approver=approver,
        decision="go",
        key=load_signing_key(root / "keys" / key) if key else None,
    )


def approve(root: Path, role: str, key: str, decision: str = "go") -> subprocess.CompletedProcess[str]:
    """`predeploy approve` as a reviewer runs it, signing with their key keys/<key>."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_predeploy", "approve", PACKAGE, "--role", role, "--key", f"keys/{key}", "--decision", decision],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
