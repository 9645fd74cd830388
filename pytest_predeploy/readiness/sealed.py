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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core.artifacts import ArtifactModel, describe_validation_error, read_artifact
from pytest_predeploy.core.errors import ArtifactError, PredeployError
from pytest_predeploy.core.runstate import RunState
from pytest_predeploy.intake.approvals import IntakeReport, intake_problems
from pytest_predeploy.intake.parity import ParityReport, parity_problems
from pytest_predeploy.readiness.package import Manifest, PackageConfig, SealResult, verify_package
from pytest_predeploy.rehearsal.deploy import DeploymentReport, deployment_problems
from pytest_predeploy.rehearsal.smoke import SmokeConfig, TestResultsReport, smoke_problems
from pytest_predeploy.rollback.rollback import RollbackReport, rollback_problems
from pytest_predeploy.security import SecurityReport, security_problems
from pytest_predeploy.targets.releases import RehearsedReleases, ReleaseSourceError, resolve
from pytest_predeploy.targets.settings import LocalStagingConfig, ServiceConfig


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


@dataclass(frozen=True)
class Evidence:
    """One MUST artifact, the gate that judges it, and how (the gate's own problem function)."""

    gate: int
    model: type[ArtifactModel]
    problems: Callable[[Any, SealedProject], list[str]]


def _own_verdict(flag: bool, what: str) -> list[str]:
    # A report whose own verdict is "blocked" while its items list nothing blocking was edited
    # or is inconsistent: either way it is not evidence of a pass.
    return [] if flag else [f"the report's own verdict: {what}"]


def _parity(report: ParityReport, _: SealedProject) -> list[str]:
    return parity_problems(report) or _own_verdict(report.passed, "passed is false")


def _security(report: SecurityReport, _: SealedProject) -> list[str]:
    return security_problems(report) or _own_verdict(not report.blocking, "blocking is true")


def _intake(report: IntakeReport, _: SealedProject) -> list[str]:
    return intake_problems(report) or _own_verdict(report.approved, "approved is false")


def _deployment(report: DeploymentReport, _: SealedProject) -> list[str]:
    return deployment_problems(report) or _own_verdict(report.outcome == "succeeded", f"outcome is {report.outcome}")


def _rollback(report: RollbackReport, _: SealedProject) -> list[str]:
    return rollback_problems(report) or _own_verdict(report.outcome == "passed", f"outcome is {report.outcome}")


#: The MUST evidence of gates 1-3, judged as the gate modules judge it.
EVIDENCE: dict[str, Evidence] = {
    names.INTAKE_REPORT: Evidence(1, IntakeReport, _intake),
    names.PARITY_REPORT: Evidence(1, ParityReport, _parity),
    names.DEPLOYMENT_REPORT: Evidence(2, DeploymentReport, _deployment),
    names.TEST_RESULTS: Evidence(2, TestResultsReport, lambda report, project: smoke_problems(report, project.smoke.min_coverage)),
    names.ROLLBACK_REPORT: Evidence(3, RollbackReport, _rollback),
    names.SECURITY_REPORT: Evidence(3, SecurityReport, _security),
}


def required_evidence(project: SealedProject) -> set[str]:
    """MUST artifacts the package must hold: the configured ones, and the deployment report
    (the file Gate 2 judges) wherever its log is required."""
    required = set(project.package.required)
    if names.DEPLOYMENT_LOG in required:
        required.add(names.DEPLOYMENT_REPORT)
    return required & set(EVIDENCE)


def evidence_problems(read: Callable[[str], bytes | None], project: SealedProject, where: str, gates: set[int] | None = None) -> list[str]:
    """Every reason the MUST evidence (of ``gates``, default all) fails its gate, one line each
    naming the file and the gate.

    ``read(name)`` gives an artifact's bytes, or None when it is absent; ``where`` says where
    the files were read ("in the package", "in the artifacts folder")."""
    problems = []
    required = required_evidence(project)
    for name, evidence in EVIDENCE.items():
        if gates is not None and evidence.gate not in gates:
            continue
        raw = read(name)
        if raw is None:
            if name in required:
                problems.append(f"{name} is missing {where}")
            continue
        try:
            report = evidence.model.model_validate(json.loads(raw))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(f"{name} {where}: not valid JSON ({exc})")
            continue
        except ValidationError as exc:
            problems.append(f"{name} {where}: does not match {evidence.model.__name__}: {describe_validation_error(exc)}")
            continue
        problems += [f"{name} {where} fails Gate {evidence.gate}: {problem}" for problem in evidence.problems(report, project)]
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


def _file_sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _state(raw: bytes | None) -> RunState | None:
    if raw is None:
        return None
    try:
        return RunState.model_validate(json.loads(raw))
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
        found = _file_sha256(artifacts / entry.path)
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
        sealed_state = _state(read(names.RUN_STATE))
    problems += _gate_problems(manifest, sealed_state, _state(_read_file(Path(artifacts) / names.RUN_STATE)))
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


def folder_evidence_problems(artifacts: Path, project: SealedProject, gates: Iterable[int]) -> list[str]:
    """The MUST evidence of ``gates`` in the artifacts folder judged as those gates judge it."""
    return evidence_problems(lambda name: _read_file(Path(artifacts) / name), project, "in the artifacts folder", set(gates))
