"""Sign-off statements and where they are kept: the in-toto statement a reviewer signs, the
exported view ``readiness-approval.json`` beside the package, the sign-offs of the git record
(:mod:`pytest_predeploy.readiness.record`) as statements, and each one's own verdict (which
package, expired, whose signature). Gate 4's verdict over all of them is
:mod:`pytest_predeploy.readiness.signoff`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final, Literal

from filelock import FileLock
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from pytest_predeploy.core.artifacts import ArtifactModel, describe_validation_error
from pytest_predeploy.core.errors import ArtifactError
from pytest_predeploy.core.fields import StrictModel, UtcDatetime, format_size, utcnow
from pytest_predeploy.core.yamlfile import parse_json
from pytest_predeploy.readiness import record as git_record
from pytest_predeploy.readiness.signing import Envelope, Signers, authorize, verify_envelope

STEP = "readiness-review"
STATEMENT_TYPE: Final = "https://in-toto.io/Statement/v1"
#: The predicate type of a sign-off. The project publishes no web address, so a URN names it.
PREDICATE_TYPE: Final = "urn:pytest-predeploy:readiness-signoff:v1"
Decision = Literal["go", "no-go"]
Verdict = Literal["current", "expired", "other-package", "future-dated"]
#: verified: signed with a key the signers file lists for its identity and role; unsigned: a bare
#: statement; not verified: signed, but the signature does not count (the view says why).
SignatureStatus = Literal["verified", "unsigned", "not verified"]
#: How far a sign-off's signed_at may lie ahead of this machine's clock (clock skew between hosts).
CLOCK_SKEW = timedelta(minutes=5)
#: The sign-off file is parsed in full; it gains ~600 bytes per sign-off, so this holds thousands.
MAX_SIGNOFF_FILE_BYTES = 16 * 1024 * 1024


class Subject(StrictModel):
    """What a statement is about."""

    name: str = Field(description="File name of the package.")
    digest: dict[str, str] = Field(description="Digests of the package by algorithm (sha256).")


class SignoffPredicate(StrictModel):
    """The sign-off itself."""

    approver: str = Field(description="Who signed off.")
    role: str = Field(description="The role they signed as (e.g. release-manager).")
    decision: Decision = Field(description="go or no-go.")
    conditions: str | None = Field(None, description="Conditions attached to the decision.")
    release: str = Field(description="The release the package is for.")
    signed_at: UtcDatetime = Field(description="When the sign-off was recorded (UTC).")
    expires_at: UtcDatetime | None = Field(None, description="When it stops counting (UTC); null: never.")


class SignoffStatement(StrictModel):
    """One sign-off, shaped like an in-toto Statement v1."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type_: Literal["https://in-toto.io/Statement/v1"] = Field(STATEMENT_TYPE, alias="_type", description="in-toto statement type.")
    subject: list[Subject] = Field(min_length=1, description="The package signed off, with its sha256.")
    predicate_type: Literal["urn:pytest-predeploy:readiness-signoff:v1"] = Field(PREDICATE_TYPE, alias="predicateType", description="Type of the predicate.")
    predicate: SignoffPredicate = Field(description="Approver, role, decision, conditions, time and expiry.")

    @property
    def sha256(self) -> str:
        return self.subject[0].digest.get("sha256", "")


class ReadinessApproval(ArtifactModel):
    """readiness-approval.json: every sign-off recorded for the packages of this artifacts dir."""

    schema_version: str = Field("1.1", description="Version of this artifact's JSON Schema (1.1: sign-offs are DSSE envelopes).")
    step: str = Field(STEP, description="The protocol step that produced the artifact.")
    signoffs: list[Envelope | SignoffStatement] = Field(
        default_factory=list,
        description="Sign-offs in the order they were recorded: DSSE envelopes (payloadType application/vnd.in-toto+json) each carrying one signed statement; a bare statement is an unsigned sign-off.",
    )


def lock(path: Path) -> FileLock:
    return FileLock(str(path.with_name(f".{path.name}.lock")), timeout=30)


def load_signoffs(path: Path) -> list[Envelope | SignoffStatement]:
    """The sign-offs of ``path``; none when it does not exist. Malformed: an error naming the
    file and the line or field. Like an upstream approval record it is refused when oversized,
    nested too deep or carrying a duplicate key (a second "decision" must not silently win)."""
    if not path.exists():
        return []
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_SIGNOFF_FILE_BYTES + 1)
    except OSError as exc:
        raise ArtifactError(path, f"cannot be read: {exc.strerror}") from None
    if len(raw) > MAX_SIGNOFF_FILE_BYTES:
        raise ArtifactError(path, f"is larger than {format_size(MAX_SIGNOFF_FILE_BYTES)}; it is parsed in full, so a bigger one is refused")
    try:
        data = parse_json(raw.decode("utf-8"), str(path))
    except UnicodeDecodeError as exc:
        raise ArtifactError(path, f"not UTF-8 (invalid byte at offset {exc.start})") from None
    try:
        return ReadinessApproval.model_validate(data).signoffs
    except ValidationError as exc:
        raise ArtifactError(path, f"does not match ReadinessApproval: {describe_validation_error(exc)}") from None


