"""Gate 4 alone judges the package it is asked to sign: the evidence sealed inside it, the gates
of the run that produced it, and whether anything it stands for changed since sealing. The
folder keeps the full run's reports; a Gate-4-only run writes its own beside them."""

from __future__ import annotations

import json
import textwrap
import zipfile
from pathlib import Path

import pytest

from pytest_predeploy.core.fields import Severity
from pytest_predeploy.core.runstate import RunState
from pytest_predeploy.harness.gates import ExitStatus
from pytest_predeploy.readiness.package import seal_package, verify_package
from pytest_predeploy.security import SecurityReport
from tests.project import COMPLETE_GATES
from tests.signoff_project import approve, git, parity_report, record_directly
from tests.signoff_project import project as signoff_project

#: The fake project's Gate 2, whose smoke test fails while a file named fail-smoke exists.
GATE2_FAILS_ON_REQUEST = COMPLETE_GATES["test_gate2_rehearsal.py"].replace(
    'evidence(predeploy, "staging-test-results.json")',
    'evidence(predeploy, "staging-test-results.json")\n            assert not __import__("os").path.exists("fail-smoke"), "smoke test test_checkout failed"',
)

CLEAN_SECURITY = SecurityReport(
    release="v1.0",
    environment="staging",
    blocking_severity=Severity.major,
    scanners=[],
    findings=[],
    blocking=False,
).model_dump_json(indent=2)

#: Writes a clean parity report and, as the audit would, a clean security report.
PARITY_AND_SECURITY = f"""
import os, sys
open(sys.argv[1], "w").write({parity_report()!r})
open(os.path.join(os.environ["PREDEPLOY_ARTIFACTS"], "security-compliance-report.json"), "w").write({CLEAN_SECURITY!r})
"""

GATE4 = ("--predeploy-release=v1.0", "gates/test_gate4_readiness.py")


def signed(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, parity: str | None = None) -> Path:
    """A fake project whose full run sealed the package, with both required sign-offs on it."""
    monkeypatch.setenv("PREDEPLOY_OPERATOR", "rehearsal-operator")
    root = signoff_project(pytester, **({"parity": parity} if parity else {}))
    (root / "gates" / "test_gate2_rehearsal.py").write_text(textwrap.dedent(GATE2_FAILS_ON_REQUEST))
    first = pytester.runpytest_inprocess("--predeploy-release=v1.0")
    assert first.ret == ExitStatus.AWAITING_SIGNOFF, first.stdout.str()
    assert approve(root, "release-manager", "riley").returncode == 0
    assert approve(root, "qa-lead", "quinn").returncode == 0
    return root


def artifacts_of(root: Path) -> Path:
    return root / ".artifacts/pre-deployment"


def test_gate4_alone_writes_its_own_reports_beside_the_full_runs(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    root = signed(pytester, monkeypatch)
    artifacts = artifacts_of(root)
    checklist = (artifacts / "deployment-checklist.md").read_bytes()
    result = pytester.runpytest_inprocess(*GATE4)
    assert result.ret == ExitStatus.GO, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*reports of this Gate 4 run: gate4-pytest-report.html, gate4-pytest-report.json, gate4-pytest-junit.xml, gate4-predeploy-run.json*",
            "*reports of the run that produced the package (the reviewers' copy, sealed in it): pytest-report.html*",
        ]
    )
    with zipfile.ZipFile(artifacts / "PRE-DEPLOYMENT-PACKAGE.zip") as archive:
        for name in ("pytest-report.html", "pytest-report.json", "pytest-junit.xml", "predeploy-run.json"):
            assert (artifacts / name).read_bytes() == archive.read(name), f"{name} no longer matches the package's copy"
    own = json.loads((artifacts / "gate4-pytest-report.json").read_text())
    assert "gate4-pytest-report.html" in own["predeploy"]["report_files"] and "reviewers' copy" in own["predeploy"]["report_files"]
    assert "predeploy-report-files" in (artifacts / "gate4-pytest-report.html").read_text()
    assert {t["nodeid"].split("::")[0] for t in own["tests"]} == {"gates/test_gate4_readiness.py"}
    assert json.loads((artifacts / "gate4-predeploy-run.json").read_text())["gates"]["gate4"]["status"] == "passed"
    assert (artifacts / "gate4-pytest-report.html").is_file() and (artifacts / "gate4-pytest-junit.xml").is_file()
    assert (artifacts / "deployment-checklist.md").read_bytes() == checklist
    assert verify_package(artifacts / "PRE-DEPLOYMENT-PACKAGE.zip").ok


