"""The protocol's gates, numbers and names, in one place. Gate modules declare their own number
and name (``pytest.mark.gate(N, "Name")``); the code that treats one gate specially (the
readiness gate seals the package after the gates before it passed) reads it from here."""

from __future__ import annotations

#: The shipped gates, in order.
GATES: dict[int, str] = {
    1: "Intake Confirmation",
    2: "Deployment Rehearsal",
    3: "Rollback & Security",
    4: "Readiness Approval",
}
#: The gate that builds and seals the go/no-go package and takes the sign-offs.
READINESS_GATE = 4
#: The gates whose evidence the package seals: every shipped gate before the readiness gate.
UPSTREAM_GATES: tuple[int, ...] = tuple(number for number in GATES if number < READINESS_GATE)
