"""Intake (Protocol 10, step 1.1): upstream approvals must be present, approved, for this
release and unexpired. Writes ``intake-validation-report.json``.

Approval records are written by other protocols (4: quality audit, 9: integration sign-off) and
by the security owner (waivers), so their files may carry extra fields; we require only what a
decision needs.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal, NotRequired, TypedDict

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pytest_predeploy.core.artifacts import ArtifactModel, describe_validation_error
from pytest_predeploy.core.errors import ConfigError
from pytest_predeploy.core.fields import ConfigPath, Duration, StrictModel, UtcDatetime, format_size, identity_key, is_blank, utcnow
from pytest_predeploy.core.runstate import current_user
from pytest_predeploy.core.yamlfile import MAX_DOCUMENT_BYTES, parse_json, parse_yaml

STEP = "intake"

ApprovalStatus = Literal["ok", "missing", "malformed", "rejected", "pending", "wrong-release", "expired", "self-approved", "future-dated"]
#: How far a record's approved_at may lie ahead of this machine's clock (clock skew between hosts).
CLOCK_SKEW = timedelta(minutes=5)


class UpstreamApprovalConfig(StrictModel):
    """One upstream approval record Gate 1 requires."""

    name: str = Field(description="Identifier of the approval (e.g. protocol-4-quality-audit).")
    title: str = Field("", description="Human title shown in reports (e.g. 'Protocol 4 quality audit').")
    file: ConfigPath = Field(
        description="JSON or YAML file holding the record, relative to the config file. A missing file fails Gate 1 (it is not a config error: the record may not exist yet)."
    )
    max_age: Duration | None = Field(None, description="The record expires this long after approved_at (overrides approvals.max_age).")


class ApprovalsConfig(StrictModel):
    """Upstream approvals (Protocol 4 audit, Protocol 9 sign-off, security/compliance waivers)."""

    max_age: Duration | None = Field(None, description="Default maximum age of an approval record (e.g. '30d'); records with expires_at use that too.")
    upstream: list[UpstreamApprovalConfig] = Field(
        default_factory=list, description="The records to check, in report order. Must not be empty unless allow_none is true."
    )
    allow_none: bool = Field(
        False,
        description="Run Gate 1 with no upstream approval at all (an empty upstream list). Off by default: an empty list would pass Gate 1 with nothing checked. When on, the intake report and Gate 1 say so.",
    )

    @model_validator(mode="after")
    def _something_to_check(self) -> ApprovalsConfig:
        # An empty list is the easiest way to configure Gate 1 into a pass that checks nothing.
        if not self.upstream and not self.allow_none:
            raise ValueError(
                "approvals.upstream is empty, so Gate 1 would check no approval; list the upstream approval records, or set approvals.allow_none: true to run without any"
            )
        return self


class Waiver(BaseModel):
    """A security/compliance waiver carried by an approval record."""

    model_config = ConfigDict(extra="allow", defer_build=True)  # built on first use, as StrictModel (core.fields)

    id: str = Field(description="Waiver identifier.")
    owner: str = Field(description="Who owns the accepted risk.")
    justification: str = Field(description="Why the risk is accepted.")
    expires_at: UtcDatetime = Field(description="When the waiver stops applying.")


class ApprovalRecord(BaseModel):
    """What an upstream approval file must say."""

    model_config = ConfigDict(extra="allow", defer_build=True)  # built on first use, as StrictModel (core.fields)

    release: str = Field(description="The release this approval is for.")
    status: Literal["approved", "rejected", "pending"] = Field(description="The decision.")
    approved_by: str = Field(description="Who decided.")
    approved_at: UtcDatetime = Field(description="When.")
    expires_at: UtcDatetime | None = Field(None, description="When the approval stops being current.")
    waivers: list[Waiver] = Field(default_factory=list, description="Waivers granted with this approval.")

    @field_validator("approved_by")
    @classmethod
    def _someone(cls, value: str) -> str:
        if is_blank(value):
            raise ValueError("is empty (or only invisible characters): an approval must name who decided")
        return value


class ApprovalCheck(StrictModel):
    """The verdict on one upstream approval."""

    name: str = Field(description="Identifier of the approval.")
    title: str = Field(description="Human title.")
    file: str = Field(description="The record's file.")
    sha256: str | None = Field(None, description="sha256 of the record's bytes, when it could be read.")
    status: ApprovalStatus = Field(description="ok, or why not.")
    detail: str = Field(description="What was found, in a sentence.")
    approved_by: str | None = Field(None, description="Who approved.")
    approved_at: datetime | None = Field(None, description="When it was approved.")
    expires_at: datetime | None = Field(None, description="When it stops being current.")
    waivers: list[str] = Field(default_factory=list, description="Ids of the unexpired waivers it carries.")


class IntakeReport(ArtifactModel):
    """intake-validation-report.json: status of every upstream prerequisite."""

    step: str = Field(STEP, description="The protocol step that produced the artifact.")
    checks: list[ApprovalCheck] = Field(description="One verdict per configured approval.")
    approved: bool = Field(description="True when every check is ok.")
    warnings: list[str] = Field(default_factory=list, description="What the reviewer must know although nothing failed (e.g. no approval was required at all).")


class _CheckBase(TypedDict):
    """The fields every ApprovalCheck of one record shares."""

    name: str
    title: str
    file: str
    sha256: NotRequired[str]


class _RecordFacts(TypedDict):
    """What a parsed record says about its approval, as ApprovalCheck carries it."""

    approved_by: str
    approved_at: datetime
    expires_at: datetime | None


def _read_record(path: Path) -> bytes:
    """The record's bytes; bigger than MAX_DOCUMENT_BYTES: ConfigError (only that much is read)."""
    with path.open("rb") as stream:
        raw = stream.read(MAX_DOCUMENT_BYTES + 1)
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise ConfigError(
            f"{path}: approval record is larger than {format_size(MAX_DOCUMENT_BYTES)}; it is parsed in full, so a bigger one is refused (check it is the right file)"
        )
    return raw


