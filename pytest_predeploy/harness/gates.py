"""Gates as tests: order, MUST/GUIDELINE outcomes, halting, live phase lines, the summary and
the exit status.

A gate is a test module marked ``pytest.mark.gate(N, "Name")``; each test in it is marked
``must`` or ``guideline``. When a MUST test of gate N fails or errors (a step fixture failing
included), every test of a later gate is reported *skipped* with ``halted: Gate N (<name>)
failed`` at its own location: the run goes on, so every report still lists every gate test,
which ``-x`` would hide.
"""

from __future__ import annotations

import enum
import errno
import re
import textwrap
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from pytest_predeploy.core.errors import ArtifactError
from pytest_predeploy.harness.itemkeys import evidence_key


class ExitStatus(enum.IntEnum):
    """Documented exit statuses of a protocol run (README, 'Exit statuses')."""

    GO = 0
    NO_GO = 1
    INTERRUPTED = 2
    USAGE_ERROR = 4
    AWAITING_SIGNOFF = 10


#: Phase announcements of PROTOCOL-10 by gate number; other gates get a generic line.
PHASE_START = {
    1: "Validating upstream approvals and artifact completeness...",
    2: "Rehearsing deployment on staging environment...",
    3: "Verifying rollback and recovery procedures...",
    4: "Compiling pre-deployment readiness package for release approval...",
}
PROTOCOL_COMPLETE = "[PROTOCOL COMPLETE] - Pre-deployment readiness approved. Ready for Protocol 11 (Production Deployment)."

GATE_FILE = re.compile(r"^test_gate(\d+)_\w+\.py$")


#: What a full disk or a read-only folder raises when we write.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT})


def cannot_write(exc: OSError, folder: Path | None = None) -> str:
    """One line for a file that could not be written: which file (else the folder), why, and what to do."""
    where = exc.filename or (f"in {folder}" if folder else "a file")
    return f"cannot write {where}: {exc.strerror or exc} (free disk space, or make the artifacts folder writable, then rerun the protocol)"


class NoData(AssertionError):
    """A metric could not be read or a check could not run: an explicit outcome, never a pass."""


# pytest's skip outcome is public as the value ``pytest.skip.Exception``; a type checker does not
# accept an attribute as a base class, hence the ignore. ``_use_item_location`` is the keyword of
# that public class's constructor that reports the skip at the gate test instead of at this file
# (pytest offers no other way to place a skip raised by a plugin hook).
class AwaitingSignOff(pytest.skip.Exception):  # type: ignore[misc,name-defined]
    """The package is ready and waiting for sign-off: neither success nor a defect."""

    def __init__(self, roles: Iterable[str], detail: str = "") -> None:
        self.roles = list(roles)
        message = "awaiting sign-off from: " + ", ".join(self.roles)
        if detail:
            message += f" ({detail})"
        super().__init__(message, _use_item_location=True)


def no_data(what: str) -> NoReturn:
    raise NoData(f"no data: {what}")


def await_signoff(roles: Iterable[str], detail: str = "") -> NoReturn:
    raise AwaitingSignOff(roles, detail)


def load(path: Any, model: Any) -> Any:
    """Read an artifact for a gate assertion: a malformed one fails the test naming file and field."""
    # Here, not at the top: the plugin imports this module in plain pytest runs, which must not
    # pay for pydantic (core.artifacts' models).
    from pytest_predeploy.core.artifacts import read_artifact

    try:
        return read_artifact(path, model)
    except ArtifactError as exc:
        pytest.fail(str(exc), pytrace=False)


def require(problems: list[str], headline: str, limit: int = 10) -> None:
    """Fail with ``headline`` and the first ``limit`` problems, one per line, when there are any."""
    if problems:
        shown = problems[:limit]
        more = f"\n  ... and {len(problems) - limit} more" if len(problems) > limit else ""
        pytest.fail(headline + "\n  " + "\n  ".join(shown) + more, pytrace=False)


@dataclass
class Gate:
    number: int
    name: str
    # running | passed | failed | halted | awaiting sign-off | interrupted | not run. "passed" is
    # given only when the gate's last test has finished with no MUST test failed: a gate that is
    # still "running" when the session ends was cut short and never counts as passed.
    status: str = "not run"
    reason: str = ""
    figures: list[str] = field(default_factory=list)
    advisories: list[str] = field(default_factory=list)
    pending_roles: list[str] = field(default_factory=list)
    first_nodeid: str = ""
    last_nodeid: str = ""
    started: bool = False


def gate_of(item: pytest.Item) -> tuple[int, str] | None:
    marker = item.get_closest_marker("gate")
    if marker is None:
        return None
    number, name = marker.args[0], marker.args[1] if len(marker.args) > 1 else f"Gate {marker.args[0]}"
    return int(number), str(name)


