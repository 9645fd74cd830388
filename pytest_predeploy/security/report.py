"""security-compliance-report.json: what each scanner did, what it found, and the verdict."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field

from pytest_predeploy.core.artifacts import ArtifactModel
from pytest_predeploy.core.fields import Severity, StrictModel

STEP = "security"

ScannerName = Literal["bandit", "secrets", "osv", "pip-audit", "licenses", "sbom"]
#: passed: ran, nothing found; findings: ran and found something; unavailable: could not run
#: (see reason and action: no data, never a clean scan nor findings); disabled: switched off in the config.
ScannerStatus = Literal["passed", "findings", "unavailable", "disabled"]


class ScannerResult(StrictModel):
    """One scanner's run."""

    name: ScannerName = Field(description="Scanner name as used in the config and in waivers.")
    tool: str = Field(description="The tool that did the work.")
    version: str | None = Field(None, description="The tool's version, when it could be read.")
    status: ScannerStatus = Field(description="passed, findings, unavailable or disabled.")
    reason: str | None = Field(None, description="Why the scanner is unavailable or disabled.")
    action: str | None = Field(None, description="What to do so an unavailable scanner can run (a command or the setting to change).")
    fail_closed: bool = Field(description="Whether this scanner being unavailable blocks Gate 3.")
    duration_seconds: float = Field(description="Wall time of the scan, in seconds.")
    targets: list[str] = Field(default_factory=list, description="What was scanned (paths, requirement files, environment).")
    findings: int = Field(0, description="Number of findings it reported.")
    notes: list[str] = Field(default_factory=list, description="Facts worth a reviewer's attention (e.g. database age).")


class WaiverApplied(StrictModel):
    """The waiver that matched a finding."""

    id: str = Field(description="Waiver id.")
    owner: str = Field(description="Who owns the accepted risk.")
    expires_at: datetime = Field(description="When it stops applying.")
    expired: bool = Field(description="True when it had expired at audit time: the finding blocks again.")


class Finding(StrictModel):
    """One finding. Never carries a secret value, a secret's hash or a source line."""

    scanner: ScannerName = Field(description="The scanner that reported it.")
    id: str = Field(description="Advisory id (PYSEC-...), bandit test id (B602), 'license:<expression>' or 'secret:<type>'.")
    severity: Severity = Field(description="critical, major, minor or info.")
    title: str = Field(description="One line saying what is wrong.")
    package: str | None = Field(None, description="Affected distribution (normalised name).")
    version: str | None = Field(None, description="Its version.")
    file: str | None = Field(None, description="Affected file.")
    line: int | None = Field(None, description="Line in that file.")
    source: str | None = Field(
        None, description="Where the affected distribution came from: each requirement file and line that pins it, or 'dependency of <name>'."
    )
    fixed_versions: list[str] = Field(default_factory=list, description="Versions that fix a vulnerability.")
    aliases: list[str] = Field(
        default_factory=list,
        description="Other ids of the same vulnerability (CVE, GHSA, another database's record of it): records naming each other are one finding, and a waiver may name any of these ids.",
    )
    waiver: WaiverApplied | None = Field(None, description="The waiver that matched it, if any.")
    blocking: bool = Field(description="True when it blocks Gate 3.")

    def where(self) -> str:
        if self.package:
            where = f"{self.package} {self.version}" if self.version else self.package
            return f"{where} ({self.source})" if self.source else where
        if self.file:
            return f"{self.file}:{self.line}" if self.line else self.file
        return "(release)"

    def describe(self) -> str:
        text = f"{self.scanner}: {self.id} in {self.where()} ({self.severity.value}): {self.title}"
        if self.fixed_versions:
            text += f"; fixed in {', '.join(self.fixed_versions)}"
        if self.waiver and self.waiver.expired:
            text += f"; waiver {self.waiver.id} expired at {self.waiver.expires_at.isoformat()}"
        return text


class Dependency(StrictModel):
    """A distribution of the release, as scanned."""

    name: str = Field(description="Normalised distribution name.")
    version: str | None = Field(description="Version (None when a requirement is unpinned and not installed).")
    license: str = Field(description="SPDX expression, or UNKNOWN.")
    license_source: str = Field(description="Where the licence was read: License-Expression, License, classifiers, or why it is unknown.")
    source: str = Field(description="Where the distribution came from (requirements file, environment, dependency of ...).")
    policy: Literal["allow", "notice", "review", "unlisted", "deny", "unknown"] | None = Field(
        None,
        description="The licence policy's verdict: allow, notice (allowed, recorded: weak copyleft as an unmodified dependency), review, unlisted, deny, or unknown (no SPDX licence could be read).",
    )


class Approval(StrictModel):
    """A waiver that cleared findings in this audit: the risk owner's approval."""

    waiver: str = Field(description="Waiver id.")
    owner: str = Field(description="Who accepted the risk.")
    justification: str = Field(description="Why.")
    expires_at: datetime = Field(description="Until when.")
    findings: list[str] = Field(description="The findings it cleared.")


