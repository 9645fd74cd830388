"""Runs one protocol script: its own process group, a timeout, a streamed and redacted
transcript with timestamps, and nothing left behind.

Why one select loop and no reader threads: a script can exit while a grandchild still holds
its stdout open, so "wait for EOF" may never return. The loop watches the pipes, the clock and
the process together, and can stop the whole group whichever of them misbehaves.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from pytest_predeploy.fields import utcnow
from pytest_predeploy.redact import Redactor, StreamRedactor

#: Read size; also the unit in which memory use is bounded.
CHUNK = 64 * 1024
#: A line longer than this is written in pieces (a script printing 1 GiB without a newline
#: must not make us hold 1 GiB).
MAX_LINE = 64 * 1024
#: Transcripts keep this much output; the rest is counted and drained, not stored.
TRANSCRIPT_LIMIT = 64 * 1024 * 1024
#: ``capture=True`` keeps at most this much stdout in memory.
CAPTURE_LIMIT = 64 * 1024 * 1024
#: How long after SIGTERM a group gets before SIGKILL.
KILL_GRACE = 5.0
#: How long after the script exits we wait for processes it left holding its output.
PIPE_GRACE = 2.0


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
    stdout: bytes = field(default=b"", repr=False)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not (self.timed_out or self.interrupted or self.error)

    def describe(self) -> str:
        if self.error:
            return f"not run: {self.error}"
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


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    """Send ``sig`` to the group; False when no process of it is left."""
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return False


def _group_alive(pgid: int) -> bool:
    return _signal_group(pgid, 0)  # type: ignore[arg-type]


def stop_group(pgid: int, proc: subprocess.Popen[bytes] | None, grace: float = KILL_GRACE) -> None:
    """SIGTERM the group, SIGKILL whatever is left after ``grace`` seconds; reap the leader."""
    if _signal_group(pgid, signal.SIGTERM):
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if proc is not None:
                proc.poll()
            if not _group_alive(pgid) or (proc is not None and proc.returncode is not None and not _group_alive(pgid)):
                break
            time.sleep(0.05)
        _signal_group(pgid, signal.SIGKILL)
    if proc is not None:
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass


class _Transcript:
    """Timestamped, redacted, size-capped lines from both streams into one file."""

    def __init__(self, handle: BinaryIO, redactor: Redactor | None, on_line: Callable[[str], None] | None, limit: int) -> None:
        self._handle = handle
        self._redactors: dict[str, StreamRedactor | None] = {
            name: (redactor.stream() if redactor else None) for name in ("stdout", "stderr")
        }
        self._partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}
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
        redactor = self._redactors[stream]
        data = redactor.feed(chunk) if redactor else chunk
        self._lines(stream, self._partial[stream] + data, final=False)

    def close(self) -> None:
        for stream in ("stdout", "stderr"):
            redactor = self._redactors[stream]
            rest = redactor.flush() if redactor else b""
            if self.written < self._limit:
                self._lines(stream, self._partial[stream] + rest, final=True)
        if self.dropped:
            # Past the cap on purpose: the reader must know the transcript is not the whole output.
            self._handle.write(f"[transcript truncated: {self.dropped} more bytes of output were not recorded]\n".encode())

    def _lines(self, stream: str, data: bytes, final: bool) -> None:
        stamp = utcnow().isoformat(timespec="milliseconds").replace("+00:00", "Z")
        prefix = f"{stamp} {stream} | ".encode()
        *complete, rest = data.split(b"\n")
        out = []
        for line in complete:
            out.append(self._format(prefix, line))
        while len(rest) > MAX_LINE:
            out.append(self._format(prefix, rest[:MAX_LINE]).replace(b" | ", b" + ", 1))
            rest = rest[MAX_LINE:]
        if final and rest:
            out.append(self._format(prefix, rest))
            rest = b""
        self._partial[stream] = rest
        if out:
            self._write(b"".join(out))

    def _format(self, prefix: bytes, line: bytes) -> bytes:
        text = line.rstrip(b"\r").decode("utf-8", "backslashreplace")
        if self._on_line is not None:
            self._on_line(text)
        return prefix + text.encode("utf-8") + b"\n"

    def _write(self, data: bytes) -> None:
        if self.written >= self._limit:
            self.dropped += len(data)
            return
        self._handle.write(data)
        self.written += len(data)


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
    redact_text = redactor.redact if redactor else (lambda text: text)
    started = utcnow()
    clock = time.monotonic()
    result = RunResult(step=step, label=label, argv=argv, cwd=cwd, transcript=transcript, started_at=started, ended_at=started, duration=0.0, timeout=timeout)
    with open(transcript, "wb") as handle:
        header = f"# step: {step}{' (' + label + ')' if label else ''}\n# command: {redact_text(' '.join(argv))}\n# cwd: {cwd}\n# started: {started.isoformat()}\n# timeout: {timeout:g}s\n"
        handle.write(header.encode())
        try:
            proc = subprocess.Popen(
                argv, cwd=cwd, env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except FileNotFoundError:
            result.error = f"executable not found: {argv[0]}" if Path(cwd).is_dir() else f"working folder not found: {cwd}"
        except PermissionError:
            result.error = f"not executable: {argv[0]} (check its execute permission)"
        except OSError as exc:
            result.error = f"cannot execute {argv[0]}: {exc.strerror}"
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
        try:
            while selector.get_map():
                for key, _ in selector.select(timeout=0.1):
                    data = os.read(key.fd, CHUNK)
                    if not data:
                        selector.unregister(key.fileobj)
                        continue
                    if capture and key.data == "stdout" and captured_size <= CAPTURE_LIMIT:
                        captured.append(data)
                        captured_size += len(data)
                    lines.feed(key.data, data)
                now = time.monotonic()
                if proc.poll() is not None:
                    exited_at = exited_at or now
                    if now - exited_at > PIPE_GRACE:
                        # The script is done but something it started still holds its output.
                        result.stragglers_killed = _group_alive(pgid)
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
            elif _group_alive(pgid):
                # Processes the script left behind in its group: stopped, and said so.
                result.stragglers_killed = True
                stop_group(pgid, None, grace=1.0)
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
            handle.write(footer.encode())
    return result
