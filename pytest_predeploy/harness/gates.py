"""Gates as tests: what a gate module is made of, and the helpers its tests use.

A gate is a test module marked ``pytest.mark.gate(N, "Name")``; each test in it is marked
``must("<criterion>")`` or ``guideline("<criterion>")``, naming the criterion of the protocol it
judges (declared once in :mod:`pytest_predeploy.verdict.criteria`). How gates run, halt and end
is the :class:`~pytest_predeploy.harness.controller.GateController`'s; the verdict is
:mod:`pytest_predeploy.harness.verdict`'s. This module stays light: gate modules import it (through
the API) when they are collected, also by a plain pytest run that only lists them.
"""

from __future__ import annotations

import enum
import errno
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

import pytest

from pytest_predeploy.core.errors import ArtifactError

if TYPE_CHECKING:
    from pytest_predeploy.core.artifacts import ArtifactModel

#: The artifact model :func:`load` reads (a string bound: pydantic is imported only when used).
M = TypeVar("M", bound="ArtifactModel")


class ExitStatus(enum.IntEnum):
    """Documented exit statuses of a protocol run (README, 'Exit statuses')."""

    GO = 0
    NO_GO = 1
    INTERRUPTED = 2
    USAGE_ERROR = 4
    AWAITING_SIGNOFF = 10
    #: Not a verdict: a criterion of the protocol was not judged in this run (deselected, skipped,
    #: never called, not collected, a gate run alone ...). Never 0, never 10.
    NOT_JUDGED = 11


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


def load(path: Path, model: type[M]) -> M:
    """Read an artifact for a gate assertion, as ``model``: a malformed one fails the test naming
    file and field."""
    # Here, not at the top: collecting a gate module imports this module, which must not pay for
    # pydantic (core.artifacts' models) before an artifact is read.
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
    # running | passed | failed | halted | awaiting sign-off | interrupted | not judged | not run.
    # "passed" is given only when the gate's last test has finished, every test of it was called
    # and no MUST test failed: a gate still "running" when the session ends was cut short and
    # never counts as passed.
    status: str = "not run"
    reason: str = ""
    figures: list[str] = field(default_factory=list)
    advisories: list[str] = field(default_factory=list)
    pending_roles: list[str] = field(default_factory=list)
    first_nodeid: str = ""
    last_nodeid: str = ""
    started: bool = False
    #: Tests of this gate collected, and those whose call phase ran (a gate whose tests were set
    #: up but never called, as with --setup-only or --setup-plan, did not pass).
    items: int = 0
    called: int = 0


def gate_of(item: pytest.Item) -> tuple[int, str] | None:
    marker = item.get_closest_marker("gate")
    if marker is None:
        return None
    number, name = marker.args[0], marker.args[1] if len(marker.args) > 1 else f"Gate {marker.args[0]}"
    return int(number), str(name)


def kind_of(item: pytest.Item) -> str:
    return "guideline" if item.get_closest_marker("guideline") else "must"


def criterion_of(item: pytest.Item) -> str | None:
    """The protocol criterion a gate test judges (``pytest.mark.must("parity")``), if it names one."""
    marker = item.get_closest_marker(kind_of(item))
    if marker is None or not marker.args:
        return None
    return str(marker.args[0])


def failure_message(report: pytest.TestReport) -> str:
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


def skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return report.longreprtext.strip() or "skipped"
