"""Running git in a project folder: the one way this package calls git.

A run started from a git hook or a CI checkout inherits ``GIT_DIR``, ``GIT_WORK_TREE`` and the
like; left in place they make every git command answer for that other repository (the recorded
commit, the package time, the release's code). So every ``GIT_*`` variable is dropped, git never
waits for a password or an editor, its messages are in English, and it has a deadline after which
its whole process group is killed (tests/test_git.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

#: Seconds any git command may take: local reads finish far sooner; a stuck lock or a network
#: remote does not finish at all.
GIT_TIMEOUT = 60.0


@dataclass(frozen=True)
class GitResult:
    """What one git command gave: its exit status, or ``None`` with the reason it gave none."""

    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def git_environment() -> dict[str, str]:
    """The environment for git: ours without any ``GIT_*``, never prompting, stable messages."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"})
    return env


def git_argv(folder: Path, *args: str) -> list[str]:
    return ["git", "-C", str(folder), *args]


def kill_group(proc: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """Kill a process started with ``start_new_session`` and everything it started."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run_git(folder: Path, *args: str, timeout: float = GIT_TIMEOUT) -> GitResult:
    """Run ``git -C folder args`` in its own process group with text output."""
    what = f"git {args[0] if args else ''} in {folder}"
    try:
        proc = subprocess.Popen(
            git_argv(folder, *args),
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env=git_environment(),
        )
    except OSError as exc:
        return GitResult(None, problem=f"{what}: cannot run git ({exc.strerror})")
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        return GitResult(None, problem=f"{what} did not finish within {timeout:g}s; check the repository (a lock file, a network remote?)")
    except BaseException:
        kill_group(proc)
        raise
    return GitResult(proc.returncode, out, err)
