"""The protocol's gates: numbers, names and the phase lines PROTOCOL-10 announces, in one place.

Gate modules declare their own number and name (``pytest.mark.gate(N, "Name")``); what each gate
requires (its MUST and GUIDELINE criteria, the artifact each judges and the judge) is declared once
in :mod:`pytest_predeploy.verdict.criteria`, which builds on this table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GateSpec:
    number: int
    name: str
    #: The ``[PHASE N START] - ...`` text of PROTOCOL-10.
    phase_start: str


#: The shipped gates, in order.
GATE_SPECS: tuple[GateSpec, ...] = (
    GateSpec(1, "Intake Confirmation", "Validating upstream approvals and artifact completeness..."),
    GateSpec(2, "Deployment Rehearsal", "Rehearsing deployment on staging environment..."),
    GateSpec(3, "Rollback & Security", "Verifying rollback and recovery procedures..."),
    GateSpec(4, "Readiness Approval", "Compiling pre-deployment readiness package for release approval..."),
)
GATES: dict[int, str] = {spec.number: spec.name for spec in GATE_SPECS}
#: Phase announcements by gate number; a project's own extra gates get a generic line.
PHASE_START: dict[int, str] = {spec.number: spec.phase_start for spec in GATE_SPECS}
#: The gate that builds and seals the go/no-go package and takes the sign-offs.
READINESS_GATE = 4
#: The gates whose evidence the package seals: every shipped gate before the readiness gate.
UPSTREAM_GATES: tuple[int, ...] = tuple(number for number in GATES if number < READINESS_GATE)
