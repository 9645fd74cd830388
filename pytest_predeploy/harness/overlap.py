"""Steps beside the rehearsal (``gates.overlap``): the steps that need nothing from staging start
when the protocol starts, and the gate that needs each takes its result (registered as
``predeploy-overlap``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core.background import Halt, Scheduler
from pytest_predeploy.harness import steps
from pytest_predeploy.harness.context import RunContext
from pytest_predeploy.harness.gates import Gate, gate_of

#: Output lines of a step running beside the rehearsal shown on the terminal, and their width.
STREAM_LINES = 100
STREAM_WIDTH = 300


class Overlap:
    """Starts the steps beside the rehearsal, and stops them when their gate is halted or never reached."""

    def __init__(self, context: RunContext, enabled: bool, live: Callable[[str], None]) -> None:
        self.context = context
        self.enabled = enabled
        self.live = live
        #: Steps started beside the rehearsal, and the first gate that needs each.
        self.background = Scheduler()
        self._needed_by: dict[str, int] = {}
        self._background_decided = False

    @pytest.hookimpl(tryfirst=True, specname="pytest_runtest_setup")
    def pytest_runtest_setup_background(self, item: pytest.Item) -> None:
        """At the first test: start every step that needs nothing from staging and that a
        collected test needs (so a gate run alone starts only what that gate needs)."""
        if self._background_decided:
            return
        self._background_decided = True
        if not self.enabled or item.config.getoption("setupplan", False):
            return  # --setup-plan runs no step: nothing starts beside the rehearsal either
        for collected in item.session.items:
            found = gate_of(collected)
            fixtures = getattr(collected, "fixturenames", ())
            for step in steps.BACKGROUND_STEPS:
                if step in fixtures:
                    number = found[0] if found else 0
                    self._needed_by[step] = min(self._needed_by.get(step, number), number)
        for step, gate in self._needed_by.items():
            artifacts = [self.context.artifact(name) for name in steps.FIXTURE_ARTIFACTS.get(step, [])]
            self.background.start(step, self._background_work(step), artifacts)
            self.live(f"[BACKGROUND] {step}: started beside the rehearsal (Gate {gate} takes its result)")

    def _background_work(self, step: str) -> Callable[[threading.Event], Any]:
        prefix = f"[{step}] "
        streamed = 0

        def announce(line: str) -> None:
            self.live(line if line.startswith(prefix) else prefix + line)

        def stream(text: str) -> None:
            # The transcript keeps everything (up to its cap); the terminal gets the first lines,
            # so a script printing megabytes neither floods it nor stalls the rehearsal's lines.
            nonlocal streamed
            streamed += 1
            if streamed <= STREAM_LINES:
                announce(self.context.redactor.redact(text)[:STREAM_WIDTH])
            elif streamed == STREAM_LINES + 1:
                announce(f"... more output in {names.TRANSCRIPTS_DIR}/{step}.log")

        def work(cancel: threading.Event) -> Any:
            # Its own cancel event (halting stops this step, not the rehearsal), its lines and
            # its script's output prefixed with its name; its transcript is its own already.
            ctx = replace(self.context, cancel=cancel, announcer=announce, on_line=stream)
            return steps.BACKGROUND_STEPS[step](ctx)

        return work

    def halt(self, gate: Gate) -> None:
        later = [step for step, number in self._needed_by.items() if number > gate.number]
        self._report_halts(self.background.stop(later, f"halted: Gate {gate.number} ({gate.name}) failed"))

    def _report_halts(self, halts: list[Halt]) -> None:
        for halt in halts:
            if halt.was_running or halt.removed or not halt.ended:
                self.live(f"[HALTED] {halt.describe()}")

    def stop_untaken(self, reason: str) -> None:
        """A step that no gate took (its gate was halted or never reached) is stopped and its files removed."""
        self._report_halts(self.background.stop_untaken(reason))

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self) -> None:
        self.stop_untaken("the run was interrupted")
