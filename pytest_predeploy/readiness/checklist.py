"""Deployment checklist updates (Protocol 10, step 4.3, GUIDELINE).

``deployment-checklist.md`` is the production deployment checklist's history: each rehearsal
appends a dated revision drawn from its evidence, read through the artifacts' own models:

- the rehearsed order of the candidate's deploys (configured order, or the batches that ran
  together), measured deploy time per service and in all;
- the rollback per service: switch and recovery time against the recovery target;
- failed steps, and steps slower than ``readiness.slow_step``, as action items;
- the smoke pass rate and the measured endpoint coverage;
- security findings shipped under a waiver and parity drift under a waiver (owner, expiry);
- alerts firing in the observability baseline;

each item with its owner from ``readiness.checklist_owners`` (area -> owner, ``default`` for the
rest). A revision records the sha256 of the evidence it was drawn from; when the evidence has not
changed since the last revision (Gate 4 re-run alone, say), nothing is appended and the result
says the checklist is already current.

A missing artifact is noted in the revision, not fatal; one that does not match its model (or is
for another release) is named with the field, and is a GUIDELINE miss.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core.artifacts import ArtifactModel, read_artifact, write_text_atomic
from pytest_predeploy.core.errors import ArtifactError
from pytest_predeploy.core.fields import utcnow
from pytest_predeploy.intake.parity import ParityReport, ParityValue
from pytest_predeploy.rehearsal.deploy import DeploymentReport, ServiceDeployment, deployment_problems
from pytest_predeploy.rehearsal.observability import ObservabilityResult, observability_problems
from pytest_predeploy.rehearsal.smoke import TestResultsReport, smoke_problems
from pytest_predeploy.rollback.rollback import RollbackReport, rollback_problems
from pytest_predeploy.security.report import SecurityReport

M = TypeVar("M", bound=ArtifactModel)

#: The evidence a revision is drawn from, in the order the revision presents it.
SOURCES: dict[str, type[ArtifactModel]] = {
    names.DEPLOYMENT_REPORT: DeploymentReport,
    names.ROLLBACK_REPORT: RollbackReport,
    names.TEST_RESULTS: TestResultsReport,
    names.SECURITY_REPORT: SecurityReport,
    names.PARITY_REPORT: ParityReport,
    names.OBSERVABILITY_METRICS: ObservabilityResult,
}
#: Without these the checklist has no deploy order or rollback plan: their absence is a miss.
CORE = (names.DEPLOYMENT_REPORT, names.ROLLBACK_REPORT)

PREAMBLE = "# Deployment checklist\n\nRevisions drawn from each staging rehearsal, newest last.\n"
_EVIDENCE_LINE = re.compile(r"^Evidence sha256: `([0-9a-f]{64})`", re.MULTILINE)
_REVISION_LINE = re.compile(r"^## (Revision .*)$", re.MULTILINE)


@dataclass(frozen=True)
class ChecklistItem:
    area: str
    text: str
    owner: str | None


@dataclass
class ChecklistResult:
    path: Path
    revision: str
    evidence_sha256: str
    appended: bool = True
    #: Read and used / absent / present but not usable (the reason names file and field).
    sources: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unusable: list[str] = field(default_factory=list)
    #: The candidate's production deploy order: each batch ran together on staging.
    deploy_order: list[list[str]] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)
    items: list[ChecklistItem] = field(default_factory=list)
    #: Owner of each area the revision has a section for (None: nobody is assigned).
    owners: dict[str, str | None] = field(default_factory=dict)

    def summary(self) -> str:
        if self.appended:
            return f"{self.path.name}: appended {self.revision} ({len(self.items)} action items)"
        return f"{self.path.name}: already current: {self.revision} was drawn from the same evidence (sha256 {self.evidence_sha256[:12]})"


# --- reading the evidence --------------------------------------------------------------------


@dataclass
class _Evidence:
    digests: dict[str, str | None] = field(default_factory=dict)
    models: dict[str, ArtifactModel] = field(default_factory=dict)

    def get(self, name: str, model: type[M]) -> M | None:
        found = self.models.get(name)
        return found if isinstance(found, model) else None


def _read_evidence(artifacts: Path, release: str, result: ChecklistResult) -> _Evidence:
    evidence = _Evidence()
    for name, model in SOURCES.items():
        path = artifacts / name
        try:
            evidence.digests[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        except FileNotFoundError:
            evidence.digests[name] = None
            result.missing.append(name)
            continue
        except OSError:
            evidence.digests[name] = None  # read_artifact below says why, naming the file
        try:
            loaded = read_artifact(path, model)
        except ArtifactError as exc:
            result.unusable.append(f"{name}: {str(exc).removeprefix(f'{path}: ')}")
            continue
        if loaded.release != release:
            result.unusable.append(f"{name}: release: it is for {loaded.release}, not {release} (stale evidence; re-run its gate)")
            continue
        evidence.models[name] = loaded
        result.sources.append(name)
    return evidence


def _evidence_digest(release: str, digests: Mapping[str, str | None]) -> str:
    """One sha256 over the release and every source's sha256 ('missing' for an absent file)."""
    lines = [f"release {release}"] + [f"{name} {digests.get(name) or 'missing'}" for name in SOURCES]
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


