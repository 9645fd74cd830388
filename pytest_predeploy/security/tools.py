"""Running a scanner tool: a timeout, output kept in memory only.

Each tool runs through :func:`pytest_predeploy.core.commands.run`, in a process group of its own
stopped whole on its timeout or on an interrupt (the audit script turns SIGTERM into one); when
the audit script is killed outright, the scanners still carry its step's token and are stopped
with it (core/stopping.py).

Scanner output is never written to a transcript: detect-secrets prints hashes of the secrets it
finds and bandit prints the offending source lines, and neither may reach an artifact.
Everything that fails becomes a :class:`ToolUnavailable` whose message says why in one line.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_predeploy.core import commands
from pytest_predeploy.core.nesting import json_loads

_VERSION = re.compile(r"\b(\d+(?:\.\d+)+(?:[.\-+]?[0-9A-Za-z]+)*)\b")
_MISSING_MODULE = re.compile(r"No module named ([\w.'\"]+)")


class ToolUnavailable(Exception):
    """The tool could not produce a usable result; the message is the reason, one line."""


@dataclass
class ToolRun:
    argv: list[str]
    returncode: int
    stdout: bytes
    stderr: bytes
    duration: float

    def stderr_tail(self, limit: int = 200) -> str:
        lines = [line.strip() for line in self.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        return lines[-1][:limit] if lines else "no error output"


def command_prefix(command: str) -> list[str]:
    """The configured command line, split, with {python} the interpreter running the audit."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise ToolUnavailable(f"command {command!r} cannot be split into words: {exc}") from None
    if not words:
        raise ToolUnavailable("empty command")
    return [word.replace("{python}", sys.executable) for word in words]


def run_tool(argv: Sequence[str], *, timeout: float, cwd: Path | None = None) -> ToolRun:
    """Run ``argv``; raise :class:`ToolUnavailable` when it cannot start, times out or dies by a signal."""
    argv = [str(arg) for arg in argv]
    started = time.monotonic()
    try:
        done = commands.run(argv, cwd=cwd, timeout=timeout)
    except FileNotFoundError:
        raise ToolUnavailable(f"executable not found: {argv[0]}") from None
    except PermissionError:
        raise ToolUnavailable(f"not executable: {argv[0]}") from None
    except OSError as exc:
        raise ToolUnavailable(f"cannot execute {argv[0]}: {exc.strerror}") from None
    except commands.TimedOut:
        raise ToolUnavailable(f"timed out after {timeout:g}s") from None
    run = ToolRun(argv=argv, returncode=done.returncode, stdout=done.stdout, stderr=done.stderr, duration=time.monotonic() - started)
    if done.returncode < 0:
        raise ToolUnavailable(f"killed by signal {-done.returncode}")
    missing = _MISSING_MODULE.search(run.stderr.decode("utf-8", "replace"))
    if done.returncode != 0 and missing:
        raise ToolUnavailable(f"not installed for {argv[0]} (No module named {missing.group(1)})")
    return run


def tool_version(prefix: Sequence[str], timeout: float = 60.0) -> str:
    """``<tool> --version``, reduced to the version number."""
    run = run_tool([*prefix, "--version"], timeout=timeout)
    text = (run.stdout + b"\n" + run.stderr).decode("utf-8", "replace")
    match = _VERSION.search(text)
    if run.returncode != 0 or not match:
        raise ToolUnavailable(f"'{' '.join(prefix)} --version' failed (exit {run.returncode}: {run.stderr_tail()})")
    return match.group(1)


def parse_json_output(run: ToolRun, ok_codes: Sequence[int] = (0,)) -> Any:
    """The tool's JSON output; a crash or anything that is not JSON makes the tool unavailable."""
    if run.returncode not in ok_codes:
        raise ToolUnavailable(f"exited with status {run.returncode}: {run.stderr_tail()}")
    try:
        return json_loads(run.stdout)
    except (UnicodeDecodeError, json.JSONDecodeError):
        # The output itself is not quoted: it may hold the scanned source.
        raise ToolUnavailable(f"output is not JSON ({len(run.stdout)} bytes, exit {run.returncode})") from None
