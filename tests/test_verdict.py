"""Verdicts that cannot go stale: a gate passes only when all its MUST tests passed in that run,
an interrupted gate says so, and every blocking reason is shown in full."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pytest_predeploy.harness.gates import ExitStatus
from tests.project import base_config, json_report, make_project
from tests.signoff_project import project as signoff_project
from tests.waiting import poll

REPO = Path(__file__).resolve().parents[1]

WAITING_GATE = {
    "test_gate1_intake.py": """
        import pytest
        pytestmark = pytest.mark.gate(1, "Intake Confirmation")

        @pytest.mark.must
        def test_parity_clean(parity):
            pass
    """,
    "test_gate2_rehearsal.py": """
        import pathlib, time, pytest
        pytestmark = pytest.mark.gate(2, "Deployment Rehearsal")

        @pytest.mark.must
        def test_deployed(predeploy):
            # Stands for a long step: the run is cancelled while it is under way.
            pathlib.Path("started").write_text("yes")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                time.sleep(0.05)

        @pytest.mark.must
        def test_smoke(predeploy):
            pass
    """,
}


def _wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 60) -> None:
    def started() -> bool:
        assert process.poll() is None, "pytest ended before the gate test started"
        return path.exists()

    poll(started, f"{path} appears", deadline=timeout)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_gate_cancelled_mid_run_is_interrupted_never_passed(pytester: pytest.Pytester, signum: int) -> None:
    root = make_project(pytester, gates=WAITING_GATE)
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--predeploy-release=v1.0"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for(root / "started", process)
        process.send_signal(signum)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == ExitStatus.INTERRUPTED, out
    state = json.loads((root / ".artifacts/pre-deployment/predeploy-run.json").read_text())
    assert state["gates"]["gate1"]["status"] == "passed"
    assert state["gates"]["gate2"]["status"] == "interrupted"
    assert "Gate 2  Deployment Rehearsal" in out and "INTERRUPTED" in out
    assert "[PHASE 2 COMPLETE]" not in out
    assert not [line for line in out.splitlines() if line.startswith("Gate 2") and "PASSED" in line]


def test_skipped_must_test_does_not_pass_its_gate(pytester: pytest.Pytester) -> None:
    gates = {
        "test_gate1_intake.py": """
        import pytest
        pytestmark = pytest.mark.gate(1, "Intake Confirmation")

        @pytest.mark.must
        def test_parity_clean(parity):
            pytest.skip("scanner not installed")
    """,
        "test_gate2_rehearsal.py": """
        import pytest
        pytestmark = pytest.mark.gate(2, "Deployment Rehearsal")

        @pytest.mark.must
        def test_deployed():
            pass
    """,
    }
    root = make_project(pytester, gates=gates)
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0")
    assert result.ret == ExitStatus.NO_GO, result.stdout.str()
    result.stdout.fnmatch_lines(["*Gate 1*FAILED*test_parity_clean: skipped*scanner not installed*"])
    state = json.loads((root / ".artifacts/pre-deployment/predeploy-run.json").read_text())
    assert state["gates"]["gate1"]["status"] == "failed"
    assert state["gates"]["gate2"]["status"] == "halted"


def test_every_blocking_reason_is_shown_in_full(pytester: pytest.Pytester) -> None:
    gates = {
        "test_gate1_intake.py": """
        import pytest
        from pytest_predeploy.harness.gates import require
        pytestmark = pytest.mark.gate(1, "Intake Confirmation")

        @pytest.mark.must
        def test_parity_clean(parity):
            require(["first-problem: db.host differs", "second-problem: payments.key reused",
                     "third-problem: cache.size removed"], "critical drift:")

        @pytest.mark.must
        def test_assertion_message():
            assert False, "headline of the assertion\\nsecond line of the assertion"
    """
    }
    root = make_project(pytester, gates=gates)
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0")
    assert result.ret == ExitStatus.NO_GO
    summary = result.stdout.str().split("pre-deployment gates: release v1.0", 1)[1]
    for problem in ("first-problem", "second-problem", "third-problem"):
        assert problem in summary, summary
    reason = json_report(root)["predeploy"]["gates"]["gate1"]["reason"]
    assert reason.splitlines() == [
        "test_parity_clean: critical drift:",
        "  first-problem: db.host differs",
        "  second-problem: payments.key reused",
        "  third-problem: cache.size removed",
    ]
    state = json.loads((root / ".artifacts/pre-deployment/predeploy-run.json").read_text())
    assert state["gates"]["gate1"]["reason"] == reason
    html = (root / ".artifacts/pre-deployment/pytest-report.html").read_text()
    gate_row = html.split("data-gate='1'", 1)[1].split("</tr>", 1)[0]
    assert "third-problem: cache.size removed" in gate_row


def test_missing_previous_release_is_a_usage_error_before_anything_runs(pytester: pytest.Pytester) -> None:
    config = base_config()
    del config["previous_release"]
    root = make_project(pytester, config=config, gates={})
    shutil.copy(REPO / "gates" / "test_gate3_rollback_security.py", root / "gates")
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0")
    assert result.ret == ExitStatus.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines(
        [
            "ERROR: *predeploy.yaml: previous_release is not set, and gates/test_gate3_rollback_security.py::test_rollback_rehearsed_for_every_service needs it (the rollback rehearsal returns staging to it); set previous_release in the config or pass --predeploy-previous=TAG"
        ]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    artifacts = root / ".artifacts/pre-deployment"
    assert not (artifacts / "transcripts").exists() and not (artifacts / "predeploy-run.json").exists()


def test_manifest_generated_at_is_when_the_run_happened(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    root = signoff_project(pytester)
    before = datetime.now(UTC)
    assert pytester.runpytest_inprocess("--predeploy-release=v1.0").ret == ExitStatus.AWAITING_SIGNOFF
    after = datetime.now(UTC)
    artifacts = root / ".artifacts/pre-deployment"
    manifest = json.loads((artifacts / "pre-deployment-manifest.json").read_text())
    assert before <= datetime.fromisoformat(manifest["generated_at"].replace("Z", "+00:00")) <= after
    assert manifest["source_date_epoch"] == 1700000000
    with zipfile.ZipFile(artifacts / "PRE-DEPLOYMENT-PACKAGE.zip") as archive:
        assert {info.date_time for info in archive.infolist()} == {(2023, 11, 14, 22, 13, 20)}