class OsvDatabaseInfo(StrictModel):
    """The offline advisory database used."""

    path: str = Field(description="Folder or zip read ('bundled snapshot ...' for the one this package ships).")
    advisories: int = Field(description="Advisory files read.")
    withdrawn: int = Field(description="Withdrawn advisories (ignored).")
    newest_modified: datetime | None = Field(description="The newest 'modified' timestamp in the database.")
    fetched_at: datetime | None = Field(None, description="When this copy was downloaded, from its source record; the age is measured from it when known.")
    source: str | None = Field(None, description="Where the data comes from (URL, or upstream commit, date and licence), from its source record.")
    age_days: float | None = Field(description="Age of the database at audit time, in days (from fetched_at, else newest_modified).")
    max_age_days: float | None = Field(description="The configured maximum age, in days; null with max_age: none (a fixed snapshot, age not checked).")


class SecurityReport(ArtifactModel):
    """security-compliance-report.json: scanners, findings, verdict and approvals."""

    step: str = Field(STEP, description="The protocol step that produced the artifact.")
    environment: str = Field(description="The rehearsal environment the audit ran for.")
    blocking_severity: Severity = Field(description="Findings at or above this severity block unless waived.")
    scanners: list[ScannerResult] = Field(description="Every scanner, in a fixed order.")
    findings: list[Finding] = Field(description="Every finding, blocking ones first.")
    dependencies: list[Dependency] = Field(default_factory=list, description="The distributions scanned.")
    osv_database: OsvDatabaseInfo | None = Field(None, description="The OSV database, when one was read.")
    sbom: str | None = Field(None, description="File name of the CycloneDX SBOM beside this report, when written.")
    target_python: str | None = Field(None, description="The Python environment markers were evaluated for, and where that came from.")
    skipped_requirements: list[str] = Field(
        default_factory=list,
        description="Requirement lines left out because their environment marker is false for target_python (file:line: requirement ; marker).",
    )
    approvals: list[Approval] = Field(default_factory=list, description="Waivers that cleared findings, with their owners.")
    scanned: list[str] = Field(
        default_factory=list,
        description="What the dependency scanners read: per service the release's own environment (or lock) and where it came from, or the configured environment or files, with the number of distributions.",
    )
    blocking: bool = Field(description="True when Gate 3 must fail.")

    def summary_line(self) -> str:
        ran = sum(1 for s in self.scanners if s.status in ("passed", "findings"))
        blocking = sum(1 for f in self.findings if f.blocking)
        waived = sum(1 for f in self.findings if f.waiver and not f.waiver.expired)
        line = f"{ran}/{len(self.scanners)} scanners ran, {len(self.findings)} findings, {blocking} blocking, {waived} waived"
        not_run = [f"{s.name}{' (fail-closed)' if s.fail_closed else ''}" for s in self.scanners if s.status == "unavailable"]
        if not_run:
            line += f"; could not run: {', '.join(not_run)}"
        if self.scanned:
            line += f"; scanned {'; '.join(self.scanned)}"
        return line

    def could_not_run(self) -> list[ScannerResult]:
        """The fail-closed scanners that could not run: no data, which blocks like a finding."""
        return [s for s in self.scanners if s.status == "unavailable" and s.fail_closed]

    def headline(self) -> str:
        """The [ERROR] line, saying whether the audit found something, could not run, or both."""
        not_run = ", ".join(s.name for s in self.could_not_run())
        blocking = any(f.blocking for f in self.findings)
        if not_run and blocking:
            return f"[ERROR] Security/compliance scan reported blocking findings, and could not run: {not_run} (no data)."
        if not_run:
            return f"[ERROR] Security/compliance scan could not run: {not_run} (no data, not a finding; fail-closed)."
        return "[ERROR] Security/compliance scan reported blocking findings."


def security_problems(report: SecurityReport) -> list[str]:
    """One line per reason Gate 3 must fail: fail-closed scanners that could not run, with what to
    do about it, and blocking findings."""
    problems = [
        f"{s.name}: could not run (unavailable): {s.reason} (fail-closed)" + (f"; to fix: {s.action}" if s.action and s.action not in (s.reason or "") else "")
        for s in report.could_not_run()
    ]
    problems += [finding.describe() for finding in report.findings if finding.blocking]
    if not problems and not any(s.status in ("passed", "findings") for s in report.scanners):
        # Every scanner disabled or unavailable: nothing was scanned, which is no data, never clear.
        states = ", ".join(f"{s.name} {s.status}" for s in report.scanners) or "none configured"
        problems.append(f"no scanner ran ({states}): nothing was scanned (no data); enable at least one scanner")
    return problems


def headline_of(path: Path) -> str:
    """The [ERROR] line for the report at ``path``; the gate names what is wrong with an unreadable one."""
    try:
        return SecurityReport.model_validate_json(path.read_bytes()).headline()
    except (OSError, ValueError):
        return f"[ERROR] Security/compliance scan did not clear: {path.name} cannot be read (Gate 3 says why)."
