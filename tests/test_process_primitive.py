"""The one subprocess primitive (core/commands.py, issue 31 item 5): a command runs in a process
group of its own, with a deadline, and whatever ends the wait early stops the whole group; the
bounded commands of the package (scanners, git, pip, podman, the interpreter probe) run through it.
Real subprocesses; each test names the processes its command started and checks none is left."""

from __future__ import annotations

import signal
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pytest_predeploy.core import commands
from pytest_predeploy.core.errors import ConfigError
from pytest_predeploy.security.components import _interpreter_markers
from pytest_predeploy.security.tools import ToolUnavailable, run_tool
from tests.waiting import alive, pids_in, poll

#: A command that starts a child outside its own output (so nothing waits on a pipe for it), one
#: that ignores SIGTERM, writes both pids, and never ends.
STUBBORN = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    open(sys.argv[1], "w").write(f"{os.getpid()}\\n{child.pid}\\n")
    print("started", flush=True)
    time.sleep(300)
    """
)


def stubborn(tmp_path: Path) -> tuple[list[str], Path]:
    script = tmp_path / "stubborn.py"
    script.write_text(STUBBORN)
    return [sys.executable, str(script), str(tmp_path / "pids")], tmp_path / "pids"


def none_left(pids: Path) -> bool:
    return bool(pids_in(pids)) and not any(alive(pid) for pid in pids_in(pids))


@contextmanager
def interrupt_after(seconds: float) -> Iterator[None]:
    """Ctrl-C (a KeyboardInterrupt in this thread) after ``seconds``."""
    previous = signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_command_gives_its_status_output_and_reads_its_input(tmp_path: Path) -> None:
    code = "import sys; data = sys.stdin.read(); print(data.upper()); print('err', file=sys.stderr); sys.exit(3)"
    done = commands.run([sys.executable, "-c", code], input=b"hello", timeout=30, cwd=tmp_path)
    assert (done.returncode, done.stdout, done.err) == (3, b"HELLO\n", "err\n")


def test_a_command_that_cannot_start_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        commands.run([str(tmp_path / "missing")], timeout=5)


def test_a_command_past_its_deadline_is_stopped_with_all_it_started(tmp_path: Path) -> None:
    argv, pids = stubborn(tmp_path)
    with pytest.raises(commands.TimedOut, match="did not finish within 2s"):
        commands.run(argv, timeout=2, grace=0.5)
    assert none_left(pids)


def test_an_interrupted_command_is_stopped_with_all_it_started(tmp_path: Path) -> None:
    argv, pids = stubborn(tmp_path)
    with interrupt_after(2.0), pytest.raises(KeyboardInterrupt):
        commands.run(argv, timeout=60, grace=0.5)
    assert none_left(pids)


def test_a_command_read_as_it_runs_is_stopped_when_the_reader_fails(tmp_path: Path) -> None:
    argv, pids = stubborn(tmp_path)
    with pytest.raises(RuntimeError), commands.running(argv, grace=0.5) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"started\n"
        raise RuntimeError("the archive cannot be extracted")
    assert none_left(pids)


# -- the call sites: what they started does not outlive them -----------------------------------


def test_a_scanner_that_times_out_leaves_nothing_running(tmp_path: Path) -> None:
    argv, pids = stubborn(tmp_path)
    with pytest.raises(ToolUnavailable, match="timed out after 2s"):
        run_tool(argv, timeout=2)
    poll(lambda: bool(pids_in(pids)), "the scanner wrote its pids")
    assert none_left(pids)


def test_an_interpreter_probe_that_hangs_leaves_nothing_running(tmp_path: Path) -> None:
    # An "interpreter" that starts a child and hangs: the release's Python probed for its markers.
    argv, pids = stubborn(tmp_path)
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\nexec {' '.join(argv)}\n")
    python.chmod(0o755)
    with interrupt_after(3.0), pytest.raises(KeyboardInterrupt):
        _interpreter_markers(python)
    assert none_left(pids)


def test_an_interpreter_that_cannot_run_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot run"):
        _interpreter_markers(tmp_path / "no-python")
