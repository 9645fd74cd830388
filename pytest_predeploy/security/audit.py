"""The security and compliance audit (Protocol 10, step 3.2): run every scanner, apply the policy,
write security-compliance-report.json and the CycloneDX SBOM beside it."""

from __future__ import annotations

import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Protocol

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core.artifacts import write_text_atomic
from pytest_predeploy.core.errors import ConfigError
from pytest_predeploy.core.fields import utcnow
from pytest_predeploy.core.redact import Redactor
from pytest_predeploy.security.components import DependencyTarget, merged, resolve_dependencies
from pytest_predeploy.security.policy import ScannerOptions, SecurityConfig
from pytest_predeploy.security.report import Approval, Finding, ScannerName, ScannerResult, ScannerStatus, SecurityReport, WaiverApplied, security_problems
from pytest_predeploy.security.scanners import SCANNERS, RawFinding, Scan, ScanContext
from pytest_predeploy.security.tools import ToolUnavailable
from pytest_predeploy.targets.releases import VENV, ReleaseSourceError, materialise, resolve
from pytest_predeploy.targets.settings import LocalStagingConfig, ServiceConfig

#: Scanners run side by side: they are subprocesses or I/O bound, and the slowest (the SBOM's
#: validation) then sets the wall time instead of the sum.
_PARALLEL = 3


def _options(config: SecurityConfig, name: ScannerName) -> ScannerOptions:
    options: ScannerOptions = getattr(config, name.replace("-", "_"))
    return options


def _run_scanner(ctx: ScanContext, name: ScannerName) -> tuple[ScannerResult, list[RawFinding]]:
    tool, scanner = SCANNERS[name]
    options = _options(ctx.config, name)
    scan = Scan(name=name, tool=tool)
    if not options.enabled:
        result = ScannerResult(
            name=name,
            tool=tool,
            status="disabled",
            reason=f"security.{name.replace('-', '_')}.enabled is false",
            fail_closed=options.fail_closed,
            duration_seconds=0.0,
        )
        return result, []
    started = time.monotonic()
    reason = None
    try:
        scanner(ctx, scan)
    except ToolUnavailable as exc:
        reason = str(exc)
    except Exception as exc:  # noqa: BLE001 - a scanner we could not complete is 'unavailable', never a silent pass
        reason = f"internal error: {type(exc).__name__}: {exc}"
    status: ScannerStatus = "unavailable" if reason else ("findings" if scan.findings else "passed")
    result = ScannerResult(
        name=name,
        tool=tool,
        version=scan.version,
        status=status,
        reason=reason,
        fail_closed=options.fail_closed,
        duration_seconds=round(time.monotonic() - started, 3),
        targets=scan.targets,
        findings=len(scan.findings),
        notes=scan.notes,
    )
    return result, scan.findings


#: The distribution to install for each scanner that is a separate tool.
_PACKAGES = {"bandit": "bandit", "secrets": "detect-secrets", "pip-audit": "pip-audit", "sbom": "cyclonedx-bom"}
_NOT_INSTALLED = ("executable not found", "not executable", "cannot execute", "not installed for")


def _action(name: str, reason: str, release: str) -> str:
    """What to do so scanner ``name`` can run, from why it could not."""
    key = name.replace("-", "_")
    if reason.startswith(_NOT_INSTALLED) and name in _PACKAGES:
        return f"install it where the audit runs: {sys.executable} -m pip install {_PACKAGES[name]} (or point security.{key}.command at an installed copy)"
    if reason.startswith("timed out"):
        return f"raise security.{key}.timeout, then rerun Gate 3"
    if reason.startswith("internal error"):
        return "this is a bug in pytest-predeploy's scanner: report it with this line; the scan counts as not run until then"
    if ": set security." in reason:
        return reason.split(": ", 1)[1]
    if name == "osv":
        _, sep, advice = reason.rpartition("; ")
        if sep and "predeploy advisories update" in advice:
            return advice  # the scan already said which command fits this database
        return "get current advisory data: predeploy advisories update (it writes to security.osv.database)"
    if name == "pip-audit" and "not reachable" in reason:
        return "let this machine reach the vulnerability service, or set security.pip_audit.fail_closed: false to keep pip-audit as extra evidence"
    return f"fix the cause above, then rerun: pytest gates/test_gate3_rollback_security.py --predeploy-release={release}"


