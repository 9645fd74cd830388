"""Judging the evidence a package stands for, before anyone's sign-off counts on it.

Gate 4 run alone signs a package sealed by an earlier run. It never takes the run state file's
word for it (anyone can edit ``predeploy-run.json``): it re-checks the evidence inside the
package with the same ``*_problems`` functions the gates use, checks that gates 1-3 passed in
the run that produced the package, and that nothing the package stands for changed since
sealing (the evidence in the folder, a later run of an earlier gate, ``predeploy.yaml``, the
release's source). Any problem makes the package stale: Gate 4 fails and keeps it for inspection.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core.artifacts import file_sha256, read_artifact
from pytest_predeploy.core.errors import ArtifactError, PredeployError
from pytest_predeploy.core.fields import utcnow
from pytest_predeploy.core.nesting import json_loads
from pytest_predeploy.core.protocol import READINESS_GATE
from pytest_predeploy.core.runstate import RunState
from pytest_predeploy.intake.approvals import ApprovalsConfig, IntakeReport, intake_problems, validate_intake
from pytest_predeploy.intake.parity import ParityConfig, ParityReport
from pytest_predeploy.readiness.package import Manifest, PackageConfig, SealResult, verify_package
from pytest_predeploy.rehearsal.smoke import SmokeConfig
from pytest_predeploy.rollback.rollback import RollbackReport
from pytest_predeploy.security import SecurityConfig, SecurityReport
from pytest_predeploy.security.osv import database_digest
from pytest_predeploy.targets.releases import RehearsedReleases, ReleaseSourceError, resolve
from pytest_predeploy.targets.settings import LocalStagingConfig, ServiceConfig
from pytest_predeploy.verdict import journal
from pytest_predeploy.verdict.criteria import judge_evidence, sealed_criteria

M = TypeVar("M", bound=BaseModel)


class SealedProject(Protocol):
    """What judging the evidence needs from the project's configuration."""

    @property
    def path(self) -> Path: ...

    @property
    def digest(self) -> str: ...

    @property
    def base_dir(self) -> Path: ...

    @property
    def services(self) -> list[ServiceConfig]: ...

    @property
    def staging(self) -> LocalStagingConfig: ...

    @property
    def smoke(self) -> SmokeConfig: ...

    @property
    def package(self) -> PackageConfig: ...

    @property
    def approvals(self) -> ApprovalsConfig: ...

    @property
    def parity(self) -> ParityConfig: ...

    @property
    def security(self) -> SecurityConfig: ...


def evidence_problems(read: Callable[[str], bytes | None], project: SealedProject, where: str, gates: set[int] | None = None) -> list[str]:
    """Every reason the MUST evidence (of ``gates``, default all before Gate 4) fails its
    criterion as declared, one line each naming the file and the gate. Every declared MUST
    artifact is required, whatever ``package.required`` lists.

    ``read(name)`` gives an artifact's bytes, or None when it is absent; ``where`` says where
    the files were read ("in the package", "in the artifacts folder")."""
    problems = []
    for criterion in sealed_criteria():
        if gates is None or criterion.gate in gates:
            problems += judge_evidence(criterion, read(criterion.artifact), project, where)
    return problems


def _sealed(read: Callable[[str], bytes | None], name: str, model: type[M]) -> M | None:
    raw = read(name)
    if raw is None:
        return None
    try:
        return model.model_validate(json_loads(raw))
    except (UnicodeDecodeError, json.JSONDecodeError, ValidationError):
        return None  # evidence_problems names it


def rejudge_problems(read: Callable[[str], bytes | None], project: SealedProject, release: str, now: datetime | None = None) -> list[str]:
    """What can change after sealing without any file in the package changing, judged now:
    upstream approvals (expiry, revocation: their records are judged again, and each must be
    the very record that was sealed), waivers of drift and of security findings (expiry)."""
    now = now or utcnow()
    problems = []
    sealed_intake = _sealed(read, names.INTAKE_REPORT, IntakeReport)
    # operator="": who signs off now is not the rehearsal's operator; that rule was judged at sealing.
    current = validate_intake(project.approvals, release, now=now, operator="")
    problems += [f"upstream approval no longer holds: {problem}" for problem in intake_problems(current)]
    if sealed_intake is not None:
        sealed_digests = {check.name: check.sha256 for check in sealed_intake.checks}
        for check in current.checks:
            if check.name not in sealed_digests:
                problems.append(f"upstream approval {check.name} was added after sealing")
            elif check.sha256 != sealed_digests[check.name]:
                problems.append(f"upstream approval {check.name} ({check.file}) changed after sealing")
        for name in sorted(set(sealed_digests) - {check.name for check in current.checks}):
            problems.append(f"upstream approval {name} was removed after sealing")
    parity = _sealed(read, names.PARITY_REPORT, ParityReport)
    if parity is not None:
        waivers = {waiver.id: waiver for waiver in project.parity.waivers}
        for item in parity.items:
            if item.status != "waived" or item.waiver is None:
                continue
            waiver = waivers.get(item.waiver)
            if waiver is None:
                problems.append(f"drift waiver {item.waiver} ({item.path}) no longer exists")
            elif waiver.expires_at <= now:
                problems.append(f"drift waiver {item.waiver} ({item.path}) expired at {waiver.expires_at.isoformat()}")
    security = _sealed(read, names.SECURITY_REPORT, SecurityReport)
    if security is not None:
        for approval in security.approvals:
            if approval.expires_at <= now:
                problems.append(f"security waiver {approval.waiver} (owner {approval.owner}) expired at {approval.expires_at.isoformat()}")
    return problems


