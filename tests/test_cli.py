"""`predeploy verify` and `predeploy approve`, end to end as subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.readiness.package import seal_package
from pytest_predeploy.tooling.cli import SUBCOMMANDS

PREDEPLOY = str(Path(sys.executable).with_name("predeploy"))


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PREDEPLOY, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "predeploy.yaml").write_text(
        textwrap.dedent("""\
        version: 1
        project: cli-test
        environments: {staging: {}, production: {}}
        services: [{name: api}]
        approvals: {upstream: [], allow_none: true}
        readiness:
          required_roles: [release-manager, qa-lead]
        """)
    )
    artifacts = tmp_path / "artifacts"
    (artifacts / "transcripts").mkdir(parents=True)
    (artifacts / names.INTAKE_REPORT).write_text('{"approved": true}')
    (artifacts / "transcripts" / "deploy-api.log").write_text("deployed api\n" * 100)
    seal_package(artifacts, release="v1.2", source_date_epoch=1764115200)
    return tmp_path


def test_subcommands_are_listed_in_one_table() -> None:
    assert [command.name for command in SUBCOMMANDS] == ["verify", "approve", "init", "advisories", "schema", "docs"]


def test_verify_then_approve_as_every_role(project: Path) -> None:
    package = "artifacts/" + names.PACKAGE
    done = run("verify", package, cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK: every entry matches the manifest" in done.stdout
    assert "awaiting sign-off from: release-manager, qa-lead" in done.stdout

    done = run("approve", package, "--role", "release-manager", "--by", "alice", "--decision", "go", "--expires", "72h", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "recorded: release-manager go by alice for release v1.2" in done.stdout
    assert "awaiting sign-off from: qa-lead" in done.stdout

    done = run("approve", package, "--role", "qa-lead", "--by", "bo", "--decision", "go", "--conditions", "watch p95", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "signed off: qa-lead by bo; release-manager by alice" in done.stdout

    record = json.loads((project / "artifacts" / names.READINESS_APPROVAL).read_text())
    assert [s["predicate"]["role"] for s in record["signoffs"]] == ["release-manager", "qa-lead"]
    digest = record["signoffs"][0]["subject"][0]["digest"]["sha256"]
    assert digest in run("verify", package, cwd=project).stdout


def test_verify_fails_naming_the_tampered_entry(project: Path) -> None:
    package = project / "artifacts" / names.PACKAGE
    with zipfile.ZipFile(package) as archive:
        info = archive.getinfo("transcripts/deploy-api.log")
    data = bytearray(package.read_bytes())
    data[info.header_offset + 30 + len(info.filename) + info.compress_size // 2] ^= 0x20
    package.write_bytes(bytes(data))
    done = run("verify", str(package), cwd=project)
    assert done.returncode == 1
    assert "transcripts/deploy-api.log" in done.stdout and "FAILED" in done.stdout
    refused = run("approve", str(package), "--role", "qa-lead", "--by", "bo", "--decision", "go", cwd=project)
    assert refused.returncode == 1 and "refusing to record a sign-off" in refused.stdout
    assert not (project / "artifacts" / names.READINESS_APPROVAL).exists()


def test_a_no_go_is_recorded_and_reported(project: Path) -> None:
    package = "artifacts/" + names.PACKAGE
    done = run("approve", package, "--role", "qa-lead", "--by", "bo", "--decision", "no-go", "--conditions", "p95 regression", cwd=project)
    assert done.returncode == 0
    assert "no-go: qa-lead: no-go by bo (p95 regression)" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["verify", "missing.zip"], "missing.zip: no such package file"),
        (["approve", "artifacts/" + names.PACKAGE, "--role", "qa-lead", "--by", "bo", "--decision", "go", "--expires", "soon"], "expected a duration"),
        (["approve", "artifacts/" + names.PACKAGE, "--role", "qa-lead", "--by", "bo", "--decision", "maybe"], "invalid choice"),
        (["verify", "artifacts/" + names.PACKAGE, "--config", "nope.yaml"], "nope.yaml: configuration file not found"),
    ],
    ids=["missing-package", "bad-duration", "bad-decision", "missing-config"],
)
def test_usage_errors_exit_2_with_a_message_and_no_traceback(project: Path, args: list[str], message: str) -> None:
    done = run(*args, cwd=project)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
