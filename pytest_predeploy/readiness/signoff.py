"""Readiness review (Protocol 10, step 4.2): signed sign-offs bound to the package digest.

``readiness-approval.json`` holds one record per sign-off: an in-toto Statement v1 whose subject
is ``PRE-DEPLOYMENT-PACKAGE.zip`` and its sha256, so a sign-off says exactly which bytes were
approved (a rebuilt or altered package is a different subject and needs new sign-offs), wrapped
in a DSSE envelope signed with the reviewer's OpenSSH key (see :mod:`pytest_predeploy.readiness.signing`).
A sign-off counts only when its signature verifies with a key the signers file lists for the
identity it names and the role it signs; an unsigned statement (anyone with write access to the
folder can write one) is shown and ignored. The file lives beside the package, never inside it
(the sign-offs are made about the package).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final, Literal

from filelock import FileLock
from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from pytest_predeploy.core.artifacts import PACKAGE, ArtifactModel, describe_validation_error, write_text_atomic
from pytest_predeploy.core.errors import ArtifactError
from pytest_predeploy.core.fields import ConfigPath, Duration, StrictModel, UtcDatetime, format_size, identity_key, is_blank, parse_positive_duration, utcnow
from pytest_predeploy.core.yamlfile import parse_json
from pytest_predeploy.readiness.signing import DEFAULT_SIGNERS_FILE, Envelope, Signers, SigningKey, authorize, load_signers, sign_envelope, verify_envelope

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


class ReadinessConfig(StrictModel):
    """Readiness review: who must sign off the package, and the deployment checklist's owners."""

    required_roles: list[str] = Field(
        default_factory=lambda: ["release-manager"],
        description="Roles that must each record a 'go' on the current package digest before Gate 4 passes (e.g. release-manager, qa-lead). Must not be empty unless allow_no_signoff is true.",
    )
    allow_no_signoff: bool = Field(
        False,
        description="Let Gate 4 pass with no sign-off at all (an empty required_roles list). Off by default: an empty list would complete the protocol with nobody reviewing the package. When on, Gate 4 says so in its summary.",
    )
    signers: ConfigPath = Field(
        Path(DEFAULT_SIGNERS_FILE),
        description="The signers file: each identity, its OpenSSH ed25519 public keys and the roles it may sign (relative to the config file). A sign-off counts only when its signature verifies with a key listed there for that identity and role.",
    )
    forbid_self_approval: bool = Field(
        True,
        description="A sign-off by the person who ran the rehearsal does not count. The operator is $PREDEPLOY_OPERATOR, else $GITHUB_ACTOR, else $USER, as recorded by the run; it matches a signer's identity or one of its aliases. Turning it off is shown in Gate 4's summary.",
    )
    allow_one_signer_many_roles: bool = Field(
        False,
        description="Let one identity satisfy several required roles. Off by default: two roles exist so that two people look at the package. Turning it on is shown in Gate 4's summary.",
    )
    allow_unsigned: bool = Field(
        False,
        description="Count sign-offs recorded without a signature (predeploy approve without --key), whose approver is free text anyone with write access to the artifacts folder can write. For migrating only; shown in Gate 4's summary.",
    )
    signoff_validity: Duration | None = Field(
        timedelta(days=7), description="How long a sign-off stays valid when `predeploy approve` is given no --expires (null: no expiry)."
    )
    interactive_role: str | None = Field(None, description="Role recorded by the interactive [READINESS REVIEW] prompt (default: the first required role).")
    checklist_owners: dict[str, str] = Field(
        default_factory=dict,
        description="Owner of each deployment-checklist area: deploy, rollback, smoke, security, parity, observability, communication; 'default' covers the rest.",
    )
    slow_step: Duration = Field(timedelta(seconds=60), description="A rehearsed deploy or rollback slower than this becomes a deployment-checklist item.")

    @field_validator("signoff_validity")
    @classmethod
    def _positive_validity(cls, value: timedelta | None) -> timedelta | None:
        # A zero validity records sign-offs that are expired the moment they are made.
        return parse_positive_duration(value) if value is not None else None

    @model_validator(mode="after")
    def _someone_signs(self) -> ReadinessConfig:
        # An empty list is the easiest way to configure Gate 4 into a GO that nobody reviewed.
        if not self.required_roles and not self.allow_no_signoff:
            raise ValueError(
                "readiness.required_roles is empty, so nobody would sign off the package; list the roles that must sign, or set readiness.allow_no_signoff: true to release without a sign-off"
            )
        roles = [identity_key(role) for role in self.required_roles]
        repeated = sorted({role for role in self.required_roles if roles.count(identity_key(role)) > 1})
        if repeated:
            raise ValueError(
                f"readiness.required_roles lists {', '.join(repeated)} more than once; each role is one sign-off by a different person, so list it once"
            )
        if any(is_blank(role) for role in self.required_roles):
            raise ValueError("readiness.required_roles has a blank role (or one of only invisible characters); name each role")
        return self


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


