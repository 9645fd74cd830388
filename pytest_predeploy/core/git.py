"""Running git in a project folder: the one way this package calls git.

A run started from a git hook or a CI checkout inherits ``GIT_DIR``, ``GIT_WORK_TREE`` and the
like; left in place they make every git command answer for that other repository (the recorded
commit, the package time, the release's code). So every ``GIT_*`` variable is dropped, git never
waits for a password or an editor, its messages are in English, and it has a deadline after which
its whole process group is killed (tests/test_git.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pytest_predeploy.core import commands

#: Seconds any git command may take: local reads finish far sooner; a stuck lock or a network
#: remote does not finish at all.
GIT_TIMEOUT = 60.0


@dataclass(frozen=True)
class GitResult:
    """What one git command gave: its exit status and output, or ``None`` with the reason it gave none."""

    returncode: int | None
    output: bytes = b""
    errors: bytes = b""
    problem: str = ""
    #: No status because git could not be found (the other reasons: it did not start, or did not finish).
    missing: bool = False
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def stdout(self) -> str:
        return self.output.decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        return self.errors.decode("utf-8", "replace")


def git_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for git: ours without any ``GIT_*``, never prompting, stable messages, then ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"})
    env.update(extra or {})
    return env


def git_argv(folder: Path, *args: str) -> list[str]:
    return ["git", "-C", str(folder), *args]


def run_git(folder: Path, *args: str, timeout: float = GIT_TIMEOUT, input: bytes | None = None, env: Mapping[str, str] | None = None) -> GitResult:
    """Run ``git -C folder args`` (with ``input``, and ``env`` added to :func:`git_environment`)
    through :func:`pytest_predeploy.core.commands.run`: its own process group, stopped whole
    when it does not finish within ``timeout`` seconds or the wait is interrupted."""
    what = f"git {args[0] if args else ''} in {folder}"
    try:
        done = commands.run(git_argv(folder, *args), cwd=folder, env=git_environment(env), input=input, timeout=timeout)
    except OSError as exc:
        return GitResult(None, problem=f"{what}: cannot run git ({exc.strerror})", missing=isinstance(exc, FileNotFoundError))
    except commands.TimedOut:
        return GitResult(None, problem=f"{what} did not finish within {timeout:g}s; check the repository (a lock file, a network remote?)", timed_out=True)
    return GitResult(done.returncode, done.stdout, done.stderr)
