"""What one gate test's report means: for its gate (failed, halting the later gates, advisory,
awaiting sign-off), for the report pytest shows, and for the criterion the test judges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from pytest_predeploy.harness.gates import AwaitingSignOff, Gate, NoData, failure_message, skip_reason

#: What a report means for the run: the run was interrupted, its gate halts the later ones, or neither.
Consequence = Literal["interrupted", "halt"] | None


@dataclass
class CriterionResult:
    """What the test bound to one criterion showed in this run."""

    #: passed | failed | advisory | awaiting sign-off | skipped | halted | not called
    status: str
    detail: str = ""
    nodeid: str = ""


def gate_outcome(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport, gate: Gate, kind: str, no_data_policy: str) -> Consequence:
    """Apply one test report to its gate (status, reason, advisories) and to the report itself
    (a GUIDELINE miss passes or skips; the predeploy_* outcome); say what it means for the run."""
    if call.excinfo is not None and call.excinfo.errisinstance(KeyboardInterrupt):
        return "interrupted"
    if report.skipped and call.excinfo is not None and isinstance(call.excinfo.value, AwaitingSignOff):
        gate.pending_roles = call.excinfo.value.roles
        if gate.status == "running":
            gate.status = "awaiting sign-off"
            gate.reason = str(call.excinfo.value.msg)
        # pytest reports carry extra attributes by design (TestReport(**extra), serialised with the
        # report), but pytest's types declare none: mypy cannot know the predeploy_* ones.
        report.predeploy_outcome = "awaiting sign-off"  # type: ignore[attr-defined]
        return None
    if report.skipped and kind == "must" and gate.status == "running" and report.when in ("setup", "call"):
        # A MUST criterion that did not run is not met: the gate cannot count as passed.
        gate.status = "failed"
        gate.reason = f"{item.name}: skipped, so this MUST criterion was not checked: {skip_reason(report)}"
        return "halt"
    if not report.failed:
        return None
    is_no_data = call.excinfo is not None and call.excinfo.errisinstance(NoData)
    message = failure_message(report)
    if kind == "guideline" or (is_no_data and no_data_policy == "advisory"):
        # A GUIDELINE miss is visible but never halts and never fails the run. A miss in
        # setup (its step failed) becomes a skip: "passed" there would make pytest run the
        # test body without its fixture.
        if report.when == "setup":
            report.outcome = "skipped"
            # An item without a line number (not a Python function) is reported at the file's top.
            report.longrepr = (str(item.path), (item.location[1] or 0) + 1, f"advisory: {message}")
        else:
            report.outcome = "passed"
        # Extra report attributes, as above (pytest's types declare none).
        report.predeploy_outcome = "no data" if is_no_data else "advisory"  # type: ignore[attr-defined]
        report.predeploy_detail = report.longreprtext  # type: ignore[attr-defined]
        gate.advisories.append(f"{item.name}: {message}")
        return None
    if is_no_data:
        # Extra report attribute, as above (pytest's types declare none).
        report.predeploy_outcome = "no data"  # type: ignore[attr-defined]
    if gate.status != "failed":
        gate.status = "failed"
        gate.reason = f"{item.name}: {message}"
    return "halt"


def criterion_result(item: pytest.Item, report: pytest.TestReport) -> CriterionResult | None:
    """What one report of the test bound to a criterion shows, or None (a passed setup or teardown)."""
    outcome = getattr(report, "predeploy_outcome", None)
    if report.failed:
        return CriterionResult("failed", failure_message(report), item.nodeid)
    elif outcome in ("advisory", "no data"):
        return CriterionResult("advisory", str(getattr(report, "predeploy_detail", "")), item.nodeid)
    elif outcome == "awaiting sign-off":
        return CriterionResult("awaiting sign-off", skip_reason(report), item.nodeid)
    elif report.skipped:
        reason = skip_reason(report)
        return CriterionResult("halted" if reason.startswith("halted:") else "skipped", reason, item.nodeid)
    elif report.when == "call" and report.passed:
        return CriterionResult("passed", "", item.nodeid)
    return None
