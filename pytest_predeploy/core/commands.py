"""Starting a subprocess: the one place this package does (``tests/test_architecture.py`` checks).

Every command starts in a process group of its own, and whatever ends the wait for it early (its
deadline, Ctrl-C, an error while reading its output) stops that group the way a step's is stopped
(:func:`pytest_predeploy.core.stopping.stop_group`: SIGTERM, then SIGKILL until none is left), so
no command outlives the call that ran it, whatever it started in its group. Steps
(:mod:`~pytest_predeploy.core.runner`) and staging services (``targets/processes.py``) start their
processes here too and stop them with the same code; bounded commands (git, pip, podman, the
security scanners) use :func:`run`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pytest_predeploy.core.stopping import stop_group

#: Seconds a command's group gets between SIGTERM and SIGKILL when it is stopped early.
STOP_GRACE = 1.0
#: ``stdin``, ``stdout`` and ``stderr`` values of :func:`start`.
PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL


class TimedOut(Exception):
    """The command did not finish by its deadline; its process group was stopped."""

    def __init__(self, argv: Sequence[str], timeout: float) -> None:
        self.argv, self.timeout = list(argv), timeout
        super().__init__(f"{' '.join(self.argv)} did not finish within {timeout:g}s")


@dataclass(frozen=True)
class Finished:
    """A command that ran to its end: its exit status (negative: killed by that signal) and output."""

    argv: list[str]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")


def start(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: int | IO[bytes] | None = DEVNULL,
    stdout: int | None = PIPE,
    stderr: int | None = PIPE,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a session, so a process group, of its own. Raises OSError (and
    ValueError for a NUL byte) as :class:`subprocess.Popen` does."""
    return subprocess.Popen(list(argv), cwd=cwd, env=dict(env) if env is not None else None, stdin=stdin, stdout=stdout, stderr=stderr, start_new_session=True)


def stop(proc: subprocess.Popen[bytes], grace: float = STOP_GRACE) -> None:
    """Stop the group ``proc`` leads and close its pipes (whatever still holds them open is gone
    with the group, or not ours to wait for)."""
    stop_group(proc.pid, proc, grace)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@contextmanager
def running(
    argv: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None, grace: float = STOP_GRACE
) -> Iterator[subprocess.Popen[bytes]]:
    """``argv`` started (stdin from /dev/null, stdout and stderr piped) for a caller that reads its
    output as it comes; any exception out of the block stops its group first."""
    proc = start(argv, cwd=cwd, env=env)
    try:
        yield proc
    except BaseException:
        stop(proc, grace)
        raise


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    stdin: Path | None = None,
    grace: float = STOP_GRACE,
) -> Finished:
    """Run ``argv`` to its end with ``input`` (or the file ``stdin``, else nothing) as its input,
    its output captured. Raises OSError when it cannot start, :class:`TimedOut` after ``timeout``
    seconds; either way, and on any other exception (Ctrl-C), nothing of it is left running."""
    argv = [str(arg) for arg in argv]
    with open(stdin or os.devnull, "rb") as source:
        proc = start(argv, cwd=cwd, env=env, stdin=PIPE if input is not None else source)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(proc, grace)
        raise TimedOut(argv, timeout) from None
    except BaseException:
        stop(proc, grace)
        raise
    return Finished(argv, proc.returncode, out, err)