Record = Envelope | SignoffStatement
_RECORD: TypeAdapter[Record] = TypeAdapter(Record)


def record_bytes(record: Record) -> bytes:
    """A sign-off as the git record stores it: its JSON with the DSSE / in-toto field names."""
    return record.model_dump_json(by_alias=True).encode("utf-8") + b"\n"


def recorded_signoffs(reading: git_record.RecordReading) -> list[tuple[str, Record]]:
    """The sign-offs of the git record, each named by where it is (``ref:path``), in commit order.
    An entry that is not a sign-off is a problem of the reading (it blocks), not an error."""
    found: list[tuple[str, Record]] = []
    for entry in reading.entries:
        where = f"{git_record.REF}:{entry.path}"
        try:
            found.append((where, _RECORD.validate_json(entry.content)))
        except ValidationError as exc:
            reading.problems.append(f"{where} (commit {entry.commit[:12]}): not a sign-off: {describe_validation_error(exc)}")
    return found


def statement_of(envelope: Envelope, where: str) -> SignoffStatement:
    payload = envelope.payload_bytes()
    if payload is None:
        raise ArtifactError(Path(where), "payload: not valid base64 (remove this sign-off and record it again)")
    try:
        return SignoffStatement.model_validate_json(payload)
    except ValidationError as exc:
        raise ArtifactError(
            Path(where), f"payload: not a sign-off statement: {describe_validation_error(exc)} (remove this sign-off and record it again)"
        ) from None


@dataclass(frozen=True)
class SignoffView:
    """A recorded sign-off judged against one package digest."""

    role: str
    approver: str
    decision: Decision
    conditions: str | None
    release: str
    signed_at: datetime
    expires_at: datetime | None
    digest: str
    verdict: Verdict
    signature: SignatureStatus = "unsigned"
    #: Fingerprints of the keys the envelope says it was signed with (a hint; shown only).
    keyids: tuple[str, ...] = ()
    #: Why the signature does not count; None when verified.
    reason: str | None = None

    def describe(self) -> str:
        text = f"{self.role}: {self.decision} by {self.approver} at {self.signed_at.isoformat()}"
        if self.conditions:
            text += f" (conditions: {self.conditions})"
        if self.verdict == "expired" and self.expires_at:
            text += f", expired at {self.expires_at.isoformat()}"
        elif self.verdict == "future-dated":
            text += ", dated in the future"
        elif self.verdict == "other-package":
            text += f", for another package (sha256 {self.digest[:16]}...)"
        return text

    def describe_signature(self) -> str:
        if self.signature == "verified":
            return f"signature verified ({', '.join(self.keyids)})"
        return f"{self.signature}: {self.reason}"


#: Where sign-offs come from: a file (the exported view, or a hand-made one in tests), or the
#: git record's sign-offs each named by where it is.
Source = Path | Sequence[tuple[str, Record]]


def _records(source: Source) -> list[tuple[str, Record]]:
    if isinstance(source, Path):
        return [(f"{source}: signoffs.{index}", record) for index, record in enumerate(load_signoffs(source))]
    return list(source)


def review_signoffs(source: Source, package_sha256: str, now: datetime | None = None, signers: Signers | None = None) -> list[SignoffView]:
    """Every recorded sign-off with its verdict for the package whose digest is ``package_sha256``
    and, given the signers file, whether its signature counts (without it, none is verified)."""
    now = now or utcnow()
    views = []
    for where, record in _records(source):
        keyids: tuple[str, ...] = ()
        if isinstance(record, Envelope):
            statement = statement_of(record, where)
            keyids = tuple(signature.keyid for signature in record.signatures)
            if signers is None:
                signature: SignatureStatus = "not verified"
                reason: str | None = "no signers file to check it against"
            else:
                check = verify_envelope(record, signers)
                reason = authorize(check, signers, statement.predicate.approver, statement.predicate.role)
                signature = "verified" if reason is None else "not verified"
        else:
            statement, signature = record, "unsigned"
            reason = "recorded without a signature (predeploy approve without --key): anyone with write access to the folder can write one"
        p = statement.predicate
        if statement.sha256 != package_sha256:
            verdict: Verdict = "other-package"
        elif p.signed_at > now + CLOCK_SKEW:
            verdict = "future-dated"
        elif p.expires_at is not None and p.expires_at <= now:
            verdict = "expired"
        else:
            verdict = "current"
        views.append(
            SignoffView(
                p.role,
                p.approver,
                p.decision,
                p.conditions,
                p.release,
                p.signed_at,
                p.expires_at,
                statement.sha256,
                verdict,
                signature,
                keyids,
                reason,
            )
        )
    return views
