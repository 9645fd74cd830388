"""--predeploy-interactive on a terminal: the protocol's two yes/no questions. Driven through a
real pseudo-terminal; without one (CI) nothing ever waits for input."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.project import GATES, base_config, make_complete_project, make_project
from tests.signoff_project import PARITY_CLEAN

# Drift on the first comparison, clean after "remediation" (the second run).
PARITY_REMEDIATED = """
import json, pathlib, sys
runs = pathlib.Path("runs")
count = int(runs.read_text()) + 1 if runs.exists() else 1
runs.write_text(str(count))
open(sys.argv[1], "w").write(json.dumps({"drift": 0 if count > 1 else 2}))
sys.exit(0 if count > 1 else 1)
"""


def run_on_terminal(root: Path, args: list[str], answers: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    """Run pytest on a pty in ``root``; answer each question whose text appears."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.chdir(root)
        os.execv(sys.executable, [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args])
    output, pending, deadline = b"", dict(answers), time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                output += chunk
                for question, answer in list(pending.items()):
                    if question.encode() in output and output.rstrip().endswith(b"(yes/no)"):
                        os.write(fd, answer.encode() + b"\n")
                        del pending[question]
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode("utf-8", "replace")


def project(pytester: pytest.Pytester) -> Path:
    gates = {"test_gate1_intake.py": GATES["test_gate1_intake.py"], "test_gate2_rehearsal.py": GATES["test_gate2_rehearsal.py"]}
    return make_project(pytester, parity_script=PARITY_REMEDIATED, gates=gates)


def test_drift_alert_yes_reruns_the_comparison_once(pytester: pytest.Pytester) -> None:
    root = project(pytester)
    status, out = run_on_terminal(root, ["--predeploy-release=v1.0", "--predeploy-interactive"], {"[DRIFT ALERT]": "yes"})
    assert "[DRIFT ALERT] Staging parity check failed. Confirm remediation applied before continuing? (yes/no)" in out
    assert (root / "runs").read_text() == "2"
    assert status == 11, out[-2000:]  # gates 1-2 passed; fake gates bind no declared criterion: not a verdict


def test_drift_alert_no_halts(pytester: pytest.Pytester) -> None:
    root = project(pytester)
    status, out = run_on_terminal(root, ["--predeploy-release=v1.0", "--predeploy-interactive"], {"[DRIFT ALERT]": "no"})
    assert (root / "runs").read_text() == "1"
    assert status == 1 and "halted: Gate 1 (Intake Confirmation) failed" in out


def test_without_a_terminal_nothing_is_asked(pytester: pytest.Pytester) -> None:
    root = project(pytester)
    # A new session has no controlling terminal, as in CI.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--predeploy-release=v1.0", "--predeploy-interactive"],
        cwd=root,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        timeout=120,
    )
    assert result.returncode == 1 and "(yes/no)" not in result.stdout
    assert (root / "runs").read_text() == "1"


def test_readiness_review_prompt_records_a_signoff(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREDEPLOY_OPERATOR", "Pat Reviewer")
    # A real parity report: Gate 4 run alone re-checks the evidence sealed in the package.
    config = base_config(readiness={"required_roles": ["release-manager"], "forbid_self_approval": False, "allow_unsigned": True})
    root = make_complete_project(pytester, config=config, parity_script=PARITY_CLEAN)
    status, out = run_on_terminal(root, ["--predeploy-release=v1.0", "--predeploy-interactive"], {"[READINESS REVIEW]": "yes"})
    assert "[READINESS REVIEW] Pre-deployment package compiled. Approve handoff to Protocol 11? (yes/no)" in out
    assert status == 10, out[-2000:]
    approvals = json.loads((root / ".artifacts/pre-deployment/readiness-approval.json").read_text())
    predicate = approvals["signoffs"][0]["predicate"]
    assert (predicate["role"], predicate["approver"], predicate["decision"]) == ("release-manager", "Pat Reviewer", "go")
    final = pytester.runpytest_subprocess("--predeploy-release=v1.0", "gates/test_gate4_readiness.py")
    assert final.ret == 0
