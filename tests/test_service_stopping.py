"""A staging service is stopped like a step (issue 30, item 13): its process group and every
process carrying its service token, in rounds until none is left, and what still runs is named,
never listed as stopped. A service also dies with its log launcher (targets/logcap.py), however
the launcher ends. Real small services on loopback that misbehave on purpose."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import yaml

from pytest_predeploy.config import ProjectConfig
from pytest_predeploy.core import stopping
from pytest_predeploy.targets import processes
from pytest_predeploy.targets.base import TargetError
from pytest_predeploy.targets.local import stop_all
from pytest_predeploy.targets.settings import load_target_config
from pytest_predeploy.tooling.doctor import check_service_starts
from tests.staging_support import StagingProject, script_env, service, staging  # noqa: F401  (fixture)
from tests.waiting import alive, poll

#: A service answering its health check that leaves processes behind in every way it can: on
#: SIGTERM it forks a replacement in a new session (which does the same when it is sent SIGTERM);
#: at start it double-forks a daemon out of its group, and a process that forks a new session of
#: itself and exits, over and over, so that no pid lives long.
MISBEHAVING = textwrap.dedent(
    """
    import http.server, json, os, signal, sys, time

    port = int(sys.argv[sys.argv.index("--port") + 1])
    mode = os.environ["MISBEHAVE"]

    def log(name):
        with open(os.path.join(os.environ["PIDS"], name), "a") as out:
            out.write(f"{os.getpid()}\\n")

    def detach(body):
        if os.fork() == 0:
            os.setsid()
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            body()
            os._exit(0)

    def reborn():
        signal.signal(signal.SIGTERM, lambda *a: (detach(reborn), os._exit(0)))
        log("reborn")
        while True:
            time.sleep(0.05)

    def hopping():
        while True:
            log("hopping")
            if os.fork() != 0:
                os._exit(0)
            os.setsid()
            time.sleep(0.02)

    def daemon():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        log("daemon")
        while True:
            time.sleep(0.05)

    if "replace" in mode:
        signal.signal(signal.SIGTERM, lambda *a: (detach(reborn), os._exit(0)))
    if "daemon" in mode:
        detach(daemon)
    if "hopping" in mode:
        detach(hopping)

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"status": "ok"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    log("main")
    print("listening", flush=True)
    http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
    """
)

ALL = "replace daemon hopping"


def carrying(marker: str, release: str | None = None) -> list[int]:
    """Live processes whose environment holds ``marker`` (every process the test service started),
    those of ``release`` only when it is given (they run in its release folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ours = marker.encode() in (entry / "environ").read_bytes().split(b"\0")
                if ours and (release is None or os.readlink(entry / "cwd").endswith(f"/releases/{release}")) and alive(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture
def misbehaving(staging: StagingProject, tmp_path: Path) -> Iterator[tuple[StagingProject, str]]:
    """A project whose one service ``api`` misbehaves as ``MISBEHAVE`` says (set per test)."""
    source = tmp_path / "misbehaving"
    source.mkdir()
    (source / "server.py").write_text(MISBEHAVING)
    pids = tmp_path / "pids"
    pids.mkdir()
    marker = f"MISBEHAVING_TEST={tmp_path}"
    yield staging, marker
    for pid in carrying(marker):  # whatever the target did not stop, so no test leaves it running
        os.kill(pid, signal.SIGKILL)


def write(staging: StagingProject, tmp_path: Path, mode: str, strategy: str = "restart") -> ProjectConfig:
    env = {"MISBEHAVE": mode, "PIDS": str(tmp_path / "pids"), "MISBEHAVING_TEST": str(tmp_path)}
    entry = service("api", strategy=strategy, env=env, health_timeout="20s")
    entry["source"] = str(tmp_path / "misbehaving")
    entry["command"] = "{python} server.py --port {port}"
    return staging.write(services=[entry], staging={"stop_timeout": "1s"})


def describe(pids: list[int]) -> list[str]:
    """What a test failure shows of processes left running: their /proc/<pid>/stat."""
    found = []
    for pid in pids:
        try:
            found.append(Path(f"/proc/{pid}/stat").read_text())
        except OSError:
            found.append(f"{pid} (gone)")
    return found


def logged(tmp_path: Path, name: str) -> list[int]:
    path = tmp_path / "pids" / name
    return [int(line) for line in path.read_text().split()] if path.exists() else []


@pytest.mark.parametrize("how", ["redeploy", "rollback", "blue_green switch", "stop at the end of the run"])
def test_a_service_that_forks_and_detaches_is_stopped_until_none_is_left(misbehaving: tuple[StagingProject, str], tmp_path: Path, how: str) -> None:
    staging, marker = misbehaving
    config = write(staging, tmp_path, ALL, strategy="blue_green" if how == "blue_green switch" else "restart")
    target = staging.target("api")
    target.deploy("v1")
    poll(lambda: bool(logged(tmp_path, "daemon") and logged(tmp_path, "hopping")), "the service started its daemon and its hopping process")
    if how == "redeploy":
        target.deploy("v2")
        stopped = "v1"
    elif how == "rollback":
        target.deploy("v2")
        target.rollback("v1")
        stopped = "v2"
    elif how == "blue_green switch":
        target.deploy("v2")  # v1 stays in its slot for a switchback
        target.deploy("v3")  # into v1's slot: v1 is stopped
        stopped = "v1"
    else:
        assert stop_all(config, "staging")
        stopped = None
    assert carrying(marker, stopped) == [], describe(carrying(marker, stopped))


def test_stopping_names_what_it_stopped_outside_the_service_s_group(misbehaving: tuple[StagingProject, str], tmp_path: Path) -> None:
    staging, marker = misbehaving
    config = write(staging, tmp_path, "daemon")
    staging.target("api").deploy("v1")
    poll(lambda: bool(logged(tmp_path, "daemon")), "the service started its daemon")
    [daemon] = logged(tmp_path, "daemon")
    [line] = stop_all(config, "staging")
    assert f"pid {daemon} (python" in line
    assert carrying(marker) == []


def test_what_cannot_be_stopped_is_reported_as_running_and_its_record_kept(
    misbehaving: tuple[StagingProject, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staging, marker = misbehaving
    config = write(staging, tmp_path, "daemon")  # the daemon ignores SIGTERM
    target = staging.target("api")
    target.deploy("v1")
    poll(lambda: bool(logged(tmp_path, "daemon")), "the service started its daemon")
    [daemon] = logged(tmp_path, "daemon")
    monkeypatch.setattr(stopping, "STOP_ROUNDS", 0)  # no SIGKILL: SIGTERM alone cannot stop the daemon
    with pytest.raises(TargetError, match=rf"pid {daemon} \(python[^)]*\) .*still running"):
        stop_all(config, "staging")
    assert alive(daemon)
    assert target.record("main") is not None  # kept, so that a later stop finds it again
    monkeypatch.undo()
    stop_all(config, "staging")
    assert carrying(marker) == [] and target.record("main") is None


# -- the log launcher (targets/logcap.py) takes its service with it ------------------------------


def test_a_service_dies_with_its_launcher_killed_by_sigkill(tmp_path: Path) -> None:
    log = tmp_path / "main.log"
    started = processes.spawn(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(300)"], cwd=tmp_path, log=log, env=processes.service_environment({})
    )
    try:
        poll(lambda: log.exists() and b"up" in log.read_bytes(), "the service started")
        [service_pid] = [child.pid for child in psutil.Process(started.pid).children()]
        os.kill(started.pid, signal.SIGKILL)
        poll(lambda: not alive(service_pid), "the service ended with its launcher", deadline=10)
        assert not processes.is_running(started.pid, started.ticks)
        assert processes.stop(started.pid, started.ticks, 5.0, started.token).how == "not running"
    finally:
        for process in psutil.Process().children(recursive=True):
            if str(log) in " ".join(process.cmdline()) or process.ppid() == started.pid:
                process.kill()


def test_a_deploy_after_the_launcher_was_killed_starts_the_service_again(misbehaving: tuple[StagingProject, str], tmp_path: Path) -> None:
    staging, marker = misbehaving
    write(staging, tmp_path, "plain")
    target = staging.target("api")
    target.deploy("v1")
    record = target.record("main")
    assert record is not None
    [service_pid] = logged(tmp_path, "main")
    os.kill(record.pid, signal.SIGKILL)
    poll(lambda: not alive(service_pid), "the service ended with its launcher", deadline=10)
    assert target.running("main") is None
    target.deploy("v1")  # the next run: v1 is not running, so it is started again
    again = target.running("main")
    assert again is not None and again.pid != record.pid and target.healthy_now(again)


def test_doctor_s_trial_start_stops_all_the_service_started(misbehaving: tuple[StagingProject, str], tmp_path: Path) -> None:
    _, marker = misbehaving
    (tmp_path / "misbehaving" / "RELEASE").write_text("trial\n")
    env = {"MISBEHAVE": ALL, "PIDS": str(tmp_path / "pids"), "MISBEHAVING_TEST": str(tmp_path)}
    entry = {"name": "api", "source": "misbehaving", "command": "{python} server.py --port {port}", "health_timeout": "20s", "env": env}
    (tmp_path / "doctor.yaml").write_text(yaml.safe_dump({"services": [entry], "staging": {"stop_timeout": "1s"}}))
    row = check_service_starts(load_target_config(tmp_path / "doctor.yaml"), "api", "v1", tmp_path / "api.log", working_tree=True)
    assert row.ok, row.line()
    assert logged(tmp_path, "daemon") and logged(tmp_path, "hopping")
    assert carrying(marker) == [], describe(carrying(marker))


WITH_A_WORKER = "import os, sys, time\nworker = os.fork()\nif worker == 0:\n    time.sleep(300)\n    os._exit(0)\nprint(worker, flush=True)\ntime.sleep(300)\n"


def test_a_worker_left_by_a_service_whose_launcher_was_killed_is_stopped_and_named(tmp_path: Path) -> None:
    # The launcher's death ends the service (its direct child), not what the service started: the
    # target's stop still finds that by the service's token, though the launcher is gone.
    log = tmp_path / "main.log"
    started = processes.spawn([sys.executable, "-c", WITH_A_WORKER], cwd=tmp_path, log=log, env=processes.service_environment({}))
    worker = 0
    try:
        poll(lambda: log.exists() and log.read_text().strip().isdigit(), "the service started its worker")
        worker = int(log.read_text())
        os.kill(started.pid, signal.SIGKILL)
        poll(lambda: not processes.is_running(started.pid, started.ticks), "the launcher ended")
        assert alive(worker)
        stopped = processes.stop(started.pid, started.ticks, 5.0, started.token)
        assert stopped.how == "not running" and stopped.survivors == []
        assert [line for line in stopped.escaped if line.startswith(f"pid {worker} (")]
        assert not alive(worker)
    finally:
        if worker and alive(worker):
            os.kill(worker, signal.SIGKILL)


def test_the_stop_command_stops_what_a_deploy_command_left_and_says_so(misbehaving: tuple[StagingProject, str], tmp_path: Path) -> None:
    # Deployed and stopped by two separate commands, as a protocol run does: the stopping process
    # knows the service only by its record (pid, start time, token).
    staging, marker = misbehaving
    write(staging, tmp_path, ALL)
    deployed = staging.script("deploy_backend.sh", "--release", "v1")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    poll(lambda: bool(logged(tmp_path, "daemon") and logged(tmp_path, "hopping")), "the service started its daemon and its hopping process")
    [daemon] = logged(tmp_path, "daemon")
    stop = [sys.executable, "-m", "pytest_predeploy.targets.local", "stop", "--env", "staging", "--config", str(staging.path)]
    done = subprocess.run(stop, capture_output=True, text=True, timeout=120, env=script_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[staging] stopped api v1 (main, pid " in done.stdout and f"pid {daemon} (python" in done.stdout, done.stdout
    assert carrying(marker) == [], describe(carrying(marker))