def test_gate4_alone_after_a_failed_gate2_rerun_is_not_go(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    root = signed(pytester, monkeypatch)
    package = (artifacts_of(root) / "PRE-DEPLOYMENT-PACKAGE.zip").read_bytes()
    (root / "fail-smoke").write_text("yes")
    assert pytester.runpytest_inprocess("--predeploy-release=v1.0", "gates/test_gate2_rehearsal.py").ret == ExitStatus.NO_GO
    result = pytester.runpytest_inprocess(*GATE4)
    assert result.ret == ExitStatus.NO_GO, result.stdout.str()
    result.stdout.fnmatch_lines(["*package is stale: *; rerun the protocol*", "*Gate 2 ran after sealing (a run started at *"])
    assert "PROTOCOL COMPLETE" not in result.stdout.str()
    assert (artifacts_of(root) / "PRE-DEPLOYMENT-PACKAGE.zip").read_bytes() == package  # kept for inspection


def test_changed_config_after_sealing_makes_the_package_stale(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    root = signed(pytester, monkeypatch)
    with open(root / "predeploy.yaml", "a") as handle:
        handle.write("# edited after sealing\n")
    result = pytester.runpytest_inprocess(*GATE4)
    assert result.ret == ExitStatus.NO_GO, result.stdout.str()
    result.stdout.fnmatch_lines(["*package is stale: predeploy.yaml changed after sealing*rerun the protocol*"])


def test_changed_release_source_after_sealing_makes_the_package_stale(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREDEPLOY_OPERATOR", "rehearsal-operator")
    root = signoff_project(pytester)
    config = (root / "predeploy.yaml").read_text().replace("- name: api\n", "- name: api\n  source: service\n")
    (root / "predeploy.yaml").write_text(config)
    (root / "service").mkdir()
    (root / "service" / "app.py").write_text("VERSION = 1\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "the service")
    assert pytester.runpytest_inprocess("--predeploy-release=v1.0").ret == ExitStatus.AWAITING_SIGNOFF
    assert approve(root, "release-manager", "riley").returncode == 0
    assert approve(root, "qa-lead", "quinn").returncode == 0
    (root / "service" / "app.py").write_text("VERSION = 2\n")
    result = pytester.runpytest_inprocess(*GATE4)
    assert result.ret == ExitStatus.NO_GO, result.stdout.str()
    result.stdout.fnmatch_lines(["*package is stale: the release's source changed after sealing*"])


def test_evidence_rewritten_after_sealing_is_stale_and_the_checklist_is_not_appended(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    root = signed(pytester, monkeypatch)
    artifacts = artifacts_of(root)
    checklist = (artifacts / "deployment-checklist.md").read_bytes()
    (artifacts / "staging-parity-report.json").write_text(parity_report(target="production-2"))
    result = pytester.runpytest_inprocess(*GATE4)
    assert result.ret == ExitStatus.NO_GO, result.stdout.str()
    result.stdout.fnmatch_lines(["*staging-parity-report.json changed after sealing*"])
    assert (artifacts / "deployment-checklist.md").read_bytes() == checklist


def test_consistently_repacked_package_with_a_blocking_security_report_is_not_go(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    root = signed(pytester, monkeypatch, parity=PARITY_AND_SECURITY)
    artifacts = artifacts_of(root)
    path = artifacts / "PRE-DEPLOYMENT-PACKAGE.zip"
    manifest = verify_package(path).manifest
    assert manifest is not None and "security-compliance-report.json" in {e.path for e in manifest.entries}
    # Forge: a blocking report, resealed the way seal_package seals, both sign-offs on the new digest.
    report = json.loads((artifacts / "security-compliance-report.json").read_text())
    report["blocking"] = True
    (artifacts / "security-compliance-report.json").write_text(json.dumps(report, indent=2))
    (artifacts / "readiness-approval.json").unlink()
    forged = seal_package(
        artifacts,
        release="v1.0",
        previous_release=manifest.previous_release,
        git_commit=manifest.git_commit,
        config_digest=manifest.config_digest,
        gate_outcomes=manifest.gate_outcomes,
        source_date_epoch=manifest.source_date_epoch,
    )
    assert verify_package(path).ok
    # approve judges it as Gate 4 does and refuses; signed all the same, Gate 4 refuses it too.
    refused = approve(root, "release-manager", "riley")
    assert refused.returncode == 1 and "package is stale: security-compliance-report.json in the package fails Gate 3" in refused.stdout
    record_directly(root, "release-manager", "Riley Manager", "riley")
    record_directly(root, "qa-lead", "Quinn QA", "quinn")
    result = pytester.runpytest_inprocess(*GATE4)
    assert result.ret == ExitStatus.NO_GO, result.stdout.str()
    result.stdout.fnmatch_lines(["*package is stale: security-compliance-report.json in the package fails Gate 3: *blocking is true*"])
    assert "PROTOCOL COMPLETE" not in result.stdout.str()
    assert path.read_bytes() == forged.path.read_bytes() and verify_package(path).sha256 == forged.sha256


def test_gate4_alone_never_takes_the_run_state_for_the_evidence(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # No package yet: gates 1-3 "passed" by an edited run state, while the evidence says no.
    monkeypatch.setenv("PREDEPLOY_OPERATOR", "rehearsal-operator")
    root = signoff_project(pytester)
    artifacts = artifacts_of(root)
    artifacts.mkdir(parents=True)
    (artifacts / "staging-parity-report.json").write_text(parity_report(passed=False))
    state = RunState(release="v1.0", environment="staging", config_digest="0" * 64, run_by="someone")
    gate = {"name": "x", "status": "passed"}
    state = RunState.model_validate({**state.model_dump(mode="json"), "gates": {f"gate{n}": gate for n in (1, 2, 3)}})
    (artifacts / "predeploy-run.json").write_text(state.model_dump_json())
    result = pytester.runpytest_inprocess(*GATE4)
    assert result.ret == ExitStatus.NO_GO, result.stdout.str()
    result.stdout.fnmatch_lines(["*not built: only a full run of the protocol seals a package*Gate 1 'approvals' not judged in this run*"])
    assert not (artifacts / "PRE-DEPLOYMENT-PACKAGE.zip").exists()
