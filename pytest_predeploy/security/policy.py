"""The ``security:`` section of predeploy.yaml: what is scanned, by which scanner, and the policy
that turns findings into a verdict (blocking threshold, waivers).

Every scanner is fail-closed by default: a scan that could not run blocks Gate 3 like a finding
would, because "no data" must never read as "no problem".
"""

from __future__ import annotations

from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import Field, model_validator

from pytest_predeploy.core.fields import ConfigPath, Duration, Severity, StrictModel, UtcDatetime

BanditSeverity = Literal["HIGH", "MEDIUM", "LOW"]
_BANDIT_SEVERITIES: dict[BanditSeverity, Severity] = {"HIGH": Severity.critical, "MEDIUM": Severity.major, "LOW": Severity.minor}


class ScannerOptions(StrictModel):
    """What every scanner shares."""

    enabled: bool = Field(True, description="Run this scanner. A disabled scanner is reported as 'disabled' (never as a clean scan) and does not block.")
    fail_closed: bool = Field(
        True,
        description="When the scanner cannot run (tool missing, crash, unreadable output, stale data, no network), block Gate 3. Set false only for scanners that are extra evidence.",
    )
    timeout: Duration = Field(timedelta(minutes=5), description="How long the scanner may run before it is stopped and reported unavailable.")


class ToolOptions(ScannerOptions):
    """A scanner that is a separate tool run as a subprocess."""

    command: str = Field(
        description="The tool's command line prefix, split like a shell line; {python} is the interpreter running the audit. Point it elsewhere to use a tool installed outside this environment (e.g. with pipx)."
    )


class BanditOptions(ToolOptions):
    """Static analysis of the release's Python source with bandit."""

    command: str = Field("{python} -m bandit", description="Command that runs bandit (it is given '-f json -q -r <paths>').")
    severities: dict[BanditSeverity, Severity] = Field(
        default_factory=lambda: dict(_BANDIT_SEVERITIES),
        description="Our severity for each bandit issue severity.",
    )


class SecretsOptions(ToolOptions):
    """Secrets committed in the release's files, found with detect-secrets."""

    command: str = Field("{python} -m detect_secrets", description="Command that runs detect-secrets (it is given 'scan --all-files <paths>').")
    severity: Severity = Field(Severity.critical, description="Severity of every secret found.")


class SbomOptions(ToolOptions):
    """The CycloneDX SBOM of the release's dependencies (cyclonedx-bom), written beside the report."""

    command: str = Field(
        "{python} -m cyclonedx_py", description="Command that runs cyclonedx-py ('environment' or 'requirements' mode is chosen from the dependency target)."
    )


class PipAuditOptions(ToolOptions):
    """pip-audit against an online vulnerability service, in addition to the offline OSV scan."""

    command: str = Field("{python} -m pip_audit", description="Command that runs pip-audit.")
    service: Literal["pypi", "osv"] = Field("pypi", description="The vulnerability service pip-audit queries.")
    osv_url: str | None = Field(None, description="OSV API URL to query instead of the public one (service: osv only), e.g. an internal mirror.")
    probe_timeout: Duration = Field(
        timedelta(seconds=3), description="How long the reachability check of the service may take before pip-audit is reported unavailable."
    )
    severity: Severity = Field(Severity.major, description="Severity of a vulnerability pip-audit reports (the services give none).")


class OsvOptions(ScannerOptions):
    """Dependency vulnerabilities matched offline against an OSV database."""

    database: Literal["bundled"] | ConfigPath | None = Field(
        None,
        description="A folder or .zip of OSV advisories (JSON or YAML): osv.dev's PyPI export as written by 'predeploy advisories update', "
        "a checkout of the PyPA advisory database, or 'bundled' for the fixed snapshot this package ships (PyPA advisory database of 2024-10-10; "
        "for demos and offline trials, not for real releases).",
    )
    max_age: Duration | Literal["none"] = Field(
        timedelta(days=7),
        description="The scan is unavailable when the database was fetched longer ago than this (without a fetch record: its newest 'modified' "
        "timestamp is older). 'none' checks no age: only for a deliberately fixed snapshot, and the report says so.",
    )
    default_severity: Severity = Field(Severity.major, description="Severity of an advisory that carries no CVSS v3 vector or severity rating.")


