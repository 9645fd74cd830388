"""Waiting on real processes in tests: poll with a deadline (never a fixed sleep), and tell a
running process from a finished one."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest


def alive(pid: int) -> bool:
    """True when ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def pids_in(path: Path) -> list[int]:
    """The process ids a test script wrote to ``path``, one a line (none when it wrote none)."""
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def poll(condition: Callable[[], bool], what: str, deadline: float = 120.0, interval: float = 0.05) -> None:
    """Return once ``condition()`` holds; fail the test naming ``what`` after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"not within {deadline:g}s: {what}")
        time.sleep(interval)
