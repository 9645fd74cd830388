"""The whole protocol on a copy of the embedded demo: real deploys of the real demo service to
the local staging target, real scans, the real package. Each test runs pytest as a subprocess
in its own copy and checks that nothing is left running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from filelock import FileLock

from pytest_predeploy.config import load_config
from pytest_predeploy.harness.gates import ExitStatus
from pytest_predeploy.targets.local import current_release
from tests.staging_support import copy_demo, deploy_demo_release, processes_under
from tests.waiting import poll

REPO = Path(__file__).resolve().parents[1]


class Demo:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.artifacts = root / ".artifacts" / "pre-deployment"

    @property
    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = yaml.safe_load((self.root / "predeploy.yaml").read_text())
        return config

    def save(self, config: dict[str, Any]) -> None:
        (self.root / "predeploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    def pytest(self, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--predeploy-release=v1.2", *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )

    def current(self, service: str) -> str | None:
        return current_release(load_config(self.root / "predeploy.yaml"), "staging", service)

    def started(self, service: str, release: str) -> bool:
        """A process of ``release`` was started for ``service`` (its run record is written)."""
        records = (self.root / ".staging" / "staging" / service / "run").glob("*.json")
        return any(json.loads(path.read_text()).get("release") == release for path in records)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    project = Demo(copy_demo(tmp_path / "demo-project"))
    yield project
    leftovers = processes_under(tmp_path)
    for process in leftovers:
        process.kill()
    assert not leftovers, f"processes left running: {[p.cmdline() for p in leftovers]}"


def test_demo_runs_every_gate_and_awaits_signoff(demo: Demo) -> None:
    result = demo.pytest()
    assert result.returncode == ExitStatus.AWAITING_SIGNOFF, result.stdout[-4000:]
    for line in (
        "[PHASE 1 START]",
        "[PHASE 2 START]",
        "[PHASE 3 START]",
        "[PHASE 4 START]",
        "[AUTOMATION] compare_environments.py executed: success",
        "[AUTOMATION] deploy_backend.sh executed: success (api)",
        "[AUTOMATION] run_smoke_tests.py executed: success",
        "[AUTOMATION] rollback_backend.sh executed: success (worker)",
        "[AUTOMATION] run_security_audit.py executed: success",
        "[PHASE 3 COMPLETE] - Rollback & Security finished successfully.",
    ):
        assert line in result.stdout, line
    deployment = json.loads((demo.artifacts / "staging-deployment-report.json").read_text())
    assert deployment["outcome"] == "succeeded"
    assert json.dumps(deployment).count("bootstrap") >= 1  # empty staging: the previous release was bootstrapped first
    rollback = json.loads((demo.artifacts / "rollback-verification-report.json").read_text())
    assert [(s["final"]["release"], s["final"]["healthy"]) for s in rollback["services"]] == [("v1.2", True), ("v1.2", True)]
    # Two genuinely different releases: the rollback ran v1.1's code, and the smoke subset after it
    # passed a test that passes only on v1.1's code (new-checkout absent).
    for record in rollback["services"]:
        assert (record["from_build"]["ref"], record["to_build"]["ref"]) == ("demo/releases/v1.2", "demo/releases/v1.1")
        assert record["from_build"]["digest"] != record["to_build"]["digest"]
    after_rollback = json.loads((demo.artifacts / "transcripts" / "smoke-rollback-api.json").read_text())
    outcomes = {test["nodeid"].rpartition("::")[2]: test["outcome"] for suite in after_rollback["suites"] for test in suite["tests"]}
    assert outcomes["test_api_new_checkout_exists_only_from_v1_2"] == "passed" and after_rollback["release"] == "v1.1"
    manifest = json.loads((demo.artifacts / "pre-deployment-manifest.json").read_text())
    assert [(r["service"], r["candidate"]["kind"], r["candidate"]["ref"], r["previous"]["ref"]) for r in manifest["releases"]] == [
        ("worker", "folder", "demo/releases/v1.2", "demo/releases/v1.1"),
        ("api", "folder", "demo/releases/v1.2", "demo/releases/v1.1"),
    ]
    for service in ("api", "worker"):
        assert demo.current(service) == "v1.2"
    security = json.loads((demo.artifacts / "security-compliance-report.json").read_text())
    ran = {s["name"] for s in security["scanners"] if s["status"] in ("passed", "findings")}
    assert ran >= {"bandit", "secrets", "osv", "licenses", "sbom"}, security["scanners"]  # pip-audit needs a network
    assert security["osv_database"]["path"].startswith("bundled snapshot") and security["osv_database"]["max_age_days"] is None
    assert (demo.artifacts / "PRE-DEPLOYMENT-PACKAGE.zip").is_file()
    verify = subprocess.run(
        [sys.executable, "-m", "pytest_predeploy", "verify", str(demo.artifacts / "PRE-DEPLOYMENT-PACKAGE.zip")], capture_output=True, text=True, timeout=60
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_flipped_critical_key_halts_at_gate1_before_anything_deploys(demo: Demo) -> None:
    infra = demo.root / "demo/environments/staging/infrastructure.yaml"
    data = yaml.safe_load(infra.read_text())
    data["database"]["engine"] = "mysql"
    infra.write_text(yaml.safe_dump(data))
    result = demo.pytest("-rs")
    assert result.returncode == ExitStatus.NO_GO
    assert "[ERROR] Staging configuration drift detected against production baseline." in result.stdout
    assert "infrastructure.database.engine" in result.stdout
    assert result.stdout.count("halted: Gate 1 (Intake Confirmation) failed") >= 3
    assert "[PHASE 2 START]" not in result.stdout
    assert demo.current("api") is None and demo.current("worker") is None  # nothing was deployed
    assert not (demo.artifacts / "PRE-DEPLOYMENT-PACKAGE.zip").exists()


def test_crashing_candidate_is_rolled_back_and_halts_gates_3_and_4(demo: Demo) -> None:
    config = demo.config
    config["services"][1]["inject"] = {"v1.2": "crash"}
    demo.save(config)
    result = demo.pytest()
    assert result.returncode == ExitStatus.NO_GO
    assert "[ERROR] Deployment rehearsal encountered critical error." in result.stdout
    assert "halted: Gate 2 (Deployment Rehearsal) failed" in result.stdout
    report = json.loads((demo.artifacts / "staging-deployment-report.json").read_text())
    assert report["recovery"]["served"] == {"api": "v1.1", "worker": "v1.1"} and report["recovery"]["staging_on_previous"]
    report = json.loads((demo.artifacts / "staging-deployment-report.json").read_text())
    assert report["outcome"] == "failed"
    for service in ("api", "worker"):
        assert demo.current(service) == "v1.1"
    assert not (demo.artifacts / "PRE-DEPLOYMENT-PACKAGE.zip").exists()


def test_failing_smoke_test_fails_gate2_naming_it(demo: Demo) -> None:
    (demo.root / "demo/smoke/test_injected.py").write_text("def test_checkout_total_includes_tax():\n    assert 100 == 119, 'total without tax'\n")
    result = demo.pytest()
    assert result.returncode == ExitStatus.NO_GO
    assert "smoke/acceptance tests did not pass" in result.stdout
    assert "test_checkout_total_includes_tax" in result.stdout
    assert "halted: Gate 2 (Deployment Rehearsal) failed" in result.stdout
    # A failed rehearsal leaves staging on the previous release, and the evidence says so, read back.
    for service in ("api", "worker"):
        assert demo.current(service) == "v1.1"
    report = json.loads((demo.artifacts / "staging-deployment-report.json").read_text())
    assert report["recovery"]["reason"] == "the smoke and acceptance suites failed"
    assert report["recovery"]["served"] == {"api": "v1.1", "worker": "v1.1"} and report["recovery"]["staging_on_previous"]
    assert "[STAGING] after the failed smoke tests staging is back on v1.1 (read back: api v1.1, worker v1.1)" in result.stdout


@pytest.mark.parametrize("presses", [1, 5])
def test_sigint_mid_deploy_leaves_previous_release_and_no_package(demo: Demo, presses: int) -> None:
    deploy_demo_release(demo.root, "v1.1")
    config = demo.config
    # The candidate's deploy stops right after `current` was switched and the new process started.
    config["steps"] = {
        "deploy": {"command": "env PREDEPLOY_STAGING_PAUSE=started bash scripts/deploy_backend.sh --env {env} --release {release} --service {service}"}
    }
    demo.save(config)
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--predeploy-release=v1.2"],
        cwd=demo.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # (The transcript cannot tell us: the redactor holds back the tail of a stream until more
        # output or the end, in case it is the first half of a secret.) The run record is written
        # just before the pause, after `current` was switched.
        poll(lambda: demo.started("api", "v1.2"), "the deploy of v1.2 started its api process", deadline=120)
        assert demo.current("api") == "v1.2"  # really mid-deploy
        for _ in range(presses):  # five times, 0.4 s apart: an impatient engineer
            process.send_signal(signal.SIGINT)
            time.sleep(0.4)
        out, _ = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == ExitStatus.INTERRUPTED, out[-3000:]
    for service in ("api", "worker"):
        assert demo.current(service) == "v1.1"
    report = json.loads((demo.artifacts / "staging-deployment-report.json").read_text())
    assert report["outcome"] == "interrupted"
    assert not (demo.artifacts / "PRE-DEPLOYMENT-PACKAGE.zip").exists()
    lock = FileLock(str(demo.artifacts / ".predeploy.lock"))
    lock.acquire(timeout=0)  # released
    lock.release()
    assert "INTERRUPTED" in out
    assert "Traceback" not in out
    last = [line for line in out.splitlines() if line.strip()][-1]
    assert last.startswith("INTERRUPTED:") and "staging is back on v1.1 (read back: api v1.1, worker v1.1)" in last, last