class LicenseSeverities(StrictModel):
    """How serious each kind of licence finding is."""

    denied: Severity = Field(Severity.critical, description="A licence on the deny list.")
    unlisted: Severity = Field(Severity.major, description="A licence not on the allow list (when an allow list is given).")
    review: Severity = Field(Severity.major, description="A licence on the review list: blocks until someone reviews it and records a waiver.")
    unknown: Severity = Field(Severity.major, description="A distribution whose licence cannot be read as SPDX ids (UNKNOWN).")


#: Licences that ask nothing of a service that uses the distribution unmodified.
PERMISSIVE = [
    "MIT",
    "MIT-0",
    "Apache-2.0",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "BSD-3-Clause-Clear",
    "ISC",
    "PSF-2.0",
    "Python-2.0",
    "0BSD",
    "Unlicense",
    "Zlib",
    "CC0-1.0",
    "BSL-1.0",
    "UPL-1.0",
    "HPND",
    "X11",
    "ZPL-2.1",
    "PostgreSQL",
    "NCSA",
]
#: Weak copyleft: obligations attach to the licensed files themselves (share changes to them,
#: keep the notice), not to the service that imports them unmodified.
WEAK_COPYLEFT = ["MPL-1.1", "MPL-2.0", "LGPL-*", "EPL-1.0", "EPL-2.0", "CDDL-1.0"]
#: Strong copyleft: whether the service's own code is covered depends on how it is combined and
#: distributed, which is a legal review, not a rule.
STRONG_COPYLEFT = ["GPL-*", "AGPL-*"]


class LicenseOptions(ScannerOptions):
    """Licences of the release's distributions against a policy of SPDX ids.

    The default policy: permissive licences pass; weak copyleft (MPL, LGPL, EPL) passes as an
    unmodified dependency with a notice in the report; strong copyleft (GPL, AGPL), licences on no
    list and unknown licences need a review (a waiver). Tighten it by moving ids to ``review`` or
    ``deny`` (e.g. ``review: [MPL-2.0]``): the strictest list an id is on wins."""

    allow: list[str] = Field(
        default_factory=lambda: list(PERMISSIVE),
        description="SPDX ids (or globs such as 'BSD-*') allowed without review. When non-empty, any id on no list is a finding ('unlisted'). Default: common permissive licences (MIT, Apache-2.0, BSD-2/3-Clause, ISC, PSF-2.0, ...).",
    )
    notice: list[str] = Field(
        default_factory=lambda: list(WEAK_COPYLEFT),
        description="SPDX ids or globs allowed as unmodified dependencies with a notice: not a finding, but recorded on the dependency and in the scanner's notes. Default: weak copyleft (MPL-1.1, MPL-2.0, LGPL-*, EPL-1.0, EPL-2.0, CDDL-1.0).",
    )
    deny: list[str] = Field(default_factory=list, description="SPDX ids or globs that are never allowed.")
    review: list[str] = Field(
        default_factory=lambda: list(STRONG_COPYLEFT),
        description="SPDX ids or globs that need a review (recorded as a waiver) before release. Default: strong copyleft (GPL-*, AGPL-*).",
    )
    severity: LicenseSeverities = Field(default_factory=LicenseSeverities, description="Severity per kind of licence finding.")


class WaiverMatch(StrictModel):
    """Which findings a waiver covers. Shell-style globs (``*``, ``?``), case-sensitive; every given field must match."""

    id: str = Field(
        description="Finding id, e.g. 'PYSEC-2018-28', 'B602', 'license:GPL-3.0-only', 'secret:AWS Access Key'. A vulnerability matches by any of its aliases too ('CVE-2018-18074' covers the PYSEC-2018-28 finding)."
    )
    scanner: str | None = Field(None, description="Scanner name: bandit, osv, pip-audit, licenses, secrets.")
    package: str | None = Field(None, description="Distribution name (normalised, lower case with dashes).")
    file: str | None = Field(None, description="File path as the report shows it.")