@dataclass
class SignoffStatus:
    """Whether the required sign-offs are in for one package digest."""

    complete: bool
    missing_roles: list[str]
    rejected: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    approved: dict[str, list[str]] = field(default_factory=dict)
    #: True when no role is required (readiness.allow_no_signoff): said in every summary.
    unreviewed: bool = False
    #: Separation-of-duties and signature rules switched off in the config: said in every summary.
    relaxed: list[str] = field(default_factory=list)
    #: Every sign-off of this release, judged (what the evidence and `predeploy verify` show).
    views: list[SignoffView] = field(default_factory=list)

    def summary(self) -> str:
        if self.unreviewed and not self.rejected:
            return "NO SIGN-OFF REQUIRED: nobody reviewed this package (readiness.required_roles is empty, readiness.allow_no_signoff is true)"
        if self.rejected:
            text = "no-go: " + "; ".join(self.rejected)
        elif self.missing_roles:
            text = "awaiting sign-off from: " + ", ".join(self.missing_roles)
        else:
            text = "signed off: " + "; ".join(f"{role} by {', '.join(who)}" for role, who in sorted(self.approved.items()))
        return text + (f" (relaxed: {'; '.join(self.relaxed)})" if self.relaxed else "")


def _lock(path: Path) -> FileLock:
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


def record_signoff(
    path: Path,
    *,
    package_sha256: str,
    release: str,
    role: str,
    approver: str,
    decision: Decision,
    conditions: str | None = None,
    expires_in: timedelta | None = None,
    now: datetime | None = None,
    key: SigningKey | None = None,
) -> SignoffStatement:
    """Append one sign-off to ``path`` (read, append, atomic replace, under a file lock): signed
    with ``key`` as a DSSE envelope, or, without a key, a bare statement that counts only where
    readiness.allow_unsigned says so."""
    now = now or utcnow()
    statement = SignoffStatement(
        subject=[Subject(name=PACKAGE, digest={"sha256": package_sha256})],
        predicate=SignoffPredicate(
            approver=approver,
            role=role,
            decision=decision,
            conditions=conditions or None,
            release=release,
            signed_at=now,
            expires_at=now + expires_in if expires_in is not None else None,
        ),
    )
    record: Envelope | SignoffStatement = statement
    if key is not None:
        # The bytes signed are the statement's JSON exactly as other in-toto tools read it.
        record = sign_envelope(statement.model_dump_json(by_alias=True).encode("utf-8"), key)
    with _lock(path):
        signoffs = load_signoffs(path)
        approval = ReadinessApproval(release=release, generated_at=now, signoffs=[*signoffs, record])
        # by_alias: the in-toto field names (_type, predicateType) are what other tools read.
        write_text_atomic(path, approval.model_dump_json(indent=2, by_alias=True) + "\n")
    return statement


def _statement_of(envelope: Envelope, path: Path, index: int) -> SignoffStatement:
    payload = envelope.payload_bytes()
    if payload is None:
        raise ArtifactError(path, f"signoffs.{index}.payload: not valid base64 (remove this sign-off and record it again)")
    try:
        return SignoffStatement.model_validate_json(payload)
    except ValidationError as exc:
        raise ArtifactError(
            path, f"signoffs.{index}.payload: not a sign-off statement: {describe_validation_error(exc)} (remove this sign-off and record it again)"
        ) from None


def review_signoffs(path: Path, package_sha256: str, now: datetime | None = None, signers: Signers | None = None) -> list[SignoffView]:
    """Every recorded sign-off with its verdict for the package whose digest is ``package_sha256``
    and, given the signers file, whether its signature counts (without it, none is verified)."""
    now = now or utcnow()
    views = []
    for index, record in enumerate(load_signoffs(path)):
        keyids: tuple[str, ...] = ()
        if isinstance(record, Envelope):
            statement = _statement_of(record, path, index)
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


