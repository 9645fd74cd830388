"""The background scheduler: a step's work in a thread with its own cancel event, its result or
exception taken by the fixture's thread, and halting that stops real process trees and removes
what the step wrote."""

from __future__ import annotations

import sys
import textwrap
import threading
from pathlib import Path

import pytest

from pytest_predeploy.core.background import Scheduler, StepHalted, partial_files, remove_artifacts
from pytest_predeploy.core.runner import RunResult, run_command
from tests.fake_audit import audit_script
from tests.waiting import alive, poll

#: A step's script that starts a child in its group and a daemon outside it, begins its report
#: and records every pid (tests/fake_audit.py).
AUDIT = audit_script(pids="sys.argv[1]", report="sys.argv[2]", tmp_tag="x1y2", line="scanning")


def pids_in(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def test_result_comes_from_the_thread_and_is_taken_by_the_caller() -> None:
    scheduler = Scheduler()
    step = scheduler.start("intake", lambda cancel: threading.get_ident())
    assert step.result() != threading.get_ident()
    assert step.state == "done" and step.taken


def test_exception_of_the_work_is_raised_where_the_result_is_taken() -> None:
    def work(cancel: threading.Event) -> None:
        pytest.fail("step 'security' failed: run_security_audit.py failed (exit 2)", pytrace=False)

    step = Scheduler().start("security", work)
    step.wait()
    assert step.state == "failed"
    # pytest.fail's exception is a BaseException: it must cross the thread like any other.
    with pytest.raises(pytest.fail.Exception, match="run_security_audit.py failed"):
        step.result()


def test_stop_ends_a_running_script_and_every_descendant_and_removes_its_report(tmp_path: Path) -> None:
    audit = tmp_path / "audit.py"
    audit.write_text(textwrap.dedent(AUDIT))
    pids, report = tmp_path / "pids", tmp_path / "security-compliance-report.json"
    transcript = tmp_path / "transcripts" / "security.log"

    def work(cancel: threading.Event) -> RunResult:
        return run_command(
            [sys.executable, str(audit), str(pids), str(report)],
            step="security",
            transcript=transcript,
            timeout=120,
            cwd=tmp_path,
            cancel=cancel,
            kill_grace=2.0,
        )

    scheduler = Scheduler()
    step = scheduler.start("security", work, artifacts=[report])
    poll(lambda: len(pids_in(pids)) == 3, "the audit started its child and its daemon", deadline=30)
    assert partial_files(report)  # the temporary file of the report being written
    assert step.state == "running"

    halts = scheduler.stop(["security"], "halted: Gate 1 (Intake Confirmation) failed")

    assert [(h.name, h.was_running, h.ended) for h in halts] == [("security", True, True)]
    assert [pid for pid in pids_in(pids) if alive(pid)] == []
    assert partial_files(report) == []
    assert [path.name for path in halts[0].removed] == [".security-compliance-report.json.x1y2.tmp"]
    assert "# status: interrupted" in transcript.read_text()
    assert "stopped while running (halted: Gate 1 (Intake Confirmation) failed)" in halts[0].describe()
    with pytest.raises(StepHalted, match="security: halted: Gate 1"):
        step.result()


def test_a_finished_step_never_taken_leaves_no_artifact(tmp_path: Path) -> None:
    report = tmp_path / "security-compliance-report.json"

    def work(cancel: threading.Event) -> Path:
        report.write_text("{}")
        return report

    scheduler = Scheduler()
    step = scheduler.start("security", work, artifacts=[report, tmp_path / "sbom.cdx.json"])
    step.wait()
    halts = scheduler.stop_untaken("halted: Gate 2 (Deployment Rehearsal) failed")
    assert [(h.was_running, h.removed) for h in halts] == [(False, [report])]
    assert not report.exists()
    assert step.state == "halted"


def test_a_taken_result_is_never_stopped_or_removed(tmp_path: Path) -> None:
    report = tmp_path / "operational-readiness-checklist.md"
    scheduler = Scheduler()
    step = scheduler.start("operational_readiness", lambda cancel: report.write_text("ok"), artifacts=[report])
    step.result()
    assert scheduler.stop_untaken("the run ended") == []
    assert report.read_text() == "ok"


def test_work_that_ignores_its_cancel_event_is_reported_as_not_stopped() -> None:
    release = threading.Event()
    step = Scheduler().start("stubborn", lambda cancel: release.wait(30))
    halt = step.stop("the run was interrupted", timeout=0.2)
    assert (halt.was_running, halt.ended) == (True, False)
    assert "did not stop in time" in halt.describe()
    release.set()
    assert step.wait(5)


def test_a_step_starts_once_per_run() -> None:
    scheduler = Scheduler()
    scheduler.start("security", lambda cancel: None).wait()
    with pytest.raises(ValueError, match="already started"):
        scheduler.start("security", lambda cancel: None)


def test_remove_artifacts_takes_only_the_named_files_and_their_temporaries(tmp_path: Path) -> None:
    (tmp_path / "sbom.cdx.json").write_text("{}")
    (tmp_path / ".sbom.cdx.json.abc.tmp").write_text("{")
    (tmp_path / "staging-parity-report.json").write_text("{}")
    removed = remove_artifacts([tmp_path / "sbom.cdx.json", tmp_path / "security-compliance-report.json"])
    assert sorted(path.name for path in removed) == [".sbom.cdx.json.abc.tmp", "sbom.cdx.json"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["staging-parity-report.json"]
