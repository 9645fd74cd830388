"""Running the engine's commands (podman, kubectl) through :func:`pytest_predeploy.core.commands.run`:
each in its own process group with a deadline, stopped with its whole group when the deadline
passes, output captured."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_predeploy.core import commands
from pytest_predeploy.core.errors import StepError
from pytest_predeploy.core.nesting import json_loads

#: How many characters of a failed command's error output a message quotes.
_QUOTED = 400
#: How often a listing is asked before its failure counts.
_LIST_ATTEMPTS = 3
#: A listing failed because something it was reading was removed meanwhile.
_VANISHED = re.compile(r"no such (pod|container)")
#: The host refuses what podman's defaults ask of it (a sandbox: no setrlimit, hybrid cgroups).
_SANDBOXED = re.compile(r"error setting rlimit|setrlimit|cgroup.*(not permitted|read-only)", re.IGNORECASE)
_SANDBOX_FIX = (
    "; this host refuses podman's default resource limits or cgroups: run with CONTAINERS_CONF naming a containers.conf that sets "
    '[containers] default_ulimits = [] and [engine] cgroup_manager = "cgroupfs", runtime = "runc" (docs/kube.md, \'Sandboxed hosts\')'
)


class EngineError(StepError):
    """An engine command could not run, failed or missed its deadline; the message says which."""


def _environment() -> dict[str, str]:
    # LC_ALL=C: the messages we quote and the output we parse stay in one language.
    return dict(os.environ, LC_ALL="C")


class Engine:
    """One executable (podman or kubectl) and the arguments every call of it starts with."""

    def __init__(self, executable: str, timeout: float, prefix: tuple[str, ...] = (), install_hint: str = "") -> None:
        self.executable, self.timeout, self.prefix, self.install_hint = executable, timeout, prefix, install_hint

    def argv(self, *args: str) -> list[str]:
        return [self.executable, *self.prefix, *args]

    def run(self, *args: str, check: bool = True, stdin: Path | None = None, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        argv = self.argv(*args)
        limit = timeout or self.timeout
        try:
            done = commands.run(argv, stdin=stdin, env=_environment(), timeout=limit)
        except OSError as exc:
            raise EngineError(f"cannot run {self.executable} ({exc.strerror}){self.install_hint}") from None
        except commands.TimedOut:
            raise EngineError(f"'{describe(argv)}' did not finish within {limit:g}s (staging.kube.command_timeout); it was stopped") from None
        out_text, err_text = done.out, done.err
        if check and done.returncode != 0:
            hint = _SANDBOX_FIX if _SANDBOXED.search(err_text) and not os.environ.get("CONTAINERS_CONF") else ""
            raise EngineError(f"'{describe(argv)}' failed (exit {done.returncode}): {quote_error(err_text or out_text)}{hint}")
        return subprocess.CompletedProcess(argv, done.returncode, out_text, err_text)

    def json(self, *args: str) -> Any:
        """Run a command that prints JSON; its parsed output."""
        result = self.run(*args)
        return self._parse(result)

    def listing(self, *args: str) -> Any:
        """A listing command (``ps``, ``pod ps``) that prints JSON, asked again when it fails
        because a pod or container went away while it listed: podman 4.3 lists, then reads each
        entry, and fails with "no such container" when another process removed one meanwhile."""
        for _ in range(_LIST_ATTEMPTS - 1):
            result = self.run(*args, check=False)
            if result.returncode == 0 or not _VANISHED.search(result.stderr):
                break
            time.sleep(0.1)
        else:
            result = self.run(*args, check=False)
        if result.returncode != 0:
            raise EngineError(f"'{describe(result.args)}' failed (exit {result.returncode}): {quote_error(result.stderr or result.stdout)}")
        return self._parse(result)

    @staticmethod
    def _parse(result: subprocess.CompletedProcess[str]) -> Any:
        try:
            return json_loads(result.stdout.strip() or "null")
        except json.JSONDecodeError:
            raise EngineError(f"'{describe(result.args)}' printed something that is not JSON: {result.stdout[:120]!r}") from None


def describe(argv: list[str]) -> str:
    """A command line as a reader would type it (long ones shortened)."""
    text = " ".join(argv)
    return text if len(text) <= 200 else text[:197] + "..."


def quote_error(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " / ".join(lines)[-_QUOTED:] if lines else "no message"


def held_too_long(path: Path, timeout: float) -> Callable[[], EngineError]:
    """The error :func:`~pytest_predeploy.targets.runlock.exclusive` raises when another deploy or
    rollback keeps ``path`` locked past ``timeout``."""
    return lambda: EngineError(f"another deploy or rollback has held {path} for {timeout:.0f}s; try again when it ends")
