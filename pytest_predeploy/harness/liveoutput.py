"""Protocol lines on the terminal as things happen, from any thread, even while pytest captures
a test's output (registered as ``predeploy-live``)."""

from __future__ import annotations

import threading
from collections.abc import Generator
from contextlib import nullcontext, suppress
from typing import Any

import pytest


class LiveOutput:
    """Prints protocol lines now; holds pytest's capture transitions still while it does."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        # Re-entrant: the main thread holds it across pytest's capture transitions (see
        # _outside_capture) and prints while holding it.
        self._print_lock = threading.RLock()

    def live(self, line: str) -> None:
        """Print a protocol line now, even from inside a fixture whose output is captured."""
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        with self._print_lock:
            # Also from worker threads (parallel deploys): the main thread is then only waiting.
            suspend = capman.global_and_fixture_disabled() if capman is not None else nullcontext()
            with suspend:
                if terminal is not None:
                    terminal.ensure_newline()
                    if self.config.get_terminal_writer().width_of_current_line:
                        terminal.write("\n")
                    terminal.write_line(line)
                else:
                    print(line, flush=True)

    # pytest suspends and resumes its output capture around each test phase, in the main thread,
    # while a step beside the rehearsal may be printing (suspending capture from its own thread).
    # Interleaved, the two would send a protocol line into a test's captured output instead of
    # the terminal, or leave capture on while pytest writes its own lines. So the print lock is
    # held across each transition: taken before the capture plugin resumes (outermost wrapper),
    # released inside it (innermost wrapper), taken again before it suspends, released after.
    def _outside_capture(self) -> Generator[None, Any, Any]:
        self._print_lock.acquire()
        try:
            return (yield)
        finally:
            # Not held only when a Ctrl-C cut the re-acquire in _inside_capture short.
            with suppress(RuntimeError):
                self._print_lock.release()

    def _inside_capture(self) -> Generator[None, Any, Any]:
        self._print_lock.release()
        try:
            return (yield)
        finally:
            self._print_lock.acquire()

    @pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_runtest_setup")
    def pytest_runtest_setup_outside_capture(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._outside_capture())

    @pytest.hookimpl(wrapper=True, trylast=True, specname="pytest_runtest_setup")
    def pytest_runtest_setup_inside_capture(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._inside_capture())

    @pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_runtest_call")
    def pytest_runtest_call_outside_capture(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._outside_capture())

    @pytest.hookimpl(wrapper=True, trylast=True, specname="pytest_runtest_call")
    def pytest_runtest_call_inside_capture(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._inside_capture())

    @pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_runtest_teardown")
    def pytest_runtest_teardown_outside_capture(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._outside_capture())

    @pytest.hookimpl(wrapper=True, trylast=True, specname="pytest_runtest_teardown")
    def pytest_runtest_teardown_inside_capture(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._inside_capture())