def _judge(config: SecurityConfig, scanner: ScannerName, raw: RawFinding, now: datetime) -> Finding:
    waiver, expired = config.waiver_for(scanner, [raw.id, *raw.aliases], raw.package, raw.file, now)
    applied = WaiverApplied(id=waiver.id, owner=waiver.owner, expires_at=waiver.expires_at, expired=expired) if waiver else None
    cleared = waiver is not None and not expired
    return Finding(
        scanner=scanner,
        id=raw.id,
        severity=raw.severity,
        title=raw.title,
        package=raw.package,
        version=raw.version,
        file=raw.file,
        line=raw.line,
        source=raw.source,
        fixed_versions=raw.fixed_versions,
        aliases=raw.aliases,
        waiver=applied,
        blocking=raw.severity.rank >= config.blocking_severity.rank and not cleared,
    )


def _approvals(config: SecurityConfig, findings: list[Finding]) -> list[Approval]:
    cleared: dict[str, list[str]] = {}
    for finding in findings:
        if finding.waiver and not finding.waiver.expired:
            cleared.setdefault(finding.waiver.id, []).append(f"{finding.scanner}: {finding.id} in {finding.where()}")
    waivers = {w.id: w for w in config.waivers}
    return [
        Approval(waiver=wid, owner=waivers[wid].owner, justification=waivers[wid].justification, expires_at=waivers[wid].expires_at, findings=items)
        for wid, items in sorted(cleared.items())
    ]


class AuditedProject(Protocol):
    """What the audit needs from the project's configuration."""

    @property
    def base_dir(self) -> Path: ...

    @property
    def security(self) -> SecurityConfig: ...

    @property
    def services(self) -> list[ServiceConfig]: ...

    @property
    def staging(self) -> LocalStagingConfig: ...

    def environment(self, name: str) -> object: ...

    def secret_values(self) -> dict[str, str]: ...


def _configured_target(security: SecurityConfig, base_dir: Path, count: int) -> str:
    """What the configured dependency target is, in a line: files relative to the project, the
    environment by name (never an absolute path in the gate's summary)."""

    def shown(path: Path) -> str:
        return path.relative_to(base_dir).as_posix() if path.is_relative_to(base_dir) else str(path)

    parts = [f"requirements {', '.join(shown(p) for p in security.requirements)}"] if security.requirements else []
    if security.distributions:
        parts.append(f"distributions {', '.join(security.distributions)}")
    environment = security.environment
    if environment == "current":
        parts.append("in the environment running pytest")
    elif isinstance(environment, Path):
        parts.append(f"in {shown(environment)}")
    return f"{' '.join(parts) or 'nothing configured'}: {count} distribution{'' if count == 1 else 's'}"


def _release_dependencies(config: AuditedProject, release: str, workdir: Path) -> tuple[DependencyTarget, list[str]]:
    """security.environment 'release': what the local staging target deploys for ``release``.

    A service released as a built distribution (staging.releases kind dist) runs in a virtualenv
    of its own: it is built here, in a scratch folder, from the same distribution file and pip
    arguments as the target builds it (the audit runs beside the rehearsal and cannot wait for
    the deployment's copy), and that virtualenv is scanned. Other kinds run on the interpreter
    running pytest: only the roots named in security.requirements or distributions are scanned
    there, never that whole environment (it is the plugin's own)."""
    security = config.security
    parts: list[tuple[str, DependencyTarget]] = []
    scanned: list[str] = []
    for service in config.services:
        if service.url is not None:
            scanned.append(f"{service.name}: not on the local staging target (services[].url); its dependencies are not scanned")
            continue
        try:
            resolved = resolve(config.staging.releases, config.base_dir, service.name, service.source, release)
        except ReleaseSourceError as exc:
            raise ConfigError(f"security.environment 'release': {exc}") from None
        if resolved.kind != "dist":
            if not security.requirements and not security.distributions:
                nothing = resolve_dependencies(security.model_copy(update={"environment": None}))
                nothing.unavailable = (
                    f"{service.name} is released as {resolved.kind} and runs on the interpreter running pytest, whose environment is the plugin's own: "
                    "name the release's dependencies in security.requirements (its lock file) or security.distributions"
                )
                parts.append((service.name, nothing))
                scanned.append(f"{service.name}: nothing (its dependencies are not named)")
                continue
            part = resolve_dependencies(security.model_copy(update={"environment": "current"}))
            parts.append((service.name, part))
            scanned.append(f"{service.name}: release {release} ({resolved.kind}) runs on {sys.executable}: the roots in {', '.join(part.targets)}")
            continue
        folder = workdir / "releases" / service.name
        try:
            identity, _ = materialise(resolved, config.staging.releases, folder)
        except ReleaseSourceError as exc:
            raise ConfigError(f"security.environment 'release': building {service.name}'s environment of {release}: {exc}") from None
        part = resolve_dependencies(security.model_copy(update={"environment": folder / VENV}))
        parts.append((service.name, part))
        # The pip arguments name the release's lock or constraints, where it has one.
        pip_args = getattr(identity, "pip_args", None) or config.staging.releases.pip_args
        scanned.append(
            f"{service.name}: release {release}'s own virtualenv, built from {identity.ref} (sha256 {identity.digest[:12]}) "
            f"with pip install {' '.join(pip_args)} as the local target builds it: {len(part.components)} distributions"
        )
    if not parts:
        raise ConfigError(
            "security.environment 'release': no service runs on the local staging target; point security.environment at the release's environment"
        )
    return merged(parts), scanned


