"""Exit 0 means GO and nothing else (issue 25): the verdict is the declared protocol applied to what
the run judged, never which tests happened to run, and Gate 4 alone judges a sealed package it can
neither be fooled by nor make. Each case here was a false GO (or a false "awaiting sign-off") on
the code before the protocol was declared once."""

from __future__ import annotations

import json
import re
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from pytest_predeploy.core.fields import utcnow
from pytest_predeploy.harness.gates import ExitStatus
from tests.project import make_complete_project, make_project
from tests.signoff_project import approve
from tests.signoff_project import project as signoff_project

VERDICTS = (ExitStatus.GO, ExitStatus.AWAITING_SIGNOFF)
GATE4 = "gates/test_gate4_readiness.py"
SIGNOFFS = f"{GATE4}::test_required_signoffs_recorded_on_the_package_digest"
ARTIFACTS = ".artifacts/pre-deployment"


def last_line(result: pytest.RunResult) -> str:
    lines = [line for line in result.outlines if line.strip()]
    return lines[-1] if lines else ""


def signed(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, **config: object) -> Path:
    monkeypatch.setenv("PREDEPLOY_OPERATOR", "rehearsal-operator")
    root = signoff_project(pytester)
    if config:
        data = yaml.safe_load((root / "predeploy.yaml").read_text())
        data.update(config)
        (root / "predeploy.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    first = pytester.runpytest_inprocess("--predeploy-release=v1.0")
    assert first.ret == ExitStatus.AWAITING_SIGNOFF, first.stdout.str()
    assert approve(root, "release-manager", "riley").returncode == 0
    assert approve(root, "qa-lead", "quinn").returncode == 0
    return root


def test_the_complete_fake_project_really_reaches_awaiting_and_go(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # The baseline every case below departs from: the same project, nothing deselected.
    root = signed(pytester, monkeypatch)
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", GATE4)
    assert result.ret == ExitStatus.GO, result.stdout.str()
    assert last_line(result).startswith("[PROTOCOL COMPLETE]")
    assert (root / ARTIFACTS / "PRE-DEPLOYMENT-PACKAGE.zip").exists()


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["-k", "not signoffs"], id="-k not signoffs"),
        pytest.param(["--deselect", SIGNOFFS], id="--deselect the sign-off test"),
        pytest.param(["-m", "not guideline"], id="-m not guideline"),
        pytest.param(["-k", "not security"], id="-k not security"),
        pytest.param([f"{GATE4}::test_package_compiled_and_manifest_indexes_every_artifact"], id="one Gate 4 test by node id"),
        pytest.param(["--setup-plan"], id="--setup-plan"),
        pytest.param(["--collect-only"], id="--collect-only"),
        pytest.param(["--ignore", "gates/test_gate2_rehearsal.py"], id="--ignore a gate"),
        pytest.param(["-o", "python_functions=nothing_*"], id="-o python_functions"),
    ],
)
def test_selection_and_planning_options_never_end_go_or_awaiting(pytester: pytest.Pytester, args: list[str]) -> None:
    root = make_complete_project(pytester)
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", *args)
    assert result.ret not in VERDICTS, result.stdout.str()
    assert "PROTOCOL COMPLETE" not in result.stdout.str()
    line = last_line(result)
    assert line.startswith(("NOT JUDGED:", "NO-GO:")), line
    assert not (root / ARTIFACTS / "PRE-DEPLOYMENT-PACKAGE.zip").exists(), "a run that did not judge every criterion sealed a package"


