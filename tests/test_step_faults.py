"""A step script that misbehaves fails its gate with a message naming the step, the exit status
and the transcript, with no traceback from our code and no process left behind."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import psutil
import pytest

from pytest_predeploy.rehearsal.deploy import rehearse_deployment
from pytest_predeploy.targets import processes
from tests.project import GATES, base_config, make_project
from tests.staging_support import StagingProject, service, staging  # noqa: F401  (fixture)
from tests.waiting import alive, pids_in, poll

STRICT_GATE1 = {
    "test_gate1_intake.py": """
        import pytest
        from pydantic import BaseModel, ConfigDict
        from pytest_predeploy.harness.gates import load
        pytestmark = pytest.mark.gate(1, "Intake Confirmation")

        class Parity(BaseModel):
            model_config = ConfigDict(extra="forbid")
            drift: int

        @pytest.mark.must
        def test_parity_clean(parity):
            assert load(parity, Parity).drift == 0
    """,
    "test_gate2_rehearsal.py": GATES["test_gate2_rehearsal.py"],
}

FAULTS = {
    "non-zero exit": ("import sys; print('boom'); sys.exit(3)", "parity.py failed (exit 3)"),
    "killed by a signal": ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "parity.py killed by SIGKILL"),
    "hangs while a grandchild holds stdout": (
        "import os, subprocess, time\nc = subprocess.Popen(['sleep', '300'])\nopen('pids', 'w').write(f'{os.getpid()}\\n{c.pid}\\n')\ntime.sleep(300)",
        "parity.py timed out after 1.5s",
    ),
    "ignores SIGTERM": (
        "import os, signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nopen('pids', 'w').write(f'{os.getpid()}\\n')\ntime.sleep(300)",
        "parity.py timed out after 1.5s",
    ),
    "invalid JSON artifact": ("import sys; open(sys.argv[1], 'w').write('{not json')", "staging-parity-report.json: not valid JSON"),
    "artifact with a wrong field": (
        "import sys; open(sys.argv[1], 'w').write('{\"drift\": \"lots\"}')",
        "staging-parity-report.json: does not match Parity: drift:",
    ),
    "no artifact written": ("print('forgot to write the report')", "parity.py (success) wrote no artifact at"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_failing_step_fails_its_gate_with_a_clear_message(pytester: pytest.Pytester, fault: str) -> None:
    body, expected = FAULTS[fault]
    config = base_config(steps={"parity": {"command": "{python} parity.py {output}", "timeout": "1.5s", "kill_grace": "0.5s"}})
    root = make_project(pytester, config=config, parity_script=body, gates=STRICT_GATE1)
    result = pytester.runpytest("--predeploy-release=v1.0")
    out = result.stdout.str()
    assert result.ret == 1
    assert expected in out
    if "wrote no artifact" not in expected and "JSON" not in fault and "field" not in fault:
        assert "step 'parity' failed" in out
        assert "transcript: .artifacts/pre-deployment/transcripts/parity.log" in out or "transcripts/parity.log" in out
    assert "halted: Gate 1 (Intake Confirmation) failed" in out
    assert "Traceback" not in out and "pytest_predeploy/" not in out
    poll(lambda: not [pid for pid in pids_in(root / "pids") if alive(pid)], "the step's processes are gone", deadline=5)


@pytest.mark.parametrize(
    "command, expected",
    [
        ("no-such-tool-predeploy {output}", "not run: executable not found: no-such-tool-predeploy"),
        ("./parity.py {output}", "not run: not executable: ./parity.py"),
    ],
)
def test_unrunnable_step_script_is_named(pytester: pytest.Pytester, command: str, expected: str) -> None:
    root = make_project(pytester, config=base_config(steps={"parity": {"command": command}}), gates=STRICT_GATE1)
    os.chmod(root / "parity.py", 0o644)
    result = pytester.runpytest("--predeploy-release=v1.0")
    assert result.ret == 1
    result.stdout.fnmatch_lines([f"*step 'parity' failed: *{expected}*", "*transcript: *parity.log*"])
    assert "Traceback" not in result.stdout.str()


def test_non_utf8_output_does_not_break_the_step(pytester: pytest.Pytester) -> None:
    body = "import json, sys\nsys.stdout.buffer.write(b'\\xff\\xfe not utf-8\\n')\nopen(sys.argv[1], 'w').write(json.dumps({'drift': 0}))"
    root = make_project(pytester, parity_script=body, gates=STRICT_GATE1)
    result = pytester.runpytest("--predeploy-release=v1.0")
    assert result.ret == 11  # the step ran; fake gates bind no declared criterion: never GO
    assert "\\xff\\xfe not utf-8" in (root / ".artifacts/pre-deployment/transcripts/parity.log").read_text()


# One runs; one is too long for exec (an argument over 128 KiB). A format width cannot make one
# any more (issue 30, item 11): the config is bounded (1 MiB), and so is what it can say.
@pytest.mark.parametrize("width", [100_000, 200_000])
def test_a_huge_command_line_is_cut_in_everything_we_write(pytester: pytest.Pytester, width: int) -> None:
    config = base_config(steps={"parity": {"command": f"{{python}} parity.py {{output}} {'x' * width}", "timeout": "20s"}})
    root = make_project(pytester, config, gates=STRICT_GATE1)
    result = pytester.runpytest("--predeploy-release=v1.0")
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    sizes = {path.name: path.stat().st_size for path in (root / ".artifacts").rglob("*") if path.is_file()}
    assert "parity.log" in sizes
    assert sum(sizes.values()) < 200_000, sizes
    assert "more characters)" in (root / ".artifacts/pre-deployment/transcripts/parity.log").read_text()


# -- issue 30, item 16b: what the evidence says about a bootstrap is what happened --------------


def test_a_failed_bootstrap_is_recorded_as_failed_not_as_bootstrapped(staging: StagingProject) -> None:
    staging.write(services=[service("api", inject={"v1": "crash"})])
    report = rehearse_deployment(staging.context("v2"))
    assert [(b.service, b.status) for b in report.bootstrap] == [("api", "failed")]
    assert "bootstrapped" not in report.summary_line() and "bootstrapped" not in report.bootstrap_note
    assert "bootstrap of v1 FAILED on api" in report.summary_line()
    assert report.bootstrap_note == "staging did not run v1 on api (staging was empty); giving it v1 failed on api, so the candidate was not deployed"


# -- issue 30, item 16c: a service's log is capped and rotated while it runs ---------------------

CHATTY_SERVICE = "import sys, time\nfor n in range(20000):\n    print(f'line {n:05d} ' + 'x' * 40)\nprint('LAST LINE', flush=True)\ntime.sleep(300)\n"


def test_a_chatty_service_log_is_capped_and_rotated_keeping_its_latest_lines(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "main.log"
    limit = 64 * 1024
    pid = processes.spawn([sys.executable, "-c", CHATTY_SERVICE], cwd=tmp_path, log=log, env=processes.service_environment({}), log_limit=limit).pid
    try:
        poll(lambda: log.exists() and b"LAST LINE" in log.read_bytes(), "the service printed its last line")
        assert processes.stop(pid, processes.start_ticks(pid), 5.0).how == "stopped"
    finally:
        if alive(pid):
            os.killpg(pid, signal.SIGKILL)
    rotated = log.with_name("main.log.1")
    assert log.stat().st_size <= limit and rotated.stat().st_size == limit  # ~1 MB printed, at most two caps kept
    assert sorted(p.name for p in log.parent.iterdir()) == ["main.log", "main.log.1"]
    assert rotated.read_bytes().split(b"\n")[-1] + log.read_bytes().split(b"\n")[0] in (rotated.read_bytes() + log.read_bytes())
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(log) in " ".join(p.info["cmdline"] or [])]  # its writer ended too


def test_sigterm_to_a_service_pid_still_stops_the_service_under_its_log_launcher(tmp_path: Path) -> None:
    log = tmp_path / "main.log"
    script = "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: (print('bye', flush=True), sys.exit(0)))\nprint('up', flush=True)\ntime.sleep(300)\n"
    pid = processes.spawn([sys.executable, "-c", script], cwd=tmp_path, log=log, env=processes.service_environment({})).pid
    try:
        poll(lambda: log.exists() and b"up" in log.read_bytes(), "the service started")
        [service_pid] = [child.pid for child in psutil.Process(pid).children()]
        os.kill(pid, signal.SIGTERM)  # what `kill $(pid from the pid file)` does
        poll(lambda: not alive(service_pid) and not processes.is_running(pid, None), "the service and its launcher ended")
        assert log.read_text() == "up\nbye\n"  # its last words copied
        assert processes.exit_status(pid) == 0
    finally:
        if alive(pid):
            os.killpg(pid, signal.SIGKILL)
