"""One protocol run at a time per staging environment.

The artifacts folder's lock keeps two runs from writing the same evidence, but two runs with
different artifacts folders would still deploy, roll back and stop the same local staging
services under each other, and each would then fail with misleading "connection refused"
errors. So a run also holds ``<staging root>/<env>/.predeploy-run.lock`` from start to end.

The lock is a ``flock`` (the kernel releases it when the holder dies, so a killed run never
leaves staging locked). The file holds a line describing the holder, written once the lock is
held and read by a refused run to name it; it is opened without truncation, so a run that is
refused never erases the holder's line.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pytest_predeploy.core.errors import PredeployError
from pytest_predeploy.core.fields import utcnow

LOCK_NAME = ".predeploy-run.lock"
#: The most of a holder line a refused run reads (the file is ours, but anyone could write to it).
_MAX_HOLDER = 512


class StagingBusy(PredeployError):
    """Another protocol run holds the staging environment."""


class StagingLock:
    """An exclusive hold on one staging environment's folder for the whole run."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self, holder: str) -> None:
        """Take the lock now or raise :class:`StagingBusy` naming the folder and its holder."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise PredeployError(f"cannot lock the staging folder {self.folder}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise PredeployError(f"cannot lock the staging folder {self.folder}: {exc.strerror}") from None
            raise StagingBusy(
                f"another protocol run is using the staging folder {self.folder} ({self._holder()}); "
                "runs that share a staging target would deploy and stop each other's services: wait for it to finish, "
                "or give this run its own staging.root"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{holder}; pid {os.getpid()} on {socket.gethostname()}, since {utcnow().isoformat(timespec='seconds')}\n".encode())
        self._fd = fd

    def _holder(self) -> str:
        try:
            with open(self.path, "rb") as handle:
                text = handle.read(_MAX_HOLDER).decode("utf-8", "replace").strip()
        except OSError:
            text = ""
        return f"held by {text}" if text else f"lock {self.path}"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None


@contextmanager
def exclusive(path: Path, timeout: float, busy: Callable[[], Exception]) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` while one deploy or rollback of a service runs;
    after ``timeout`` seconds of waiting raise ``busy()``. The kernel releases the lock when the
    process dies, so a killed deploy never leaves the service locked. (flock directly: the
    filelock package costs each deploy command more CPU to import than the whole lock is worth.)"""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if time.monotonic() >= deadline:
                raise busy()
            time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
