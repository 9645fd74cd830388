"""The verdict of a protocol run: the declared protocol applied to what this run judged.

Exit 0 means GO and nothing else. A run is GO only when every criterion the protocol declares
(:data:`pytest_predeploy.verdict.criteria.CRITERIA`) was judged and met: gates 1-3 in this run's
own test calls (or, for Gate 4 run alone, in the sealed package, judged again now), Gate 4's in
this run. It is 10 (awaiting sign-off) on the same condition with only the sign-offs pending. Any
criterion not judged (deselected, skipped, never called because of ``--setup-only``,
``--setup-plan`` or ``--collect-only``, not collected because other tests were named, a blocked
part of the plugin ...) makes the run 11, NOT JUDGED, whatever else passed, and the last line
names each one and why. Which tests happened to run never decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pytest_predeploy.core.protocol import READINESS_GATE
from pytest_predeploy.harness.controller import GateController
from pytest_predeploy.harness.gates import PROTOCOL_COMPLETE, ExitStatus
from pytest_predeploy.verdict.criteria import CRITERIA, SIGNOFFS, Criterion

#: Outcomes of a criterion's test that count as judged (a GUIDELINE miss is judged: advisory).
JUDGED = {"must": {"passed"}, "guideline": {"passed", "advisory"}}


@dataclass
class Verdict:
    status: int
    #: The terminal's last line (and the reports' headline).
    line: str
    #: One line per criterion that was not judged: which, and why.
    not_judged: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        kinds = {ExitStatus.GO: "go", ExitStatus.NO_GO: "no-go", ExitStatus.INTERRUPTED: "interrupted", ExitStatus.AWAITING_SIGNOFF: "awaiting"}
        return kinds.get(ExitStatus(self.status), "not judged") if self.status in set(ExitStatus) else "error"


def _why_not(criterion: Criterion, controller: GateController) -> str | None:
    """Why ``criterion`` was not judged in this run (None: it was)."""
    result = controller.results.get(criterion.key)
    if result is not None and result.status in JUDGED[criterion.kind]:
        return None
    if criterion.key == SIGNOFFS and result is not None and result.status == "awaiting sign-off":
        return None
    if criterion.key in controller.deselected:
        return "deselected"
    if result is not None:
        return result.status + (f": {result.detail.splitlines()[0]}" if result.detail else "")
    if criterion.key in controller.bound:
        return "not selected (the command line named other tests)"
    return "not collected (no collected gate test judges it)"


def not_judged(controller: GateController, sealed_rejudged: bool) -> list[tuple[Criterion, str]]:
    """Each declared criterion this run did not judge, with why. With ``sealed_rejudged`` (Gate 4
    judged a sealed package again in this run and it held), the package vouches for gates before
    Gate 4: only a full run seals, and it seals only when it judged every one of them."""
    missing = []
    for criterion in CRITERIA:
        if sealed_rejudged and criterion.gate < READINESS_GATE:
            continue
        why = _why_not(criterion, controller)
        if why is not None:
            missing.append((criterion, why))
    return missing


def _not_judged_line(controller: GateController, missing: list[tuple[Criterion, str]]) -> str:
    by_reason: dict[str, list[str]] = {}
    for criterion, why in missing:
        by_reason.setdefault(why.split(":")[0].split(" (")[0], []).append(criterion.key)
    listed = "; ".join(f"{', '.join(keys)} ({reason})" for reason, keys in by_reason.items())
    passed = [g for g in sorted(controller.gates.values(), key=lambda g: g.number) if g.status == "passed"]
    partial = ""
    if passed:
        partial = f"{', '.join(f'Gate {g.number}' for g in passed)} passed (this run only); "
    return f"NOT JUDGED: {partial}not a protocol verdict: {len(missing)} of {len(CRITERIA)} criteria not judged: {listed} (exit status {int(ExitStatus.NOT_JUDGED)})"


def decide(controller: GateController, pytest_status: int, sealed_rejudged: bool, staging: str | None = None) -> Verdict:
    """The verdict and exit status of a run (see the module's docstring). ``staging`` says what
    staging serves after an interrupt, as read back."""
    if pytest_status == pytest.ExitCode.INTERRUPTED and not controller.interrupted:
        # pytest says "interrupted" for errors during collection: a gate module that cannot be
        # collected is a broken protocol, not a cancelled run.
        return Verdict(ExitStatus.NO_GO, f"NO-GO: a gate module could not be collected (see the errors above) (exit status {int(ExitStatus.NO_GO)})")
    if controller.interrupted:
        where = f"; {staging}" if staging else ""
        line = f"INTERRUPTED: the run was cancelled before the protocol was judged{where} (exit status {int(ExitStatus.INTERRUPTED)})"
        return Verdict(ExitStatus.INTERRUPTED, line)
    if pytest_status == pytest.ExitCode.USAGE_ERROR:
        return Verdict(ExitStatus.USAGE_ERROR, f"ERROR: usage error, nothing was judged (exit status {int(ExitStatus.USAGE_ERROR)})")
    if pytest_status not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.NO_TESTS_COLLECTED):
        return Verdict(pytest_status, f"ERROR: pytest ended with status {pytest_status}; the protocol was not judged")
    failed = controller.failed_gates()
    if failed:
        gate = failed[0]
        return Verdict(ExitStatus.NO_GO, f"NO-GO: Gate {gate.number} ({gate.name}) failed (exit status {int(ExitStatus.NO_GO)})")
    if pytest_status == pytest.ExitCode.TESTS_FAILED:
        return Verdict(ExitStatus.NO_GO, f"NO-GO: a test failed (exit status {int(ExitStatus.NO_GO)})")
    missing = not_judged(controller, sealed_rejudged)
    if missing:
        lines = [f"not judged: {criterion.label}: {why}" for criterion, why in missing]
        return Verdict(ExitStatus.NOT_JUDGED, _not_judged_line(controller, missing), lines)
    roles = controller.pending_roles()
    signoffs = controller.results.get(SIGNOFFS)
    if roles or (signoffs is not None and signoffs.status == "awaiting sign-off"):
        line = f"AWAITING SIGN-OFF: awaiting sign-off from: {', '.join(roles) or 'the required roles'} (exit status {int(ExitStatus.AWAITING_SIGNOFF)})"
        return Verdict(ExitStatus.AWAITING_SIGNOFF, line)
    return Verdict(ExitStatus.GO, PROTOCOL_COMPLETE)
