"""A service with its log capped and rotated: ``python logcap.py LOG LIMIT -- ARGV...``.

Why: a staging service outlives the step that started it and writes for as long as it runs;
with its output appended straight to a file, one chatty service filled 4 GB in a run (issue 30,
item 16c). This small launcher is what the target starts in the service's place: it runs
``ARGV`` as its child, in its own process group (the one the target stops), with the child's
output in a pipe it copies into ``LOG``; once ``LOG`` reaches ``LIMIT`` bytes it becomes
``LOG.1`` (replacing the one before) and a new ``LOG`` starts, so a service's output never takes
more than twice ``LIMIT`` on disk.

Seen from outside it is the service: it runs while the service runs, passes SIGTERM, SIGINT and
SIGHUP on to it (and copies its last words until its output ends) and exits with the service's
status (128 + N when a signal N ended it; 127 when ``ARGV`` cannot be executed, said in the log).
The service dies with it, however it ends (SIGKILL included: :func:`die_with`).
It imports only the standard library, and is run as a file with ``-I -S``, so it starts fast.
"""

from __future__ import annotations

import os
import signal
import sys

#: Read size.
CHUNK = 64 * 1024
#: prctl(2) option: the signal a process gets when its parent ends (linux/prctl.h).
PR_SET_PDEATHSIG = 1


def copy_capped(source: int, log: str, limit: int) -> None:
    """Copy ``source`` into ``log`` until end of file, rotating ``log`` to ``log.1`` at ``limit`` bytes."""
    out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    size = os.fstat(out).st_size
    try:
        while data := os.read(source, CHUNK):
            while data:
                if size >= limit:
                    os.close(out)
                    os.replace(log, log + ".1")
                    out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                    size = 0
                piece, data = data[: limit - size], data[limit - size :]
                os.write(out, piece)
                size += len(piece)
    finally:
        os.close(out)


def die_with(launcher: int) -> None:
    """In the service's process, before it runs the service: be killed when ``launcher`` ends.

    Why: the launcher killed by SIGKILL (the OOM killer, ``kill -9`` of the pid file) forwards
    nothing, and the service would go on running, re-parented to init, outside anything the target
    knows about. Linux's parent-death signal ends it with its launcher. The launcher may have died
    between the fork and the ``prctl``: then no signal comes, which the parent check catches."""
    try:
        import ctypes  # here, in the service's process: the launcher itself starts without it

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the target's stop still ends the group
        return
    if os.getppid() != launcher:
        os._exit(127)


def main(argv: list[str]) -> int:
    log, limit, separator, command = argv[0], int(argv[1]), argv[2], argv[3:]
    if separator != "--" or not command:
        print("usage: logcap.py LOG LIMIT -- ARGV...", file=sys.stderr)
        return 2
    read_end, write_end = os.pipe()
    launcher = os.getpid()
    child = os.fork()
    if child == 0:
        die_with(launcher)
        os.close(read_end)
        os.dup2(write_end, 1)
        os.dup2(write_end, 2)
        os.close(write_end)
        try:
            os.execvp(command[0], command)
        except OSError as exc:
            os.write(2, f"cannot execute {command[0]}: {exc.strerror}\n".encode())
        os._exit(127)
    os.close(write_end)

    def forward(signum: int, frame: object) -> None:
        # `kill <pid>` of the pid file reaches the service, as before this launcher existed (the
        # target's SIGTERM to the whole group reaches it twice: a stop either way).
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    copy_capped(read_end, log, limit)
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
