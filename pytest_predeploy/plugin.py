"""The pytest plugin: options and configuration (the ``pytest11`` entry point).

Plain ``pytest`` (no ``--predeploy-release``) runs the project's own tests and never deploys
anything; a gate module collected then is a usage error, not a silent skip. With a release, a
:class:`~pytest_predeploy.harness.session.ProtocolSession` takes over (imported only then, so the plugin
costs plain pytest runs next to nothing).
"""

from __future__ import annotations

import gc
from collections.abc import Generator, Iterator
from contextlib import contextmanager

import pytest

# Only the errors and the stash keys (two modules that import nothing else of ours): every pytest
# run in an environment with the plugin imports this module, and a run without --predeploy-release
# needs only the options and the gate guard (tests/test_plugin_startup.py); the protocol is
# imported once a release is given. These two are imported here all the same: they must be the
# same objects in every session of a process (pytester's in-process runs drop the modules a run
# imported, and later runs import them again).
from pytest_predeploy.core.errors import PredeployError
from pytest_predeploy.harness.keys import context_key, controller_key, session_key

__all__ = ["DEFAULT_CONFIG", "context_key", "controller_key", "session_key"]

#: Same value as config.DEFAULT_CONFIG, not imported from there: config is heavy to import.
DEFAULT_CONFIG = "predeploy.yaml"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("predeploy", "pre-deployment protocol (pytest-predeploy)")
    group.addoption("--predeploy-release", metavar="TAG", help="Release tag to validate; switches the protocol on (collects the gates).")
    group.addoption(
        "--predeploy-previous", metavar="TAG", help="Release staging runs before the rehearsal and rolls back to (default: previous_release from the config)."
    )
    group.addoption("--predeploy-config", metavar="PATH", default=DEFAULT_CONFIG, help=f"Protocol configuration (default: {DEFAULT_CONFIG}).")
    group.addoption("--predeploy-env", metavar="NAME", default="staging", help="Environment the rehearsal runs in (default: staging).")
    group.addoption("--predeploy-artifacts", metavar="DIR", default=None, help="Artifacts folder (default: .artifacts/pre-deployment beside the config).")
    group.addoption(
        "--predeploy-interactive", action="store_true", default=False, help="Ask the [DRIFT ALERT] and [READINESS REVIEW] questions when on a terminal."
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gate(number, name): the module is protocol gate <number>; gates run in numeric order.")
    config.addinivalue_line("markers", "must(criterion): the test judges this MUST criterion of the protocol: failing it fails the gate and halts later gates.")
    config.addinivalue_line("markers", "guideline(criterion): the test judges this GUIDELINE criterion: a miss is reported as advisory and never halts.")
    release = config.getoption("predeploy_release")
    if not release:
        config.pluginmanager.register(GateGuard(), "predeploy-guard")
        return
    if getattr(config.option, "numprocesses", None) or getattr(config.option, "dist", "no") != "no" or getattr(config.option, "tx", None):
        raise pytest.UsageError("--predeploy-release cannot be combined with -n/--dist/--tx (xdist): gates run in order in one process; drop -n.")
    if getattr(config.option, "looponfail", False):
        raise pytest.UsageError("--predeploy-release cannot be combined with -f/--looponfail: a protocol run is judged once, from Gate 1; drop -f.")
    try:
        with _long_lived_objects():
            from pytest_predeploy.harness.session import ProtocolSession  # here, not at the top: plain pytest runs must not import the protocol

            session = ProtocolSession.start(config, release)
    except PredeployError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[session_key] = session


@contextmanager
def _long_lived_objects() -> Iterator[None]:
    """Import the protocol and load its configuration with the cyclic garbage collector paused,
    then freeze what exists (``gc.freeze``).

    Why: importing the protocol creates some 35,000 container objects the collector tracks
    (pydantic's schemas and validators, the config), which live until the process exits. While
    they are created the collector runs over them again and again and finds no garbage; after,
    every full collection walks them once more (pytest's at unconfigure, the interpreter's at
    exit: 0.08 s instead of 0.02 s after importing the protocol, on the 2-core CI machine).
    Frozen, they are left out of every later collection; objects made later are collected as
    usual. The price: garbage cycles that already exist when the session starts are never
    freed, which matters only to a process running many protocol sessions in-process
    (pytester's in-process mode).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(session_key, None)
    if session is not None:
        # Staging stopped and the locks released first, then the verdict: the terminal's last
        # line (a note that Ctrl-C was pressed again goes to stderr before it, never after).
        session.close()
        session.print_verdict()
        session.restore_signals()


#: The statuses that say the protocol was judged: 0 (GO) and 10 (awaiting sign-off).
_VERDICTS = (0, 10)
#: Not a verdict (README, "Exit statuses").
_NOT_JUDGED = 11


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config) -> Generator[None, int | pytest.ExitCode, int | pytest.ExitCode]:
    """Exit 0 means GO and nothing else, whatever ran or did not.

    With a release, pytest's status may be 0 or 10 only when the protocol session judged the run
    and decided exactly that. Every path that ends without the session's verdict (``--version``,
    ``--help``, ``--fixtures``, ``--markers`` and the other listings; a part of the plugin that
    did not run) ends NOT JUDGED instead, saying so."""
    status = yield
    if not config.getoption("predeploy_release", default=None) or int(status) not in _VERDICTS:
        return status
    session = config.stash.get(session_key, None)
    verdict = getattr(session, "verdict", None) if session is not None else None
    if verdict is not None and int(verdict.status) == int(status):
        return status
    print(
        f"NOT JUDGED: pytest ended with status {int(status)} but the protocol was not judged in this run "
        f"(a listing or informational option, or a part of the plugin did not run); not a protocol verdict (exit status {_NOT_JUDGED})",
        flush=True,
    )
    return _NOT_JUDGED


class GateGuard:
    """Without a release, a gate module must not run (it would deploy nothing and prove nothing)."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            if item.get_closest_marker("gate") is not None:  # what makes a module a gate (harness.gates.gate_of)
                raise pytest.UsageError(
                    f"{item.path.name} is a protocol gate: run it with --predeploy-release=TAG "
                    "(without a release pytest runs no gate: name other test paths, or deselect the gates' folder)."
                )
