"""Gate 2: Deployment Rehearsal. Staging deployment executed without critical errors; smoke and
acceptance tests passed. Evidence: staging-deployment-run.log, staging-test-results.json."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_predeploy.api import (
    OBSERVABILITY_METRICS,
    ApiContractReport,
    DeploymentReport,
    Evidence,
    GateContext,
    ObservabilityResult,
    TestResultsReport,
    contract_problems,
    deployment_problems,
    load,
    observability_problems,
    require,
    show_deployment,
    show_observability,
    show_smoke,
    smoke_problems,
)

pytestmark = pytest.mark.gate(2, "Deployment Rehearsal")


@pytest.mark.must("deployment")
def test_every_service_deployed_to_staging(deployment: Path, evidence: Evidence) -> None:
    report = load(deployment, DeploymentReport)
    evidence.figure(report.summary_line())
    show_deployment(evidence, report)
    require(deployment_problems(report), "[ERROR] Deployment rehearsal encountered critical error.")


@pytest.mark.must("smoke")
def test_smoke_and_acceptance_suites_passed(smoke: Path, predeploy: GateContext, evidence: Evidence) -> None:
    report = load(smoke, TestResultsReport)
    evidence.figure(report.summary_line())
    show_smoke(evidence, report)
    require(smoke_problems(report, predeploy.config.smoke.min_coverage), "smoke/acceptance tests did not pass:")


@pytest.mark.must("contract")
def test_api_contract_has_no_unwaived_breaking_change(api_contract: Path, evidence: Evidence) -> None:
    report = load(api_contract, ApiContractReport)
    evidence.figure(report.summary_line())
    rows = [[s.service, c.kind, c.operation, c.id, c.detail, c.waiver or ("BLOCKING" if c.blocking else "")] for s in report.services for c in s.changes]
    rows += [[s.service, s.status, "", "", s.detail, ""] for s in report.services if s.status != "compared"]
    if rows:
        evidence.table("API contract against the previous release", ["service", "kind", "operation", "rule", "change", "waiver"], rows)
    require(contract_problems(report), "the candidate breaks the API contract of the previous release:")


@pytest.mark.guideline("observability")
def test_observability_baseline_captured(observability: Path, predeploy: GateContext, evidence: Evidence) -> None:
    metrics = load(predeploy.artifact(OBSERVABILITY_METRICS), ObservabilityResult)
    show_observability(evidence, metrics)
    require(observability_problems(metrics), "observability baseline incomplete:")
