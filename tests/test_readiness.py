"""Readiness sign-offs: signed, bound to the package digest, unexpired, every role, no self-approval."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from pytest_predeploy.core.errors import ArtifactError, PredeployError
from pytest_predeploy.readiness.signing import Envelope, SigningKey, load_signing_key
from pytest_predeploy.readiness.signoff import (
    PREDICATE_TYPE,
    ReadinessApproval,
    ReadinessConfig,
    evaluate_signoffs,
    load_signoffs,
    record_signoff,
)
from pytest_predeploy.readiness.statements import Decision, SignoffStatement
from tests.sshkeys import make_key

A = "a" * 64
B = "b" * 64
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
# signers.yaml is resolved against the working folder, which the `people` fixture sets.
CONFIG = ReadinessConfig(required_roles=["release-manager", "qa-lead"], signers=Path("signers.yaml"))
#: Who may sign what in these tests; mallory has a key but is not in the signers file.
ROLES = {"alice": ["release-manager", "qa-lead"], "bo": ["qa-lead", "release-manager"], "cy": ["release-manager"], "di": ["security-owner"]}
KEYS: dict[str, SigningKey] = {}


@pytest.fixture(scope="module")
def key_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    lines = []
    for name in [*ROLES, "mallory"]:
        pair = make_key(folder, name)
        KEYS[name] = load_signing_key(pair.private)
        if name in ROLES:
            lines.append(f"  - identity: {name}\n    aliases: [{name}-gh]\n    roles: [{', '.join(ROLES[name])}]\n    keys: ['{pair.public_line}']\n")
    (folder / "signers.yaml").write_text("signers:\n" + "".join(lines))
    return folder


@pytest.fixture(autouse=True)
def people(key_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(key_folder)


def sign(
    path: Path,
    role: str,
    by: str,
    decision: Decision = "go",
    digest: str = A,
    *,
    at: datetime = NOW - timedelta(hours=1),
    expires: timedelta | None = timedelta(days=7),
    release: str = "v1.2",
    key: str | None = None,
) -> None:
    record_signoff(
        path,
        package_sha256=digest,
        release=release,
        role=role,
        approver=by,
        decision=decision,
        expires_in=expires,
        now=at,
        key=KEYS[(key or by).casefold()],
    )


@pytest.fixture
def approvals(tmp_path: Path) -> Path:
    return tmp_path / "readiness-approval.json"


def test_signoff_file_is_an_artifact_of_in_toto_statements(approvals: Path) -> None:
    sign(approvals, "qa-lead", "bo")
    record_signoff(
        approvals,
        package_sha256=A,
        release="v1.2",
        role="release-manager",
        approver="cy",
        decision="go",
        conditions="deploy outside business hours",
        expires_in=timedelta(hours=72),
        now=NOW,
    )
    data = json.loads(approvals.read_text())
    assert data["release"] == "v1.2" and data["step"] == "readiness-review" and data["schema_version"]
    assert "payloadType" in data["signoffs"][0]  # signed: a DSSE envelope
    statement = data["signoffs"][1]  # recorded without a key: a bare statement
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"] == [{"name": "PRE-DEPLOYMENT-PACKAGE.zip", "digest": {"sha256": A}}]
    assert statement["predicateType"] == PREDICATE_TYPE
    predicate = statement["predicate"]
    assert predicate["approver"] == "cy" and predicate["role"] == "release-manager" and predicate["decision"] == "go"
    assert predicate["conditions"] == "deploy outside business hours"
    assert predicate["signed_at"].startswith("2026-11-26T12:00:00") and predicate["expires_at"].startswith("2026-11-29T12:00:00")
    envelope = ReadinessApproval.model_validate(data).signoffs[0]
    assert isinstance(envelope, Envelope) and json.loads(envelope.payload_bytes() or b"")["predicate"]["approver"] == "bo"


def test_every_required_role_with_a_go_completes(approvals: Path) -> None:
    sign(approvals, "release-manager", "alice")
    sign(approvals, "qa-lead", "bo")
    status = evaluate_signoffs(A, approvals, CONFIG, rehearsed_by="ci-bot", now=NOW)
    assert status.complete and status.missing_roles == [] and status.problems == []
    assert status.approved == {"release-manager": ["alice"], "qa-lead": ["bo"]}


def test_a_missing_role_is_named(approvals: Path) -> None:
    sign(approvals, "release-manager", "alice")
    status = evaluate_signoffs(A, approvals, CONFIG, rehearsed_by=None, now=NOW)
    assert not status.complete
    assert status.missing_roles == ["qa-lead"]
    assert status.summary() == "awaiting sign-off from: qa-lead"


def test_no_signoff_file_awaits_every_role(approvals: Path) -> None:
    status = evaluate_signoffs(A, approvals, CONFIG, rehearsed_by=None, now=NOW)
    assert status.missing_roles == ["release-manager", "qa-lead"] and not status.complete


def test_a_signoff_for_package_a_is_rejected_for_package_b(approvals: Path) -> None:
    sign(approvals, "release-manager", "alice", digest=A)
    sign(approvals, "qa-lead", "bo", digest=A)
    assert evaluate_signoffs(A, approvals, CONFIG, None, now=NOW).complete
    status = evaluate_signoffs(B, approvals, CONFIG, None, now=NOW)
    assert not status.complete
    assert status.missing_roles == ["release-manager", "qa-lead"]
    assert any("alice" in p and "for another package" in p for p in status.problems)


def test_an_expired_signoff_is_rejected(approvals: Path) -> None:
    sign(approvals, "release-manager", "alice", at=NOW - timedelta(days=8), expires=timedelta(days=7))
    sign(approvals, "qa-lead", "bo")
    status = evaluate_signoffs(A, approvals, CONFIG, None, now=NOW)
    assert not status.complete and status.missing_roles == ["release-manager"]
    assert any("alice" in p and "expired" in p for p in status.problems)


def test_a_no_go_rejects_even_with_every_role_signed(approvals: Path) -> None:
    sign(approvals, "release-manager", "alice")
    sign(approvals, "qa-lead", "bo")
    sign(approvals, "security-owner", "di", decision="no-go")
    status = evaluate_signoffs(A, approvals, CONFIG, None, now=NOW)
    assert not status.complete
    assert status.rejected == ["security-owner: no-go by di"]
    assert status.summary().startswith("no-go")


def test_an_approvers_later_go_replaces_their_own_no_go(approvals: Path) -> None:
    sign(approvals, "release-manager", "alice", "no-go", at=NOW - timedelta(hours=2))
    sign(approvals, "release-manager", "alice", "go", at=NOW - timedelta(hours=1))
    sign(approvals, "qa-lead", "bo")
    assert evaluate_signoffs(A, approvals, CONFIG, None, now=NOW).complete


def test_the_rehearsal_operator_cannot_approve_when_forbidden(approvals: Path) -> None:
    sign(approvals, "release-manager", "Alice")
    sign(approvals, "qa-lead", "bo")
    status = evaluate_signoffs(A, approvals, CONFIG, rehearsed_by="alice", now=NOW)
    assert status.missing_roles == ["release-manager"]
    assert any("ran the rehearsal" in p for p in status.problems)
    allowed = CONFIG.model_copy(update={"forbid_self_approval": False})
    assert evaluate_signoffs(A, approvals, allowed, rehearsed_by="alice", now=NOW).complete


def test_other_releases_signoffs_are_history_not_problems(approvals: Path) -> None:
    sign(approvals, "release-manager", "alice", digest=B, release="v1.1")
    status = evaluate_signoffs(A, approvals, CONFIG, None, now=NOW, release="v1.2")
    assert status.problems == [] and status.missing_roles == ["release-manager", "qa-lead"]


def test_a_malformed_signoff_file_names_the_file_and_field(approvals: Path) -> None:
    approvals.write_text(json.dumps({"release": "v1.2", "step": "readiness-review", "signoffs": [{"_type": "x"}]}))
    with pytest.raises(ArtifactError, match=r"readiness-approval\.json: does not match ReadinessApproval: signoffs\.0"):
        evaluate_signoffs(A, approvals, CONFIG, None, now=NOW)


_APPEND = """
import sys
from pathlib import Path
from pytest_predeploy.readiness.signoff import record_signoff
record_signoff(Path(sys.argv[1]), package_sha256="a" * 64, release="v1.2", role="qa-lead", approver=sys.argv[2], decision="go")
"""


def test_concurrent_appends_keep_every_signoff(approvals: Path) -> None:
    processes = [subprocess.Popen([sys.executable, "-c", _APPEND, str(approvals), f"approver-{i}"]) for i in range(6)]
    try:
        assert [p.wait(timeout=60) for p in processes] == [0] * 6
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    statements = [s for s in load_signoffs(approvals) if isinstance(s, SignoffStatement)]
    assert sorted(s.predicate.approver for s in statements) == [f"approver-{i}" for i in range(6)]


def test_no_required_role_is_refused_unless_opted_out_and_then_said_loudly(approvals: Path) -> None:
    with pytest.raises(ValidationError, match="readiness.required_roles is empty"):
        ReadinessConfig(required_roles=[])
    status = evaluate_signoffs(A, approvals, ReadinessConfig(required_roles=[], allow_no_signoff=True), None, now=NOW)
    assert status.complete
    assert status.summary().startswith("NO SIGN-OFF REQUIRED: nobody reviewed this package")


def test_a_future_dated_go_does_not_override_a_no_go(approvals: Path) -> None:
    sign(approvals, "release-manager", "alice", "no-go")
    sign(approvals, "release-manager", "alice", "go", at=NOW + timedelta(days=365))
    sign(approvals, "qa-lead", "bo")
    status = evaluate_signoffs(A, approvals, CONFIG, None, now=NOW)
    assert not status.complete
    assert status.rejected == ["release-manager: no-go by alice"]
    assert any("alice" in p and "dated in the future" in p for p in status.problems)


def test_a_future_dated_go_alone_does_not_count(approvals: Path) -> None:
    sign(approvals, "release-manager", "alice", at=NOW + timedelta(days=1))
    sign(approvals, "qa-lead", "bo")
    status = evaluate_signoffs(A, approvals, CONFIG, None, now=NOW)
    assert status.missing_roles == ["release-manager"]


def test_a_no_go_recorded_after_a_go_stands_whatever_date_it_carries(approvals: Path) -> None:
    # The signer's clock is behind: the later no-go carries an earlier signed_at than the go.
    sign(approvals, "release-manager", "alice", "go", at=NOW - timedelta(hours=1))
    sign(approvals, "release-manager", "alice", "no-go", at=NOW - timedelta(hours=3))
    sign(approvals, "qa-lead", "bo")
    status = evaluate_signoffs(A, approvals, CONFIG, None, now=NOW)
    assert not status.complete and status.rejected == ["release-manager: no-go by alice"]


def test_a_no_go_is_withdrawn_only_by_the_same_signer(approvals: Path) -> None:
    sign(approvals, "release-manager", "alice", "no-go")
    sign(approvals, "release-manager", "mallory", "go")
    sign(approvals, "qa-lead", "bo")
    status = evaluate_signoffs(A, approvals, CONFIG, None, now=NOW)
    assert status.rejected == ["release-manager: no-go by alice"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"release": "v1.2", "release": "v9", "step": "readiness-review", "signoffs": []}', r"readiness-approval\.json:1: duplicate key 'release'"),
        ('{"release": "v1.2",\n"signoffs": ' + "[" * 100_000 + "]" * 100_000 + "}", r"readiness-approval\.json:2: nesting deeper than"),
    ],
    ids=["duplicate key", "deep nesting"],
)
def test_a_forged_signoff_file_is_refused_with_its_file_and_line(approvals: Path, content: str, expected: str) -> None:
    approvals.write_text(content)
    with pytest.raises(PredeployError, match=expected):
        evaluate_signoffs(A, approvals, CONFIG, None, now=NOW)


def test_unsigned_signoffs_are_shown_and_ignored_unless_explicitly_allowed(approvals: Path) -> None:
    # What anyone with write access to the folder can do: write statements naming anybody.
    for role in ("release-manager", "qa-lead"):
        record_signoff(approvals, package_sha256=A, release="v1.2", role=role, approver="Mallory", decision="go", now=NOW - timedelta(hours=1))
    status = evaluate_signoffs(A, approvals, CONFIG, None, now=NOW)
    assert not status.complete and status.missing_roles == ["release-manager", "qa-lead"]
    assert [view.signature for view in status.views] == ["unsigned", "unsigned"]
    assert all("does not count: recorded without a signature" in p for p in status.problems) and len(status.problems) == 2
    relaxed = CONFIG.model_copy(update={"allow_unsigned": True, "allow_one_signer_many_roles": True})
    status = evaluate_signoffs(A, approvals, relaxed, None, now=NOW)
    assert status.complete
    assert "relaxed: readiness.allow_unsigned: unsigned sign-offs count; readiness.allow_one_signer_many_roles" in status.summary()


def test_signoff_by_a_key_not_in_the_signers_file_does_not_count(approvals: Path) -> None:
    sign(approvals, "release-manager", "alice", key="mallory")
    sign(approvals, "qa-lead", "bo")
    status = evaluate_signoffs(A, approvals, CONFIG, None, now=NOW)
    assert status.missing_roles == ["release-manager"]
    assert [p for p in status.problems if "alice" in p] == [
        f"release-manager go by alice does not count: it is signed by a key not listed in signers.yaml ({KEYS['mallory'].keyid})"
    ]


def test_signoff_for_a_role_the_identity_may_not_sign_does_not_count(approvals: Path) -> None:
    sign(approvals, "release-manager", "alice")
    sign(approvals, "qa-lead", "cy")
    status = evaluate_signoffs(A, approvals, CONFIG, None, now=NOW)
    assert status.missing_roles == ["qa-lead"]
    assert any("cy may not sign for 'qa-lead' (allowed: release-manager" in p for p in status.problems)


def test_hand_edited_signed_statement_does_not_count(approvals: Path) -> None:
    sign(approvals, "release-manager", "alice", "no-go")
    sign(approvals, "qa-lead", "bo")
    data = json.loads(approvals.read_text())
    statement = json.loads(base64.b64decode(data["signoffs"][0]["payload"]))
    statement["predicate"]["decision"] = "go"
    data["signoffs"][0]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    approvals.write_text(json.dumps(data))
    status = evaluate_signoffs(A, approvals, CONFIG, None, now=NOW)
    assert status.missing_roles == ["release-manager"] and not status.complete
    assert any(p.startswith("release-manager go by alice does not count: its signature does not verify") for p in status.problems)


def test_one_identity_satisfies_one_required_role(approvals: Path) -> None:
    sign(approvals, "release-manager", "alice")
    sign(approvals, "qa-lead", "alice")
    status = evaluate_signoffs(A, approvals, CONFIG, None, now=NOW)
    assert not status.complete and status.missing_roles == ["qa-lead"]
    assert any("qa-lead sign-off by alice does not count: they already sign release-manager" in p for p in status.problems)
    sign(approvals, "qa-lead", "bo")
    assert evaluate_signoffs(A, approvals, CONFIG, None, now=NOW).complete


def test_the_operator_is_recognised_by_an_alias_from_the_signers_file(approvals: Path) -> None:
    sign(approvals, "release-manager", "alice")
    sign(approvals, "qa-lead", "bo")
    status = evaluate_signoffs(A, approvals, CONFIG, rehearsed_by="BO-gh", now=NOW)
    assert status.missing_roles == ["qa-lead"]
    assert any("qa-lead sign-off by bo does not count: they ran the rehearsal" in p for p in status.problems)
    relaxed = CONFIG.model_copy(update={"forbid_self_approval": False})
    status = evaluate_signoffs(A, approvals, relaxed, rehearsed_by="bo-gh", now=NOW)
    assert status.complete and "relaxed: readiness.forbid_self_approval is off" in status.summary()


def test_a_no_go_that_does_not_verify_does_not_block(approvals: Path) -> None:
    sign(approvals, "release-manager", "alice")
    sign(approvals, "qa-lead", "bo")
    sign(approvals, "release-manager", "cy", "no-go", key="mallory")
    status = evaluate_signoffs(A, approvals, CONFIG, None, now=NOW)
    assert status.complete and status.rejected == []
    assert any("release-manager no-go by cy does not count" in p for p in status.problems)


def test_a_missing_signers_file_is_a_message_saying_what_to_do(approvals: Path, tmp_path: Path) -> None:
    sign(approvals, "release-manager", "alice")
    config = CONFIG.model_copy(update={"signers": tmp_path / "nowhere.yaml"})
    with pytest.raises(PredeployError, match=r"nowhere.yaml: signers file not found; list who may sign which role there"):
        evaluate_signoffs(A, approvals, config, None, now=NOW)
