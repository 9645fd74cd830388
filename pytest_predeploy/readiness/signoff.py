"""Readiness review (Protocol 10, step 4.2): signed sign-offs bound to the package digest.

A sign-off is an in-toto Statement v1 whose subject is ``PRE-DEPLOYMENT-PACKAGE.zip`` and its
sha256, so it says exactly which bytes were approved (a rebuilt or altered package is a different
subject and needs new sign-offs), wrapped in a DSSE envelope signed with the reviewer's OpenSSH
key (see :mod:`pytest_predeploy.readiness.signing`). It counts only when its signature verifies
with a key the signers file lists for the identity it names and the role it signs; an unsigned
statement (anyone with write access can write one) is shown and ignored.

The record of sign-offs is git (:mod:`pytest_predeploy.readiness.record`): Gate 4 reads them in
commit order from the ``predeploy/signoffs`` branch and blocks on any removal. ``readiness-approval.json``
beside the package is an exported view of the same envelopes, for a reviewer holding only the
package; nothing decides from it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from pytest_predeploy.core.artifacts import PACKAGE, write_text_atomic
from pytest_predeploy.core.errors import ArtifactError
from pytest_predeploy.core.fields import identity_key, utcnow
from pytest_predeploy.readiness import record as git_record
from pytest_predeploy.readiness.anchors import anchored_signers
from pytest_predeploy.readiness.settings import ReadinessConfig as ReadinessConfig
from pytest_predeploy.readiness.signing import Envelope, Signers, SigningKey, load_signers, sign_envelope
from pytest_predeploy.readiness.statements import (
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    STEP,
    Decision,
    ReadinessApproval,
    Record,
    SignoffPredicate,
    SignoffStatement,
    SignoffView,
    Source,
    Subject,
    load_signoffs,
    lock,
    record_bytes,
    recorded_signoffs,
    review_signoffs,
)

__all__ = [
    "SignoffView",
    "review_signoffs",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "STEP",
    "ReadinessApproval",
    "load_signoffs",
    "record_bytes",
    "recorded_signoffs",
]


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
    #: What makes the record or the signers file untrustworthy (a removal, an unreviewed list);
    #: also in ``rejected``, so that it blocks like a no-go.
    blocked: list[str] = field(default_factory=list)
    #: Who ran the rehearsal and how that was determined (said in the summary: locally it is
    #: self-declared, and self-approval is caught only as far as that name is true).
    operator: str = ""

    def block(self, reasons: Sequence[str]) -> None:
        self.blocked += reasons
        self.rejected += reasons
        self.complete = self.complete and not reasons

    def summary(self) -> str:
        if self.unreviewed and not self.rejected:
            return "NO SIGN-OFF REQUIRED: nobody reviewed this package (readiness.required_roles is empty, readiness.allow_no_signoff is true)"
        if self.rejected:
            decided = [reason for reason in self.rejected if reason not in self.blocked]
            text = ("no-go: " + "; ".join(decided) + ("; " if self.blocked else "") if decided else "") + (
                "blocked: " + "; ".join(self.blocked) if self.blocked else ""
            )
        elif self.missing_roles:
            text = "awaiting sign-off from: " + ", ".join(self.missing_roles)
        else:
            text = "signed off: " + "; ".join(f"{role} by {', '.join(who)}" for role, who in sorted(self.approved.items()))
        text += f" (relaxed: {'; '.join(self.relaxed)})" if self.relaxed else ""
        return text + (f" (rehearsal operator: {self.operator})" if self.operator else "")


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
    repository: Path | None = None,
) -> SignoffStatement:
    """Record one sign-off: signed with ``key`` as a DSSE envelope, or, without a key, a bare
    statement that counts only where readiness.allow_unsigned says so. With ``repository`` it is
    committed to the git record first (what Gate 4 reads), then appended to ``path``, the
    exported view (read, append, atomic replace, under a file lock)."""
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
    if repository is not None:
        message = f"{role}: {decision} by {approver} for release {release}\n\npackage sha256 {package_sha256}\n"
        git_record.append(repository, package_sha256, record_bytes(record), approver, message)
    with lock(path):
        signoffs = load_signoffs(path)
        approval = ReadinessApproval(release=release, generated_at=now, signoffs=[*signoffs, record])
        # by_alias: the in-toto field names (_type, predicateType) are what other tools read.
        write_text_atomic(path, approval.model_dump_json(indent=2, by_alias=True) + "\n")
    return statement


def _same_person(a: str, b: str) -> bool:
    return identity_key(a) == identity_key(b)


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
    approvals_path: Source,
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
        latest[(view.role, identity_key(view.approver))] = (index, view)
    approved: dict[str, list[str]] = defaultdict(list)
    role_of: dict[str, str] = {}
    # Recording order of each (role, approver)'s latest decision decides which role counts first.
    for _, view in sorted(latest.values(), key=lambda item: item[0]):
        who = identity_key(view.approver)
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


def judge_signoffs(
    project_dir: Path,
    package_sha256: str,
    sealed_signers_sha256: str | None,
    config: ReadinessConfig,
    rehearsed_by: str | None,
    release: str,
    now: datetime | None = None,
    export: Path | None = None,
    rehearsed_by_source: str | None = None,
) -> SignoffStatus:
    """Gate 4's readiness review of a sealed package: the sign-offs of the git record of the
    repository holding ``project_dir``, in commit order, checked against the committed signers
    file sealed with the package (``sealed_signers_sha256``). A removal from the record, a
    rewritten record, or a signers file that is edited, uncommitted or not the sealed one blocks;
    outside a git repository nothing can count, and Gate 4 says why. ``export`` (the exported
    view beside the package) is never counted from, only compared: a verified sign-off it holds
    that the record lacks was removed from the record."""
    repository = git_record.find_repository(project_dir)
    if repository is None:
        status = SignoffStatus(complete=False, missing_roles=list(config.required_roles), relaxed=relaxations(config))
        status.block([_NO_REPOSITORY.format(project_dir.resolve())])
        return status
    anchor_problems: list[str] = []
    signers: Signers | None = None
    if config.signers.is_file() or (config.required_roles and not config.allow_unsigned):
        signers, anchor_problems = anchored_signers(repository, config.signers, sealed_signers_sha256)
        # Nothing verifies against an untrusted list: an empty one, never the working tree's.
        signers = signers or Signers(config.signers, (), {})
    reading = git_record.read(repository)
    records = recorded_signoffs(reading)
    status = evaluate_signoffs(package_sha256, records, config, rehearsed_by, now, release=release, signers=signers)
    # A removal in this package's folder (or a rewrite of the whole record) may have taken a
    # no-go away; a removal of another package's sign-off is history, shown but not blocking.
    removals = [problem for problem in reading.problems if package_sha256 in problem or "rewritten" in problem or "not a sign-off" in problem]
    status.problems += [f"sign-off record: {problem}" for problem in reading.problems if problem not in removals]
    removals += _missing_from_record(export, records, package_sha256, signers)
    if rehearsed_by and rehearsed_by_source:
        status.operator = f"{rehearsed_by}, from {rehearsed_by_source}"
    status.block([f"signers file: {problem}" for problem in anchor_problems] + [f"sign-off record: {problem}" for problem in removals])
    return status


def _missing_from_record(export: Path | None, records: Sequence[tuple[str, Record]], package_sha256: str, signers: Signers | None) -> list[str]:
    """Verified sign-offs of this package the exported view holds and the record does not. A
    branch deleted and re-created without a no-go leaves no trace in git on this machine, but the
    export written when the no-go was recorded still holds it (unless it was edited too)."""
    if export is None or signers is None:
        return []
    try:
        exported = load_signoffs(export)
    except ArtifactError:
        return []  # a damaged export decides nothing either way
    recorded = {signature.sig for _, record in records if isinstance(record, Envelope) for signature in record.signatures}
    missing = []
    for view, envelope in zip(review_signoffs(export, package_sha256, signers=signers), exported, strict=True):
        if not isinstance(envelope, Envelope) or view.digest != package_sha256 or view.signature != "verified":
            continue
        if not recorded.intersection(signature.sig for signature in envelope.signatures):
            missing.append(
                f"{export.name} holds {view.role} {view.decision} by {view.approver}, signed and verified, which the record does not hold: it was removed from the record"
            )
    return missing


_NO_REPOSITORY = (
    "{} is not in a git repository: sign-offs are recorded in git (" + git_record.REF + ") so that none can be removed or reordered unseen, "
    "and the signers file is trusted as committed; run the protocol from the project's repository (`git init`, commit predeploy.yaml and the signers file)"
)
