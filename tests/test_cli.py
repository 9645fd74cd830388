"""`predeploy verify` and `predeploy approve`, end to end as subprocesses."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.harness.gates import ExitStatus
from pytest_predeploy.readiness.package import verify_package
from pytest_predeploy.readiness.signoff import record_signoff
from pytest_predeploy.tooling.cli import SUBCOMMANDS
from tests.project import base_config, make_complete_project
from tests.signoff_project import PARITY_CLEAN, git
from tests.sshkeys import make_key

PREDEPLOY = str(Path(sys.executable).with_name("predeploy"))


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PREDEPLOY, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


#: Where a run of the protocol seals the package, relative to the project.
ARTIFACTS = ".artifacts/pre-deployment"
PACKAGE = f"{ARTIFACTS}/{names.PACKAGE}"


def sealed_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, operator: str = "ops-person") -> Path:
    """A repository whose protocol run (by ``operator``) sealed a package awaiting sign-off by a
    release manager and a QA lead: approve judges the package as Gate 4 does, so it must be real."""
    for name in ("GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "CIRCLECI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PREDEPLOY_OPERATOR", operator)
    config = base_config(readiness={"required_roles": ["release-manager", "qa-lead"], "signers": "signers.yaml"})
    root = make_complete_project(pytester, config=config, parity_script=PARITY_CLEAN)
    keys = {name: make_key(root / "keys", name) for name in ("alice", "bo", "mallory")}
    (root / "signers.yaml").write_text(
        "signers:\n"
        f"  - {{identity: alice, aliases: [alice-ci], roles: [release-manager], keys: ['{keys['alice'].public_line}']}}\n"
        f"  - {{identity: bo, roles: [qa-lead], keys: ['{keys['bo'].public_line}']}}\n"
    )
    (root / ".gitignore").write_text(".artifacts/\n.staging/\nkeys/\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "project")
    assert pytester.runpytest_inprocess("--predeploy-release=v1.2").ret == ExitStatus.AWAITING_SIGNOFF
    return root


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    return sealed_project(pytester, monkeypatch)


def test_subcommands_are_listed_in_one_table() -> None:
    assert [command.name for command in SUBCOMMANDS] == ["verify", "approve", "init", "doctor", "advisories", "schema", "docs"]


def test_verify_then_approve_as_every_role(project: Path) -> None:
    package = PACKAGE
    done = run("verify", package, cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK: every entry matches the manifest" in done.stdout
    assert "awaiting sign-off from: release-manager, qa-lead" in done.stdout

    done = run("approve", package, "--role", "release-manager", "--key", "keys/alice", "--decision", "go", "--expires", "72h", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "recorded: release-manager go by alice for release v1.2" in done.stdout and ", signed with SHA256:" in done.stdout
    assert "awaiting sign-off from: qa-lead" in done.stdout

    done = run("approve", package, "--role", "qa-lead", "--key", "keys/bo", "--by", "bo", "--decision", "go", "--conditions", "watch p95", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "signed off: qa-lead by bo; release-manager by alice" in done.stdout

    record = json.loads((project / ARTIFACTS / names.READINESS_APPROVAL).read_text())
    statements = [json.loads(base64.b64decode(envelope["payload"])) for envelope in record["signoffs"]]
    assert [s["predicate"]["role"] for s in statements] == ["release-manager", "qa-lead"]
    assert all(envelope["payloadType"] == "application/vnd.in-toto+json" for envelope in record["signoffs"])
    digest = statements[0]["subject"][0]["digest"]["sha256"]
    assert digest in run("verify", package, cwd=project).stdout


def test_verify_fails_naming_the_tampered_entry(project: Path) -> None:
    package = project / ARTIFACTS / names.PACKAGE
    with zipfile.ZipFile(package) as archive:
        info = archive.getinfo("pytest-report.html")
    data = bytearray(package.read_bytes())
    data[info.header_offset + 30 + len(info.filename) + info.compress_size // 2] ^= 0x20
    package.write_bytes(bytes(data))
    done = run("verify", str(package), cwd=project)
    assert done.returncode == 1
    assert "pytest-report.html" in done.stdout and "FAILED" in done.stdout
    refused = run("approve", str(package), "--role", "qa-lead", "--key", "keys/bo", "--decision", "go", cwd=project)
    assert refused.returncode == 1 and "refusing to record a sign-off" in refused.stdout
    assert not (project / ARTIFACTS / names.READINESS_APPROVAL).exists()
    assert git(project, "for-each-ref", "refs/heads/predeploy/") == ""


def test_a_no_go_is_recorded_and_reported(project: Path) -> None:
    package = PACKAGE
    done = run("approve", package, "--role", "qa-lead", "--key", "keys/bo", "--decision", "no-go", "--conditions", "p95 regression", cwd=project)
    assert done.returncode == 0
    assert "no-go: qa-lead: no-go by bo (p95 regression)" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["verify", "missing.zip"], "missing.zip: no such package file"),
        (["approve", PACKAGE, "--role", "qa-lead", "--by", "bo", "--decision", "go", "--expires", "soon"], "expected a duration"),
        (["approve", PACKAGE, "--role", "qa-lead", "--by", "bo", "--decision", "maybe"], "invalid choice"),
        (["verify", PACKAGE, "--config", "nope.yaml"], "nope.yaml: configuration file not found"),
    ],
    ids=["missing-package", "bad-duration", "bad-decision", "missing-config"],
)
def test_usage_errors_exit_2_with_a_message_and_no_traceback(project: Path, args: list[str], message: str) -> None:
    done = run(*args, cwd=project)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_verify_prints_who_signed_what_and_whether_each_signature_verifies(project: Path) -> None:
    package = PACKAGE
    assert run("approve", package, "--role", "release-manager", "--key", "keys/alice", "--decision", "go", cwd=project).returncode == 0
    assert run("approve", package, "--role", "qa-lead", "--key", "keys/bo", "--decision", "go", cwd=project).returncode == 0
    # Someone with write access to the repository commits an unsigned no-go naming bo to the record.
    sha256 = verify_package(project / PACKAGE).sha256
    approvals = project / ARTIFACTS / names.READINESS_APPROVAL
    record_signoff(approvals, package_sha256=sha256, release="v1.2", role="qa-lead", approver="bo", decision="no-go", repository=project)
    done = run("verify", package, cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if "sign-off [" in line]
    assert len(lines) == 3
    assert "release-manager: go by alice" in lines[0] and ": signature verified (SHA256:" in lines[0]
    assert "qa-lead: go by bo" in lines[1] and ": signature verified (SHA256:" in lines[1]
    assert "qa-lead: no-go by bo" in lines[2] and ": unsigned: recorded without a signature" in lines[2]
    assert "readiness: signed off: qa-lead by bo; release-manager by alice" in done.stdout
    assert "note: qa-lead no-go by bo does not count: recorded without a signature" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "release-manager", "--key", "keys/mallory"], "refusing to record a sign-off: the key keys/mallory is not listed in"),
        (["--role", "qa-lead", "--key", "keys/alice"], "refusing to record a sign-off: alice may not sign for 'qa-lead' (allowed: release-manager"),
        (["--role", "qa-lead", "--key", "keys/bo", "--by", "alice"], "refusing to record a sign-off: --by 'alice' is not the owner of the key keys/bo"),
        (["--role", "qa-lead", "--by", "bo"], "refusing to record an unsigned sign-off: it would not count"),
    ],
    ids=["unlisted-key", "role-not-allowed", "by-is-not-the-key-owner", "unsigned"],
)
def test_approve_refuses_a_signoff_that_would_not_count(project: Path, args: list[str], message: str) -> None:
    done = run("approve", PACKAGE, *args, "--decision", "go", cwd=project)
    assert done.returncode == 1, done.stdout + done.stderr
    assert message in done.stdout
    assert not (project / ARTIFACTS / names.READINESS_APPROVAL).exists()


def test_approve_refuses_the_rehearsal_operator(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    root = sealed_project(pytester, monkeypatch, operator="ALICE-ci")
    done = run("approve", PACKAGE, "--role", "release-manager", "--key", "keys/alice", "--decision", "go", cwd=root)
    assert done.returncode == 1
    assert "alice ran the rehearsal (ALICE-ci) and cannot sign it off (readiness.forbid_self_approval)" in done.stdout


def test_verify_without_a_signers_file_checks_the_package_and_says_identities_are_unanchored(project: Path) -> None:
    package = PACKAGE
    assert run("approve", package, "--role", "release-manager", "--key", "keys/alice", "--decision", "go", cwd=project).returncode == 0
    (project / "signers.yaml").unlink()
    done = run("verify", package, cwd=project)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "release-manager: go by alice" in done.stdout and "unanchored: who signed is not established" in done.stdout
    assert "OK: every entry matches the manifest" in done.stdout and "UNANCHORED" in done.stdout
