"""Artifacts: the common shape of every JSON file we write, atomic writes, and validated reads.

Every JSON artifact is a pydantic model deriving from :class:`ArtifactModel`, so it carries a
schema version, the release tag, a UTC timestamp and the step that produced it. Files are
written atomically (temporary file in the same folder, fsync, ``os.replace``) so a reader never
sees half a file, and a crash leaves the previous version in place.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import Field, ValidationError

from pytest_predeploy.core.errors import ArtifactError
from pytest_predeploy.core.fields import StrictModel, UtcDatetime, format_size, utcnow
from pytest_predeploy.core.nesting import json_loads

#: Names of the protocol's artifacts, as PROTOCOL-10 spells them.
INTAKE_REPORT = "intake-validation-report.json"
PARITY_REPORT = "staging-parity-report.json"
DATA_REFRESH = "staging-data-refresh.md"
DEPLOYMENT_LOG = "staging-deployment-run.log"
DEPLOYMENT_REPORT = "staging-deployment-report.json"
TEST_RESULTS = "staging-test-results.json"
API_CONTRACT_REPORT = "api-contract-report.json"
OBSERVABILITY_BASELINE = "observability-baseline.md"
OBSERVABILITY_METRICS = "observability-metrics.json"
ROLLBACK_REPORT = "rollback-verification-report.json"
SECURITY_REPORT = "security-compliance-report.json"
SBOM = "sbom.cdx.json"
OPERATIONAL_CHECKLIST = "operational-readiness-checklist.md"
MANIFEST = "pre-deployment-manifest.json"
READINESS_APPROVAL = "readiness-approval.json"
DEPLOYMENT_CHECKLIST = "deployment-checklist.md"
PACKAGE = "PRE-DEPLOYMENT-PACKAGE.zip"
HTML_REPORT = "pytest-report.html"
JSON_REPORT = "pytest-report.json"
JUNIT_REPORT = "pytest-junit.xml"
TRANSCRIPTS_DIR = "transcripts"

SCHEMA_VERSION = "1.0"

M = TypeVar("M", bound="ArtifactModel")


class ArtifactModel(StrictModel):
    """Fields every JSON artifact carries."""

    schema_version: str = Field(SCHEMA_VERSION, description="Version of this artifact's JSON Schema.")
    release: str = Field(description="The release tag under validation.")
    generated_at: UtcDatetime = Field(default_factory=utcnow, description="When the artifact was written (UTC, ISO 8601).")
    step: str = Field(description="The protocol step that produced the artifact.")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def file_sha256(path: Path) -> str | None:
    """sha256 of the file's bytes, read a chunk at a time; None when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_artifact(path: Path, model: ArtifactModel) -> Path:
    """Serialise ``model`` as indented JSON at ``path`` (atomically) and return the path."""
    write_text_atomic(path, model.model_dump_json(indent=2) + "\n")
    return path


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem: ``field.path: message``."""
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"{where}: {item['msg']}")
    return "; ".join(lines)


#: A report a step writes is read back in full; the biggest we write, the parity report, keeps
#: its items under 16 MiB (parity.max_report_bytes), so anything past this is not a report.
MAX_ARTIFACT_BYTES = 64 * 1024 * 1024


def read_artifact(path: Path, model: type[M]) -> M:
    """Load and validate an artifact; any problem is an :class:`ArtifactError` naming file and field."""
    try:
        with open(path, "rb") as stream:
            raw = stream.read(MAX_ARTIFACT_BYTES + 1)
    except FileNotFoundError:
        raise ArtifactError(path, "missing: the step that writes it did not produce it") from None
    except OSError as exc:
        raise ArtifactError(path, f"cannot be read: {exc.strerror}") from None
    if len(raw) > MAX_ARTIFACT_BYTES:
        limit = format_size(MAX_ARTIFACT_BYTES)
        raise ArtifactError(path, f"larger than {limit}: a report is read in full, so a bigger one is refused; check what the step wrote")
    try:
        data = json_loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(path, f"not valid JSON ({exc})") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ArtifactError(path, f"does not match {model.__name__}: {describe_validation_error(exc)}") from None


RUN_STATE = "predeploy-run.json"

#: The files every run writes about itself; a Gate-4-only re-check of a sealed package writes
#: them with the prefix ``gate4-``, beside the sealing run's (the reviewers' copy).
RUN_REPORTS = (HTML_REPORT, JSON_REPORT, JUNIT_REPORT, RUN_STATE)


@dataclass(frozen=True)
class Artifact:
    """One artifact of the protocol, declared once: the fixture table, the step outputs, the
    package's required list and producers, the schemas and the docs are derived from these."""

    name: str
    #: The step the manifest names as its producer; None leaves it to the same inference as any
    #: file the table does not name (the manifest and the sign-off record, written by the
    #: package step and the readiness review).
    producer: str | None
    #: The step fixture whose evidence it is (the reports link it from that fixture's tests).
    fixture: str | None = None
    #: Its pydantic model as ``module:Class`` (a JSON artifact with a schema); a name, not an
    #: import, because the models live in the step packages above this one.
    model: str | None = None
    #: Gate 4 refuses to seal a package without it.
    required: bool = False
    #: The scripted step (steps.<name> in the config) that writes it to ``{output}``.
    script_output: str | None = None