def kind_of(item: pytest.Item) -> str:
    return "guideline" if item.get_closest_marker("guideline") else "must"


class GateController:
    """Registered as ``predeploy-gates`` only when a release is given."""

    def __init__(self, config: pytest.Config, release: str, no_data_policy: str, live: Any) -> None:
        self.config = config
        self.release = release
        self.no_data_policy = no_data_policy
        self.live = live
        self.gates: dict[int, Gate] = {}
        self.halted_by: Gate | None = None
        self.interrupted = False
        #: The artifacts folder, named when a write there fails without a file name (a full disk).
        self.artifacts: Path | None = None
        #: Called once, with the gate, when a gate first halts the later ones (the session stops
        #: what runs beside the rehearsal for those gates).
        self.on_halt: Callable[[Gate], None] | None = None

    def _halt(self, gate: Gate) -> None:
        if self.halted_by is None:
            self.halted_by = gate
            if self.on_halt is not None:
                self.on_halt(gate)

    # -- collection -------------------------------------------------------------------------
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
        report.user_properties.append(("gate", gate.number))
        report.user_properties.append(("gate_name", gate.name))
        report.user_properties.append(("requirement", kind.upper()))
        if report.when == "call":
            found = item.stash.get(evidence_key, None)
            if found is not None:
                gate.figures.extend(found.figures)
        if call.excinfo is not None and call.excinfo.errisinstance(KeyboardInterrupt):
            self.interrupted = True
            return report
        if report.skipped and call.excinfo is not None and isinstance(call.excinfo.value, AwaitingSignOff):
            gate.pending_roles = call.excinfo.value.roles
            if gate.status == "running":
                gate.status = "awaiting sign-off"
                gate.reason = str(call.excinfo.value.msg)
            # pytest reports carry extra attributes by design (TestReport(**extra), serialised with the
            # report), but pytest's types declare none: mypy cannot know the predeploy_* ones.
            report.predeploy_outcome = "awaiting sign-off"  # type: ignore[attr-defined]
            return report
        if report.skipped and kind == "must" and gate.status == "running" and report.when in ("setup", "call"):
            # A MUST criterion that did not run is not met: the gate cannot count as passed.
            gate.status = "failed"
            gate.reason = f"{item.name}: skipped, so this MUST criterion was not checked: {_skip_reason(report)}"
            self._halt(gate)
            return report
        if not report.failed:
            return report
        is_no_data = call.excinfo is not None and call.excinfo.errisinstance(NoData)
        message = _failure_message(report)
        if kind == "guideline" or (is_no_data and self.no_data_policy == "advisory"):
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
            return report
        if is_no_data:
            # Extra report attribute, as above (pytest's types declare none).
            report.predeploy_outcome = "no data"  # type: ignore[attr-defined]
        if gate.status != "failed":
            gate.status = "failed"
            gate.reason = f"{item.name}: {message}"
        self._halt(gate)
        return report

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
    def exit_status(self, pytest_status: int) -> int:
        if self.interrupted or pytest_status == pytest.ExitCode.INTERRUPTED:
            return ExitStatus.INTERRUPTED
        if pytest_status == pytest.ExitCode.USAGE_ERROR:
            return ExitStatus.USAGE_ERROR
        if pytest_status not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            return pytest_status
        if any(g.status == "failed" for g in self.gates.values()) or pytest_status == pytest.ExitCode.TESTS_FAILED:
            return ExitStatus.NO_GO
        if any(g.status == "awaiting sign-off" for g in self.gates.values()):
            return ExitStatus.AWAITING_SIGNOFF
        return ExitStatus.GO

    def complete(self) -> bool:
        """Every gate ran and passed (the protocol's handoff condition)."""
        return bool(self.gates) and all(g.status == "passed" for g in self.gates.values())

    def pending_roles(self) -> list[str]:
        # In the order readiness.required_roles lists them, as the gate summary line shows them.
        return list(dict.fromkeys(role for g in sorted(self.gates.values(), key=lambda g: g.number) for role in g.pending_roles))

    def outcomes(self) -> dict[str, str]:
        return {f"gate{g.number}": g.status for g in sorted(self.gates.values(), key=lambda g: g.number)}


def _failure_message(report: pytest.TestReport) -> str:
    """What went wrong, in full: every line of the assertion or step message (a gate's reason
    lists each blocking problem, so cutting it to its first line would hide all but the headline)."""
    text = report.longreprtext.strip("\n")
    marked = [line[1:] for line in text.splitlines() if line.startswith("E ") or line == "E"]
    body = textwrap.dedent("\n".join(marked)) if marked else textwrap.dedent(text)
    lines = [line.rstrip() for line in body.strip("\n").splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    message = "\n".join(lines).removeprefix("Failed: ").strip()
    return message or "failed"


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return report.longreprtext.strip() or "skipped"
