"""Deployment checklist (step 4.3): a revision drawn from the real artifact models, owned items,
and a new revision only when the rehearsal evidence changed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core.artifacts import ArtifactModel, write_artifact
from pytest_predeploy.core.fields import Severity
from pytest_predeploy.intake.parity import DriftItem, ParityReport, ParitySummary, ParityValue
from pytest_predeploy.readiness.checklist import ChecklistResult, checklist_problems, write_deployment_checklist
from pytest_predeploy.rehearsal.deploy import BootstrapRecord, DeploymentReport, ServiceDeployment
from pytest_predeploy.rehearsal.observability import AlertRule, MetricsSnapshot, ObservabilityResult, ServiceMetrics, evaluate_alerts
from pytest_predeploy.rehearsal.smoke import Coverage, Outcome, SmokeTestResult, SuiteResult, SuiteStatus, TestResultsReport, Totals
from pytest_predeploy.rollback.rollback import RollbackReport, RollbackStep, ServiceRollback, StepName
from pytest_predeploy.security.report import Finding, SecurityReport, WaiverApplied

OWNERS = {"deploy": "alice", "rollback": "bo", "default": "release-manager"}
T0 = datetime(2026, 11, 26, 12, tzinfo=UTC)
NOW = datetime(2026, 11, 27, 9, tzinfo=UTC)
PASSED: Outcome = "passed"
ELEVEN_OF_TWELVE: list[Outcome] = [PASSED] * 11 + ["failed"]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def deployed(service: str, start: float, seconds: float, status: Literal["deployed", "failed", "not_run"] = "deployed") -> ServiceDeployment:
    return ServiceDeployment(
        service=service,
        release="v1.2",
        status=status,
        started_at=at(start),
        ended_at=at(start + seconds),
        duration_seconds=seconds,
        error=None if status == "deployed" else f"deploy_backend.sh failed (exit 3) on {service}",
    )


def deployment(
    services: list[ServiceDeployment], max_parallel: int = 2, outcome: Literal["succeeded", "failed", "interrupted"] = "succeeded", release: str = "v1.2"
) -> DeploymentReport:
    # The previous release was bootstrapped on both services first: not part of the candidate's order.
    bootstrap = [BootstrapRecord(service=name, release="v1.1", reason="staging was empty", status="bootstrapped") for name in ("api", "worker")]
    return DeploymentReport(
        release=release,
        environment="staging",
        previous_release="v1.1",
        max_parallel=max_parallel,
        started_at=T0,
        ended_at=at(200),
        duration_seconds=200.0,
        outcome=outcome,
        bootstrap_note="staging did not run v1.1 on api, worker: bootstrapped it first",
        bootstrap=bootstrap,
        services=services,
    )


def step(name: StepName, start: float, seconds: float) -> RollbackStep:
    return RollbackStep(name=name, status="passed", started_at=at(start), ended_at=at(start + seconds), duration_seconds=seconds)


def rolled_back(service: str, switch: float, recovery: float, target: float = 30.0) -> ServiceRollback:
    return ServiceRollback(
        service=service,
        strategy="restart",
        from_release="v1.2",
        to_release="v1.1",
        status="passed" if recovery <= target else "failed",
        switch_seconds=switch,
        recovery_seconds=recovery,
        recovery_target_seconds=target,
        within_target=recovery <= target,
        smoke="passed",
        rolled_forward=True,
        steps=[step("rollback", 300, switch), step("verify rollback", 300 + switch, recovery - switch)],
    )


def rollback(services: list[ServiceRollback]) -> RollbackReport:
    return RollbackReport(
        release="v1.2",
        environment="staging",
        previous_release="v1.1",
        recovery_target_seconds=30.0,
        roll_forward=True,
        started_at=at(300),
        ended_at=at(400),
        duration_seconds=100.0,
        outcome="passed",
        services=services,
    )


def smoke_results(outcomes: list[Outcome], exercised: int = 6, declared: int = 6) -> TestResultsReport:
    tests = [
        SmokeTestResult(nodeid=f"test_api.py::test_{i}", outcome=o, duration=0.1, message="boom" if o == "failed" else None) for i, o in enumerate(outcomes)
    ]
    coverage = Coverage(status="ok", declared=declared, exercised=exercised, ratio=exercised / declared)
    totals = Totals.of(tests, 1.2)
    status: SuiteStatus = "failed" if "failed" in outcomes else "passed"
    suite = SuiteResult(name="smoke", path="demo/smoke", status=status, duration=1.2, tests=tests, totals=totals, coverage=coverage)
    return TestResultsReport(release="v1.2", environment="staging", min_coverage=0.8, suites=[suite], totals=totals, coverage=coverage)


def security(expired: bool = False) -> SecurityReport:
    waiver = WaiverApplied(id="W-7", owner="sec-lead", expires_at=datetime(2026, 12, 7, tzinfo=UTC), expired=expired)
    finding = Finding(
        scanner="osv",
        id="PYSEC-2018-28",
        severity=Severity.major,
        title="session fixation",
        package="requests",
        version="2.19.0",
        fixed_versions=["2.20.0"],
        waiver=waiver,
        blocking=expired,
    )
    clean = Finding(scanner="bandit", id="B101", severity=Severity.info, title="assert used", file="app.py", line=3, blocking=False)
    return SecurityReport(release="v1.2", environment="staging", blocking_severity=Severity.major, scanners=[], findings=[finding, clean], blocking=expired)


def parity() -> ParityReport:
    waived = DriftItem(
        path="configuration.logging.level",
        kind="changed",
        detail="values differ",
        severity=Severity.minor,
        status="waived",
        waiver="DRIFT-101",
        source_value=ParityValue(type="str", value="debug"),
        target_value=ParityValue(type="str", value="info"),
        remediation="waived until 2030-12-31T00:00:00+00:00 by sre-oncall@demo-shop: debug logs while rehearsing",
    )
    summary = ParitySummary(critical=0, major=0, minor=0, info=0, waived=1, expired_waivers=0, ignored=0, blocking=0, secrets_reused=0)
    return ParityReport(release="v1.2", source="staging", target="production", passed=True, summary=summary, items=[waived], secrets=[], inputs=[])


def observability(error_ratio: float) -> ObservabilityResult:
    # The alert states come from the real rule evaluation, not written by hand.
    metrics = ServiceMetrics(service="api", url="http://127.0.0.1:1", status="ok", request_count=100, error_count=100 * error_ratio, error_ratio=error_ratio)
    snapshots = [MetricsSnapshot(label="after smoke", environment="staging", services=[metrics])]
    alerts = evaluate_alerts([AlertRule(name="high-error-ratio", metric="error_ratio", above=0.05)], snapshots)
    return ObservabilityResult(release="v1.2", environment="staging", phases=["after smoke"], snapshots=snapshots, alerts=alerts)


def write_all(root: Path, **models: ArtifactModel) -> Path:
    files = {
        "deployment": names.DEPLOYMENT_REPORT,
        "rollback": names.ROLLBACK_REPORT,
        "tests": names.TEST_RESULTS,
        "security": names.SECURITY_REPORT,
        "parity": names.PARITY_REPORT,
        "observability": names.OBSERVABILITY_METRICS,
    }
    for key, model in models.items():
        write_artifact(root / files[key], model)
    return root


def full_rehearsal(root: Path) -> Path:
    return write_all(
        root,
        deployment=deployment([deployed("api", 0, 12.5), deployed("worker", 0.01, 95.0), deployed("db", 95.5, 3.0)]),
        rollback=rollback([rolled_back("worker", 2.0, 41.0), rolled_back("api", 1.0, 8.0)]),
        tests=smoke_results(ELEVEN_OF_TWELVE),
        security=security(),
        parity=parity(),
        observability=observability(error_ratio=0.2),
    )


def figures(result: ChecklistResult) -> dict[str, str]:
    return dict(result.figures)


def items(result: ChecklistResult, area: str) -> list[str]:
    return [item.text for item in result.items if item.area == area]


def test_deploy_order_is_the_candidates_batches_without_the_bootstrap_deploys(tmp_path: Path) -> None:
    result = write_deployment_checklist(full_rehearsal(tmp_path), "v1.2", OWNERS, now=NOW)
    assert result.deploy_order == [["api", "worker"], ["db"]]
    text = result.path.read_text()
    assert "1. api, worker (together)\n2. db\n" in text
    assert "api, worker, api" not in text
    assert any("deploy api and worker together then db" in text for text in items(result, "communication"))


def test_sequential_rehearsal_gives_the_configured_order_one_at_a_time(tmp_path: Path) -> None:
    services = [deployed("worker", 0, 2.0), deployed("api", 2.5, 1.0)]
    write_all(tmp_path, deployment=deployment(services, max_parallel=1), rollback=rollback([rolled_back("api", 0.5, 1.0)]))
    result = write_deployment_checklist(tmp_path, "v1.2", OWNERS, now=NOW)
    assert result.deploy_order == [["worker"], ["api"]]
    assert "one service at a time" in result.path.read_text()


def test_figures_are_measured_deploy_times_total_and_recovery_against_target(tmp_path: Path) -> None:
    result = write_deployment_checklist(full_rehearsal(tmp_path), "v1.2", OWNERS, now=NOW)
    shown = figures(result)
    assert shown["deploy api"].startswith("12.5 s (deployed, started +0.0 s")
    assert shown["deploy db"].startswith("3.0 s (deployed, started +95.5 s")
    assert shown["deploy total"] == "98.5 s wall, 110.5 s summed over services"
    assert shown["rollback worker"].startswith("switch 2.0 s, recovery 41.0 s of 30 s target (OVER target")
    assert shown["rollback api"].startswith("switch 1.0 s, recovery 8.0 s of 30 s target (within target")
    over = next(item for item in result.items if item.area == "rollback" and "worker: recovery took 41.0s" in item.text)
    assert over.owner == "bo"


def test_smoke_figures_are_the_pass_rate_and_the_measured_coverage(tmp_path: Path) -> None:
    write_all(tmp_path, tests=smoke_results(ELEVEN_OF_TWELVE, exercised=5, declared=6))
    result = write_deployment_checklist(tmp_path, "v1.2", OWNERS, now=NOW)
    assert figures(result)["smoke pass rate"] == "11/12 passed (92%)"
    assert figures(result)["smoke coverage"] == "83% (5/6 endpoints), required 80%"
    failed = items(result, "smoke")
    assert len(failed) == 1 and "test_api.py::test_11" in failed[0]


def test_failed_and_slow_steps_become_action_items_with_their_area_owner(tmp_path: Path) -> None:
    write_all(
        tmp_path,
        deployment=deployment([deployed("api", 0, 12.5), deployed("worker", 0, 95.0), deployed("db", 96, 1.0, status="failed")], outcome="failed"),
        rollback=rollback([rolled_back("api", 70.0, 75.0, target=120.0)]),
    )
    result = write_deployment_checklist(tmp_path, "v1.2", OWNERS, slow_step=timedelta(seconds=60), now=NOW)
    deploy = items(result, "deploy")
    assert any("db: deployment of v1.2 failed" in text for text in deploy)
    assert any("Deploy of worker took 95.0 s" in text for text in deploy)
    assert not any("Deploy of api" in text for text in deploy)
    assert any("rollback of api took 70.0 s" in text for text in items(result, "rollback"))
    assert {item.owner for item in result.items if item.area == "deploy"} == {"alice"}


def test_lower_slow_step_threshold_flags_more_steps(tmp_path: Path) -> None:
    write_all(tmp_path, deployment=deployment([deployed("api", 0, 12.5), deployed("worker", 0, 3.0)]))
    result = write_deployment_checklist(tmp_path, "v1.2", OWNERS, slow_step=timedelta(seconds=10), now=NOW)
    slow = [text for text in items(result, "deploy") if "slower than 10.0 s" in text]
    assert len(slow) == 1 and "api took 12.5 s" in slow[0]


def test_waivers_and_firing_alerts_need_follow_up_with_owner_and_expiry(tmp_path: Path) -> None:
    result = write_deployment_checklist(full_rehearsal(tmp_path), "v1.2", OWNERS, now=NOW)
    (waived,) = items(result, "security")
    assert "PYSEC-2018-28 in requests 2.19.0" in waived and "waiver W-7, owner sec-lead, expires 2026-12-07 (in 9 days)" in waived
    assert "fixed in 2.20.0" in waived and "B101" not in waived
    (drift,) = items(result, "parity")
    assert 'configuration.logging.level (minor: staging "debug", production "info")' in drift and "DRIFT-101" in drift and "2030-12-31" in drift
    (alert,) = items(result, "observability")
    assert "high-error-ratio firing for api after smoke" in alert
    assert {item.owner for item in result.items if item.area in ("security", "parity", "observability")} == {"release-manager"}
    text = result.path.read_text()
    assert "### Security waivers (owner: release-manager)" in text
    assert f"- [ ] **security** (owner: release-manager): {waived}" in text


def test_quiet_baseline_and_expired_security_waiver(tmp_path: Path) -> None:
    write_all(tmp_path, security=security(expired=True), observability=observability(error_ratio=0.01))
    result = write_deployment_checklist(tmp_path, "v1.2", OWNERS, now=NOW)
    assert items(result, "observability") == []
    assert figures(result)["alerts"].startswith("0 firing of 1 evaluated")
    (expired,) = items(result, "security")
    assert "waiver W-7 (owner sec-lead) expired 2026-12-07: it blocks again" in expired


def test_same_evidence_appends_nothing_and_says_it_is_current(tmp_path: Path) -> None:
    artifacts = full_rehearsal(tmp_path)
    (artifacts / names.DEPLOYMENT_CHECKLIST).write_text("# Deployment checklist\n\n- [x] hand-written item\n")
    first = write_deployment_checklist(artifacts, "v1.2", OWNERS, now=NOW)
    before = first.path.read_bytes()
    again = write_deployment_checklist(artifacts, "v1.2", OWNERS, now=NOW + timedelta(hours=3))
    assert first.appended and not again.appended
    assert again.revision == first.revision and again.evidence_sha256 == first.evidence_sha256
    assert "already current" in again.summary()
    assert first.path.read_bytes() == before
    assert checklist_problems(again) == []

    write_artifact(artifacts / names.ROLLBACK_REPORT, rollback([rolled_back("worker", 2.0, 12.0), rolled_back("api", 1.0, 8.0)]))
    changed = write_deployment_checklist(artifacts, "v1.2", OWNERS, now=NOW + timedelta(days=1))
    assert changed.appended and changed.evidence_sha256 != first.evidence_sha256
    text = changed.path.read_text()
    assert "- [x] hand-written item" in text
    assert text.count("## Revision ") == 2 and text.index(first.revision) < text.index(changed.revision)
    assert f"Evidence sha256: `{changed.evidence_sha256}`" in text


def test_missing_artifacts_are_noted_and_core_ones_are_a_miss(tmp_path: Path) -> None:
    write_all(tmp_path, deployment=deployment([deployed("api", 0, 1.0)]))
    result = write_deployment_checklist(tmp_path, "v1.2", OWNERS, now=NOW)
    assert result.sources == [names.DEPLOYMENT_REPORT]
    assert names.ROLLBACK_REPORT in result.missing and names.OBSERVABILITY_METRICS in result.missing
    assert f"| `{names.OBSERVABILITY_METRICS}` | missing |" in result.path.read_text()
    (problem,) = checklist_problems(result)
    assert names.ROLLBACK_REPORT in problem and names.DEPLOYMENT_REPORT not in problem

    empty = write_deployment_checklist(tmp_path / "empty", "v1.2", OWNERS, now=NOW)
    assert empty.items == [] and "Nothing to act on" in empty.path.read_text()
    assert any(names.DEPLOYMENT_REPORT in p and names.ROLLBACK_REPORT in p for p in checklist_problems(empty))


def test_malformed_artifact_is_named_with_its_field(tmp_path: Path) -> None:
    full_rehearsal(tmp_path)
    data = json.loads((tmp_path / names.DEPLOYMENT_REPORT).read_text())
    data["services"][1]["status"] = "exploded"
    (tmp_path / names.DEPLOYMENT_REPORT).write_text(json.dumps(data))
    (tmp_path / names.TEST_RESULTS).write_text("{not json")
    result = write_deployment_checklist(tmp_path, "v1.2", OWNERS, now=NOW)
    problems = checklist_problems(result)
    assert any(names.DEPLOYMENT_REPORT in p and "services.1.status" in p for p in problems)
    assert any(names.TEST_RESULTS in p and "not valid JSON" in p for p in problems)
    assert result.deploy_order == [] and names.ROLLBACK_REPORT in result.sources
    assert "services.1.status" in result.path.read_text()


def test_evidence_of_another_release_is_not_drawn_from(tmp_path: Path) -> None:
    write_all(tmp_path, deployment=deployment([deployed("api", 0, 1.0)], release="v1.1"), rollback=rollback([rolled_back("api", 0.5, 1.0)]))
    result = write_deployment_checklist(tmp_path, "v1.2", OWNERS, now=NOW)
    assert result.deploy_order == [] and names.DEPLOYMENT_REPORT not in result.sources
    assert any("release: it is for v1.1, not v1.2" in p for p in checklist_problems(result))


def test_areas_without_an_owner_are_a_guideline_miss(tmp_path: Path) -> None:
    result = write_deployment_checklist(full_rehearsal(tmp_path), "v1.2", {"deploy": "alice"}, now=NOW)
    (problem,) = checklist_problems(result)
    assert "no owner for communication, observability, parity, rollback, security, smoke items" in problem
    assert "(owner: unassigned)" in result.path.read_text()
