"""Gate 4 end to end: the package is sealed after the reports, the run awaits sign-off with its
own exit status, a sign-off on the digest lets Gate 4 alone pass without rebuilding."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile

import pytest

from pytest_predeploy.harness.gates import ExitStatus
from tests.project import lit
from tests.signoff_project import approve, project, record_directly


def test_full_run_awaits_signoff_then_gate4_alone_completes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREDEPLOY_OPERATOR", "rehearsal-operator")
    root = project(pytester)
    first = pytester.runpytest_inprocess("--predeploy-release=v1.0")
    assert first.ret == ExitStatus.AWAITING_SIGNOFF, first.stdout.str()
    first.stdout.fnmatch_lines(["*package: *PRE-DEPLOYMENT-PACKAGE.zip sha256 *", "*AWAITING SIGN-OFF: awaiting sign-off from: release-manager, qa-lead*"])
    artifacts = root / ".artifacts/pre-deployment"
    with zipfile.ZipFile(artifacts / "PRE-DEPLOYMENT-PACKAGE.zip") as archive:
        names = set(archive.namelist())
    assert {"pytest-report.html", "pytest-report.json", "pytest-junit.xml", "pre-deployment-manifest.json", "staging-parity-report.json"} <= names
    assert json.loads((artifacts / "pytest-report.json").read_text())["exitcode"] == ExitStatus.AWAITING_SIGNOFF
    digest_before = (artifacts / "PRE-DEPLOYMENT-PACKAGE.zip").read_bytes()

    # The operator of the rehearsal cannot sign off (approve refuses; written directly, it does not count); others can.
    refused = approve(root, "release-manager", "ops")
    assert refused.returncode == 1 and "ran the rehearsal (rehearsal-operator)" in refused.stdout
    record_directly(root, "release-manager", "ops@example.com", "ops")
    again = pytester.runpytest_inprocess("--predeploy-release=v1.0", "gates/test_gate4_readiness.py")
    assert again.ret == ExitStatus.AWAITING_SIGNOFF
    again.stdout.fnmatch_lines(["*awaiting sign-off from: release-manager, qa-lead*ran the rehearsal*"])

    assert approve(root, "release-manager", "riley").returncode == 0
    assert approve(root, "qa-lead", "quinn").returncode == 0
    final = pytester.runpytest_inprocess("--predeploy-release=v1.0", "gates/test_gate4_readiness.py")
    assert final.ret == ExitStatus.GO, final.stdout.str()
    final.stdout.fnmatch_lines([lit("*[PROTOCOL COMPLETE] - Pre-deployment readiness approved. Ready for Protocol 11 (Production Deployment).*")])
    assert (artifacts / "PRE-DEPLOYMENT-PACKAGE.zip").read_bytes() == digest_before  # reused, not rebuilt

    # From the package alone (no repository, no config): the signers file sealed in it checks the sign-offs.
    elsewhere = root.parent / "reviewer-download"
    elsewhere.mkdir()
    for name in ("PRE-DEPLOYMENT-PACKAGE.zip", "readiness-approval.json"):
        shutil.copy(artifacts / name, elsewhere / name)
    alone = subprocess.run(
        [sys.executable, "-m", "pytest_predeploy", "verify", "PRE-DEPLOYMENT-PACKAGE.zip"], cwd=elsewhere, capture_output=True, text=True, timeout=60
    )
    assert alone.returncode == 0, alone.stdout + alone.stderr
    assert "signers: the copy of the signers file sealed in the package" in alone.stdout
    verified = [line for line in alone.stdout.splitlines() if line.startswith("  sign-off [current]") and "signature verified" in line]
    assert any("release-manager: go by Riley Manager" in line for line in verified) and any("qa-lead: go by Quinn QA" in line for line in verified), (
        alone.stdout
    )


def test_no_go_signoff_fails_gate4(pytester: pytest.Pytester) -> None:
    root = project(pytester)
    assert pytester.runpytest_inprocess("--predeploy-release=v1.0").ret == ExitStatus.AWAITING_SIGNOFF
    assert approve(root, "qa-lead", "quinn", "no-go").returncode == 0
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", "gates/test_gate4_readiness.py")
    assert result.ret == ExitStatus.NO_GO
    result.stdout.fnmatch_lines(["*rejected at readiness review*", "*qa-lead: no-go by Quinn QA*"])


def test_halted_run_builds_no_package_and_keeps_evidence(pytester: pytest.Pytester) -> None:
    drift = "import json, sys\nopen(sys.argv[1], 'w').write(json.dumps({'drift': 2}))\nsys.exit(1)\n"
    root = project(pytester, parity=drift)
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0")
    assert result.ret == ExitStatus.NO_GO
    artifacts = root / ".artifacts/pre-deployment"
    assert not (artifacts / "PRE-DEPLOYMENT-PACKAGE.zip").exists()
    assert (artifacts / "staging-parity-report.json").exists() and (artifacts / "pytest-report.html").exists()


def test_gate4_alone_without_a_passed_rehearsal_builds_nothing(pytester: pytest.Pytester) -> None:
    root = project(pytester)
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", "gates/test_gate4_readiness.py")
    assert result.ret == ExitStatus.NO_GO
    result.stdout.fnmatch_lines(
        ["*step 'package' failed: not built: only a full run of the protocol seals a package*Gate 1 'approvals' not judged in this run*"]
    )
    assert not (root / ".artifacts/pre-deployment/PRE-DEPLOYMENT-PACKAGE.zip").exists()


def test_unsigned_or_one_person_signoffs_do_not_complete(pytester: pytest.Pytester) -> None:
    root = project(pytester)
    assert pytester.runpytest_inprocess("--predeploy-release=v1.0").ret == ExitStatus.AWAITING_SIGNOFF
    # A hand-written sign-off naming Mallory for both roles, and one naming a listed reviewer.
    record_directly(root, "release-manager", "Mallory", None)
    record_directly(root, "qa-lead", "Mallory", None)
    record_directly(root, "qa-lead", "Quinn QA", None)
    # One person signs both required roles with their own, listed key.
    assert approve(root, "release-manager", "ana").returncode == 0
    assert approve(root, "qa-lead", "ana").returncode == 0
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", "gates/test_gate4_readiness.py")
    assert result.ret == ExitStatus.AWAITING_SIGNOFF, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*awaiting sign-off from: qa-lead*qa-lead go by Mallory does not count: recorded without a signature*"
            "qa-lead sign-off by Ana Release does not count: they already sign release-manager*",
        ]
    )
    assert approve(root, "qa-lead", "quinn").returncode == 0
    assert pytester.runpytest_inprocess("--predeploy-release=v1.0", "gates/test_gate4_readiness.py").ret == ExitStatus.GO