# --- drawing the revision --------------------------------------------------------------------


def _s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f} s"


def _utc(moment: datetime) -> datetime:
    """Waiver expiries are plain datetimes in the security report: a naive one is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _day(moment: datetime) -> str:
    return f"{_utc(moment):%Y-%m-%d}"


def _days_left(moment: datetime, now: datetime) -> str:
    days = (_utc(moment) - now).days  # ``now`` is UTC already
    return f"expired {-days} days ago" if days < 0 else f"in {days} days"


class _Drawing:
    def __init__(self, result: ChecklistResult, owners: Mapping[str, str], slow: timedelta, now: datetime) -> None:
        self.result, self.owners, self.slow, self.now = result, owners, slow.total_seconds(), now

    def owner(self, area: str) -> str | None:
        owner = self.owners.get(area) or self.owners.get("default")
        self.result.owners[area] = owner
        return owner

    def item(self, area: str, text: str) -> None:
        self.result.items.append(ChecklistItem(area, text, self.owner(area)))

    def note(self, area: str, text: str) -> None:
        self.owner(area)
        self.result.notes.setdefault(area, []).append(text)

    def figure(self, what: str, value: str) -> None:
        self.result.figures.append((what, value))

    def deployment(self, report: DeploymentReport) -> None:
        deploys = [s for s in report.services if s.started_at is not None]
        batches = _batches(report.services)
        self.result.deploy_order = [[s.service for s in batch] for batch in batches]
        first = min((s.started_at for s in deploys if s.started_at), default=None)
        for service in report.services:
            offset = f", started +{(service.started_at - first).total_seconds():.1f} s" if service.started_at and first else ""
            self.figure(f"deploy {service.service}", f"{_s(service.duration_seconds)} ({service.status}{offset})")
        ended = [s.ended_at for s in deploys if s.ended_at is not None]
        if first is not None and ended:
            summed = sum(s.duration_seconds or 0.0 for s in deploys)
            self.figure("deploy total", f"{_s((max(ended) - first).total_seconds())} wall, {_s(summed)} summed over services")
        how = "one service at a time" if report.max_parallel <= 1 else f"up to {report.max_parallel} services at once (staging.max_parallel)"
        order = "\n".join(f"{n}. {', '.join(s.service for s in batch)}{' (together)' if len(batch) > 1 else ''}" for n, batch in enumerate(batches, 1))
        self.note(
            "deploy",
            f"Rehearsed {report.release} on {report.environment}, replacing {report.previous_release or 'no known release'}, {how}. Deploy to production in this order:\n\n{order}",
        )
        if any(b.status == "bootstrapped" for b in report.bootstrap):
            self.note(
                "deploy", f"Staging was first given {report.previous_release} ({report.bootstrap_note}); those deploys are not part of the production order."
            )
        for problem in deployment_problems(report):
            self.item("deploy", f"The rehearsal failed: {problem}. Fix it and rehearse again before production.")
        for service in report.services:
            if service.status == "deployed" and (service.duration_seconds or 0.0) > self.slow:
                self.item(
                    "deploy",
                    f"Deploy of {service.service} took {_s(service.duration_seconds)} on staging (slower than {_s(self.slow)}): plan the production window for it.",
                )

    def rollback(self, report: RollbackReport) -> None:
        self.note(
            "rollback",
            (
                f"Rehearsed from {report.release} back to {report.previous_release}, in this order: {', '.join(s.service for s in report.services) or '(no service)'}; "
                f"recovery target {report.recovery_target_seconds:g} s per service; "
                + ("rolled forward again afterwards." if report.roll_forward else "left on the previous release.")
            ),
        )
        for service in report.services:
            verdict = "within target" if service.within_target else "OVER target" if service.within_target is False else "no recovery"
            self.figure(
                f"rollback {service.service}",
                f"switch {_s(service.switch_seconds)}, recovery {_s(service.recovery_seconds)} of {report.recovery_target_seconds:g} s target ({verdict}; {service.strategy})",
            )
        for problem in rollback_problems(report):
            self.item("rollback", f"The rollback rehearsal failed: {problem}. The production rollback path is not proven until it passes.")
        for service in report.services:
            for step in service.steps:
                if step.status == "passed" and step.duration_seconds > self.slow:
                    self.item(
                        "rollback",
                        f"{step.name} of {service.service} took {_s(step.duration_seconds)} on staging (slower than {_s(self.slow)}): keep that time free in the production window.",
                    )

    def smoke(self, report: TestResultsReport) -> None:
        totals, coverage = report.totals, report.coverage
        self.figure("smoke pass rate", f"{totals.passed}/{totals.tests} passed ({totals.passed / totals.tests:.0%})" if totals.tests else "no tests ran")
        measured = (
            f"{coverage.ratio:.0%} ({coverage.exercised}/{coverage.declared} endpoints)"
            if coverage.ratio is not None
            else f"no data ({coverage.detail or 'no declared endpoints'})"
        )
        self.figure("smoke coverage", f"{measured}, required {report.min_coverage:.0%}")
        if report.select is not None:
            self.note("smoke", f"A subset ran (-k {report.select}): coverage is partial by design.")
        for problem in smoke_problems(report, report.min_coverage):
            self.item("smoke", f"On staging: {problem}. Resolve it before production, and run this suite right after the production deploy.")
        for suite in report.suites:
            if suite.duration > self.slow:
                self.item(
                    "smoke",
                    f"Suite {suite.name} took {_s(suite.duration)} on staging (slower than {_s(self.slow)}): allow for it before declaring the production deploy done.",
                )

    def security(self, report: SecurityReport) -> None:
        waived = sorted(((f, f.waiver) for f in report.findings if f.waiver is not None), key=lambda pair: _utc(pair[1].expires_at))
        self.figure(
            "security findings", f"{len(report.findings)} ({sum(f.blocking for f in report.findings)} blocking, {sum(not w.expired for _, w in waived)} waived)"
        )
        for finding, waiver in waived:
            what = f"{finding.scanner} {finding.id} in {finding.where()} ({finding.severity.value})"
            if waiver.expired:
                self.item(
                    "security",
                    f"{what}: waiver {waiver.id} (owner {waiver.owner}) expired {_day(waiver.expires_at)}: it blocks again; renew the waiver or fix the finding.",
                )
            else:
                fix = f"; fixed in {', '.join(finding.fixed_versions)}" if finding.fixed_versions else ""
                self.item(
                    "security",
                    f"{what} ships under waiver {waiver.id}, owner {waiver.owner}, expires {_day(waiver.expires_at)} ({_days_left(waiver.expires_at, self.now)}){fix}: follow up before it expires.",
                )
        for finding in report.findings:
            if finding.blocking and finding.waiver is None:
                self.item("security", f"Blocking finding: {finding.describe()}.")

    def parity(self, report: ParityReport) -> None:
        waived = [item for item in report.items if item.status in ("waived", "waiver-expired")]
        self.figure(
            "parity",
            f"{report.summary.critical} critical, {report.summary.major} major, {report.summary.minor} minor drift; {report.summary.waived} waived, {report.summary.expired_waivers} expired waivers",
        )
        for item in waived:
            where = f"{item.path} ({item.severity.value}: {report.source} {_shown(item.source_value)}, {report.target} {_shown(item.target_value)})"
            if item.status == "waiver-expired":
                self.item("parity", f"{where}: waiver {item.waiver} has expired: {item.remediation}.")
            else:
                # The remediation of a waived item names the waiver's expiry, owner and justification.
                self.item(
                    "parity",
                    f"{where} is accepted under waiver {item.waiver}, {item.remediation}; check it holds on production and renew or remove the waiver before it expires.",
                )

    def observability(self, result: ObservabilityResult) -> None:
        firing = sum(alert.state == "firing" for alert in result.alerts)
        self.figure("alerts", f"{firing} firing of {len(result.alerts)} evaluated over {', '.join(result.phases) or 'no phase'}")
        for problem in observability_problems(result):
            self.item("observability", f"Baseline on {result.environment}: {problem}. Expect it in production or resolve it before the deploy.")

    def communication(self, deployment: DeploymentReport | None, rollback: RollbackReport | None) -> None:
        if deployment is None:
            return
        order = " then ".join(" and ".join(batch) + (" together" if len(batch) > 1 else "") for batch in self.result.deploy_order)
        plan = f"Announce the production window for {deployment.release}: deploy {order or 'nothing'}"
        recoveries = [s.recovery_seconds for s in rollback.services if s.recovery_seconds is not None] if rollback else []
        if rollback is not None and recoveries:
            plan += f", with rollback to {rollback.previous_release} in up to {_s(max(recoveries))} per service (target {rollback.recovery_target_seconds:g} s)"
        self.item("communication", plan + ".")


def _shown(value: ParityValue | None) -> str:
    if value is None:
        return "absent"
    return "(secret)" if value.redacted else json.dumps(value.value)


def _batches(services: list[ServiceDeployment]) -> list[list[ServiceDeployment]]:
    """The candidate's deploys grouped as they ran: one batch per set of overlapping deploys,
    by start time; services that never started come last, one each."""
    position = {s.service: i for i, s in enumerate(services)}
    started = sorted((s.started_at, position[s.service], s) for s in services if s.started_at is not None)
    batches: list[list[ServiceDeployment]] = []
    batch_end: datetime | None = None
    for start, _, service in started:
        end = service.ended_at or start
        if batches and batch_end is not None and start < batch_end:
            batches[-1].append(service)
            batch_end = max(batch_end, end)
        else:
            batches.append([service])
            batch_end = end
    ordered = [sorted(batch, key=lambda s: position[s.service]) for batch in batches]
    return ordered + [[s] for s in services if s.started_at is None]


# --- the file ----------------------------------------------------------------------------------

_AREAS = ("deploy", "rollback", "smoke", "security", "parity", "observability", "communication")
_TITLES = {
    "deploy": "Deploy",
    "rollback": "Rollback",
    "smoke": "Smoke & acceptance",
    "security": "Security waivers",
    "parity": "Parity waivers",
    "observability": "Observability baseline",
    "communication": "Communication plan",
}


def render(result: ChecklistResult, digests: Mapping[str, str | None]) -> str:
    """The revision as Markdown."""
    lines = [f"## {result.revision}", "", f"Evidence sha256: `{result.evidence_sha256}` (a re-run on the same evidence adds no revision)", ""]
    lines += ["| Evidence | sha256 |", "| --- | --- |"]
    lines += [f"| `{name}` | {f'`{digests[name]}`' if digests.get(name) else 'missing'} |" for name in SOURCES]
    if result.unusable:
        lines += ["", "Not usable (the revision is drawn without them):", *(f"- {reason}" for reason in result.unusable)]
    if result.figures:
        lines += ["", "| Measured on staging | Figure |", "| --- | --- |", *(f"| {what} | {value} |" for what, value in result.figures)]
    for area in sorted(result.owners, key=lambda a: _AREAS.index(a) if a in _AREAS else len(_AREAS)):
        lines += ["", f"### {_TITLES.get(area, area)} (owner: {result.owners[area] or 'unassigned'})", ""]
        for note in result.notes.get(area, []):
            lines += [note, ""]
        for item in result.items:
            if item.area == area:
                lines.append(f"- [ ] **{item.area}** (owner: {item.owner or 'unassigned'}): {item.text}")
    if not result.items:
        lines += ["", "- Nothing to act on from this rehearsal."]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).rstrip("\n") + "\n"


def _last_revision(text: str) -> tuple[str, str] | None:
    """(revision title, evidence sha256) of the newest revision in ``text``."""
    evidence = list(_EVIDENCE_LINE.finditer(text))
    if not evidence:
        return None
    last = evidence[-1]
    titles = list(_REVISION_LINE.finditer(text, 0, last.start()))
    return (titles[-1].group(1) if titles else "the last revision"), last.group(1)


def write_deployment_checklist(
    artifacts: Path,
    release: str,
    owners: Mapping[str, str],
    *,
    slow_step: timedelta = timedelta(seconds=60),
    now: datetime | None = None,
    write: bool = True,
) -> ChecklistResult:
    """Append a revision for ``release`` to ``deployment-checklist.md`` (atomically) when the
    evidence changed since the last revision, and return what it holds. With ``write`` false
    (the package holding the checklist is sealed) nothing is appended."""
    now = _utc(now) if now else utcnow()
    artifacts = Path(artifacts)
    path = artifacts / names.DEPLOYMENT_CHECKLIST
    result = ChecklistResult(path=path, revision=f"Revision {now:%Y-%m-%dT%H:%M:%SZ}: release {release}", evidence_sha256="")
    evidence = _read_evidence(artifacts, release, result)
    result.evidence_sha256 = _evidence_digest(release, evidence.digests)

    drawing = _Drawing(result, owners, slow_step, now)
    deployment, rollback = evidence.get(names.DEPLOYMENT_REPORT, DeploymentReport), evidence.get(names.ROLLBACK_REPORT, RollbackReport)
    if deployment is not None:
        drawing.deployment(deployment)
    if rollback is not None:
        drawing.rollback(rollback)
    if (tests := evidence.get(names.TEST_RESULTS, TestResultsReport)) is not None:
        drawing.smoke(tests)
    if (security := evidence.get(names.SECURITY_REPORT, SecurityReport)) is not None:
        drawing.security(security)
    if (parity := evidence.get(names.PARITY_REPORT, ParityReport)) is not None:
        drawing.parity(parity)
    if (observed := evidence.get(names.OBSERVABILITY_METRICS, ObservabilityResult)) is not None:
        drawing.observability(observed)
    drawing.communication(deployment, rollback)

    try:
        previous = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        previous = PREAMBLE
    last = _last_revision(previous)
    if last is not None and last[1] == result.evidence_sha256:
        result.revision, result.appended = last[0], False
        return result
    if not write:
        result.appended = False
        return result
    write_text_atomic(path, previous.rstrip("\n") + "\n\n" + render(result, evidence.digests))
    return result


def checklist_problems(result: ChecklistResult) -> list[str]:
    """GUIDELINE misses: evidence that could not be used, no deploy or rollback evidence, unowned items."""
    problems = [f"{result.path.name}: cannot draw from {reason}" for reason in result.unusable]
    absent = [name for name in CORE if name in result.missing]
    if absent:
        problems.append(f"{result.path.name}: no {' or '.join(absent)} to draw the production deploy order and rollback plan from (run Gates 2 and 3 first)")
    unowned = sorted(area for area, owner in result.owners.items() if owner is None)
    if unowned:
        problems.append(f"{result.path.name}: no owner for {', '.join(unowned)} items; set readiness.checklist_owners.<area> (or .default)")
    return problems
