"""What the plugin and the step scripts' entry point do to the garbage collector of their process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.project import make_project

#: A conftest of the fake project: what the garbage collector looks like when the session starts.
RECORD_GC = """
import gc, json

def pytest_sessionstart(session):
    with open("gc-at-session-start.json", "w") as handle:
        json.dump({"frozen": gc.get_freeze_count(), "enabled": gc.isenabled()}, handle)
"""


def test_protocol_objects_are_frozen_and_the_collector_stays_on(pytester: pytest.Pytester) -> None:
    # The protocol's modules and config live until the process exits: frozen, later collections
    # (pytest's at unconfigure, the interpreter's at exit) do not walk them again.
    root = make_project(pytester)
    pytester.makeconftest(RECORD_GC)
    result = pytester.runpytest_subprocess("--predeploy-release=v1.0", "gates/test_gate1_intake.py")
    assert result.ret == 11, result.stdout.str()  # one gate alone: not a protocol verdict
    recorded = json.loads((root / "gc-at-session-start.json").read_text())
    assert recorded["frozen"] > 10_000
    assert recorded["enabled"] is True


def test_plain_pytest_leaves_the_collector_alone(pytester: pytest.Pytester) -> None:
    root = make_project(pytester)
    pytester.makeconftest(RECORD_GC)
    pytester.makepyfile(test_unit="def test_one():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_subprocess("test_unit.py")
    result.assert_outcomes(passed=1)
    assert json.loads((root / "gc-at-session-start.json").read_text()) == {"frozen": 0, "enabled": True}


SCRIPT = """
import atexit, gc, sys
from pytest_predeploy.api import ConfigError, run_main

atexit.register(lambda: print(f"frozen at exit: {gc.get_freeze_count()}", flush=True))

def main():
    if sys.argv[1:] == ["fail"]:
        raise ConfigError("predeploy.yaml:3: steps.parity.command: missing; add it")
    print("done", flush=True)
    return 0

run_main(main)
"""


def test_a_step_script_ends_with_its_objects_frozen_and_its_status_kept(tmp_path: Path) -> None:
    # The interpreter's collection at exit would walk the API's modules and models once more.
    script = tmp_path / "step.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("done\nfrozen at exit: ")
    assert int(done.stdout.rsplit(" ", 1)[1]) > 10_000
    failed = subprocess.run([sys.executable, str(script), "fail"], capture_output=True, text=True, timeout=60, check=False)
    assert failed.returncode == 2
    assert failed.stderr.strip() == "step.py: error: predeploy.yaml:3: steps.parity.command: missing; add it"