def test_deselection_through_pytest_addopts_names_what_was_not_judged(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    make_complete_project(pytester)
    monkeypatch.setenv("PYTEST_ADDOPTS", f"--deselect {SIGNOFFS}")
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0")
    assert result.ret == ExitStatus.NOT_JUDGED, result.stdout.str()
    assert "signoffs (deselected)" in last_line(result)
    result.stdout.fnmatch_lines(["*not judged: Gate 4 MUST 'signoffs' (required sign-offs recorded on the package digest): deselected*"])


@pytest.mark.parametrize("option", ["--fixtures", "--markers", "--fixtures-per-test"])
def test_listing_options_are_not_judged(pytester: pytest.Pytester, option: str) -> None:
    make_complete_project(pytester)
    result = pytester.runpytest_subprocess("--predeploy-release=v1.0", option)
    assert result.ret == ExitStatus.NOT_JUDGED, result.stdout.str()
    assert last_line(result).startswith("NOT JUDGED:")


@pytest.mark.parametrize("name", ["predeploy-gates", "predeploy-session", "predeploy-sealing", "predeploy-steps", "predeploy-report"])
def test_blocking_a_part_of_the_plugin_is_a_usage_error(pytester: pytest.Pytester, name: str) -> None:
    make_complete_project(pytester)
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", "-p", f"no:{name}")
    assert result.ret == ExitStatus.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*-p no:{name} blocks a part of the protocol*"])


def test_a_gates_dir_with_one_trivial_gate4_module_is_not_go(pytester: pytest.Pytester) -> None:
    trivial = """
        import pytest
        pytestmark = pytest.mark.gate(4, "Readiness Approval")

        @pytest.mark.must
        def test_ok():
            pass
    """
    make_project(pytester, gates={"test_gate4_readiness.py": trivial})
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0")
    assert result.ret == ExitStatus.NOT_JUDGED, result.stdout.str()
    assert "13 of 13 criteria not judged" in last_line(result)


def test_a_gate_test_naming_an_undeclared_or_foreign_criterion_is_a_usage_error(pytester: pytest.Pytester) -> None:
    gate = """
        import pytest
        pytestmark = pytest.mark.gate(1, "Intake Confirmation")

        @pytest.mark.must("signoffs")
        def test_sign_offs_in_gate1():
            pass
    """
    make_project(pytester, gates={"test_gate1_intake.py": gate})
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0")
    assert result.ret == ExitStatus.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_sign_offs_in_gate1: 'signoffs' is a MUST criterion of Gate 4 (Readiness Approval), not a MUST of Gate 1*"])


def test_a_gate_test_that_stops_asserting_cannot_pass_what_the_evidence_fails(pytester: pytest.Pytester) -> None:
    # The Gate 1 parity test is edited to assert nothing, and the parity report blocks.
    root = make_complete_project(pytester)
    report = json.loads((root / "evidence" / "staging-parity-report.json").read_text())
    report["passed"] = False
    (root / "evidence" / "staging-parity-report.json").write_text(json.dumps(report))
    gate1 = (root / "gates" / "test_gate1_intake.py").read_text()
    (root / "gates" / "test_gate1_intake.py").write_text(gate1.replace('require(parity_problems(load(parity, ParityReport)), "critical drift")', "pass"))
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0")
    assert result.ret == ExitStatus.NO_GO, result.stdout.str()
    result.stdout.fnmatch_lines(["*the test passed, but Gate 1 MUST 'parity'*is not met by the evidence:", "*the report's own verdict: passed is false*"])


def test_gates_run_one_at_a_time_then_gate4_seal_nothing(pytester: pytest.Pytester) -> None:
    root = make_complete_project(pytester)
    for gate in ("test_gate1_intake.py", "test_gate2_rehearsal.py", "test_gate3_rollback_security.py"):
        assert pytester.runpytest_inprocess("--predeploy-release=v1.0", f"gates/{gate}").ret == ExitStatus.NOT_JUDGED
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", GATE4)
    assert result.ret == ExitStatus.NO_GO, result.stdout.str()
    result.stdout.fnmatch_lines(["*not built: only a full run of the protocol seals a package*"])
    assert not (root / ARTIFACTS / "PRE-DEPLOYMENT-PACKAGE.zip").exists()


def test_a_single_gate_run_says_it_passed_for_itself_only(pytester: pytest.Pytester) -> None:
    make_complete_project(pytester)
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", "gates/test_gate2_rehearsal.py")
    assert result.ret == ExitStatus.NOT_JUDGED
    assert last_line(result).startswith("NOT JUDGED: Gate 2 passed (this run only); not a protocol verdict")


def test_a_failed_gate3_cannot_be_edited_into_a_package_by_gate4_alone(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREDEPLOY_OPERATOR", "rehearsal-operator")
    root = signoff_project(pytester)
    report = json.loads((root / "evidence" / "security-compliance-report.json").read_text())
    report["blocking"] = True
    (root / "evidence" / "security-compliance-report.json").write_text(json.dumps(report))
    assert pytester.runpytest_inprocess("--predeploy-release=v1.0").ret == ExitStatus.NO_GO
    artifacts = root / ARTIFACTS
    fixed = json.loads((artifacts / "security-compliance-report.json").read_text())
    fixed["blocking"] = False
    (artifacts / "security-compliance-report.json").write_text(json.dumps(fixed))
    state = json.loads((artifacts / "predeploy-run.json").read_text())
    state["gates"]["gate3"]["status"] = "passed"
    (artifacts / "predeploy-run.json").write_text(json.dumps(state))
    html = (artifacts / "pytest-report.html").read_bytes()
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", GATE4)
    assert result.ret == ExitStatus.NO_GO, result.stdout.str()
    assert not (artifacts / "PRE-DEPLOYMENT-PACKAGE.zip").exists()
    assert (artifacts / "pytest-report.html").read_bytes() == html, "a run that does not seal wrote over the full run's report"


def test_restoring_the_folder_from_the_package_cannot_hide_a_later_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    root = signed(pytester, monkeypatch)
    artifacts = root / ARTIFACTS
    gate2 = (root / "gates" / "test_gate2_rehearsal.py").read_text()
    (root / "gates" / "test_gate2_rehearsal.py").write_text(gate2.replace('evidence(predeploy, "staging-test-results.json")', 'assert False, "smoke failed"'))
    assert pytester.runpytest_inprocess("--predeploy-release=v1.0", "gates/test_gate2_rehearsal.py").ret == ExitStatus.NO_GO
    (root / "gates" / "test_gate2_rehearsal.py").write_text(gate2)
    with zipfile.ZipFile(artifacts / "PRE-DEPLOYMENT-PACKAGE.zip") as archive:
        archive.extractall(artifacts)  # unzip -o
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", GATE4)
    assert result.ret == ExitStatus.NO_GO, result.stdout.str()
    result.stdout.fnmatch_lines(["*package is stale:*Gate 2 ran after sealing*"])


def test_deleting_the_run_journal_makes_the_package_stale(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    root = signed(pytester, monkeypatch)
    (root / ARTIFACTS / ".predeploy-journal.jsonl").unlink()
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", GATE4)
    assert result.ret == ExitStatus.NO_GO
    result.stdout.fnmatch_lines(["*package is stale:*run journal .predeploy-journal.jsonl has no record of a run sealing this package*"])


def test_an_upstream_approval_revoked_after_sealing_is_not_go(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    record = {"release": "v1.0", "status": "approved", "approved_by": "Alex Auditor", "approved_at": (utcnow() - timedelta(hours=1)).isoformat()}
    approvals = {"upstream": [{"name": "protocol-4", "file": "approvals/p4.yaml"}]}
    (pytester.path / "approvals").mkdir()
    (pytester.path / "approvals" / "p4.yaml").write_text(yaml.safe_dump(record))
    root = signed(pytester, monkeypatch, approvals=approvals)
    record["status"] = "rejected"
    (root / "approvals" / "p4.yaml").write_text(yaml.safe_dump(record))
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", GATE4)
    assert result.ret == ExitStatus.NO_GO, result.stdout.str()
    result.stdout.fnmatch_lines(["*package is stale: upstream approval no longer holds:*rejected*", "*upstream approval protocol-4 (*) changed after sealing*"])


def test_waivers_and_approvals_are_judged_again_at_the_time_gate4_runs(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_predeploy.config import load_config
    from pytest_predeploy.verdict.sealed import rejudge_problems

    expires = (utcnow() + timedelta(days=2)).isoformat()
    record = {"release": "v1.0", "status": "approved", "approved_by": "Alex Auditor", "approved_at": utcnow().isoformat(), "expires_at": expires}
    (pytester.path / "approvals").mkdir()
    (pytester.path / "approvals" / "p4.yaml").write_text(yaml.safe_dump(record))
    root = signed(pytester, monkeypatch, approvals={"upstream": [{"name": "protocol-4", "file": "approvals/p4.yaml"}]})
    security = json.loads((root / ARTIFACTS / "security-compliance-report.json").read_text())
    security["approvals"] = [{"waiver": "SEC-1", "owner": "Sam Security", "justification": "j", "expires_at": expires, "findings": ["x"]}]
    project = load_config(root / "predeploy.yaml")
    files = {"security-compliance-report.json": json.dumps(security).encode()}
    with zipfile.ZipFile(root / ARTIFACTS / "PRE-DEPLOYMENT-PACKAGE.zip") as archive:
        files["intake-validation-report.json"] = archive.read("intake-validation-report.json")
    assert rejudge_problems(files.get, project, "v1.0") == []
    later = rejudge_problems(files.get, project, "v1.0", now=utcnow() + timedelta(days=3))
    assert any("upstream approval no longer holds" in p and "expired" in p for p in later), later
    assert any("security waiver SEC-1 (owner Sam Security) expired" in p for p in later), later


def test_the_terminal_last_line_is_the_verdict(pytester: pytest.Pytester) -> None:
    make_complete_project(pytester)
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", "-rA")
    assert result.ret == ExitStatus.AWAITING_SIGNOFF
    assert last_line(result).startswith("AWAITING SIGN-OFF: awaiting sign-off from:")


def test_a_gate4_only_run_without_its_reports_plugin_never_seals(pytester: pytest.Pytester) -> None:
    make_complete_project(pytester)
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", "-p", "no:html")
    assert result.ret == ExitStatus.NO_GO, result.stdout.str()
    result.stdout.fnmatch_lines(["*package NOT sealed: pytest-report.html was not written*"])


#: Every option `pytest --help` lists with this plugin and its dependencies installed, by what it
#: can do to a protocol run. A new pytest option fails test_every_pytest_option_is_classified
#: until someone decides which it is.
SELECTS_PLANS_LISTS_OR_BLOCKS = {
    # selection: fewer criteria judged -> NOT JUDGED (run below)
    "-k",
    "-m",
    "--deselect",
    "--ignore",
    "--ignore-glob",
    "--lf",
    "--lfnf",
    "--sw",
    "--sw-skip",
    "--pyargs",
    "--confcutdir",
    "--noconftest",
    "--keep-duplicates",
    "-o",
    "-c",
    "--rootdir",
    "--doctest-modules",
    "--doctest-glob",
    "--doctest-ignore-import-errors",
    "--doctest-continue-on-failure",
    "--collect-in-virtualenv",
    "--continue-on-collection-errors",
    "--import-mode",
    "--runxfail",
    # planning and listing: nothing judged -> NOT JUDGED
    "--collect-only",
    "--setup-only",
    "--setup-plan",
    "--fixtures",
    "--fixtures-per-test",
    "--markers",
    "--cache-show",
    "--help",
    "-h",
    # stopping early: a failure is NO-GO, what did not run is not judged
    "-x",
    "--exitfirst",
    "--maxfail",
    "--max-warnings",
    "--pdb",
    "--trace",
    "--pdbcls",
    # plugins: a blocked part of ours is a usage error; without the plugin --predeploy-release is unknown
    "-p",
    "--disable-plugin-autoload",
    # xdist: refused with a release (gates run in order, once, in one process)
    "-n",
    "--dist",
    "--tx",
    "-d",
    "-f",
    "--looponfail",
    "--maxprocesses",
    "--max-worker-restart",
    "--px",
    "--rsyncdir",
    "--rsyncignore",
    "--testrunuid",
    "--maxschedchunk",
    "--loadscope-reorder",
    "--no-loadscope-reorder",
}
#: What these change is how the run reports or is debugged, never which criteria run: the verdict
#: stands on what was judged (and the run still ends NOT JUDGED if anything was not).
REPORTING_ONLY = {
    "--strict-config",
    "--strict-markers",
    "--strict",
    "--capture",
    "-s",
    "--ff",
    "--nf",
    "--cache-clear",
    "--sw-reset",
    "--durations",
    "--durations-min",
    "-v",
    "--verbose",
    "--no-header",
    "--no-summary",
    "--no-fold-skipped",
    "--force-short-summary",
    "-q",
    "--quiet",
    "--verbosity",
    "-r",
    "--disable-warnings",
    "-l",
    "--showlocals",
    "--no-showlocals",
    "--tb",
    "--xfail-tb",
    "--show-capture",
    "--full-trace",
    "--color",
    "--code-highlight",
    "--pastebin",
    "--junit-xml",
    "--junit-prefix",
    "--html",
    "--self-contained-html",
    "--css",
    "-W",
    "--basetemp",
    "--trace-config",
    "--debug",
    "--assert",
    "--setup-show",
    "--log-level",
    "--log-format",
    "--log-date-format",
    "--log-cli-level",
    "--log-cli-format",
    "--log-cli-date-format",
    "--log-file",
    "--log-file-mode",
    "--log-file-level",
    "--log-file-format",
    "--log-file-date-format",
    "--log-auto-indent",
    "--log-disable",
    "--metadata",
    "--metadata-from-json",
    "--metadata-from-json-file",
    "--doctest-report",
    "--json-report",
    "--json-report-file",
    "--json-report-omit",
    "--json-report-summary",
    "--json-report-indent",
    "--json-report-verbosity",
    "--predeploy-release",
    "--predeploy-previous",
    "--predeploy-config",
    "--predeploy-env",
    "--predeploy-artifacts",
    "--predeploy-interactive",
}
#: Answered by pytest before any plugin loads (exit 0, the version, no protocol line).
BEFORE_PLUGINS = {"-V", "--version"}


def test_every_pytest_option_is_classified(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    listed: set[str] = set()
    for line in result.outlines:
        for match in re.finditer(r"^  (-\w)(?:, (--[\w-]+))?|^  (--[\w-]+)", line):
            listed.update(flag for flag in match.groups() if flag)
    assert len(listed) > 60, result.stdout.str()
    unclassified = listed - SELECTS_PLANS_LISTS_OR_BLOCKS - REPORTING_ONLY - BEFORE_PLUGINS
    assert not unclassified, f"classify these options (do they change which criteria are judged?): {sorted(unclassified)}"


@pytest.mark.parametrize(
    "args, fixed",
    [
        pytest.param(["--lf"], True, id="--lf after a failure"),
        pytest.param(["--sw"], True, id="--sw after a failure"),
        pytest.param(["--sw-skip"], False, id="--sw-skip past a failure"),
        pytest.param(["-x"], False, id="-x on a failure"),
        pytest.param(["--maxfail=1"], False, id="--maxfail on a failure"),
        pytest.param(["--keep-duplicates", "gates", "gates"], True, id="--keep-duplicates"),
    ],
)
def test_rerun_stepwise_and_stop_options_never_end_go_or_awaiting(pytester: pytest.Pytester, args: list[str], fixed: bool) -> None:
    root = make_complete_project(pytester)
    gate2 = (root / "gates" / "test_gate2_rehearsal.py").read_text()
    (root / "gates" / "test_gate2_rehearsal.py").write_text(gate2.replace('evidence(predeploy, "staging-test-results.json")', "assert False"))
    first = pytester.runpytest_inprocess("--predeploy-release=v1.0", "-p", "cacheprovider", *args)
    assert first.ret not in VERDICTS, first.stdout.str()
    if fixed:
        (root / "gates" / "test_gate2_rehearsal.py").write_text(gate2)  # fixed: only a whole run may now say so
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", "-p", "cacheprovider", *args)
    assert result.ret not in VERDICTS, result.stdout.str()
    assert "PROTOCOL COMPLETE" not in result.stdout.str()


@pytest.mark.parametrize("args", [["--cache-show"], ["--help"], ["--disable-plugin-autoload"], ["-f"]])
def test_informational_and_looping_options_never_end_go_or_awaiting(pytester: pytest.Pytester, args: list[str]) -> None:
    make_complete_project(pytester)
    result = pytester.runpytest_subprocess("--predeploy-release=v1.0", *args, timeout=120)
    assert result.ret not in VERDICTS, result.stdout.str()


@pytest.mark.parametrize("option", ["--collect-only", "--setup-plan"])
def test_listing_or_planning_leaves_a_sealed_package_where_it_is(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, option: str) -> None:
    root = signed(pytester, monkeypatch)
    package = (root / ARTIFACTS / "PRE-DEPLOYMENT-PACKAGE.zip").read_bytes()
    assert pytester.runpytest_inprocess("--predeploy-release=v1.0", option).ret == ExitStatus.NOT_JUDGED
    assert (root / ARTIFACTS / "PRE-DEPLOYMENT-PACKAGE.zip").read_bytes() == package  # not archived away
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", GATE4)
    assert result.ret == ExitStatus.GO, result.stdout.str()
