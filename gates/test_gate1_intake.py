"""Gate 1: Intake Confirmation. All upstream approvals verified; staging parity shows no
critical drift. Evidence: intake-validation-report.json, staging-parity-report.json."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_predeploy.api import (
    Evidence,
    IntakeReport,
    ParityReport,
    intake_problems,
    load,
    parity_problems,
    read_refresh,
    refresh_problems,
    require,
    show_intake,
    show_parity,
)

pytestmark = pytest.mark.gate(1, "Intake Confirmation")


@pytest.mark.must("approvals")
def test_upstream_approvals_are_present_approved_and_current(intake: Path, evidence: Evidence) -> None:
    report = load(intake, IntakeReport)
    ok = sum(check.status == "ok" for check in report.checks)
    evidence.figure(f"approvals {ok}/{len(report.checks)}")
    show_intake(evidence, report)
    require(intake_problems(report), "upstream approvals missing or not current:")


@pytest.mark.must("parity")
def test_staging_parity_has_no_critical_drift(parity: Path, evidence: Evidence) -> None:
    report = load(parity, ParityReport)
    evidence.figure(report.summary_line())
    show_parity(evidence, report)
    require(parity_problems(report), "[ERROR] Staging configuration drift detected against production baseline.")


@pytest.mark.guideline("data-refresh")
def test_test_data_and_feature_flags_refreshed(data_refresh: Path) -> None:
    require(refresh_problems(read_refresh(data_refresh)), "test data / feature flag refresh incomplete:")