class SecurityWaiver(StrictModel):
    """An accepted risk: matching findings do not block until the waiver expires."""

    id: str = Field(description="Waiver identifier, shown beside every finding it covers.")
    match: WaiverMatch = Field(description="The findings it covers.")
    owner: str = Field(description="Who owns the accepted risk; listed among the report's approvals.")
    justification: str = Field(description="Why the risk is accepted.")
    expires_at: UtcDatetime = Field(description="When the waiver stops applying; matching findings then block again.")

    def covers(self, scanner: str, finding_ids: list[str], package: str | None, file: str | None) -> bool:
        """``finding_ids``: the finding's id and its aliases; the waiver may name any of them."""
        checks = [(self.match.scanner, scanner), (self.match.package, package), (self.match.file, file)]
        return any(fnmatchcase(vid, self.match.id) for vid in finding_ids) and all(
            pattern is None or (value is not None and fnmatchcase(value, pattern)) for pattern, value in checks
        )


class SecurityConfig(StrictModel):
    """Security and compliance audit: targets, scanners and policy (Gate 3)."""

    source_paths: list[ConfigPath] = Field(default_factory=list, description="Folders or files of the release's source, scanned by bandit and detect-secrets.")
    requirements: list[ConfigPath] = Field(
        default_factory=list,
        description="Requirements or lock files of the release ('name==version' lines; -r includes followed). Their distributions are scanned.",
    )
    environment: Literal["current", "release"] | ConfigPath | None = Field(
        None,
        description="Where the release's distributions are installed: 'release' (what the local staging target deploys: for a staging.releases kind dist, the release's own virtualenv, built for the audit from the same distribution and pip arguments; other kinds run on the interpreter running pytest, so their roots must be named in requirements or distributions), 'current' (the interpreter running the audit), a virtualenv folder or a site-packages folder. Gives versions to unpinned requirements and the licence metadata.",
    )
    target_python: str | None = Field(
        None,
        pattern=r"^3\.\d+(\.\d+)?$",
        description="The Python version the release runs on (e.g. '3.8' or '3.8.18'): environment markers of requirement lines and of installed dependencies are evaluated for it, and the lines they leave out are listed in the report. Default: the interpreter of 'environment' (a virtualenv's python, the pythonX.Y of a site-packages folder, the interpreter running the audit for 'current' or when no environment is set).",
    )
    distributions: list[str] = Field(
        default_factory=list,
        description="Root distributions of the release inside 'environment'; they and their installed dependencies are scanned. With neither this nor 'requirements', every distribution of the environment is scanned.",
    )
    blocking_severity: Severity = Field(Severity.major, description="Findings at or above this severity block Gate 3 unless waived.")
    waivers: list[SecurityWaiver] = Field(default_factory=list, description="Accepted risks, each with an owner and an expiry.")
    bandit: BanditOptions = Field(default_factory=BanditOptions, description="Static analysis (bandit).")
    secrets: SecretsOptions = Field(default_factory=SecretsOptions, description="Secret detection (detect-secrets).")
    osv: OsvOptions = Field(default_factory=OsvOptions, description="Offline OSV vulnerability matching.")
    pip_audit: PipAuditOptions = Field(default_factory=PipAuditOptions, description="pip-audit, when its vulnerability service is reachable.")
    licenses: LicenseOptions = Field(default_factory=LicenseOptions, description="Licence policy.")
    sbom: SbomOptions = Field(default_factory=SbomOptions, description="CycloneDX SBOM.")

    @model_validator(mode="after")
    def _unique_waivers(self) -> SecurityConfig:
        ids = [waiver.id for waiver in self.waivers]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"waiver id {duplicates[0]!r} is used twice")
        return self

    def waiver_for(self, scanner: str, finding_ids: list[str], package: str | None, file: str | None, now: datetime) -> tuple[SecurityWaiver | None, bool]:
        """The waiver that applies (an unexpired one first), and whether it has expired."""
        matching = [w for w in self.waivers if w.covers(scanner, finding_ids, package, file)]
        active = [w for w in matching if w.expires_at > now]
        if active:
            return active[0], False
        if matching:
            return matching[0], True
        return None, False
