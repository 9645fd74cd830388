"""Runs one protocol script: its own process group, a timeout, a streamed and redacted
transcript with timestamps, and nothing left behind.

Why one select loop and no reader threads: a script can exit while a grandchild still holds
its stdout open, so "wait for EOF" may never return. The loop watches the pipes, the clock and
the process together, and can stop the whole group whichever of them misbehaves.

Why a marker in the environment as well as the process group: a script can start a daemon that
leaves the group (``setsid``, a double fork), and no signal to the group reaches it. Every
process a step starts inherits ``PREDEPLOY_STEP_TOKEN`` (unique per run of a script) unless it
rebuilds its environment from nothing; at the end of the step every process still carrying the
token (read from ``/proc/<pid>/environ``) is stopped and named in the transcript. Services the
local staging target deploys are meant to outlive the step, and do: the target starts them with
an environment of its own that does not carry the token (``staging.processes.service_environment``).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from pytest_predeploy.core import commands
from pytest_predeploy.core.fields import utcnow
from pytest_predeploy.core.redact import Redactor, StreamRedactor
from pytest_predeploy.core.stopping import KILL_GRACE, STEP_TOKEN, STOP_ROUNDS, group_alive, group_members, stop_escaped
from pytest_predeploy.core.stopping import stop_group as stop_group  # the one way to stop a group; doctor uses it

#: Read size; also the unit in which memory use is bounded.
CHUNK = 64 * 1024
#: A line longer than this is written in pieces (a script printing 1 GiB without a newline
#: must not make us hold 1 GiB).
MAX_LINE = 64 * 1024
#: Transcripts keep this much output; the rest is counted and drained, not stored.
TRANSCRIPT_LIMIT = 64 * 1024 * 1024
#: ``capture=True`` keeps at most this much stdout in memory.
CAPTURE_LIMIT = 64 * 1024 * 1024
#: How long after the script exits we wait for processes it left holding its output.
PIPE_GRACE = 2.0
#: Output that could be the start of a secret is held back only until the script has been quiet
#: this long; then it is written (redacted as far as can be told), so a paused or hung script's
#: last words are in its transcript.
IDLE_FLUSH = 0.2
#: A command line longer than this is shown cut, with the number of characters left out (a
#: format spec such as ``{release:>50000000}`` must not put 50 MB into every report).
COMMAND_LIMIT = 4096


@dataclass
class RunResult:
    step: str
    label: str
    argv: list[str]
    cwd: Path
    transcript: Path
    started_at: datetime
    ended_at: datetime
    duration: float
    returncode: int | None = None
    signal: str | None = None
    timed_out: bool = False
    interrupted: bool = False
    error: str | None = None
    timeout: float = 0.0
    output_bytes: int = 0
    truncated_bytes: int = 0
    stragglers_killed: bool = False
    #: Processes the step left running outside its group, stopped at its end: "pid N (name)".
    escaped: list[str] = field(default_factory=list)
    #: Processes the step started that were still running after every attempt to stop them.
    survivors: list[str] = field(default_factory=list)
    stdout: bytes = field(default=b"", repr=False)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not (self.timed_out or self.interrupted or self.error or self.survivors)

    def describe(self) -> str:
        if self.error:
            return f"not run: {self.error}"
        if self.survivors:
            return f"left processes running that could not be stopped: {', '.join(self.survivors)}"
        if self.interrupted:
            return "interrupted"
        if self.timed_out:
            return f"timed out after {self.timeout:g}s"
        if self.signal:
            return f"killed by {self.signal}"
        if self.returncode == 0:
            return "success"
        return f"failed (exit {self.returncode})"


def script_name(argv: Sequence[str]) -> str:
    """The name the protocol uses for a command: the script it runs (``deploy_backend.sh``)."""
    for arg in argv:
        if arg.endswith((".py", ".sh")):
            return Path(arg).name
    return Path(argv[0]).name if argv else "(empty command)"


def display_command(argv: Sequence[str], redactor: Redactor | None = None, limit: int = COMMAND_LIMIT) -> str:
    """The command line as reports show it: redacted, and cut at ``limit`` characters."""
    text = " ".join(argv)
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text) - limit} more characters)"
    return redactor.redact(text) if redactor else text


class _Transcript:
    """Timestamped, redacted, size-capped lines from both streams into one file.

    A line is stamped when its first byte was read. A record ending in `` + `` instead of
    `` | `` is continued by the next record of the same stream (a line longer than MAX_LINE, or
    one written in pieces because the script paused in the middle of it)."""

    STREAMS = ("stdout", "stderr")

    def __init__(self, handle: BinaryIO, redactor: Redactor | None, on_line: Callable[[str], None] | None, limit: int) -> None:
        self._handle = handle
        self._redactors: dict[str, StreamRedactor | None] = {name: (redactor.stream() if redactor else None) for name in self.STREAMS}
        self._partial: dict[str, bytes] = {name: b"" for name in self.STREAMS}
        #: When the first byte not yet written of each stream was read.
        self._since: dict[str, str] = {}
        self._on_line = on_line
        self._limit = limit
        self.written = 0
        self.dropped = 0
        self.total = 0

    def feed(self, stream: str, chunk: bytes) -> None:
        self.total += len(chunk)
        if self.written >= self._limit:
            self.dropped += len(chunk)
            return
        now = _stamp()
        self._since.setdefault(stream, now)
        redactor = self._redactors[stream]
        data = redactor.feed(chunk) if redactor else chunk
        self._lines(stream, self._partial[stream] + data, now, final=False)

    def pending(self) -> bool:
        return bool(self._since)

    def idle(self) -> None:
        """The script has been quiet: write what is held back, lines not yet ended included."""
        for stream in list(self._since):
            self._release(stream, final=False)

    def close(self) -> None:
        for stream in self.STREAMS:
            self._release(stream, final=True)
        if self.dropped:
            # Past the cap on purpose: the reader must know the transcript is not the whole output.
            self._handle.write(f"[transcript truncated: {self.dropped} more bytes of output were not recorded]\n".encode())

    def _release(self, stream: str, final: bool) -> None:
        redactor = self._redactors[stream]
        rest = redactor.flush() if redactor else b""
        if self.written < self._limit:
            self._lines(stream, self._partial[stream] + rest, _stamp(), final=final, broken=not final)
        self._partial[stream] = b""
        self._since.pop(stream, None)

    def _lines(self, stream: str, data: bytes, now: str, final: bool, broken: bool = False) -> None:
        *complete, rest = data.split(b"\n")
        stamp = self._since.get(stream, now)
        out = []
        for line in complete:
            out.append(self._format(stamp, stream, " | ", line))
            stamp = now  # later lines of this read began in it
        while len(rest) > MAX_LINE:
            out.append(self._format(stamp, stream, " + ", rest[:MAX_LINE]))
            rest, stamp = rest[MAX_LINE:], now
        if (final or broken) and rest:
            out.append(self._format(stamp, stream, " + " if broken else " | ", rest))
            rest = b""
        self._partial[stream] = rest
        redactor = self._redactors[stream]
        if rest or (redactor is not None and redactor.holding):
            self._since[stream] = stamp
        else:
            self._since.pop(stream, None)
        if out:
            self._write(b"".join(out))

    def _format(self, stamp: str, stream: str, separator: str, line: bytes) -> bytes:
        text = line.rstrip(b"\r").decode("utf-8", "backslashreplace")
        if self._on_line is not None:
            self._on_line(text)
        return f"{stamp} {stream}{separator}".encode() + text.encode("utf-8") + b"\n"

    def _write(self, data: bytes) -> None:
        room = self._limit - self.written
        if len(data) > room:
            # Whole lines up to the cap; the rest is counted (the cap is a promise about the file).
            fits = data.rfind(b"\n", 0, room) + 1
            self.dropped += len(data) - fits
            self.written = self._limit
            data = data[:fits]
        else:
            self.written += len(data)
        if data:
            self._handle.write(data)


def _stamp() -> str:
    return utcnow().isoformat(timespec="milliseconds").replace("+00:00", "Z")


def run_command(
    argv: Sequence[str],
    *,
    step: str,
    label: str = "",
    transcript: Path,
    timeout: float,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    redactor: Redactor | None = None,
    on_line: Callable[[str], None] | None = None,
    capture: bool = False,
    transcript_limit: int = TRANSCRIPT_LIMIT,
    kill_grace: float = KILL_GRACE,
    cancel: threading.Event | None = None,
) -> RunResult:
    """Run ``argv`` to completion. Never raises for a failing script (see ``RunResult``);
    re-raises ``KeyboardInterrupt`` after the whole process group has been stopped.

    ``cancel`` lets another thread stop a run (Ctrl-C reaches only the main thread, while
    parallel deploys run in worker threads): the group is stopped and the result is
    ``interrupted``."""
    argv = [str(arg) for arg in argv]
    transcript.parent.mkdir(parents=True, exist_ok=True)
    started = utcnow()
    clock = time.monotonic()
    result = RunResult(step=step, label=label, argv=argv, cwd=cwd, transcript=transcript, started_at=started, ended_at=started, duration=0.0, timeout=timeout)
    token = uuid.uuid4().hex
    child_env = dict(env if env is not None else os.environ)
    child_env[STEP_TOKEN] = token
    # Unbuffered: each write goes to the file at once, so a run killed with SIGKILL still leaves
    # the header and every line read so far (lines are written a read's worth at a time).
    with open(transcript, "wb", buffering=0) as handle:
        header = f"# step: {step}{' (' + label + ')' if label else ''}\n# command: {display_command(argv, redactor)}\n# cwd: {cwd}\n# started: {started.isoformat()}\n# timeout: {timeout:g}s\n"
        handle.write(header.encode())
        try:
            if not argv:
                # subprocess would raise IndexError, a traceback printing this function's locals.
                raise ValueError("the command is empty")
            proc = commands.start(argv, cwd=cwd, env=child_env)
        except FileNotFoundError:
            result.error = f"executable not found: {argv[0]}" if Path(cwd).is_dir() else f"working folder not found: {cwd}"
        except PermissionError:
            result.error = f"not executable: {argv[0]} (check its execute permission)"
        except OSError as exc:
            result.error = f"cannot execute {display_command(argv[:1])}: {exc.strerror}"
        except ValueError as exc:  # an empty command, a NUL byte in an argument
            result.error = f"cannot execute the command: {exc}"
        if result.error:
            result.ended_at = utcnow()
            handle.write(f"# not run: {result.error}\n".encode())
            return result

        lines = _Transcript(handle, redactor, on_line, transcript_limit)
        captured: list[bytes] = []
        captured_size = 0
        pgid = proc.pid
        selector = selectors.DefaultSelector()
        assert proc.stdout is not None and proc.stderr is not None
        selector.register(proc.stdout, selectors.EVENT_READ, "stdout")
        selector.register(proc.stderr, selectors.EVENT_READ, "stderr")
        deadline = clock + timeout
        exited_at: float | None = None
        last_read = clock
        try:
            while selector.get_map() or proc.poll() is None:
                if selector.get_map():
                    ready = selector.select(timeout=0.1 if not lines.pending() else IDLE_FLUSH / 2)
                else:
                    # Both pipes are closed but the script still runs: it closed or redirected its
                    # output (``exec >>deploy.log``) and goes on working, or the kernel is ending
                    # it (its descriptors close a moment before it can be reaped). Either way it
                    # is waited for, under its timeout and cancel event, never signalled.
                    ready = []
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=0.1)
                for key, _ in ready:
                    data = os.read(key.fd, CHUNK)
                    if not data:
                        selector.unregister(key.fileobj)
                        continue
                    last_read = time.monotonic()
                    if capture and key.data == "stdout" and captured_size <= CAPTURE_LIMIT:
                        captured.append(data)
                        captured_size += len(data)
                    lines.feed(key.data, data)
                now = time.monotonic()
                if lines.pending() and now - last_read >= IDLE_FLUSH:
                    lines.idle()
                if proc.poll() is not None:
                    exited_at = exited_at or now
                    if now - exited_at > PIPE_GRACE:
                        # The script is done but something it started still holds its output.
                        result.stragglers_killed = group_alive(pgid)
                        stop_group(pgid, None, grace=1.0)
                        break
                elif now > deadline:
                    result.timed_out = True
                    stop_group(pgid, proc, kill_grace)
                    break
                elif cancel is not None and cancel.is_set():
                    result.interrupted = True
                    stop_group(pgid, proc, kill_grace)
                    break
        except KeyboardInterrupt:
            result.interrupted = True
            stop_group(pgid, proc, kill_grace)
            raise
        finally:
            for key in list(selector.get_map().values()):
                selector.unregister(key.fileobj)
            selector.close()
            proc.stdout.close()
            proc.stderr.close()
            if proc.poll() is None:
                stop_group(pgid, proc, kill_grace)
            elif group_alive(pgid):
                # Processes the script left behind in its group: stopped, and said so.
                result.stragglers_killed = True
                stop_group(pgid, None, grace=1.0)
            # Processes that left the group (setsid, double fork) but carry the step's token.
            result.escaped, result.survivors = stop_escaped(token, grace=min(kill_grace, 2.0))
            result.survivors += [member for member in group_members(pgid) if member not in result.survivors]
            lines.close()
            result.returncode = proc.returncode
            if proc.returncode is not None and proc.returncode < 0:
                result.signal = signal.Signals(-proc.returncode).name
                result.returncode = None
            result.ended_at = utcnow()
            result.duration = time.monotonic() - clock
            result.output_bytes = lines.total
            result.truncated_bytes = lines.dropped
            if captured_size > CAPTURE_LIMIT:
                result.error = f"output larger than {CAPTURE_LIMIT // (1024 * 1024)} MiB cannot be captured"
            result.stdout = b"".join(captured)
            footer = f"# ended: {result.ended_at.isoformat()}\n# status: {result.describe()}\n# duration: {result.duration:.3f}s\n"
            if result.stragglers_killed:
                footer += "# note: processes left running by the script were stopped\n"
            for process in result.escaped:
                footer += f"# note: stopped {process}, started by the step outside its process group and still running at its end\n"
            for process in result.survivors:
                footer += f"# WARNING: {process}, started by the step, is still running after {STOP_ROUNDS} rounds of SIGSTOP and SIGKILL\n"
            handle.write(footer.encode())
    return result
