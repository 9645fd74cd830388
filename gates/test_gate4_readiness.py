"""Gate 4: Readiness Approval. Go/no-go package complete; stakeholder approvals recorded;
deployment checklist updated. Evidence: pre-deployment-manifest.json, readiness-approval.json,
deployment-checklist.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_predeploy.api import (
    ChecklistResult,
    Evidence,
    GateContext,
    Manifest,
    SignoffStatus,
    await_signoff,
    checklist_problems,
    load,
    package_readiness,
    require,
    show_signoffs,
)

pytestmark = pytest.mark.gate(4, "Readiness Approval")


@pytest.mark.must("package")
def test_package_compiled_and_manifest_indexes_every_artifact(package_contents: Path, predeploy: GateContext, evidence: Evidence) -> None:
    manifest = load(package_contents, Manifest)
    evidence.figure(f"{len(manifest.entries)} artifacts indexed")
    assert manifest.release == predeploy.release, f"{package_contents}: manifest is for {manifest.release}, not {predeploy.release}"
    require(package_readiness(predeploy.artifacts, predeploy.config.package), "the package cannot be compiled:")
    unindexed = [entry.path for entry in manifest.entries if len(entry.sha256) != 64]
    require(unindexed, "manifest entries without a sha256:")


@pytest.mark.must("signoffs")
def test_required_signoffs_recorded_on_the_package_digest(signoffs: SignoffStatus | None, predeploy: GateContext, evidence: Evidence) -> None:
    roles = predeploy.config.readiness.required_roles
    if signoffs is None:
        await_signoff(roles, "the package is sealed at the end of this run; sign its sha256 with `predeploy approve`, then re-run Gate 4")
    evidence.figure(signoffs.summary())
    show_signoffs(evidence, signoffs)
    require(signoffs.rejected, "the package was rejected at readiness review:")
    if signoffs.missing_roles:
        await_signoff(signoffs.missing_roles, "; ".join(signoffs.problems))


@pytest.mark.guideline("checklist")
def test_deployment_checklist_updated_from_rehearsal(deployment_checklist: ChecklistResult, evidence: Evidence) -> None:
    evidence.figure(deployment_checklist.summary())
    require(checklist_problems(deployment_checklist), "deployment checklist not updated:")