def rehearsed_releases(artifacts: Path) -> list[RehearsedReleases]:
    """Per service, the candidate and previous release the rollback rehearsal in ``artifacts``
    ran, as built (empty when there is no readable rollback report: Gate 3 judges that)."""
    try:
        report = read_artifact(artifacts / names.ROLLBACK_REPORT, RollbackReport)
    except ArtifactError:
        return []
    return [RehearsedReleases(service=s.service, candidate=s.from_build, previous=s.to_build) for s in report.services]


def release_source_digest(project: SealedProject, release: str) -> str | None:
    """sha256 over each service's name and the code of ``release`` as its release source resolves
    it now (the content digest, or the commit of a git tag): what the package vouches for. None
    when no service is built by the local staging target (a custom deploy script deploys code
    from elsewhere)."""
    parts = []
    settings = project.staging.releases
    for service in project.services:
        if service.url or (service.source is None and settings.kind in ("auto", "git", "working_tree")):
            continue
        try:
            resolved = resolve(settings, project.base_dir, service.name, service.source, release)
        except ReleaseSourceError:
            parts.append(f"{service.name}\0unresolved\n")  # differs from any sealed digest: Gate 4 says the source changed
            continue
        parts.append(f"{service.name}\0{resolved.digest or resolved.tree}\n")
    if not parts:
        return None
    return hashlib.sha256("".join(parts).encode("utf-8")).hexdigest()


def _state(raw: bytes | None) -> RunState | None:
    if raw is None:
        return None
    try:
        return RunState.model_validate(json_loads(raw))
    except (UnicodeDecodeError, json.JSONDecodeError, ValidationError):
        return None


def _upstream(keys: Iterable[str]) -> set[int]:
    numbers = {int(key.removeprefix("gate")) for key in keys if key.removeprefix("gate").isdigit()}
    return {number for number in numbers if number < 4}


def _gate_problems(manifest: Manifest, sealed_state: RunState | None, folder_state: RunState | None) -> list[str]:
    # The gates before Gate 4 the sealing run had (gates 1-3 in the protocol; a project may have
    # fewer): each must have passed in that run. A package recording none stands for nothing.
    problems = []
    recorded = _upstream(manifest.gate_outcomes) | (_upstream(sealed_state.gates) if sealed_state else set())
    if not recorded:
        problems.append("it records no gate before Gate 4: it was not sealed by a run of the protocol")
    for number in sorted(recorded):
        key = f"gate{number}"
        status = manifest.gate_outcomes.get(key, "not run")
        if status != "passed":
            problems.append(f"Gate {number} was {status} in the run that produced it")
        sealed = sealed_state.gates.get(key) if sealed_state is not None else None
        if sealed_state is not None and (sealed is None or sealed.status != "passed"):
            problems.append(f"the run state sealed in it records Gate {number} {sealed.status if sealed else 'not run'}")
        later = folder_state.gates.get(key) if folder_state is not None and folder_state.release == manifest.release else None
        if later is not None and (sealed is None or later.at != sealed.at or later.status != sealed.status):
            problems.append(f"Gate {number} ran after sealing ({later.status} at {later.at:%Y-%m-%dT%H:%M:%SZ})")
    return problems


def _folder_problems(artifacts: Path, manifest: Manifest) -> list[str]:
    """Packaged files that the folder no longer holds as sealed: a later run rewrote them."""
    problems = []
    for entry in manifest.entries:
        found = file_sha256(artifacts / entry.path)
        if found is None:
            problems.append(f"{entry.path} was removed from the artifacts folder after sealing")
        elif found != entry.sha256:
            problems.append(f"{entry.path} changed after sealing (a later run rewrote it)")
    return problems


def judge_sealed_package(artifacts: Path, release: str, project: SealedProject) -> tuple[SealResult | None, list[str]]:
    """The sealed package of ``artifacts`` and every reason it must not be signed for ``release``."""
    path = Path(artifacts) / names.PACKAGE
    try:
        verified = verify_package(path, approvals=Path(artifacts) / names.READINESS_APPROVAL)
    except PredeployError as exc:
        return None, [str(exc)]
    manifest = verified.manifest
    if manifest is None or not verified.ok:
        return None, [f"it does not verify: {problem}" for problem in verified.problems]
    if manifest.release != release:
        return None, [f"it was sealed for release {manifest.release}, not {release}"]
    with zipfile.ZipFile(path) as archive:
        inside = set(archive.namelist())

        def read(name: str) -> bytes | None:
            return archive.read(name) if name in inside else None

        problems = evidence_problems(read, project, "in the package")
        problems += rejudge_problems(read, project, release)
        sealed_state = _state(read(names.RUN_STATE))
    problems += _gate_problems(manifest, sealed_state, _state(_read_file(Path(artifacts) / names.RUN_STATE)))
    problems += journal.staleness(Path(artifacts), verified.sha256, READINESS_GATE)
    advisories = database_digest(project.security.osv.database)
    if advisories != manifest.advisory_database_sha256:
        problems.append(
            f"the advisory database changed after sealing (sha256 {str(advisories)[:12]}... now, {str(manifest.advisory_database_sha256)[:12]}... sealed): "
            "rerun the protocol so the security scan uses it"
        )
    if manifest.config_digest != project.digest:
        problems.append(f"{project.path.name} changed after sealing (sha256 {project.digest[:12]}... now, {manifest.config_digest[:12]}... sealed)")
    source = release_source_digest(project, release)
    if source != manifest.release_source_digest:
        problems.append(f"the release's source changed after sealing (sha256 {str(source)[:12]}... now, {str(manifest.release_source_digest)[:12]}... sealed)")
    problems += _folder_problems(Path(artifacts), manifest)
    return SealResult(path=path, sha256=verified.sha256, entries=manifest.entries, manifest=manifest), problems


def _read_file(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None