def _same_person(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def is_operator(approver: str, operator: str | None, signers: Signers | None) -> bool:
    """Whether ``approver`` is the person who ran the rehearsal: the same name, or a name the
    signers file lists among the approver's aliases (a CI login, a Unix user)."""
    if not operator:
        return False
    if _same_person(approver, operator):
        return True
    signer = signers.find(approver) if signers is not None else None
    return signer is not None and signers is not None and signers.is_person(signer, operator)


def relaxations(config: ReadinessConfig) -> list[str]:
    """The separation-of-duties and signature rules the config switches off, for every summary."""
    relaxed = []
    if config.allow_unsigned:
        relaxed.append("readiness.allow_unsigned: unsigned sign-offs count")
    if config.allow_one_signer_many_roles:
        relaxed.append("readiness.allow_one_signer_many_roles: one person may sign several required roles")
    if not config.forbid_self_approval:
        relaxed.append("readiness.forbid_self_approval is off: the rehearsal's operator may sign")
    return relaxed


def evaluate_signoffs(
    package_sha256: str,
    approvals_path: Path,
    config: ReadinessConfig,
    rehearsed_by: str | None,
    now: datetime | None = None,
    release: str | None = None,
    signers: Signers | None = None,
) -> SignoffStatus:
    """Gate 4's verdict: every required role has a 'go' on this digest, unexpired, signed with a
    key the signers file lists for that identity and role, by someone other than the rehearsal's
    operator, each identity satisfying one required role; and no listed signer said 'no-go'.

    ``signers`` defaults to the file readiness.signers names. Each approver's latest decision per
    role counts (a 'go' after one's own 'no-go' replaces it). "Latest" is the order in which
    sign-offs were recorded (appended to the file), never their own signed_at: a statement
    carrying a later date must not override a no-go recorded after it. A sign-off dated in the
    future counts for nothing, nor does one whose signature does not verify (shown with the
    reason). A 'no-go' on this package rejects it whatever its expiry, until the same approver
    records a 'go' in the same role. When one identity signed a 'go' for several required roles,
    the first recorded counts. ``release`` limits the problems listed to sign-offs of that
    release (older releases' sign-offs are history, not problems).
    """
    # Without the signers file nothing can count; that is only fine when nothing has to.
    if signers is None and (config.signers.is_file() or (config.required_roles and not config.allow_unsigned)):
        signers = load_signers(config.signers)
    views = review_signoffs(approvals_path, package_sha256, now, signers)
    status = SignoffStatus(complete=False, missing_roles=[], relaxed=relaxations(config))
    status.views = [view for view in views if release is None or view.release == release]
    latest: dict[tuple[str, str], tuple[int, SignoffView]] = {}
    for index, view in enumerate(views):
        if view.verdict == "other-package":
            if release is None or view.release == release:
                status.problems.append(
                    f"{view.role} sign-off by {view.approver} is for another package (sha256 {view.digest[:16]}...), not this one ({package_sha256[:16]}...)"
                )
            continue
        if view.verdict == "future-dated":
            status.problems.append(f"{view.role} sign-off by {view.approver} is dated in the future ({view.signed_at.isoformat()}) and does not count")
            continue
        if view.signature != "verified" and not (view.signature == "unsigned" and config.allow_unsigned):
            status.problems.append(f"{view.role} {view.decision} by {view.approver} does not count: {view.reason}")
            continue
        latest[(view.role, view.approver.strip().casefold())] = (index, view)
    approved: dict[str, list[str]] = defaultdict(list)
    role_of: dict[str, str] = {}
    # Recording order of each (role, approver)'s latest decision decides which role counts first.
    for _, view in sorted(latest.values(), key=lambda item: item[0]):
        who = view.approver.strip().casefold()
        if view.decision == "no-go":
            status.rejected.append(f"{view.role}: no-go by {view.approver}" + (f" ({view.conditions})" if view.conditions else ""))
        elif view.verdict == "expired":
            status.problems.append(f"{view.role} sign-off by {view.approver} expired at {view.expires_at.isoformat() if view.expires_at else '?'}")
        elif config.forbid_self_approval and is_operator(view.approver, rehearsed_by, signers):
            status.problems.append(f"{view.role} sign-off by {view.approver} does not count: they ran the rehearsal (readiness.forbid_self_approval)")
        elif not config.allow_one_signer_many_roles and view.role in config.required_roles and who in role_of and role_of[who] != view.role:
            status.problems.append(
                f"{view.role} sign-off by {view.approver} does not count: they already sign {role_of[who]}, and one person satisfies "
                "at most one required role (readiness.allow_one_signer_many_roles)"
            )
        else:
            approved[view.role].append(view.approver)
            if view.role in config.required_roles:
                role_of.setdefault(who, view.role)
    status.approved = dict(approved)
    status.missing_roles = [role for role in config.required_roles if role not in approved]
    status.unreviewed = not config.required_roles
    status.complete = not status.missing_roles and not status.rejected
    return status
