"""Starting and stopping staging service processes.

Each service process is started in its own session (so its own process group) and outlives the
command that started it, like a daemon. We identify it later by its pid *and* its start time
(``/proc/<pid>/stat``), so a pid reused by an unrelated process is never signalled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

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


def spawn(argv: Sequence[str], *, cwd: Path, log: Path, env: Mapping[str, str], log_limit: int = SERVICE_LOG_LIMIT) -> int:
    """Start ``argv`` detached in its own process group, its output in ``log`` (capped and
    rotated by the launcher it runs under, ``logcap.py``, which leads the group); returns the pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    launcher = [sys.executable, "-I", "-S", str(Path(__file__).with_name("logcap.py")), str(log), str(log_limit), "--", *argv]
    with open(os.devnull, "rb") as stdin:
        process = subprocess.Popen(launcher, cwd=cwd, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(env), start_new_session=True)
    _children[process.pid] = process
    return process.pid


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


def stop(pid: int, ticks: int | None, timeout: float) -> str:
    """Stop the process group led by ``pid``: SIGTERM, then SIGKILL after ``timeout`` seconds.

    Returns how it ended: 'not running', 'stopped' or 'killed'."""
    result = "not running"
    if is_running(pid, ticks):
        result = "stopped"
        try:
            os.killpg(pid, signal.SIGTERM)
            if not _wait_gone(pid, ticks, timeout):
                os.killpg(pid, signal.SIGKILL)
                result = "killed"
                _wait_gone(pid, ticks, 5.0)
        except ProcessLookupError:
            pass
    child = _children.pop(pid, None)
    if child is not None:
        child.wait()
    return result


def _wait_gone(pid: int, ticks: int | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_running(pid, ticks):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True