#: Every artifact, in protocol order.
ARTIFACTS: tuple[Artifact, ...] = (
    Artifact(INTAKE_REPORT, "intake", "intake", "pytest_predeploy.intake.approvals:IntakeReport", required=True),
    Artifact(PARITY_REPORT, "parity", "parity", "pytest_predeploy.intake.parity:ParityReport", required=True, script_output="parity"),
    Artifact(DATA_REFRESH, "data-refresh", "data_refresh"),
    Artifact(DEPLOYMENT_LOG, "deploy", "deployment", required=True),
    Artifact(DEPLOYMENT_REPORT, "deploy", "deployment", "pytest_predeploy.rehearsal.deploy:DeploymentReport"),
    Artifact(TEST_RESULTS, "smoke", "smoke", "pytest_predeploy.rehearsal.smoke:TestResultsReport", required=True, script_output="smoke"),
    Artifact(API_CONTRACT_REPORT, "api-contract", "api_contract", "pytest_predeploy.rehearsal.contract:ApiContractReport", required=True),
    Artifact(OBSERVABILITY_BASELINE, "observability", "observability"),
    Artifact(OBSERVABILITY_METRICS, "observability", "observability", "pytest_predeploy.rehearsal.observability:ObservabilityResult"),
    Artifact(ROLLBACK_REPORT, "rollback", "rollback", "pytest_predeploy.rollback.rollback:RollbackReport", required=True),
    Artifact(SECURITY_REPORT, "security", "security", "pytest_predeploy.security:SecurityReport", required=True, script_output="security"),
    Artifact(SBOM, "security", "security"),
    Artifact(OPERATIONAL_CHECKLIST, "operational", "operational_readiness"),
    Artifact(MANIFEST, None, "package_contents", "pytest_predeploy.readiness.package:Manifest"),
    Artifact(READINESS_APPROVAL, None, "signoffs", "pytest_predeploy.readiness.signoff:ReadinessApproval"),
    Artifact(DEPLOYMENT_CHECKLIST, "checklist", "deployment_checklist"),
    Artifact(HTML_REPORT, "pytest-report"),
    Artifact(JSON_REPORT, "pytest-report"),
    Artifact(JUNIT_REPORT, "pytest-report"),
    Artifact(RUN_STATE, "protocol", model="pytest_predeploy.core.runstate:RunState"),
)


def fixture_artifacts() -> dict[str, list[str]]:
    """Step fixture -> the artifacts it produces, in protocol order."""
    table: dict[str, list[str]] = {}
    for artifact in ARTIFACTS:
        if artifact.fixture is not None:
            table.setdefault(artifact.fixture, []).append(artifact.name)
    return table


#: The artifact a scripted step writes to its ``{output}``: config step name -> file name.
STEP_OUTPUTS: dict[str, str] = {a.script_output: a.name for a in ARTIFACTS if a.script_output is not None}
#: What Gate 4's "package can be compiled" test requires before sealing.
REQUIRED_ARTIFACTS: tuple[str, ...] = tuple(a.name for a in ARTIFACTS if a.required)
#: The producing step of each known artifact.
PRODUCERS: dict[str, str] = {a.name: a.producer for a in ARTIFACTS if a.producer is not None}
