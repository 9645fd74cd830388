"""Steps that need nothing from staging run beside the rehearsal (``gates.overlap``), and halting
still means halting: a copy of the embedded demo run by pytest as a subprocess (signals,
process groups and staging need a real process), with a security audit that records its
processes and works until it is stopped."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from pytest_predeploy.config import load_config
from pytest_predeploy.harness.gates import ExitStatus
from pytest_predeploy.targets.local import current_release
from tests.fake_audit import audit_script
from tests.staging_support import copy_demo, deploy_demo_release, processes_under
from tests.waiting import alive, poll

REPO = Path(__file__).resolve().parents[1]

#: A security audit that starts a child in its group and a daemon outside it, begins its report,
#: records every pid (in audit.pids beside it), then works for two minutes (tests/fake_audit.py).
SLOW_AUDIT = audit_script(
    pids='os.path.join(os.path.dirname(os.path.abspath(__file__)), "audit.pids")', report="sys.argv[1]", tmp_tag="audit", line="[security] scanning"
)


class Demo:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.artifacts = root / ".artifacts" / "pre-deployment"
        self.pids = root / "audit.pids"

    @property
    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = yaml.safe_load((self.root / "predeploy.yaml").read_text())
        return config

    def save(self, config: dict[str, Any]) -> None:
        (self.root / "predeploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    def slow_audit(self) -> None:
        (self.root / "slow_audit.py").write_text(textwrap.dedent(SLOW_AUDIT))
        config = self.config
        config.setdefault("steps", {})["security"] = {"command": "{python} slow_audit.py {output}", "kill_grace": "2s"}
        self.save(config)

    def quick_audit(self) -> None:
        """The demo's real audit without its three slow scanners (some 30 s of the run): what these
        tests pin is when the audit runs, not what it finds (test_security*.py runs every scanner)."""
        config = self.config
        config.setdefault("security", {}).update({name: {"enabled": False} for name in ("bandit", "secrets", "sbom")})
        self.save(config)

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--predeploy-release=v1.2", *args]

    def pytest(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), cwd=self.root, capture_output=True, text=True, timeout=timeout)

    def audit_pids(self) -> list[int]:
        return [int(line) for line in self.pids.read_text().split()] if self.pids.exists() else []

    def current(self, service: str) -> str | None:
        return current_release(load_config(self.root / "predeploy.yaml"), "staging", service)

    def security_files(self) -> list[str]:
        return sorted(path.name for path in self.artifacts.glob("*") if "security-compliance-report" in path.name or "sbom" in path.name)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    project = Demo(copy_demo(tmp_path / "demo-project"))
    yield project
    leftovers = processes_under(tmp_path)
    names = []
    for process in leftovers:
        try:
            names.append(" ".join(process.cmdline()))
            process.kill()
        except psutil.Error:
            pass  # ended meanwhile
    assert not names, f"processes left running: {names}"


def test_gate1_failure_stops_the_audit_running_beside_it(demo: Demo) -> None:
    demo.slow_audit()
    infra = demo.root / "demo/environments/staging/infrastructure.yaml"
    data = yaml.safe_load(infra.read_text())
    data["database"]["engine"] = "mysql"  # critical drift: Gate 1 fails
    infra.write_text(yaml.safe_dump(data))

    result = demo.pytest("-rs")

    assert result.returncode == ExitStatus.NO_GO, result.stdout[-3000:]
    # The audit was started beside Gate 1 (with steps in sequence it would never have run)...
    assert "[BACKGROUND] security: started beside the rehearsal (Gate 3 takes its result)" in result.stdout
    assert len(demo.audit_pids()) == 3, result.stdout[-3000:]
    # ...and stopped with everything it started, reported as halted, leaving no report behind.
    assert "[HALTED] security: stopped while running (halted: Gate 1 (Intake Confirmation) failed)" in result.stdout
    assert [pid for pid in demo.audit_pids() if alive(pid)] == []
    assert demo.security_files() == []
    assert result.stdout.count("halted: Gate 1 (Intake Confirmation) failed") >= 3
    assert "[PHASE 2 START]" not in result.stdout


def test_ctrl_c_during_the_overlap_leaves_staging_on_the_previous_release(demo: Demo) -> None:
    deploy_demo_release(demo.root, "v1.1")
    demo.slow_audit()
    config = demo.config
    # The candidate's deploy stops right after `current` was switched and the new process started.
    config["steps"]["deploy"] = {
        "command": "env PREDEPLOY_STAGING_PAUSE=started bash scripts/deploy_backend.sh --env {env} --release {release} --service {service}"
    }
    demo.save(config)
    process = subprocess.Popen(demo.argv(), cwd=demo.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        poll(lambda: demo.current("api") == "v1.2", "the candidate is being deployed")
        poll(lambda: len(demo.audit_pids()) == 3, "the audit runs beside the deploy", deadline=30)
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == ExitStatus.INTERRUPTED, out[-3000:]
    for service in ("api", "worker"):
        assert demo.current(service) == "v1.1"
    assert "[HALTED] security: stopped while running (the run was interrupted)" in out
    assert [pid for pid in demo.audit_pids() if alive(pid)] == []
    assert demo.security_files() == []
    assert not (demo.artifacts / "PRE-DEPLOYMENT-PACKAGE.zip").exists()


def test_a_gate_run_alone_starts_only_the_steps_it_needs(demo: Demo) -> None:
    demo.quick_audit()
    gate3 = demo.pytest("gates/test_gate3_rollback_security.py")
    assert gate3.returncode == ExitStatus.NOT_JUDGED, gate3.stdout[-3000:]  # one gate alone: not a verdict
    # Gate 3 alone deploys first (rollback needs a deployment): the audit runs beside that.
    assert "[BACKGROUND] security: started beside the rehearsal (Gate 3 takes its result)" in gate3.stdout
    assert "[BACKGROUND] intake" not in gate3.stdout
    started = gate3.stdout.index("[BACKGROUND] security: started")
    assert started < gate3.stdout.index("[STAGING] api: deploy v1.2")

    (demo.artifacts / "transcripts" / "security.log").unlink()
    gate2 = demo.pytest("gates/test_gate2_rehearsal.py")
    assert gate2.returncode == ExitStatus.NOT_JUDGED, gate2.stdout[-3000:]
    assert "[BACKGROUND]" not in gate2.stdout
    assert not (demo.artifacts / "transcripts" / "security.log").exists()


def test_overlap_false_runs_every_step_in_sequence(demo: Demo) -> None:
    demo.quick_audit()
    config = demo.config
    config["gates"] = {"overlap": False}
    demo.save(config)
    result = demo.pytest("gates/test_gate3_rollback_security.py")
    assert result.returncode == ExitStatus.NOT_JUDGED, result.stdout[-3000:]
    assert "[BACKGROUND]" not in result.stdout
    # The audit ran when Gate 3's test asked for it: after the rollback rehearsal.
    assert result.stdout.index("[AUTOMATION] run_security_audit.py executed: success") > result.stdout.index("[AUTOMATION] rollback_backend.sh executed")


def test_a_step_beside_the_rehearsal_streams_its_first_lines_and_keeps_all_in_its_transcript(demo: Demo) -> None:
    (demo.root / "chatty_audit.py").write_text("import sys\nfor n in range(1000):\n    print(f'finding {n} of 1000')\nsys.exit(2)\n")
    config = demo.config
    config.setdefault("steps", {})["security"] = {"command": "{python} chatty_audit.py"}
    demo.save(config)
    result = demo.pytest("gates/test_gate3_rollback_security.py::test_security_and_compliance_scans_cleared")
    assert result.returncode == ExitStatus.NO_GO, result.stdout[-3000:]
    shown = [line for line in result.stdout.splitlines() if line.startswith("[security] finding ")]
    assert (shown[0], len(shown)) == ("[security] finding 0 of 1000", 100)
    assert "[security] ... more output in transcripts/security.log" in result.stdout
    assert "step 'security' failed: chatty_audit.py failed (exit 2)" in result.stdout
    assert "finding 999 of 1000" in (demo.artifacts / "transcripts" / "security.log").read_text()
