"""The deployment rehearsal (step 2.1) end to end on the local staging target: bootstrap of the
previous release, the candidate on every service, automatic recovery, and interrupts."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core.artifacts import read_artifact
from pytest_predeploy.core.redact import Redactor
from pytest_predeploy.rehearsal import deploy as rehearsal
from pytest_predeploy.rehearsal.deploy import CRITICAL_ERROR, DeploymentReport, deployment_problems, rehearse_deployment
from pytest_predeploy.targets.local import service_urls
from tests.staging_support import SCRIPTS, StagingProject, service, staging  # noqa: F401  (fixture)


def versions(project: StagingProject) -> dict[str, str]:
    assert project.config is not None
    found = {}
    for name, url in service_urls(project.config, "staging").items():
        with urllib.request.urlopen(url + "/version", timeout=5) as response:
            found[name] = json.loads(response.read())["release"]
    return found


def test_empty_staging_is_bootstrapped_then_the_candidate_runs_on_every_service(staging: StagingProject) -> None:
    staging.write(staging={"max_parallel": 2})
    lines: list[str] = []
    ctx = staging.context("v2", announcer=lines.append)
    seen_before_switch: list[dict[str, str]] = []

    report = rehearse_deployment(ctx, before_switch=lambda: seen_before_switch.append(versions(staging)))

    assert deployment_problems(report) == []
    assert report.outcome == "succeeded"
    assert [(b.service, b.reason, b.status) for b in report.bootstrap] == [
        ("api", "staging was empty", "bootstrapped"),
        ("worker", "staging was empty", "bootstrapped"),
    ]
    assert seen_before_switch == [{"api": "v1", "worker": "v1"}]
    assert [(s.service, s.status) for s in report.services] == [("api", "deployed"), ("worker", "deployed")]
    assert all(s.verification is not None and s.verification.reported_release == "v2" for s in report.services)
    assert versions(staging) == {"api": "v2", "worker": "v2"}

    assert read_artifact(ctx.artifact(names.DEPLOYMENT_REPORT), DeploymentReport) == report
    log = ctx.artifact(names.DEPLOYMENT_LOG).read_text()
    assert "== deploy api: v2 ==" in log and "== bootstrap worker: deploy v1 ==" in log
    assert "[staging] worker: current -> slots/green (v2)" in log  # the script's own transcript
    timings = log.split("== timings (seconds) ==")[1]
    assert [row.split()[:3] for row in timings.splitlines()[2:6]] == [
        ["api", "bootstrap", "bootstrapped"],
        ["worker", "bootstrap", "bootstrapped"],
        ["api", "deploy", "deployed"],
        ["worker", "deploy", "deployed"],
    ]
    assert any(line.startswith("[STAGING] api: deploy v2 ...") for line in lines)
    assert "[AUTOMATION] deploy_backend.sh executed: success (worker)" in lines

    # The next rehearsal finds the previous release running: no bootstrap.
    again = rehearse_deployment(staging.context("v3", previous="v2"))
    assert again.bootstrap == [] and again.bootstrap_note == "staging already ran v2 on every service"
    assert versions(staging) == {"api": "v3", "worker": "v3"}


@pytest.mark.parametrize("fault", ["crash", "unhealthy"])
def test_a_failing_candidate_is_rolled_back_on_every_switched_service(staging: StagingProject, fault: str) -> None:
    staging.write(services=[service("api"), service("worker", "worker", strategy="blue_green", health_timeout="1s", inject={"v2": fault})])
    lines: list[str] = []
    ctx = staging.context("v2", announcer=lines.append)

    report = rehearse_deployment(ctx)

    assert report.outcome == "failed"
    assert CRITICAL_ERROR in lines
    problems = deployment_problems(report)
    assert problems[0].startswith("worker: deployment of v2 failed: deploy_backend.sh failed (exit 1)")
    assert ("crashed at start" if fault == "crash" else "missed its health deadline of 1s") in problems[0]
    assert report.recovery is not None and report.recovery.staging_on_previous
    assert [(r.service, r.status) for r in report.recovery.services] == [("worker", "restored"), ("api", "restored")]
    assert versions(staging) == {"api": "v1", "worker": "v1"}
    log = ctx.artifact(names.DEPLOYMENT_LOG).read_text()
    assert CRITICAL_ERROR in log and "== recovery api: roll back to v1 ==" in log


def test_a_previous_release_that_cannot_start_stops_the_rehearsal_before_the_candidate(staging: StagingProject) -> None:
    staging.write(services=[service("api", inject={"v1": "crash"})])
    report = rehearse_deployment(staging.context("v2"))
    assert report.outcome == "failed"
    assert report.services[0].status == "not_run" and report.recovery is None
    problems = deployment_problems(report)
    assert problems[0].startswith("api: bootstrap of the previous release v1 failed") and "crashed at start" in problems[0]
    assert staging.target("api").release_tags() == ["v1"]


@pytest.fixture
def ctrl_c() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt in this process, as in a terminal. A shell without job control
    starts background commands with SIGINT ignored (`pytest ... &` in a script), and Python then
    never installs its handler: the SIGINT these tests send themselves would do nothing."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_an_interrupt_mid_deploy_restores_the_previous_release_then_propagates(staging: StagingProject, ctrl_c: None) -> None:
    # worker's candidate never becomes healthy, so its deploy is still waiting when Ctrl-C comes.
    staging.write(services=[service("api"), service("worker", "worker", health_timeout="30s", inject={"v2": "unhealthy"})])
    rehearse_deployment(staging.context("v1", previous=None))  # staging runs v1

    def interrupt_once_worker_deploys(line: str) -> None:
        if line.startswith("[STAGING] worker: deploy v2 ..."):
            threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()

    ctx = staging.context("v2", announcer=interrupt_once_worker_deploys)
    with pytest.raises(KeyboardInterrupt):
        rehearse_deployment(ctx)

    assert versions(staging) == {"api": "v1", "worker": "v1"}
    report = read_artifact(ctx.artifact(names.DEPLOYMENT_REPORT), DeploymentReport)
    assert report.outcome == "interrupted"
    assert report.recovery is not None and report.recovery.staging_on_previous
    assert {r.service for r in report.recovery.services} == {"api", "worker"}
    assert "the deployment rehearsal was interrupted" in deployment_problems(report)


def test_repeated_interrupts_during_the_recovery_start_it_over_until_staging_is_back(staging: StagingProject, ctrl_c: None) -> None:
    staging.write(services=[service("api"), service("worker", "worker", health_timeout="30s", inject={"v2": "unhealthy"})])
    rehearse_deployment(staging.context("v1", previous=None))  # staging runs v1
    sent: list[threading.Thread] = []

    def interrupts(line: str) -> None:
        if line.startswith("[STAGING] worker: deploy v2 ..."):
            sent.append(threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)))
            sent[-1].start()
        elif line.startswith("[STAGING] recovery: returning") and len(sent) < 4:
            # Ctrl-C three more times, 0.2 s apart, while the recovery runs (it takes ~0.8 s with
            # services under their log launcher; none is sent once it has ended).
            for delay in (0.1, 0.3, 0.5):
                sent.append(threading.Timer(delay, lambda: os.kill(os.getpid(), signal.SIGINT) if recovering.is_set() else None))
                sent[-1].start()

    ctx = staging.context("v2", announcer=interrupts)
    recovering = threading.Event()
    recovering.set()
    with pytest.raises(KeyboardInterrupt):
        rehearse_deployment(ctx)
    recovering.clear()
    for timer in sent:
        timer.join()

    assert versions(staging) == {"api": "v1", "worker": "v1"}
    report = read_artifact(ctx.artifact(names.DEPLOYMENT_REPORT), DeploymentReport)
    assert report.recovery is not None and report.recovery.staging_on_previous
    assert report.recovery.served == {"api": "v1", "worker": "v1"}


def test_every_started_worker_ends_before_an_interrupt_goes_on(ctrl_c: None) -> None:
    # Ctrl-C lands wherever the main thread is, five times; no worker may outlive run_each.
    ended: list[str] = []
    started = threading.Event()
    cancel = threading.Event()

    def work(item: str) -> bool:
        started.set()
        time.sleep(1.0)  # a check that still runs after its script was stopped
        ended.append(item)
        return True

    def interrupt() -> None:
        started.wait(10)
        for _ in range(5):
            time.sleep(0.1)
            os.kill(os.getpid(), signal.SIGINT)

    sender = threading.Thread(target=interrupt)
    sender.start()
    with pytest.raises(KeyboardInterrupt):
        rehearsal.run_each(["api", "worker"], work, 2, cancel)
    running_after = 2 - len(ended)
    while sender.is_alive():
        try:
            sender.join()
        except KeyboardInterrupt:
            continue
    assert running_after == 0, "the interrupt went on while a deploy worker was still running"
    assert cancel.is_set()


CRASHING_SERVICE = """
import argparse, sys
print("connecting to db with password {secret}", file=sys.stderr, flush=True)
parser = argparse.ArgumentParser(prog="server.py")
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--port-file", required=True)
parser.add_argument("--listen-backlog-size-for-the-production-like-profile", type=int, required=True)
parser.add_argument("--another-rather-long-required-option-name", required=True)
parser.parse_args()
"""


def test_a_service_that_fails_to_start_shows_the_real_last_lines_of_its_log_redacted(staging: StagingProject, tmp_path: Path) -> None:
    secret = "Canary-Db-Pa55-4417"
    source = tmp_path / "crashing"
    source.mkdir()
    (source / "server.py").write_text(CRASHING_SERVICE.format(secret=secret))
    staging.write(services=[service("api", source=str(source))])
    ctx = staging.context("v2", previous=None)
    ctx.redactor = Redactor({"staging/DB_PASSWORD": secret})

    report = rehearse_deployment(ctx)

    problem = deployment_problems(report)[0]
    assert "crashed at start" in problem
    # argparse's usage wraps onto indented lines; the message is the last line of the log.
    assert "usage: server.py" in problem
    assert "--another-rather-long-required-option-name" in problem
    assert "server.py: error: the following arguments are required" in problem
    assert "[REDACTED:staging/DB_PASSWORD]" in problem
    assert secret not in problem and secret not in ctx.artifact(names.DEPLOYMENT_REPORT).read_text()


def test_verification_checks_which_service_answers_not_only_the_release(staging: StagingProject) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # worker's configured URL is api's: it reports the candidate, but it is not the worker. It never
    # becomes healthy, so its health deadline is this test's wait: short (api, deployed one by one
    # before it, already answers there).
    staging.write(services=[service("api", port=port), service("worker", "worker", url=f"http://127.0.0.1:{port}", health_timeout="6s")])
    report = rehearse_deployment(staging.context("v2", previous=None))
    assert report.outcome == "failed"
    problems = deployment_problems(report)
    assert any(p.startswith("worker: deployment of v2 failed") and "is answered by service 'api', not 'worker'" in p for p in problems), problems


def test_a_deploy_script_s_stray_daemon_is_stopped_but_the_deployed_service_keeps_running(staging: StagingProject, tmp_path: Path) -> None:
    pids = tmp_path / "stray.pids"
    wrapper = tmp_path / "deploy_with_a_daemon.sh"
    wrapper.write_text(
        f"setsid -f sh -c 'echo $$ >> {pids}; exec sleep 300' </dev/null >/dev/null 2>&1\n"
        f"while [ ! -s {pids} ]; do sleep 0.02; done\n"
        f'exec bash {SCRIPTS / "deploy_backend.sh"} "$@"\n'
    )
    staging.write(
        services=[service("api")],
        steps={"deploy": {"command": f"bash {wrapper} --env {{env}} --release {{release}} --service {{service}} --config {{config}}", "timeout": "60s"}},
    )
    ctx = staging.context("v2", previous=None)
    stray: list[int] = []
    try:
        report = rehearse_deployment(ctx)
        stray = [int(line) for line in pids.read_text().split()]
        assert report.outcome == "succeeded", deployment_problems(report)
        # The service the target started is the deployed release: it outlives the step.
        assert versions(staging) == {"api": "v2"}
        # The daemon the script started itself does not, and the transcript says so.
        assert stray and not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in stray)
        transcript = ctx.artifacts / names.TRANSCRIPTS_DIR / "deploy-api.log"
        assert f"# note: stopped pid {stray[0]} (sleep)" in transcript.read_text()
    finally:
        for pid in stray:
            if psutil.pid_exists(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_deployment_log_streams_the_transcripts_under_its_cap(staging: StagingProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rehearsal, "DEPLOYMENT_LOG_LIMIT", 1024 * 1024, raising=False)
    wrapper = tmp_path / "deploy_loudly.sh"
    wrapper.write_text(f'yes "a log line of a chatty deploy tool" | head -c 3000000\nexec bash {SCRIPTS / "deploy_backend.sh"} "$@"\n')
    staging.write(
        services=[service("api")],
        steps={"deploy": {"command": f"bash {wrapper} --env {{env}} --release {{release}} --service {{service}} --config {{config}}", "timeout": "60s"}},
    )
    ctx = staging.context("v2", previous=None)
    report = rehearse_deployment(ctx)
    assert report.outcome == "succeeded", deployment_problems(report)
    log = ctx.artifact(names.DEPLOYMENT_LOG)
    assert log.stat().st_size < 1024 * 1024 + 64 * 1024
    text = log.read_text()
    assert "more bytes of this transcript are not copied here" in text and "the whole transcript: transcripts/deploy-api.log" in text
    assert text.rstrip().endswith("no problems")  # timings and summary still follow the cut transcript
    assert (ctx.artifacts / names.TRANSCRIPTS_DIR / "deploy-api.log").stat().st_size > 3_000_000
