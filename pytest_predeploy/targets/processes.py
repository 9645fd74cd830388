"""Starting and stopping staging service processes.

Each service process is started in its own session (so its own process group) and outlives the
command that started it, like a daemon. We identify it later by its pid *and* its start time
(``/proc/<pid>/stat``), so a pid reused by an unrelated process is never signalled.

A service is stopped as a step is (core/stopping.py, issue 30 item 13): its process group, then
every process still carrying its own token, ``PREDEPLOY_SERVICE_TOKEN`` (unique per start, kept
in the target's record of it), which reaches what it started outside its group (``setsid``, a
double fork, a replacement forked on SIGTERM) even after its launcher is gone. What is still
running after every round is returned by pid, never reported as stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pytest_predeploy.core import commands
from pytest_predeploy.core.stopping import group_members, stop_escaped, stop_group

#: In the environment of every service process, and inherited by what it starts: what finds the
#: processes a service left outside its group.
SERVICE_TOKEN = "PREDEPLOY_SERVICE_TOKEN"

#: Processes this interpreter started, so their exit status can be read and they are reaped
#: (a dead child left unreaped would still look alive to ``kill(pid, 0)``).
_children: dict[int, subprocess.Popen[bytes]] = {}

#: Environment variables a service inherits; everything else (CI tokens, our own PREDEPLOY_*
#: settings) stays out of the service, as it would on a real host. This also keeps out the
#: runner's PREDEPLOY_STEP_TOKEN, by design: a deployed service is meant to outlive the deploy
#: step that started it (the target records it in its pid file and stops it), whereas any other
#: process still carrying the token when its step ends is stopped by the runner.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT")


def service_environment(extra: Mapping[str, str]) -> dict[str, str]:
    env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


#: A service's log (``logs/<slot>.log``, ``prometheus.log``) is rotated to ``<log>.1`` at this size,
#: so one service's output takes at most twice this on disk (see targets/logcap.py).
SERVICE_LOG_LIMIT = 16 * 1024 * 1024


@dataclass(frozen=True)
class Spawned:
    """A started service: what the target records to find and stop it later."""

    pid: int
    ticks: int | None
    token: str


def spawn(argv: Sequence[str], *, cwd: Path, log: Path, env: Mapping[str, str], log_limit: int = SERVICE_LOG_LIMIT) -> Spawned:
    """Start ``argv`` detached in its own process group, its output in ``log`` (capped and
    rotated by the launcher it runs under, ``logcap.py``, which leads the group, and with which
    the service dies), with a token of its own in its environment."""
    log.parent.mkdir(parents=True, exist_ok=True)
    launcher = [sys.executable, "-I", "-S", str(Path(__file__).with_name("logcap.py")), str(log), str(log_limit), "--", *argv]
    token = uuid.uuid4().hex
    process = commands.start(launcher, cwd=cwd, env={**env, SERVICE_TOKEN: token}, stdout=commands.DEVNULL, stderr=commands.DEVNULL)
    _children[process.pid] = process
    return Spawned(process.pid, start_ticks(process.pid), token)


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses; fields after it are fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def exit_status(pid: int) -> int | None:
    """Exit status of a child of this interpreter that has ended (None: running or not ours)."""
    child = _children.get(pid)
    return child.poll() if child is not None else None


def is_running(pid: int, ticks: int | None) -> bool:
    """True when ``pid`` is alive and is the process that was started at ``ticks``."""
    exit_status(pid)  # reap it if it is our child and has ended
    current = start_ticks(pid)
    if current is None:
        return False
    return ticks is None or current == ticks


@dataclass
class Stopped:
    """How stopping a service went."""

    #: 'not running', 'stopped' (it ended after SIGTERM) or 'killed' (SIGKILL was needed).
    how: str
    #: Processes it had started outside its group (or left when its launcher died), stopped: "pid N (name)".
    escaped: list[str] = field(default_factory=list)
    #: Processes of it still running after every round of SIGSTOP and SIGKILL.
    survivors: list[str] = field(default_factory=list)

    def what(self, name: str) -> str | None:
        """What was stopped, of the service called ``name``; None when nothing ran."""
        started = ", ".join(self.escaped)
        if self.how == "not running":
            return f"{started}, left running by {name}" if started else None
        return name + (f" and {started} it had started" if started else "")

    @property
    def verb(self) -> str:
        return "stopped" if self.how == "not running" else self.how

    def still_running(self) -> str:
        """The survivors, as a message names them."""
        return f"{', '.join(self.survivors)} still running after SIGTERM and rounds of SIGSTOP and SIGKILL"


def stop(pid: int, ticks: int | None, timeout: float, token: str | None = None) -> Stopped:
    """Stop the service whose launcher is ``pid`` (started at ``ticks``) and everything it started:
    SIGTERM to its group, SIGKILL after ``timeout`` seconds, then every process carrying its
    ``token`` (see :func:`~pytest_predeploy.core.stopping.stop_escaped`). When the launcher is no
    longer that process (it ended, or was killed), only the token is trusted: its group id may
    be another's by now."""
    running = is_running(pid, ticks)
    if token is None and running:
        token = _token_of(pid)  # a service recorded before records held its token
    child = _children.pop(pid, None)
    result = Stopped("not running")
    if running:
        result.how = "killed" if stop_group(pid, child, grace=timeout) else "stopped"
    if token is not None:
        result.escaped, result.survivors = stop_escaped(token, grace=min(timeout, 2.0), variable=SERVICE_TOKEN)
    if running:
        result.survivors += [member for member in group_members(pid) if member not in result.survivors]
    if child is not None and child.poll() is None:
        _children[pid] = child  # still running: a later stop finds it again
    return result


def _token_of(pid: int) -> str | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    prefix = f"{SERVICE_TOKEN}=".encode()
    return next((entry[len(prefix) :].decode() for entry in environ if entry.startswith(prefix)), None)
