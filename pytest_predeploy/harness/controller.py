"""How gates run: order, MUST/GUIDELINE outcomes, halting, live phase lines, and what each
declared criterion's test showed in this run.

When a MUST test of gate N fails or errors (a step fixture failing included), every test of a
later gate is reported *skipped* with ``halted: Gate N (<name>) failed`` at its own location: the
run goes on, so every report still lists every gate test, which ``-x`` would hide.

A gate test names the criterion it judges (``pytest.mark.must("parity")``); the names are checked
against the protocol's declaration at collection, and after a MUST test passes, the declared judge
is applied to the artifact itself: a test that stopped asserting cannot pass what the evidence
fails. What each criterion's test showed (:attr:`GateController.results`) is what the verdict is
made of (:mod:`pytest_predeploy.harness.verdict`), never which tests happened to run.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_predeploy.core.protocol import PHASE_START
from pytest_predeploy.harness.gates import (
    WRITE_ERRNOS,
    Gate,
    cannot_write,
    criterion_of,
    gate_of,
    kind_of,
)
from pytest_predeploy.harness.itemkeys import evidence_key
from pytest_predeploy.harness.outcomes import CriterionResult, criterion_result, gate_outcome
from pytest_predeploy.verdict.criteria import BY_KEY, Criterion, binding_problem

#: Judges a criterion's artifact as it is now; one line per problem.
Judge = Callable[[Criterion], list[str]]


class GateController:
    """Registered as ``predeploy-gates`` only when a release is given."""

    def __init__(self, config: pytest.Config, release: str, no_data_policy: str, live: Any, judge: Judge) -> None:
        self.config = config
        self.release = release
        self.no_data_policy = no_data_policy
        self.live = live
        self.judge = judge
        self.gates: dict[int, Gate] = {}
        self.halted_by: Gate | None = None
        self.interrupted = False
        #: The artifacts folder, named when a write there fails without a file name (a full disk).
        self.artifacts: Path | None = None
        #: Called once, with the gate, when a gate first halts the later ones (the session stops
        #: what runs beside the rehearsal for those gates).
        self.on_halt: Callable[[Gate], None] | None = None
        #: Criterion key -> what its test showed in this run.
        self.results: dict[str, CriterionResult] = {}
        #: Criterion key -> the test that binds it, as collected (before any deselection).
        self.bound: dict[str, str] = {}
        #: Criterion keys whose test was deselected (-k, -m, --deselect, --lf ...).
        self.deselected: set[str] = set()

    def _halt(self, gate: Gate) -> None:
        if self.halted_by is None:
            self.halted_by = gate
            if self.on_halt is not None:
                self.on_halt(gate)

    # -- collection -------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True, specname="pytest_collection_modifyitems")
    def pytest_collection_modifyitems_bindings(self, items: list[pytest.Item]) -> None:
        """Before any deselection: every criterion a gate test names is declared for its gate
        and kind, and bound once."""
        for item in items:
            found = gate_of(item)
            key = criterion_of(item) if found is not None else None
            if found is None or key is None:
                continue
            problem = binding_problem(key, found[0], kind_of(item))
            if problem is None and key in self.bound:
                problem = f"criterion '{key}' is already judged by {self.bound[key]}; a criterion has one test"
            if problem is not None:
                raise pytest.UsageError(f"{item.nodeid}: {problem}")
            self.bound[key] = item.nodeid

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        def order(indexed: tuple[int, pytest.Item]) -> tuple[int, int]:
            gate = gate_of(indexed[1])
            return (gate[0] if gate else 10**9, indexed[0])

        items[:] = [item for _, item in sorted(enumerate(items), key=order)]
        for item in items:
            found = gate_of(item)
            if found is None:
                continue
            gate = self.gates.setdefault(found[0], Gate(*found))
            gate.first_nodeid = gate.first_nodeid or item.nodeid
            gate.last_nodeid = item.nodeid
            gate.items += 1
            key = criterion_of(item)
            if key is not None:
                self.results[key] = CriterionResult("not called", "collected, but its test never ran", item.nodeid)

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        for item in items:
            key = criterion_of(item) if gate_of(item) is not None else None
            if key is not None:
                self.deselected.add(key)

    # -- running ----------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        found = gate_of(item)
        if found is None:
            return
        gate = self.gates[found[0]]
        if self.halted_by is not None and self.halted_by.number < gate.number:
            gate.status = "halted"
            gate.reason = f"halted: Gate {self.halted_by.number} ({self.halted_by.name}) failed"
            raise pytest.skip.Exception(gate.reason, _use_item_location=True)
        if not gate.started:
            gate.started = True
            gate.status = "running"
            text = PHASE_START.get(gate.number, f"{gate.name}...")
            self.live(f"[PHASE {gate.number} START] - {text}")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        found = gate_of(item)
        if found is None:
            return report
        if report.failed and call.excinfo is not None and isinstance(call.excinfo.value, OSError) and call.excinfo.value.errno in WRITE_ERRNOS:
            # Disk full or a read-only folder is the machine's state, not a bug: one line, no traceback.
            report.longrepr = cannot_write(call.excinfo.value, self.artifacts)
        gate = self.gates[found[0]]
        kind = kind_of(item)
        key = criterion_of(item)
        report.user_properties.append(("gate", gate.number))
        report.user_properties.append(("gate_name", gate.name))
        report.user_properties.append(("requirement", kind.upper()))
        if key is not None:
            report.user_properties.append(("criterion", key))
        if report.when == "call":
            gate.called += 1
            evidence = item.stash.get(evidence_key, None)
            if evidence is not None:
                gate.figures.extend(evidence.figures)
            if report.passed and kind == "must" and key is not None:
                self._judge_passed(report, BY_KEY[key])
        consequence = gate_outcome(item, call, report, gate, kind, self.no_data_policy)
        if consequence == "interrupted":
            self.interrupted = True
        elif consequence == "halt":
            self._halt(gate)
        if report.when == "setup" and getattr(report, "predeploy_outcome", None) in ("advisory", "no data"):
            gate.called += 1  # a GUIDELINE whose step failed was judged: advisory, with no call to make
        if key is not None and (result := criterion_result(item, report)) is not None:
            self.results[key] = result
        return report

    def _judge_passed(self, report: pytest.TestReport, criterion: Criterion) -> None:
        """A MUST test passed: its criterion's declared judge must agree on the artifact itself."""
        problems = self.judge(criterion)
        if problems:
            report.outcome = "failed"
            shown = "\n  ".join(problems[:10]) + (f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else "")
            report.longrepr = f"the test passed, but {criterion.label} is not met by the evidence:\n  {shown}"

    def pytest_report_teststatus(self, report: pytest.TestReport) -> tuple[str, str, str] | None:
        outcome = getattr(report, "predeploy_outcome", None)
        if outcome in ("advisory", "no data") and not report.failed:
            return "advisory", "A", ("ADVISORY" if outcome == "advisory" else "ADVISORY (no data)")
        if outcome == "no data" and report.failed:
            return "failed", "F", "FAILED (no data)"
        if outcome == "awaiting sign-off":
            return "awaiting sign-off", "S", "AWAITING SIGN-OFF"
        return None

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        for gate in self.gates.values():
            if gate.last_nodeid != nodeid or not gate.started:
                continue
            if gate.status == "running" and gate.called < gate.items:
                gate.status = "not judged"
                gate.reason = f"{gate.items - gate.called} of its {gate.items} tests were set up but never called (--setup-only, --setup-plan)"
            if gate.status == "running":
                gate.status = "passed"
            if gate.status == "passed":
                self.live(f"[PHASE {gate.number} COMPLETE] - {gate.name} finished successfully.")
            elif gate.status == "failed":
                self.live(f"[PHASE {gate.number} FAILED] - {gate.name} did not pass: later gates are halted.")

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self) -> None:
        self.interrupted = True

    def settle(self) -> None:
        """At session end: a gate still running was cut short (Ctrl-C, SIGTERM, pytest.exit)."""
        for gate in self.gates.values():
            if gate.status == "running":
                gate.status = "interrupted"
                gate.reason = "the run was interrupted before every test of this gate finished"

    # -- outcome ----------------------------------------------------------------------------
    def failed_gates(self) -> list[Gate]:
        return [g for g in sorted(self.gates.values(), key=lambda g: g.number) if g.status == "failed"]

    def pending_roles(self) -> list[str]:
        # In the order readiness.required_roles lists them, as the gate summary line shows them.
        return list(dict.fromkeys(role for g in sorted(self.gates.values(), key=lambda g: g.number) for role in g.pending_roles))

    def outcomes(self) -> dict[str, str]:
        return {f"gate{g.number}": g.status for g in sorted(self.gates.values(), key=lambda g: g.number)}
