"""Faults around the evidence: a secret in any file of the artifacts folder never reaches the
package; a full disk or a read-only artifacts folder ends with a clear message, the gate summary
and a run state that never says "awaiting sign-off" without a package."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pytest_predeploy.harness.gates import ExitStatus
from tests.signoff_project import parity_report
from tests.signoff_project import project as signoff_project

CANARY = "Canary-Token-7f3a9c21e8"

#: A parity step that also leaves a debug file with a secret in the artifacts folder.
PARITY_WITH_DEBUG_FILE = f"""
import os, sys
open(sys.argv[1], "w").write({parity_report()!r})
with open(os.path.join(os.environ["PREDEPLOY_ARTIFACTS"], "debug-env.txt"), "w") as debug:
    debug.write("token=" + os.environ["DEPLOY_TOKEN"] + "\\n")
"""


def test_a_secret_in_an_undeclared_file_fails_gate4_and_never_reaches_the_package(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPLOY_TOKEN", CANARY)
    root = signoff_project(pytester, parity=PARITY_WITH_DEBUG_FILE)
    config = yaml.safe_load((root / "predeploy.yaml").read_text())
    config["redact"] = {"env_vars": ["DEPLOY_TOKEN"]}
    (root / "predeploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = pytester.runpytest("--predeploy-release=v1.0")
    assert result.ret == ExitStatus.NO_GO, result.stdout.str()
    result.stdout.fnmatch_lines(["*Gate 4*FAILED*a secret value was found in the artifacts folder*", "*debug-env.txt contained the value of DEPLOY_TOKEN*"])
    artifacts = root / ".artifacts/pre-deployment"
    assert not (artifacts / "PRE-DEPLOYMENT-PACKAGE.zip").exists()
    assert CANARY not in result.stdout.str() + result.stderr.str()
    for path in artifacts.rglob("*"):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs: a disk that fills up for real."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill up (needs root and mount rights): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _no_false_verdict(artifacts: Path, result: pytest.RunResult) -> None:
    out = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in out and "Traceback" not in out, out
    assert "pre-deployment gates: release v1.0" in out
    assert not (artifacts / "PRE-DEPLOYMENT-PACKAGE.zip").exists()
    assert not [p.name for p in artifacts.iterdir() if p.name.endswith(".tmp")]
    state = artifacts / "predeploy-run.json"
    if state.exists():
        assert "awaiting sign-off" not in {g["status"] for g in json.loads(state.read_text())["gates"].values()}


#: Fills the disk from a real process, then the gate's own write meets the full disk.
GATE2_FILLS_DISK = """
import os, subprocess, sys, pytest
pytestmark = pytest.mark.gate(2, "Deployment Rehearsal")

@pytest.mark.must
def test_deployed(predeploy):
    filler = predeploy.artifacts / "transcripts" / "filler.bin"
    filler.parent.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-c", "import sys\\ntry:\\n    f = open(sys.argv[1], 'wb')\\n    while True: f.write(bytes(65536)); f.flush()\\nexcept OSError: pass", str(filler)])
    (predeploy.artifacts / "staging-deployment-run.log").write_bytes(b"x" * 1_000_000)
"""


def test_disk_full_during_gate2_ends_with_a_message_and_the_summary(pytester: pytest.Pytester, small_disk: Path) -> None:
    root = signoff_project(pytester)
    (root / "gates" / "test_gate2_rehearsal.py").write_text(GATE2_FILLS_DISK)
    result = pytester.runpytest("--predeploy-release=v1.0", f"--predeploy-artifacts={small_disk}")
    assert result.ret == ExitStatus.NO_GO, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*Gate 2*FAILED*test_deployed: cannot write in *small-disk: No space left on device (free disk space*",
            "*NOT WRITTEN: *No space left on device*",
            "*NO-GO: Gate 2 (Deployment Rehearsal) failed*",
        ]
    )
    _no_false_verdict(small_disk, result)


#: A parity step whose evidence leaves too little room for the package beside it.
PARITY_BIG_EVIDENCE = f"""
import os, sys
open(sys.argv[1], "w").write({parity_report()!r})
with open(os.path.join(os.environ["PREDEPLOY_ARTIFACTS"], "transcripts", "capture.bin"), "wb") as big:
    big.write(os.urandom(1_800_000))
"""


def test_disk_full_while_sealing_is_no_go_never_awaiting_signoff(pytester: pytest.Pytester, small_disk: Path) -> None:
    root = signoff_project(pytester, parity=PARITY_BIG_EVIDENCE)
    (small_disk / "transcripts").mkdir()
    result = pytester.runpytest("--predeploy-release=v1.0", f"--predeploy-artifacts={small_disk}")
    assert result.ret == ExitStatus.NO_GO, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*Gate 4*FAILED*the package could not be sealed: *No space left on device*",
            "*package NOT sealed: *No space left on device*",
            "*NO-GO: Gate 4 (Readiness Approval) failed*",
        ]
    )
    assert "AWAITING SIGN-OFF" not in result.stdout.str()
    state = json.loads((small_disk / "predeploy-run.json").read_text())
    assert state["gates"]["gate4"]["status"] == "failed"
    # The reports written before sealing said "awaiting sign-off": they state what happened.
    report = json.loads((small_disk / "pytest-report.json").read_text())
    assert report["exitcode"] == ExitStatus.NO_GO and report["predeploy"]["verdict"].startswith("NO-GO")
    assert report["predeploy"]["gates"]["gate4"]["status"] == "failed"
    _no_false_verdict(small_disk, result)
    assert root.is_dir()


def test_read_only_artifacts_folder_is_a_clear_usage_error(pytester: pytest.Pytester, small_disk: Path) -> None:
    signoff_project(pytester)
    done = subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot remount the tmpfs read-only: {done.stderr.strip()}")
    result = pytester.runpytest("--predeploy-release=v1.0", f"--predeploy-artifacts={small_disk}")
    assert result.ret == ExitStatus.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    result.stderr.fnmatch_lines(
        [
            f"ERROR: the artifacts folder {small_disk} is not writable (Read-only file system); make it writable or give this run another --predeploy-artifacts folder"
        ]
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
