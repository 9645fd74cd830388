"""Protocol steps run beside the rehearsal: a small scheduler of step work in threads.

A step whose inputs are ready when the protocol starts (it needs nothing from staging: the
security audit, the upstream approvals, operational readiness) need not wait for the rehearsal
to finish. The harness starts its work here, in a thread, and the step's fixture later takes
the result as if it had run the step itself: the same return value, or the same exception
re-raised in the fixture's thread, so a step that fails in the background fails its gate
exactly as it would have in sequence.

Why a thread per step and a cancel event of its own: the work spends its time in
:func:`pytest_predeploy.runner.run_command`, which waits on the script's pipes and stops the
script's whole process group (and every process carrying the step's token) when its ``cancel``
event is set. One event per step lets the harness stop the steps of a halted gate without
touching the rehearsal running in the main thread.

Why halting removes the step's artifacts, finished or not: with steps in sequence a halted gate's
steps never ran, so their artifacts never existed. A report an audit wrote before it was stopped
(or a temporary file it was writing) must not be left where a later run, or a reader of the
folder, could take it for current evidence. The removal happens after the thread has ended, so
the work cannot write the file again behind it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")

#: How long :meth:`BackgroundStep.stop` waits for the work to end after cancelling it. The runner
#: stops a script's group within its ``kill_grace`` (SIGTERM, then SIGKILL), plus a little.
STOP_TIMEOUT = 30.0
#: Join in slices, so a Ctrl-C reaching the waiting (main) thread is handled at once.
_POLL = 0.1


class StepHalted(Exception):
    """The step was stopped before its result was taken; the message says why."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"{name}: {reason}")


@dataclass
class Halt:
    """What stopping one step did."""

    name: str
    reason: str
    #: The work was still running when it was stopped (not merely finished and never taken).
    was_running: bool
    #: The work ended within the stop timeout (False: it ignored its cancel event).
    ended: bool
    #: Files of the step that existed and were removed.
    removed: list[Path] = field(default_factory=list)

    def describe(self) -> str:
        what = "stopped while running" if self.was_running else "finished, result discarded"
        if not self.ended:
            what = "did not stop in time (its thread is still running)"
        removed = f"; removed {', '.join(path.name for path in self.removed)}" if self.removed else ""
        return f"{self.name}: {what} ({self.reason}){removed}"


def partial_files(path: Path) -> list[Path]:
    """``path`` and the temporary files an atomic write of it may leave (``.<name>.*.tmp``)."""
    found = [path] if path.exists() or path.is_symlink() else []
    if path.parent.is_dir():
        found.extend(sorted(path.parent.glob(f".{path.name}.*.tmp")))
    return found


def remove_artifacts(paths: Iterable[Path]) -> list[Path]:
    """Delete each path and its temporary siblings; returns what was there and is now gone."""
    removed = []
    for path in paths:
        for found in partial_files(path):
            try:
                found.unlink()
            except FileNotFoundError:
                continue
            removed.append(found)
    return removed


class BackgroundStep(Generic[T]):
    """One step's work running in its own thread; see the module docstring."""

    def __init__(self, name: str, work: Callable[[threading.Event], T], artifacts: Iterable[Path] = ()) -> None:
        self.name = name
        self.artifacts = list(artifacts)
        #: Set to stop the work; passed to it (it hands the event to ``run_command``).
        self.cancel = threading.Event()
        self.started_at = time.monotonic()
        self.ended_at: float | None = None
        self.taken = False
        self.halt: Halt | None = None
        self._work = work
        self._value: T | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"predeploy-{name}", daemon=True)

    def start(self) -> BackgroundStep[T]:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._value = self._work(self.cancel)
        except BaseException as exc:  # noqa: BLE001 (re-raised in the thread that takes the result)
            # pytest.fail raises an OutcomeException, a BaseException: it must reach the fixture too.
            self._error = exc
        finally:
            self.ended_at = time.monotonic()
            self._done.set()

    @property
    def state(self) -> str:
        """running | done | failed | halted."""
        if self.halt is not None:
            return "halted"
        if not self._done.is_set():
            return "running"
        return "failed" if self._error is not None else "done"

    @property
    def duration(self) -> float:
        return (self.ended_at or time.monotonic()) - self.started_at

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the work to end; False when ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._done.is_set():
            left = _POLL if deadline is None else min(_POLL, deadline - time.monotonic())
            if left <= 0:
                return False
            self._done.wait(left)
        return True

    def result(self) -> T:
        """Wait for the work and return its value, or re-raise what it raised here.

        A halted step raises :class:`StepHalted`: its result, if any, has been discarded."""
        self.wait()
        if self.halt is not None:
            raise StepHalted(self.name, self.halt.reason)
        self.taken = True
        if self._error is not None:
            raise self._error
        # _run stored the work's return value: it ended (wait) and raised nothing.
        return cast(T, self._value)

    def stop(self, reason: str, timeout: float = STOP_TIMEOUT) -> Halt:
        """Cancel the work, wait for it to end, and remove the step's artifacts."""
        if self.halt is not None:
            return self.halt
        was_running = not self._done.is_set()
        self.cancel.set()
        ended = self.wait(timeout)
        self.halt = Halt(self.name, reason, was_running=was_running, ended=ended)
        self.halt.removed = remove_artifacts(self.artifacts)
        return self.halt


class Scheduler:
    """The background steps of one protocol run, by name."""

    def __init__(self) -> None:
        # Steps of different result types, by name: the caller that takes a result knows its type.
        self._steps: dict[str, BackgroundStep[Any]] = {}

    def start(self, name: str, work: Callable[[threading.Event], T], artifacts: Iterable[Path] = ()) -> BackgroundStep[T]:
        if name in self._steps:
            raise ValueError(f"background step {name!r} was already started in this run")
        step: BackgroundStep[T] = BackgroundStep(name, work, artifacts)
        self._steps[name] = step
        return step.start()

    def get(self, name: str) -> BackgroundStep[Any] | None:
        return self._steps.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._steps

    @property
    def steps(self) -> list[BackgroundStep[Any]]:
        return list(self._steps.values())

    def stop(self, names: Iterable[str], reason: str, timeout: float = STOP_TIMEOUT) -> list[Halt]:
        """Stop the named steps whose result has not been taken: all cancelled first, then each
        waited for (their process groups are stopped side by side, not one after another)."""
        chosen = [self._steps[name] for name in names if name in self._steps]
        chosen = [step for step in chosen if not step.taken and step.halt is None]
        for step in chosen:
            step.cancel.set()
        deadline = time.monotonic() + timeout
        return [step.stop(reason, max(0.0, deadline - time.monotonic())) for step in chosen]

    def stop_untaken(self, reason: str, timeout: float = STOP_TIMEOUT) -> list[Halt]:
        """At the end of a run: every step whose fixture never took its result is stopped and
        its artifacts removed (the gate that needed it did not run to it)."""
        return self.stop(list(self._steps), reason, timeout)