def check_approval(
    item: UpstreamApprovalConfig,
    release: str,
    default_max_age: timedelta | None,
    now: datetime,
    operator: str | None = None,
) -> ApprovalCheck:
    base: _CheckBase = {"name": item.name, "title": item.title or item.name, "file": str(item.file)}
    if not item.file.is_file():
        return ApprovalCheck(**base, status="missing", detail=f"no approval record at {item.file}")
    try:
        raw = _read_record(item.file)
        base["sha256"] = hashlib.sha256(raw).hexdigest()
        text, origin = raw.decode("utf-8"), str(item.file)
        data = parse_json(text, origin) if item.file.suffix == ".json" else parse_yaml(text, origin)[0]
        record = ApprovalRecord.model_validate(data)
    except (ConfigError, ValueError, UnicodeDecodeError, OSError) as exc:
        if isinstance(exc, ValidationError):
            detail = describe_validation_error(exc)
        elif isinstance(exc, UnicodeDecodeError):
            detail = f"is not UTF-8 text (invalid byte at offset {exc.start})"
        elif isinstance(exc, OSError):
            detail = f"cannot be read ({exc.strerror})"
        else:
            detail = str(exc)
        return ApprovalCheck(**base, status="malformed", detail=f"{item.file}: {detail}" if not detail.startswith(str(item.file)) else detail)
    facts: _RecordFacts = {"approved_by": record.approved_by, "approved_at": record.approved_at, "expires_at": record.expires_at}
    if record.approved_at > now + CLOCK_SKEW:
        return ApprovalCheck(
            **base,
            **facts,
            status="future-dated",
            detail=f"approved_at {record.approved_at.isoformat()} is in the future; a record cannot approve ahead of time",
        )
    max_age = item.max_age or default_max_age
    expires = record.expires_at
    if max_age is not None:
        # Cannot overflow: approved_at is not in the future and max_age is at most 1000 years.
        by_age = record.approved_at + max_age
        expires = min(expires, by_age) if expires else by_age
        facts["expires_at"] = expires
    if record.release != release:
        return ApprovalCheck(**base, **facts, status="wrong-release", detail=f"record is for release {record.release}, not {release}")
    if record.status != "approved":
        return ApprovalCheck(**base, **facts, status=record.status, detail=f"status is {record.status} (by {record.approved_by})")
    if operator and identity_key(record.approved_by) == identity_key(operator):
        return ApprovalCheck(
            **base,
            **facts,
            status="self-approved",
            detail=f"approved by {record.approved_by}, who is running this protocol; an upstream approval must come from someone else",
        )
    if expires is not None and expires <= now:
        return ApprovalCheck(**base, **facts, status="expired", detail=f"expired at {expires.isoformat()}")
    expired_waivers = [w.id for w in record.waivers if w.expires_at <= now]
    if expired_waivers:
        return ApprovalCheck(**base, **facts, status="expired", detail=f"waiver {', '.join(expired_waivers)} expired")
    return ApprovalCheck(**base, **facts, status="ok", detail=f"approved by {record.approved_by}", waivers=[w.id for w in record.waivers])


def validate_intake(config: ApprovalsConfig, release: str, now: datetime | None = None, operator: str | None = None) -> IntakeReport:
    """Check every upstream record; ``operator`` (default: the user running this) may approve none."""
    now = now or utcnow()
    operator = operator if operator is not None else current_user()
    checks = [check_approval(item, release, config.max_age, now, operator) for item in config.upstream]
    warnings = []
    if not config.upstream:
        warnings.append("NO UPSTREAM APPROVAL WAS CHECKED: approvals.upstream is empty and approvals.allow_none is true")
    return IntakeReport(release=release, checks=checks, approved=all(c.status == "ok" for c in checks), warnings=warnings)


def intake_problems(report: IntakeReport) -> list[str]:
    """One line per approval that blocks Gate 1."""
    return [f"{c.title} ({c.file}): {c.status}: {c.detail}" for c in report.checks if c.status != "ok"]
