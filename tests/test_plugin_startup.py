"""What the plugin and the step scripts' entry point cost their process: the garbage collector, and
what a protocol run imports and builds before it needs it."""

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


#: A conftest of the fake project: which of our modules a run had loaded when it finished, and pydantic.
RECORD_OURS = """
import json, sys


def pytest_sessionfinish(session):
    with open("ours-at-session-finish.json", "w") as handle:
        json.dump(sorted(m for m in sys.modules if m.startswith("pytest_predeploy") or m == "pydantic"), handle)
"""


def test_plain_pytest_loads_the_entry_point_alone(pytester: pytest.Pytester) -> None:
    # A user's own `pytest` in a repository where the plugin is installed registers the options
    # and guards against gate modules; it loads nothing else of ours (the errors and the
    # stash keys, which import nothing), and no pydantic.
    root = make_project(pytester)
    pytester.makeconftest(RECORD_OURS)
    pytester.makepyfile(test_unit="def test_one():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_subprocess("test_unit.py")
    result.assert_outcomes(passed=1)
    loaded = json.loads((root / "ours-at-session-finish.json").read_text())
    assert loaded == [
        "pytest_predeploy",
        "pytest_predeploy.core",
        "pytest_predeploy.core.errors",
        "pytest_predeploy.harness",
        "pytest_predeploy.harness.keys",
        "pytest_predeploy.plugin",
    ]


#: Code of steps Gate 1 does not run: the deployment, smoke and rollback rehearsals, the contract
#: check, the observability baseline, the package and the sign-offs.
NOT_GATE_1 = (
    "pytest_predeploy.rehearsal.deploy",
    "pytest_predeploy.rehearsal.smoke",
    "pytest_predeploy.rehearsal.observability",
    "pytest_predeploy.rehearsal.contract",
    "pytest_predeploy.rollback.rollback",
    "pytest_predeploy.rollback.operational",
    "pytest_predeploy.readiness.package",
    "pytest_predeploy.readiness.signoff",
    "pytest_predeploy.readiness.checklist",
    "pytest_predeploy.verdict.sealed",
)


def test_a_protocol_run_imports_the_code_of_the_steps_it_runs(pytester: pytest.Pytester) -> None:
    # Loading the configuration imports each section's model, not its step's code; the harness
    # imports a step's code when a fixture runs the step. Gate 1 alone runs the parity step.
    root = make_project(pytester)
    pytester.makeconftest(RECORD_OURS)
    result = pytester.runpytest_subprocess("--predeploy-release=v1.0", "gates/test_gate1_intake.py")
    assert result.ret == 11, result.stdout.str()  # one gate alone: not a protocol verdict
    loaded = set(json.loads((root / "ours-at-session-finish.json").read_text()))
    assert "pytest_predeploy.harness.session" in loaded  # the protocol did run in this process
    assert sorted(loaded.intersection(NOT_GATE_1)) == []


def test_the_api_loads_the_code_behind_the_names_imported() -> None:
    # Each step script is a process of its own that imports a few API names (as gate modules
    # do): it loads the code behind them, not every step's.
    names = "add_common_arguments, interrupt_on_sigterm, load_context, run_main, IntakeReport, intake_problems"
    probe = f"import json, sys; from pytest_predeploy.api import {names}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    loaded = set(json.loads(done.stdout))
    assert {"pytest_predeploy.tooling.scriptkit", "pytest_predeploy.intake.approvals"} <= loaded
    assert sorted(loaded.intersection(NOT_GATE_1)) == []


def test_loading_the_configuration_does_not_load_the_parity_comparison() -> None:
    # Every protocol run and most `predeploy` commands load the config; its parity section is one
    # model module, and the differ, readers and report of the parity package load when a run compares.
    probe = "import json, sys; import pytest_predeploy.config; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    parity = sorted(name for name in json.loads(done.stdout) if name.startswith("pytest_predeploy.intake.parity."))
    assert parity == ["pytest_predeploy.intake.parity.config", "pytest_predeploy.intake.parity.paths"]


#: A conftest of the fake project: which modules and models the run had loaded when it finished.
RECORD_LOADED = """
import json, sys

import pytest_predeploy.api  # as gate modules do


def pytest_sessionfinish(session):
    from pytest_predeploy.rehearsal.prometheus import PrometheusResult
    from pytest_predeploy.security.report import SecurityReport
    with open("loaded-at-session-finish.json", "w") as handle:
        json.dump({"modules": sorted(sys.modules), "built": {
            "PrometheusResult": PrometheusResult.__pydantic_complete__,
            "SecurityReport": SecurityReport.__pydantic_complete__,
        }}, handle)
"""


def test_a_protocol_run_loads_only_what_it_uses(pytester: pytest.Pytester) -> None:
    # Start-up is most of the plugin's overhead (bench/overhead.py): the security scanners and the
    # packaging library run in the audit script's process (also when the gates import the API), Prometheus text is parsed only when
    # metrics are captured, and a report model is built when a report is first read.
    root = make_project(pytester)
    pytester.makeconftest(RECORD_LOADED)
    result = pytester.runpytest_subprocess("--predeploy-release=v1.0", "gates/test_gate1_intake.py")
    assert result.ret == 11, result.stdout.str()  # one gate alone: not a protocol verdict
    loaded = json.loads((root / "loaded-at-session-finish.json").read_text())
    modules = set(loaded["modules"])
    assert "pytest_predeploy.harness.session" in modules  # the protocol did run in this process
    unused = {"pytest_predeploy.security.audit", "pytest_predeploy.security.scanners", "packaging.requirements", "prometheus_client"}
    assert sorted(unused & modules) == []
    assert loaded["built"] == {"PrometheusResult": False, "SecurityReport": False}


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
