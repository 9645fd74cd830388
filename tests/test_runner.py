"""The runner: real subprocesses in their own group, timeouts, bounded memory, redaction."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from pytest_predeploy.core.redact import Redactor
from pytest_predeploy.core.runner import RunResult, run_command
from tests.waiting import alive, pids_in, poll


def script(tmp_path: Path, body: str, name: str = "step.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def run(tmp_path: Path, argv: list[str], **kwargs: Any) -> RunResult:
    kwargs.setdefault("timeout", 20)
    return run_command(argv, step="test", transcript=tmp_path / "t.log", cwd=tmp_path, **kwargs)


def test_success_records_command_status_and_duration(tmp_path: Path) -> None:
    step = script(tmp_path, "print('hello'); import sys; print('warn', file=sys.stderr)")
    result = run(tmp_path, [sys.executable, str(step)])
    assert result.ok and result.returncode == 0 and result.describe() == "success"
    text = result.transcript.read_text()
    assert "stdout | hello" in text and "stderr | warn" in text
    assert "# status: success" in text and "# command: " in text
    assert result.duration > 0


def test_grandchild_holding_stdout_is_killed_on_timeout(tmp_path: Path) -> None:
    step = script(
        tmp_path,
        """
        import os, subprocess, sys, time
        child = subprocess.Popen(["sleep", "300"])
        open("pids", "w").write(f"{os.getpid()}\\n{child.pid}\\n")
        print("started", flush=True)
        time.sleep(300)
    """,
    )
    result = run(tmp_path, [sys.executable, str(step)], timeout=1.5, kill_grace=1.0)
    assert result.timed_out and result.describe() == "timed out after 1.5s"
    poll(lambda: not [pid for pid in pids_in(tmp_path / "pids") if alive(pid)], "the script and its grandchild are gone", deadline=5)


def test_script_that_exits_leaving_a_grandchild_on_stdout_is_cleaned_up(tmp_path: Path) -> None:
    step = script(
        tmp_path,
        """
        import os, subprocess
        child = subprocess.Popen(["sleep", "300"])
        open("pids", "w").write(f"{child.pid}\\n")
    """,
    )
    result = run(tmp_path, [sys.executable, str(step)])
    assert result.returncode == 0 and result.stragglers_killed
    poll(lambda: not [pid for pid in pids_in(tmp_path / "pids") if alive(pid)], "the grandchild left on stdout is gone", deadline=5)
    assert "processes left running by the script were stopped" in result.transcript.read_text()


def test_script_ignoring_sigterm_is_killed(tmp_path: Path) -> None:
    step = script(
        tmp_path,
        """
        import os, signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        open("pids", "w").write(f"{os.getpid()}\\n")
        print("ignoring SIGTERM", flush=True)
        time.sleep(300)
    """,
    )
    result = run(tmp_path, [sys.executable, str(step)], timeout=1.0, kill_grace=0.5)
    assert result.timed_out
    assert [pid for pid in pids_in(tmp_path / "pids") if alive(pid)] == []


def test_killed_by_signal_is_reported(tmp_path: Path) -> None:
    step = script(tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    result = run(tmp_path, [sys.executable, str(step)])
    assert result.signal == "SIGKILL" and result.describe() == "killed by SIGKILL" and not result.ok


def test_missing_and_non_executable_scripts_are_errors_not_exceptions(tmp_path: Path) -> None:
    missing = run(tmp_path, ["no-such-tool-predeploy"])
    assert missing.describe() == "not run: executable not found: no-such-tool-predeploy"
    plain = script(tmp_path, "#!/bin/sh\necho hi\n", "plain.sh")
    plain.chmod(0o644)
    denied = run(tmp_path, [str(plain)])
    assert denied.describe().startswith("not run: not executable:")
    assert "# not run:" in denied.transcript.read_text()


@pytest.mark.parametrize(("argv", "expected"), [([], "the command is empty"), (["echo", "a\0b"], "embedded null byte")])
def test_an_empty_command_or_a_nul_byte_is_an_error_not_a_traceback(tmp_path: Path, argv: list[str], expected: str) -> None:
    # issue 30, item 10: subprocess raised IndexError / ValueError, whose traceback showed the
    # runner's locals (the step's environment) in every report.
    result = run(tmp_path, argv, env={"PREDEPLOY_CANARY": "must-not-leak"})
    assert result.describe() == f"not run: cannot execute the command: {expected}"
    assert "must-not-leak" not in result.transcript.read_text()


def test_non_utf8_output_is_kept_escaped(tmp_path: Path) -> None:
    step = script(tmp_path, "import sys; sys.stdout.buffer.write(b'bad \\xff\\xfe bytes\\n')")
    result = run(tmp_path, [sys.executable, str(step)])
    assert result.ok
    assert "bad \\xff\\xfe bytes" in result.transcript.read_text(encoding="utf-8")


def test_one_gib_of_output_keeps_memory_bounded(tmp_path: Path) -> None:
    writer = script(
        tmp_path,
        """
        import os
        block = b"x" * 1023 + b"\\n"
        chunk = block * 1024
        for _ in range(1024):
            os.write(1, chunk)
    """,
        "writer.py",
    )
    driver = script(
        tmp_path,
        f"""
        import sys
        from pathlib import Path
        from pytest_predeploy.core.runner import run_command
        result = run_command([sys.executable, {str(writer)!r}], step="big", transcript=Path({str(tmp_path / "big.log")!r}),
                             timeout=120, cwd=Path({str(tmp_path)!r}))
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork+exec.
        peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
        print(result.returncode, result.output_bytes, result.truncated_bytes, peak)
    """,
        "driver.py",
    )
    out = subprocess.run([sys.executable, str(driver)], capture_output=True, text=True, timeout=300, check=True).stdout.split()
    returncode, total, dropped, max_rss_kib = (int(x) for x in out)
    assert returncode == 0 and total == 1024**3
    assert dropped > 0  # the transcript kept its cap; the rest was drained, not stored
    assert (tmp_path / "big.log").stat().st_size < 80 * 1024**2
    assert max_rss_kib < 150 * 1024, f"peak RSS {max_rss_kib} KiB"
    assert "[transcript truncated:" in (tmp_path / "big.log").read_text()[-200:]


def test_interrupt_kills_the_group_and_reraises(tmp_path: Path) -> None:
    step = script(
        tmp_path,
        """
        import os, subprocess, time
        child = subprocess.Popen(["sleep", "300"])
        open("pids", "w").write(f"{os.getpid()}\\n{child.pid}\\n")
        time.sleep(300)
    """,
    )
    previous = signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        with pytest.raises(KeyboardInterrupt):
            run(tmp_path, [sys.executable, str(step)], kill_grace=1.0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert [pid for pid in pids_in(tmp_path / "pids") if alive(pid)] == []
    assert "# status: interrupted" in (tmp_path / "t.log").read_text()


SECRET = "s3cr3t-Canary-Value-91!"
PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7canary\n-----END PRIVATE KEY-----"


def test_secrets_are_redacted_in_every_form_and_across_chunks(tmp_path: Path) -> None:
    step = script(
        tmp_path,
        f"""
        import base64, json, os, sys, urllib.parse
        secret, pem = {SECRET!r}, {PEM!r}
        print("plain", secret)
        print("b64", base64.b64encode(("user:" + secret).encode()).decode())
        print("url", "postgres://u:" + urllib.parse.quote(secret, safe="") + "@db")
        print("json", json.dumps({{"password": secret, "key": pem}}))
        print(pem)
        sys.stdout.flush()
        # Put the secret across a 4 KiB boundary of the pipe.
        os.write(1, b"x" * (4096 - 5) + secret.encode() + b"\\n")
        print("stderr", secret, file=sys.stderr)
    """,
    )
    redactor = Redactor({"DB_PASSWORD": SECRET, "TLS_KEY": PEM})
    result = run(tmp_path, [sys.executable, str(step)], redactor=redactor)
    data = result.transcript.read_bytes()
    forms = [
        SECRET,
        quote(SECRET, safe=""),
        base64.b64encode(("user:" + SECRET).encode()).decode()[8:24],
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
        PEM.replace("\n", "\\n"),
    ]
    for form in forms:
        assert form.encode() not in data, form
    assert data.count(b"[REDACTED:DB_PASSWORD]") >= 5
    assert b"[REDACTED:TLS_KEY]" in data


def test_stream_redactor_catches_a_secret_split_at_every_offset() -> None:
    redactor = Redactor({"TOKEN": SECRET})
    text = b"before " + SECRET.encode() + b" after"
    for cut in range(1, len(text)):
        stream = redactor.stream()
        out = stream.feed(text[:cut]) + stream.feed(text[cut:]) + stream.flush()
        assert out == b"before [REDACTED:TOKEN] after", cut


def _lower_escapes(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda match: match.group(0).lower(), text)


URL_SECRET = "Pa/ss w0rd+Canary/x"


@pytest.mark.parametrize(
    "encoded",
    [
        quote(URL_SECRET),  # default safe="/": the slashes stay as they are
        quote(URL_SECRET, safe=""),
        quote_plus(URL_SECRET),
        _lower_escapes(quote(URL_SECRET, safe="")),
        _lower_escapes(quote_plus(URL_SECRET)),
    ],
    ids=["quote-default", "quote-safe-empty", "quote_plus", "lower-hex", "quote_plus-lower-hex"],
)
def test_every_url_encoding_of_a_secret_is_redacted(tmp_path: Path, encoded: str) -> None:
    step = script(tmp_path, f"print('dsn postgres://u:' + {encoded!r} + '@db')")
    result = run(tmp_path, [sys.executable, str(step)], redactor=Redactor({"DB_PASSWORD": URL_SECRET}))
    data = result.transcript.read_bytes()
    assert encoded.encode() not in data
    assert b"postgres://u:[REDACTED:DB_PASSWORD]@db" in data


DETACHING_STEP = """
    import os, subprocess, sys, time
    # setsid(1) with -f: a new session, so out of the step's process group.
    subprocess.run(["setsid", "-f", "sh", "-c", "echo $$ > setsid.pid; exec sleep 300"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # The classic daemon: fork, setsid, fork again; the grandchild is re-parented to init.
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            open("daemon.pid", "w").write(str(os.getpid()))
            time.sleep(300)
            os._exit(0)
        os._exit(0)
    # nohup in the background, as shell scripts start "services".
    subprocess.run("nohup sh -c 'echo $$ > nohup.pid; exec sleep 300' >/dev/null 2>&1 &", shell=True)
    while not all(os.path.exists(name) and open(name).read().strip() for name in ("setsid.pid", "daemon.pid", "nohup.pid")):
        time.sleep(0.02)
    print("started three background processes")
"""


def test_no_process_a_step_starts_outlives_it_however_it_detaches(tmp_path: Path) -> None:
    step = script(tmp_path, DETACHING_STEP)
    pids: list[int] = []
    try:
        result = run(tmp_path, [sys.executable, str(step)])
        pids = [int((tmp_path / name).read_text()) for name in ("setsid.pid", "daemon.pid", "nohup.pid")]
        assert result.ok, result.transcript.read_text()
        assert [pid for pid in pids if alive(pid)] == []
        text = result.transcript.read_text()
        # The two that left the process group are named; nohup's stayed in it.
        for pid in pids[:2]:
            assert f"# note: stopped pid {pid} (" in text
    finally:
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


# issue 30, item 13: two processes that leave the step's group and will not stay stopped. One
# forks a replacement (in a new session) whenever it is sent SIGTERM; the other forks a new
# session of itself and exits, over and over, so no pid lives long.
REBORN_STEP = """
    import os, signal, sys, time

    def detach(body):
        if os.fork() == 0:
            os.setsid()
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            body()
            os._exit(0)

    def log(name):
        with open(name, "a") as out:
            out.write(f"{os.getpid()}\\n")

    def reborn():
        def again(signum, frame):
            detach(reborn)
            os._exit(0)
        signal.signal(signal.SIGTERM, again)
        log("reborn.pids")
        while True:
            time.sleep(0.05)

    def hopping():
        while True:
            log("hopping.pids")
            if os.fork() != 0:
                os._exit(0)
            os.setsid()
            time.sleep(0.02)

    detach(reborn)
    detach(hopping)
    while not (os.path.exists("reborn.pids") and os.path.exists("hopping.pids")):
        time.sleep(0.02)
    print("started two processes that will not stay stopped")
"""


def _carrying(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes().split(b"\0") and alive(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_processes_that_fork_replacements_are_stopped_until_none_is_left(tmp_path: Path) -> None:
    marker = f"HOSTILE_TEST={tmp_path}"
    step = script(tmp_path, REBORN_STEP)
    try:
        result = run(tmp_path, [sys.executable, str(step)], env={**os.environ, "HOSTILE_TEST": str(tmp_path)}, kill_grace=1.0)
        text = result.transcript.read_text()
        assert _carrying(marker) == [], text
        assert result.ok, text
        assert result.survivors == []
        # What the transcript says was stopped is gone, and it says nothing survived.
        for pid in re.findall(r"# note: stopped pid (\d+) ", text):
            assert not alive(int(pid))
        assert "# WARNING" not in text
        assert pids_in(tmp_path / "reborn.pids")[0] in [int(pid) for pid in re.findall(r"# note: stopped pid (\d+) ", text)]
    finally:
        for pid in _carrying(marker):
            os.kill(pid, signal.SIGKILL)


PAUSING_STEP = """
    import os, sys, time
    open("step.pid", "w").write(str(os.getpid()))
    print("first line", flush=True)
    # A fixed pause on purpose: the two lines must be printed at visibly different times.
    time.sleep(2)
    print("waiting for the lock", end="", flush=True)
    time.sleep(300)
"""

RUN_AND_HANG = """
import sys
from datetime import datetime
from pathlib import Path
from pytest_predeploy.core.redact import Redactor
from pytest_predeploy.core.runner import run_command
redactor = Redactor({"TLS_KEY": sys.argv[3]})
run_command([sys.executable, sys.argv[1]], step="test", transcript=Path(sys.argv[2]), cwd=Path(sys.argv[1]).parent, timeout=600, redactor=redactor)
"""


def test_a_paused_script_s_output_is_written_at_once_stamped_when_printed_and_survives_sigkill(tmp_path: Path) -> None:
    step = script(tmp_path, PAUSING_STEP)
    transcript = tmp_path / "t.log"
    # A long secret: the old runner held back its length minus one byte of every stream.
    runner = subprocess.Popen([sys.executable, "-c", RUN_AND_HANG, str(step), str(transcript), PEM], cwd=Path(__file__).parents[1])
    try:
        poll(
            lambda: b"waiting for the lock" in (transcript.read_bytes() if transcript.exists() else b""),
            "a paused script's output is in its transcript",
            deadline=20,
        )
        runner.kill()  # SIGKILL: nothing of ours runs after this
        runner.wait()
    finally:
        if runner.poll() is None:
            runner.kill()
        pid = int((tmp_path / "step.pid").read_text()) if (tmp_path / "step.pid").exists() else None
        if pid is not None and alive(pid):
            os.killpg(pid, signal.SIGKILL)
    text = transcript.read_text()
    assert text.startswith("# step: test\n# command: ")
    lines = [line for line in text.splitlines() if " stdout" in line]
    assert lines[0].endswith("stdout | first line") and lines[1].endswith("stdout + waiting for the lock")

    def stamp(line: str) -> datetime:
        return datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00"))

    # Stamped when printed, two seconds apart, not when released together.
    assert (stamp(lines[1]) - stamp(lines[0])).total_seconds() >= 1.0


def test_a_script_that_closes_its_output_and_goes_on_working_is_waited_for(tmp_path: Path) -> None:
    # Closed pipes are not the end of the script (``exec >>deploy.log`` in a deploy script):
    # it must finish its work and be judged by its exit status, not be stopped half-way.
    step = script(
        tmp_path,
        """
        import os, sys, time
        print("switching output to deploy.log", flush=True)
        os.close(1)
        os.close(2)
        time.sleep(0.5)  # on purpose: work that goes on after the pipes closed, with nothing to wait for
        open("finished", "w").write("yes")
        sys.exit(3)
    """,
    )
    result = run(tmp_path, [sys.executable, str(step)])
    assert (tmp_path / "finished").read_text() == "yes"
    assert result.returncode == 3 and result.signal is None and result.describe() == "failed (exit 3)"
    assert "stdout | switching output to deploy.log" in result.transcript.read_text()


def test_a_script_that_closes_its_output_is_still_bound_by_its_timeout(tmp_path: Path) -> None:
    step = script(
        tmp_path,
        """
        import os, time
        open("pids", "w").write(f"{os.getpid()}\\n")
        os.close(1)
        os.close(2)
        time.sleep(300)
    """,
    )
    result = run(tmp_path, [sys.executable, str(step)], timeout=1.0, kill_grace=0.5)
    assert result.timed_out and result.describe() == "timed out after 1s"
    assert [pid for pid in pids_in(tmp_path / "pids") if alive(pid)] == []
