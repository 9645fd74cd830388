"""The protocol as ordered, halting gate tests (the GateController and the plugin's wiring).

Run in-process (``pytester.runpytest_inprocess``): nothing here needs a signal, a lock held by
another process or a process group of its own, which is what subprocess runs are kept for."""

from __future__ import annotations

import json

import pytest

from pytest_predeploy.harness.gates import ExitStatus
from tests.project import base_config, json_report, lit, make_project

PARITY_DRIFT = """
import json, sys
open(sys.argv[1], "w").write(json.dumps({"drift": 3}))
sys.exit(1)
"""


def test_gate_failure_skips_later_gates_with_halt_reason(pytester: pytest.Pytester) -> None:
    root = make_project(pytester, parity_script=PARITY_DRIFT)
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", "-rs")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            lit("*[PHASE 1 START] - Validating upstream approvals and artifact completeness...*"),
            lit("*[PHASE 1 FAILED]*"),
            "*SKIPPED*test_gate2_rehearsal.py:*halted: Gate 1 (Intake Confirmation) failed*",
            "NO-GO: Gate 1 (Intake Confirmation) failed (exit status 1)",
        ]
    )
    assert "[PHASE 2 START]" not in result.stdout.str()
    tests = {t["nodeid"]: t for t in json_report(root)["tests"]}
    later = [t for nodeid, t in tests.items() if "gate1_" not in nodeid]
    assert len(later) == 4
    for test in later:
        assert test["outcome"] == "skipped"
        assert "halted: Gate 1 (Intake Confirmation) failed" in test["setup"]["longrepr"]
    assert json_report(root)["exitcode"] == 1


def test_gates_run_in_numeric_order(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", "-v")
    order = [line.split("::")[0] for line in result.stdout.lines if "::" in line and ("PASSED" in line or "ADVISORY" in line)]
    assert order == ["gates/test_gate1_intake.py"] * 2 + ["gates/test_gate2_rehearsal.py"] * 2 + [
        "gates/test_gate3_rollback_security.py",
        "gates/test_gate10_extra.py",
    ]
    assert result.ret == ExitStatus.NOT_JUDGED


def test_guideline_miss_is_advisory_and_never_halts(pytester: pytest.Pytester) -> None:
    root = make_project(pytester)
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", "-v")
    result.stdout.fnmatch_lines(["*test_flags_refreshed ADVISORY*", "*advisory: test_flags_refreshed: *flags not refreshed*", "*5 passed, 1 advisory*"])
    assert result.ret == ExitStatus.NOT_JUDGED
    tests = {t["nodeid"].split("::")[1]: t for t in json_report(root)["tests"]}
    assert tests["test_flags_refreshed"]["outcome"] == "advisory"


def test_no_data_fails_by_default_and_can_be_advisory(pytester: pytest.Pytester) -> None:
    gates = {
        "test_gate1_metrics.py": """
        import pytest
        from pytest_predeploy.harness.gates import no_data
        pytestmark = pytest.mark.gate(1, "Metrics")

        @pytest.mark.must
        def test_error_ratio():
            no_data("error ratio: /metrics unreadable")
    """,
        "test_gate2_next.py": """
        import pytest
        pytestmark = pytest.mark.gate(2, "Next")

        @pytest.mark.must
        def test_next():
            pass
    """,
    }
    make_project(pytester, gates=gates)
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", "-v")
    result.stdout.fnmatch_lines(["*test_error_ratio FAILED (no data)*", "*halted: Gate 1 (Metrics) failed*"])
    assert result.ret == 1
    make_project(pytester, config=base_config(gates={"no_data": "advisory"}), gates=gates)
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", "-v")
    result.stdout.fnmatch_lines(["*test_error_ratio ADVISORY (no data)*", "*test_next PASSED*"])
    assert result.ret == ExitStatus.NOT_JUDGED


def test_gate_module_without_release_is_a_usage_error(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    result = pytester.runpytest_inprocess("gates/test_gate1_intake.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_gate1_intake.py is a protocol gate: run it with --predeploy-release=TAG*"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_plain_pytest_runs_project_tests_and_deploys_nothing(pytester: pytest.Pytester) -> None:
    root = make_project(pytester)
    pytester.makepyfile(test_unit="def test_one():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_inprocess("test_unit.py")
    result.assert_outcomes(passed=1)
    assert not (root / ".artifacts").exists()


def test_single_gate_module_runs_only_its_steps(pytester: pytest.Pytester) -> None:
    root = make_project(pytester)
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", "gates/test_gate3_rollback_security.py", "-v")
    assert result.ret == ExitStatus.NOT_JUDGED
    result.assert_outcomes(passed=1)
    assert "[AUTOMATION] parity.py" not in result.stdout.str()
    assert not (root / ".artifacts/pre-deployment/transcripts/parity.log").exists()


def test_xdist_with_release_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    make_project(pytester)
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cannot be combined with -n*"])


def test_run_state_records_gate_outcomes(pytester: pytest.Pytester) -> None:
    root = make_project(pytester, parity_script=PARITY_DRIFT)
    pytester.runpytest_inprocess("--predeploy-release=v1.0")
    state = json.loads((root / ".artifacts/pre-deployment/predeploy-run.json").read_text())
    assert state["release"] == "v1.0"
    assert state["gates"]["gate1"]["status"] == "failed"
    assert state["gates"]["gate2"]["status"] == "halted"


def test_rerun_from_gate1_archives_previous_artifacts(pytester: pytest.Pytester) -> None:
    root = make_project(pytester)
    pytester.runpytest_inprocess("--predeploy-release=v1.0")
    pytester.runpytest_inprocess("--predeploy-release=v1.0")
    history = list((root / ".artifacts/pre-deployment/history").iterdir())
    assert len(history) == 1
    assert (history[0] / "staging-parity-report.json").exists()


def test_config_in_another_folder_runs_its_steps_and_gates_there(pytester: pytest.Pytester) -> None:
    project = pytester.path / "service-a"
    project.mkdir()
    root = make_project(pytester)
    for name in ("predeploy.yaml", "parity.py", "gates"):
        (root / name).rename(project / name)
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", "--predeploy-config=service-a/predeploy.yaml")
    assert result.ret == ExitStatus.NOT_JUDGED, result.stdout.str()
    assert (project / ".artifacts/pre-deployment/staging-parity-report.json").exists()


def test_guideline_whose_step_fails_is_advisory_and_its_body_never_runs(pytester: pytest.Pytester) -> None:
    gates = {
        "test_gate1_intake.py": """
        import pytest
        pytestmark = pytest.mark.gate(1, "Intake Confirmation")

        @pytest.fixture(scope="session")
        def broken_step():
            pytest.fail("step 'refresh' failed: refresh.sh failed (exit 3)", pytrace=False)

        @pytest.mark.guideline
        def test_refreshed(broken_step):
            raise RuntimeError("the body ran without its step")
    """
    }
    root = make_project(pytester, gates=gates)
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", "-v")
    assert result.ret == ExitStatus.NOT_JUDGED
    result.stdout.fnmatch_lines(["*test_refreshed ADVISORY*", "*advisory: test_refreshed: step 'refresh' failed: refresh.sh failed (exit 3)*"])
    out = result.stdout.str()
    assert "the body ran" not in out and "KeyError" not in out  # the call phase never started
    assert out.count("advisory: test_refreshed") == 1
    tests = {t["nodeid"].split("::")[1]: t for t in json_report(root)["tests"]}
    assert tests["test_refreshed"]["outcome"] == "advisory"
