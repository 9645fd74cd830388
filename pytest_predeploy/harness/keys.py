"""Where a protocol run keeps its parts on pytest's ``config.stash``. The plugin, the session and
the fixtures share these keys; they live in a module of their own, and the session is seen
through :class:`RunSession` (what the plugin and the fixtures use of it), so that none of those
modules imports another to reach them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pytest

if TYPE_CHECKING:
    from pytest_predeploy.core.background import Scheduler
    from pytest_predeploy.harness.context import RunContext
    from pytest_predeploy.harness.controller import GateController


class RunSession(Protocol):
    """The protocol session as the plugin and the Gate 4 fixtures use it."""

    reused_package: Any
    seal_requested: bool

    def unjudged_upstream(self) -> list[str]: ...

    def manifest_fields(self) -> dict[str, Any]: ...

    def print_verdict(self) -> None: ...

    def close(self) -> None: ...

    def restore_signals(self) -> None: ...


context_key: pytest.StashKey[RunContext] = pytest.StashKey()
controller_key: pytest.StashKey[GateController] = pytest.StashKey()
session_key: pytest.StashKey[RunSession] = pytest.StashKey()
#: The steps started beside the rehearsal in this run (absent with ``gates.overlap: false``).
background_key: pytest.StashKey[Scheduler] = pytest.StashKey()
