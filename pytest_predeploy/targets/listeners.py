"""Who listens on a port: the local target's check that what answers a service's health check is
the process it started (its process group), not another program holding the port.

Without it, a service that cannot bind its port but keeps running (some servers retry instead of
exiting) would be taken as healthy while another program answers; a version endpoint used to
catch that, and services need not have one (``services[].version_path``). Linux only: where
``/proc/net/tcp`` cannot be read the answer is "unknown" and the check is skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

_LISTEN = "0A"  # TCP state LISTEN in /proc/net/tcp


def listening_sockets(port: int) -> set[str] | None:
    """Inodes of the TCP sockets listening on ``port`` on any address (IPv4 or IPv6); None when
    the kernel's tables cannot be read."""
    found: set[str] = set()
    read = False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        read = True
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN and int(fields[1].rpartition(":")[2], 16) == port:
                found.add(fields[9])
    return found if read else None


def group_members(group: int) -> list[int]:
    """Live processes of process group ``group`` (a service and the children it forked)."""
    members = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[2]) == group:
                members.append(int(entry.name))
    return members


def listener_is_in_group(port: int, group: int) -> bool | None:
    """Whether a process of ``group`` holds a socket listening on ``port``: True, False (someone
    else listens there, or nobody), None (cannot be told here)."""
    sockets = listening_sockets(port)
    if sockets is None:
        return None
    wanted = {f"socket:[{inode}]" for inode in sockets}
    for pid in group_members(group):
        try:
            fds = os.scandir(f"/proc/{pid}/fd")
        except OSError:
            return None  # not ours to read: cannot be told
        with fds:
            for fd in fds:
                try:
                    if os.readlink(fd.path) in wanted:
                        return True
                except OSError:
                    continue
    return False
