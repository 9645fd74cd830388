"""Gate 3: Rollback & Security. Rollback rehearsal successful; security/compliance scans cleared
or mitigated. Evidence: rollback-verification-report.json, security-compliance-report.json."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_predeploy.api import (
    Evidence,
    RollbackReport,
    SecurityReport,
    load,
    operational_problems,
    read_operational,
    require,
    rollback_problems,
    security_problems,
    show_rollback,
    show_security,
)

pytestmark = pytest.mark.gate(3, "Rollback & Security")


@pytest.mark.must("rollback")
def test_rollback_rehearsed_for_every_service(rollback: Path, evidence: Evidence) -> None:
    report = load(rollback, RollbackReport)
    evidence.figure(report.summary_line())
    show_rollback(evidence, report)
    require(rollback_problems(report), "rollback rehearsal failed:")


@pytest.mark.must("security")
def test_security_and_compliance_scans_cleared(security: Path, evidence: Evidence) -> None:
    report = load(security, SecurityReport)
    evidence.figure(report.summary_line())
    show_security(evidence, report)
    require(security_problems(report), report.headline())


@pytest.mark.guideline("operational")
def test_runbooks_on_call_and_escalation_current(operational_readiness: Path) -> None:
    require(operational_problems(read_operational(operational_readiness)), "operational readiness incomplete:")
