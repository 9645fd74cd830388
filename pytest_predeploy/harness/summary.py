"""The end of a run on the terminal (registered as ``predeploy-summary``): the gate table, the
package, what could not be written, each criterion not judged, and the verdict as the very last
line, after pytest's own summary."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pytest

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.harness.banner import REVIEW_PAGE

if TYPE_CHECKING:
    from pytest_predeploy.harness.context import RunContext
    from pytest_predeploy.harness.controller import GateController
    from pytest_predeploy.harness.verdict import Verdict


class SummarisedRun(Protocol):
    """The protocol session as the summary reads it."""

    config: pytest.Config
    context: RunContext
    controller: GateController
    report_prefix: str

    @property
    def verdict(self) -> Verdict | None: ...

    @property
    def package_sha256(self) -> str | None: ...

    @property
    def package_note(self) -> str | None: ...

    @property
    def write_problems(self) -> list[str]: ...


class TerminalSummary:
    """The gate table at the end of the run, and the verdict line last of all."""

    def __init__(self, run: SummarisedRun) -> None:
        self.run = run

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        tr = terminalreporter
        ctx = self.run.context
        tr.write_sep("=", f"pre-deployment gates: release {ctx.release}")
        for gate in sorted(self.run.controller.gates.values(), key=lambda g: g.number):
            figures = "; ".join(gate.figures)
            detail = gate.reason if gate.status in ("failed", "halted", "awaiting sign-off", "interrupted", "not judged") else figures
            # The reason in full, every line: a gate's reason lists each blocking problem.
            first, *rest = detail.splitlines() or [""]
            tr.write_line(f"Gate {gate.number}  {gate.name:<28} {gate.status.upper():<18} {first}")
            for line in rest:
                tr.write_line(f"{'':<52}{line}")
            for advisory in gate.advisories:
                tr.write_line(f"        advisory: {advisory}")
        if self.run.package_sha256:
            tr.write_line(f"package: {ctx.artifacts / names.PACKAGE} sha256 {self.run.package_sha256}")
        review = self.run.context.artifacts / REVIEW_PAGE
        if review.exists():
            tr.write_line(f"review page: {review}")
        if self.run.package_note:
            tr.write_line(self.run.package_note)
        for problem in dict.fromkeys(self.run.write_problems):
            tr.write_line(f"NOT WRITTEN: {problem}", red=True)
        if self.run.report_prefix:
            ours = ", ".join(self.run.report_prefix + name for name in names.RUN_REPORTS)
            which = "Gate 4" if self.run.report_prefix == "gate4-" else "partial"
            tr.write_line(f"reports of this {which} run: {ours} (in {ctx.artifacts})")
            tr.write_line(f"reports of the run that produced the package (the reviewers' copy, sealed in it): {', '.join(names.RUN_REPORTS)}")
        verdict = self.run.verdict
        for line in verdict.not_judged if verdict is not None else []:
            tr.write_line(line, yellow=True)

    def print_verdict(self) -> None:
        """The verdict, as the terminal's very last line (after pytest's own summary)."""
        verdict = self.run.verdict
        if verdict is None:
            return
        colour = {"go": {"green": True}, "awaiting": {"yellow": True}, "not judged": {"yellow": True}}.get(verdict.kind, {"red": True})
        terminal = self.run.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            terminal.write_line(verdict.line, bold=True, **colour)
        else:
            print(verdict.line, flush=True)
