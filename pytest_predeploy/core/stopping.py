"""Stopping what a step or a staging service started: its process group, and every process
carrying its token.

Why both, and why rounds: a script can start a process that leaves its group (``setsid``, a
double fork), which no signal to the group reaches; it still carries ``PREDEPLOY_STEP_TOKEN`` in
its environment (see :mod:`pytest_predeploy.core.runner`). And a process can fork a replacement
when it is sent SIGTERM, or fork itself again and again so that no pid lives long (issue 30,
item 13): each found one is frozen (SIGSTOP: a stopped process cannot fork) before all are
killed, round after round until none is left, and what is still running after the last round is
reported by pid, never listed as stopped. A staging service is stopped the same way, by its
group and its own token (``PREDEPLOY_SERVICE_TOKEN``, see :mod:`pytest_predeploy.targets.processes`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

#: How long after SIGTERM a group gets before SIGKILL.
KILL_GRACE = 5.0
#: Inherited by every process a step starts.
STEP_TOKEN = "PREDEPLOY_STEP_TOKEN"
#: Rounds of freezing and killing what a step left, before what is still running is reported.
STOP_ROUNDS = 10


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to the group; False when no process of it is left."""
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return False


def group_alive(pgid: int) -> bool:
    return _signal_group(pgid, 0)


def stop_group(pgid: int, proc: subprocess.Popen[bytes] | None, grace: float = KILL_GRACE) -> bool:
    """SIGTERM the group, SIGKILL whatever is left after ``grace`` seconds (again, for at most
    STOP_ROUNDS rounds, while any member is left); reap the leader. True when SIGKILL was needed.

    A member is a live process: a zombie waiting for a parent that does not reap it (the leader of
    a group started by a command that has since exited) has ended, and is neither waited for nor
    counted as killed."""
    killed = False
    if _signal_group(pgid, signal.SIGTERM):
        deadline = time.monotonic() + grace
        while _members_left(pgid, proc) and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(STOP_ROUNDS):
            if not _members_left(pgid, proc) or not _signal_group(pgid, signal.SIGKILL):
                break
            killed = True
            time.sleep(0.02)
    if proc is not None:
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    return killed


def _members_left(pgid: int, proc: subprocess.Popen[bytes] | None) -> bool:
    if proc is not None:
        proc.poll()  # reap the leader when it is our child, so that it is not counted
    # The signal test first: it is free, and reading /proc is needed only while the group exists.
    return group_alive(pgid) and bool(group_members(pgid))


def group_members(pgid: int) -> list[str]:
    """``pid N (name)`` of every live process in group ``pgid`` (zombies are gone already)."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        if fields[0] != b"Z" and int(fields[2]) == pgid:
            members.append(f"pid {entry.name} ({_name(int(entry.name))})")
    return members


def _start_ticks(pid: int) -> str | None:
    """The process's start time from ``/proc`` (to tell it from a later one reusing the pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2 :].split()
    return None if fields[0] == b"Z" else fields[19].decode()


def _carrying(token: bytes) -> dict[int, str | None]:
    """Live processes whose environment carries ``token``, with their start times."""
    found: dict[int, str | None] = {}
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as handle:
                environ = handle.read()
        except OSError:  # gone, or not ours to read
            continue
        if token in environ.split(b"\0"):
            ticks = _start_ticks(int(entry.name))
            if ticks is not None:
                found[int(entry.name)] = ticks
    return found


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def stop_escaped(token: str, grace: float, variable: str = STEP_TOKEN) -> tuple[list[str], list[str]]:
    """Stop every process carrying ``token`` in its environment variable ``variable`` (a step's
    token, or a staging service's: targets/processes.py); returns ``pid N (name)`` for each process stopped
    and for each still running at the end (the truth, not the intent).

    First SIGTERM to all and up to ``grace`` seconds to exit. Then, in at most STOP_ROUNDS rounds
    until none is left: SIGSTOP each one found (a stopped process cannot fork; one that forked
    between the scan and the signal is found by the next scan of the same round), then SIGKILL
    them all. A process that forks a replacement on SIGTERM, or re-forks itself to change its pid,
    is caught frozen."""
    marker = f"{variable}={token}".encode()
    names: dict[int, tuple[str | None, str]] = {}  # pid -> (start ticks, name)

    def scan() -> dict[int, str | None]:
        found = _carrying(marker)
        for pid, ticks in found.items():
            names.setdefault(pid, (ticks, _name(pid)))
        return found

    found = scan()
    for pid in found:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while found and time.monotonic() < deadline:
        time.sleep(0.05)
        found = {pid: ticks for pid, ticks in found.items() if _start_ticks(pid) == ticks}
    for _ in range(STOP_ROUNDS):
        found = scan()
        if not found:
            break
        frozen: dict[int, str | None] = {}
        for _ in range(STOP_ROUNDS * 10):
            new = {pid: ticks for pid, ticks in found.items() if pid not in frozen}
            if not new:
                break
            for pid in new:
                _signal(pid, signal.SIGSTOP)
            frozen.update(new)
            found = scan()
        for pid in frozen:
            _signal(pid, signal.SIGKILL)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_start_ticks(pid) == ticks for pid, ticks in frozen.items()):
            time.sleep(0.02)
    left = scan()
    stopped = [f"pid {pid} ({name})" for pid, (ticks, name) in names.items() if left.get(pid) != ticks]
    survivors = [f"pid {pid} ({names[pid][1]})" for pid in left]
    return stopped, survivors


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)
