"""The review page's sections read from the artifacts: what changed, the accepted risks, the
upstream approvals, timings and charts, the root cause of a failure, the sealed package's
manifest.

Each reader takes the artifacts folder (and, for waivers, the config section that declares
them) and returns plain data (``harness/banner.py``). A missing artifact is an empty section
(its gate did not run); an unreadable one is a note on the page, never a traceback.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pydantic import ValidationError

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core.artifacts import ArtifactModel, read_artifact
from pytest_predeploy.core.errors import ArtifactError, ConfigError
from pytest_predeploy.core.nesting import json_loads
from pytest_predeploy.core.yamlfile import MAX_DOCUMENT_BYTES, parse_yaml, read_bytes_file
from pytest_predeploy.harness.banner import BuildChange, Risk, RootCause, ServiceTiming, UpstreamApproval
from pytest_predeploy.harness.evidence import bar_chart_svg
from pytest_predeploy.intake.approvals import ApprovalRecord, IntakeReport
from pytest_predeploy.intake.parity import ParityReport
from pytest_predeploy.security import SecurityReport

# The models of the reports a run may not have written (and of the sealed package) are imported
# where such a report is found: the review page is built in every protocol run, and a run that
# rehearsed no deployment does not pay for the deployment's code.
if TYPE_CHECKING:
    from pytest_predeploy.intake.parity.config import DriftWaiver
    from pytest_predeploy.readiness.package import Manifest
    from pytest_predeploy.rehearsal.contract import ApiContractReport
    from pytest_predeploy.rehearsal.deploy import DeploymentReport
    from pytest_predeploy.rehearsal.observability import ObservabilityResult
    from pytest_predeploy.rehearsal.smoke import TestResultsReport
    from pytest_predeploy.rollback.rollback import RollbackReport
    from pytest_predeploy.targets.releases import ReleaseIdentity

M = TypeVar("M", bound=ArtifactModel)

#: Lines of a root-cause excerpt kept on the page, and characters per line (the transcript has
#: them all): a service printing one enormous line must not bury the page.
EXCERPT_LINES = 20
EXCERPT_WIDTH = 400


def _last_lines(text: str) -> str:
    return "\n".join(line if len(line) <= EXCERPT_WIDTH else line[:EXCERPT_WIDTH] + " ..." for line in text.splitlines()[-EXCERPT_LINES:])


@dataclass
class Evidence:
    """What the artifacts say, for the review page."""

    changes: list[BuildChange] = field(default_factory=list)
    api_changes: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    api_note: str = ""
    dependencies: list[str] = field(default_factory=list)
    dependency_note: str = ""
    risks: list[Risk] = field(default_factory=list)
    approvals: list[UpstreamApproval] = field(default_factory=list)
    scanners_not_run: list[str] = field(default_factory=list)
    timings: list[ServiceTiming] = field(default_factory=list)
    charts: list[tuple[str, str]] = field(default_factory=list)
    #: Root causes by gate number.
    root_causes: dict[int, list[RootCause]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value is not None else "no expiry"


class _Reader:
    def __init__(self, artifacts: Path, notes: list[str]) -> None:
        self.artifacts = artifacts
        self.notes = notes

    def read(self, name: str, model: type[M]) -> M | None:
        path = self.artifacts / name
        if not path.exists():
            return None
        try:
            return read_artifact(path, model)
        except ArtifactError as exc:
            self.notes.append(str(exc))
            return None


def read_evidence(artifacts: Path, drift_waivers: Sequence[DriftWaiver] = ()) -> Evidence:
    found = Evidence()
    reader = _Reader(artifacts, found.notes)
    intake = reader.read(names.INTAKE_REPORT, IntakeReport)
    parity = reader.read(names.PARITY_REPORT, ParityReport)
    security = reader.read(names.SECURITY_REPORT, SecurityReport)
    smoke = deployment = rollback = observability = contract = None
    if (artifacts / names.TEST_RESULTS).exists():
        from pytest_predeploy.rehearsal.smoke import TestResultsReport

        smoke = reader.read(names.TEST_RESULTS, TestResultsReport)
    if (artifacts / names.DEPLOYMENT_REPORT).exists():
        from pytest_predeploy.rehearsal.deploy import DeploymentReport

        deployment = reader.read(names.DEPLOYMENT_REPORT, DeploymentReport)
    if (artifacts / names.ROLLBACK_REPORT).exists():
        from pytest_predeploy.rollback.rollback import RollbackReport

        rollback = reader.read(names.ROLLBACK_REPORT, RollbackReport)
    if (artifacts / names.OBSERVABILITY_METRICS).exists():
        from pytest_predeploy.rehearsal.observability import ObservabilityResult

        observability = reader.read(names.OBSERVABILITY_METRICS, ObservabilityResult)
    if (artifacts / names.API_CONTRACT_REPORT).exists():
        from pytest_predeploy.rehearsal.contract import ApiContractReport

        contract = reader.read(names.API_CONTRACT_REPORT, ApiContractReport)
    if contract is not None:
        found.api_changes, found.api_note = _api_changes(contract)
        found.risks += [
            Risk("API contract waiver", c.waiver, f"{s.service} {c.operation}: {c.detail}", c.waiver_owner or "", c.id, "")
            for s in contract.services
            for c in s.changes
            if c.waiver
        ]
    if parity is not None:
        found.risks += _drift_waivers(parity, drift_waivers)
    if security is not None:
        # A waiver the audit applied, with the findings it cleared.
        found.risks += [Risk("security waiver", a.waiver, "; ".join(a.findings), a.owner, a.justification, _date(a.expires_at)) for a in security.approvals]
    if intake is not None:
        found.approvals, upstream = _approvals(intake)
        # Waivers granted upstream, once each (the audit's row, when it applied one, says more).
        applied = {risk.id for risk in found.risks if risk.kind == "security waiver"}
        found.risks += [risk for risk in upstream if risk.id not in applied]
    if security is not None:
        found.scanners_not_run = _not_run(security)
        found.dependencies = [f"{d.name} {d.version} ({d.license or 'licence unknown'})" for d in security.dependencies]
        found.dependency_note = (
            "the candidate's pinned dependencies as the security audit read them; the artifacts do not record the previous release's, so no diff"
        )
    found.changes = _changes(deployment, rollback)
    found.timings = _timings(deployment, rollback)
    found.charts = _charts(deployment, rollback, observability)
    if deployment is not None:
        found.root_causes.setdefault(2, []).extend(_deploy_causes(deployment))
    if smoke is not None:
        found.root_causes.setdefault(2, []).extend(_smoke_causes(smoke))
    if rollback is not None:
        found.root_causes.setdefault(3, []).extend(
            RootCause(f"{s.service}: rollback to {s.to_release} {s.status}", _tail(s.error), names.ROLLBACK_REPORT) for s in rollback.services if s.error
        )
    return found


#: Scanners that answer the same question: when one could not run, the others covered for it.
SAME_QUESTION = ({"osv", "pip-audit"},)


def _not_run(security: SecurityReport) -> list[str]:
    """Each scanner that could not run: why, whether Gate 3 requires it, and what covered for it."""
    ran = {s.name: s for s in security.scanners if s.status != "unavailable"}
    lines = []
    for s in security.scanners:
        if s.status != "unavailable":
            continue
        required = "required (fail_closed): Gate 3 fails without it" if s.fail_closed else "not required (fail_closed: false)"
        covered = [f"{other} ({ran[other].status})" for group in SAME_QUESTION if s.name in group for other in sorted(group - {s.name}) if other in ran]
        cover = f"; covered by {', '.join(covered)}" if covered else "; nothing else checks what it checks"
        action = f"; to run it: {s.action}" if s.action else ""
        lines.append(f"{s.name}: {s.reason or 'no reason given'}; {required}{cover}{action}")
    return lines


def _drift_waivers(parity: ParityReport, declared: Sequence[DriftWaiver]) -> list[Risk]:
    by_id = {w.id: w for w in declared}
    risks = []
    for item in parity.items:
        if item.status != "waived" or not item.waiver:
            continue
        waiver = by_id.get(item.waiver)
        if waiver is not None:
            risks.append(
                Risk(
                    "drift waiver",
                    waiver.id,
                    f"{item.path} ({getattr(item.severity, 'value', item.severity)}, {item.kind})",
                    waiver.owner,
                    waiver.justification,
                    _date(waiver.expires_at),
                )
            )
        else:  # the config changed since the run: the report's own words are all there is
            risks.append(Risk("drift waiver", item.waiver, item.path, "(not in the config any more)", item.remediation or "", "unknown"))
    return risks


def _approvals(intake: IntakeReport) -> tuple[list[UpstreamApproval], list[Risk]]:
    approvals, risks = [], []
    for check in intake.checks:
        approvals.append(
            UpstreamApproval(check.title, check.status, check.approved_by or "", _date(check.approved_at), _date(check.expires_at), list(check.waivers))
        )
        if check.waivers:
            risks += _record_waivers(Path(check.file), check.title, check.waivers, check.sha256)
    return approvals, risks


def _record_waivers(path: Path, title: str, ids: list[str], sha256: str | None) -> list[Risk]:
    """The waivers an upstream approval carries, with owner, reason and expiry from its record
    (the intake report keeps their ids; the record as it was checked, or the ids alone)."""
    try:
        raw = read_bytes_file(path, "approval record", MAX_DOCUMENT_BYTES)  # held to the intake's limits
        matches = sha256 is None or hashlib.sha256(raw).hexdigest() == sha256
        record = ApprovalRecord.model_validate(parse_yaml(raw.decode("utf-8", "replace"), str(path))[0]) if matches else None
    except (ConfigError, ValidationError):
        record = None
    waivers = {w.id: w for w in record.waivers} if record is not None else {}
    risks = []
    for waiver_id in ids:
        waiver = waivers.get(waiver_id)
        if waiver is None:
            risks.append(Risk("security waiver", waiver_id, f"granted by {title}", "(record changed since the intake check)", "", "unknown"))
        else:
            risks.append(Risk("security waiver", waiver.id, f"granted by {title}", waiver.owner, waiver.justification, _date(waiver.expires_at)))
    return risks


def _identity(build: ReleaseIdentity | None) -> str:
    if build is None:
        return "unknown"
    commit = f" commit {build.commit[:12]}" if build.commit else ""
    dirty = " DIRTY" if build.dirty else ""
    return f"{build.deployed_as}: {build.kind} {build.ref or ''}{commit} digest {build.digest[:12]}{dirty}"


def _changes(deployment: DeploymentReport | None, rollback: RollbackReport | None) -> list[BuildChange]:
    changes: dict[str, BuildChange] = {}
    if rollback is not None:
        for s in rollback.services:
            if s.from_build is not None or s.to_build is not None:
                same = s.from_build is not None and s.to_build is not None and s.from_build.digest == s.to_build.digest
                changes[s.service] = BuildChange(s.service, _identity(s.to_build), _identity(s.from_build), same)
    if deployment is not None:
        previous = {b.service: b for b in deployment.bootstrap}
        for d in deployment.services:
            if d.service not in changes and d.build is not None:
                before = previous.get(d.service)
                changes[d.service] = BuildChange(d.service, before.release if before else (deployment.previous_release or "unknown"), _identity(d.build), False)
    return list(changes.values())


def _timings(deployment: DeploymentReport | None, rollback: RollbackReport | None) -> list[ServiceTiming]:
    rows: dict[str, dict[str, float | None]] = {}
    for d in deployment.services if deployment is not None else []:
        rows.setdefault(d.service, {})["deploy"] = d.duration_seconds
    for r in rollback.services if rollback is not None else []:
        row = rows.setdefault(r.service, {})
        row.update(rollback=r.switch_seconds, recovery=r.recovery_seconds, target=r.recovery_target_seconds)
    return [ServiceTiming(service, **values) for service, values in rows.items()]


def _charts(deployment: DeploymentReport | None, rollback: RollbackReport | None, observability: ObservabilityResult | None) -> list[tuple[str, str]]:
    charts = []
    if deployment is not None and deployment.services:
        charts.append(("Deploy time per service", bar_chart_svg([(s.service, s.duration_seconds or 0.0) for s in deployment.services])))
    if rollback is not None and rollback.services:
        rows = [(s.service, s.recovery_seconds or 0.0) for s in rollback.services]
        charts.append(("Recovery time per service against the target", bar_chart_svg(rows, target=rollback.recovery_target_seconds)))
    if observability is not None:
        last = observability.snapshots[-1] if observability.snapshots else None
        latency = [(m.service, m.latency_p95 * 1000) for m in (last.services if last else []) if m.latency_p95 is not None]
        if last is not None and latency:
            charts.append((f"p95 latency per service, {last.label} (observability baseline)", bar_chart_svg(latency, unit="ms")))
        if observability.prometheus is not None:
            from pytest_predeploy.rehearsal.prometheus import query_chart

            charts += [(f"{q.name}: {q.promql}", query_chart(q)) for q in observability.prometheus.queries]
    return charts


_LAST_LINES = re.compile(r"last lines of [^\n]*:\n", re.IGNORECASE)


def _tail(text: str | None) -> str:
    """The part of an error that is the service's own output (after "last lines of LOG:"), else
    the error itself; the last lines, dedented."""
    if not text:
        return ""
    found = _LAST_LINES.search(text)
    body = text[found.end() :] if found else text
    lines = [line[4:] if line.startswith("    ") else line for line in body.splitlines()]
    return _last_lines("\n".join(lines))


def _deploy_causes(report: DeploymentReport) -> list[RootCause]:
    causes = []
    for s in report.services:
        if s.status in ("deployed",) or not s.error:
            continue
        source = s.script.transcript if s.script is not None and s.script.transcript else names.DEPLOYMENT_REPORT
        causes.append(RootCause(f"{s.service}: deployment of {s.release} {s.status}", _tail(s.error), source))
    return causes


def _smoke_causes(report: TestResultsReport) -> list[RootCause]:
    causes = []
    for suite in report.suites:
        failing = [t for t in suite.tests if t.outcome in ("failed", "error")]
        for test in failing[:3]:
            causes.append(RootCause(f"{suite.name}: {test.nodeid} {test.outcome}", _last_lines(test.message or ""), names.TEST_RESULTS))
    # Each service's last log lines, recorded by the smoke step when a test failed: the traceback.
    for log in report.service_logs:
        if log.lines:
            causes.append(RootCause(f"{log.service} wrote, at the end of {log.log}", _last_lines("\n".join(log.lines)), names.TEST_RESULTS))
    return causes


def _api_changes(report: ApiContractReport) -> tuple[list[tuple[str, str, str, str, str]], str]:
    """The contract comparison's changes, breaking first, and what was not compared."""
    rows = [
        (
            s.service,
            c.kind + (" (BLOCKING)" if c.blocking else ""),
            c.operation,
            c.detail,
            c.waiver or c.expired_waiver and f"{c.expired_waiver} (expired)" or "",
        )
        for s in report.services
        for c in s.changes
    ]
    not_compared = [f"{s.service}: {s.status} ({s.detail})" if s.detail else f"{s.service}: {s.status}" for s in report.services if s.status != "compared"]
    note = "; ".join(not_compared) if not_compared else ("" if rows else "no change to the API contract")
    if not report.enabled:
        note = "the API contract comparison is switched off (contract.enabled: false)"
    return rows, note


def sealed_manifest(package: Path) -> Manifest | None:
    """The manifest sealed in ``package`` (what `predeploy verify` counts), or None."""
    from pytest_predeploy.readiness.package import Manifest

    try:
        with zipfile.ZipFile(package) as archive:
            return Manifest.model_validate(json_loads(archive.read(names.MANIFEST)))
    except (OSError, KeyError, zipfile.BadZipFile, ValueError, ValidationError):
        return None