def run_security_audit(config: AuditedProject, env: str, release: str, output: Path, now: datetime | None = None) -> SecurityReport:
    """Run every scanner for ``release`` as rehearsed in ``env``; write the report to ``output``
    and the SBOM beside it. Raises ConfigError when the targets are misconfigured."""
    config.environment(env)
    now = now or utcnow()
    security = config.security
    sbom_path = output.parent / names.SBOM
    sbom_path.unlink(missing_ok=True)  # a stale SBOM must never travel with a new report
    with tempfile.TemporaryDirectory(prefix="predeploy-security-") as workdir:
        dependency_scanners = (security.osv, security.licenses, security.sbom, security.pip_audit)
        if security.environment == "release" and not any(options.enabled for options in dependency_scanners):
            deps = resolve_dependencies(security.model_copy(update={"environment": None}))
            scanned = ["no dependencies: osv, licenses, sbom and pip-audit are disabled"]
        elif security.environment == "release":
            deps, scanned = _release_dependencies(config, release, Path(workdir))
        else:
            deps = resolve_dependencies(security)
            scanned = [_configured_target(security, config.base_dir, len(deps.components) + len(deps.mismatches))]
        ctx = ScanContext(config=security, base_dir=config.base_dir, deps=deps, sbom_path=sbom_path, workdir=Path(workdir), now=now)
        if any(c.version for c in deps.components):
            ctx.pins = Path(workdir) / "release-pins.txt"
            ctx.pins.write_text(deps.pins(), encoding="utf-8")
        with ThreadPoolExecutor(max_workers=_PARALLEL) as pool:
            outcomes = list(pool.map(lambda name: _run_scanner(ctx, name), SCANNERS))
    for result, _ in outcomes:
        if result.status == "unavailable" and result.reason:
            result.action = _action(result.name, result.reason, release)
    findings = [_judge(security, result.name, raw, now) for result, raws in outcomes for raw in raws]
    findings.sort(key=lambda f: (not f.blocking, -f.severity.rank, f.scanner, f.id, f.where()))
    report = SecurityReport(
        release=release,
        environment=env,
        blocking_severity=security.blocking_severity,
        scanners=[result for result, _ in outcomes],
        findings=findings,
        dependencies=ctx.dependencies,
        osv_database=ctx.osv_database,
        sbom=names.SBOM if ctx.sbom_written else None,
        target_python=deps.markers.describe() if deps.markers else None,
        skipped_requirements=[ctx.display_origin(line) for line in deps.skipped],
        approvals=_approvals(security, findings),
        scanned=scanned,
        blocking=False,
    )
    report.blocking = bool(security_problems(report))
    # Secret values of the configured environments never reach the report, whatever a tool said.
    text = Redactor(config.secret_values()).redact(report.model_dump_json(indent=2))
    write_text_atomic(output, text + "\n")
    return report
