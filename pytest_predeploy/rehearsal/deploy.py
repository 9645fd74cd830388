"""Step 2.1, the deployment rehearsal: the candidate deployed to staging, service by service.

Before the rehearsal staging must run the previous release, so that a failure has somewhere to
return to; when a service does not (an empty staging, say) the previous release is deployed
first and the report says so (``bootstrap``). Each service is then deployed with the configured
deploy script (``steps.deploy``), in configured order or ``staging.max_parallel`` at a time, and
verified: healthy, and ``/version`` reporting the candidate.

If any service fails, or the run is interrupted, every service whose deploy had started is
returned to the previous release with the rollback script and verified again:
a failed rehearsal leaves staging where it was, and the evidence says so.

Evidence: ``staging-deployment-run.log`` (progress lines, every script transcript, a timing per
service) and ``staging-deployment-report.json`` (:class:`DeploymentReport`).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

from pydantic import Field

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core import interrupts
from pytest_predeploy.core.artifacts import ArtifactModel, write_text_atomic
from pytest_predeploy.core.errors import PredeployError
from pytest_predeploy.core.fields import StrictModel, UtcDatetime, utcnow
from pytest_predeploy.core.redact import Redactor
from pytest_predeploy.core.runner import CHUNK, TRANSCRIPT_LIMIT, RunResult, display_command, script_name
from pytest_predeploy.targets.base import Target, check_serving
from pytest_predeploy.targets.probe import get_json
from pytest_predeploy.targets.releases import ReleaseIdentity
from pytest_predeploy.targets.settings import TargetSettings

STEP = "2.1 staging deployment rehearsal"
CRITICAL_ERROR = "[ERROR] Deployment rehearsal encountered critical error."


# --- evidence shared with the rollback rehearsal ---------------------------------------------


class RunContext(Protocol):
    """What the rehearsal needs of the protocol run: the release, where its evidence goes, how its
    step scripts run, and the services as the staging target knows them (the plugin's run
    context satisfies it; the rehearsal never sees the rest of the configuration)."""

    release: str
    previous_release: str | None
    env: str
    artifacts: Path
    redactor: Redactor
    cancel: threading.Event

    @property
    def config(self) -> TargetSettings: ...

    @property
    def target(self) -> Target: ...

    def announce(self, line: str) -> None: ...

    def artifact(self, name: str) -> Path: ...

    def transcript_path(self, step: str, label: str) -> Path: ...

    def run_step_script(self, step: str, label: str = "", *, capture: bool = False, **placeholders: str) -> RunResult: ...


class ScriptRun(StrictModel):
    """One run of a step script."""

    command: str = Field(description="The command line (redacted; cut at 4096 characters).")
    status: str = Field(description="How it ended: success, failed (exit N), timed out, killed by SIGNAL, interrupted, not run: why.")
    exit_code: int | None = Field(description="Its exit status; none when it did not exit by itself.")
    started_at: UtcDatetime = Field(description="When it started (UTC).")
    ended_at: UtcDatetime = Field(description="When it ended (UTC).")
    duration_seconds: float = Field(description="Wall time in seconds.")
    transcript: str = Field(description="Its timestamped, redacted output, relative to the artifacts folder.")


def script_run(ctx: RunContext, result: RunResult) -> ScriptRun:
    try:
        transcript = result.transcript.relative_to(ctx.artifacts).as_posix()
    except ValueError:
        transcript = str(result.transcript)
    return ScriptRun(
        command=display_command(result.argv, ctx.redactor),
        status=result.describe(),
        exit_code=result.returncode,
        started_at=result.started_at,
        ended_at=result.ended_at,
        duration_seconds=round(result.duration, 3),
        transcript=transcript,
    )


def script_outcome(result: RunResult) -> str:
    """``deploy_backend.sh success``, or for a failure its status and the error it printed last."""
    outcome = f"{script_name(result.argv)} {result.describe()}"
    if result.ok:
        return outcome
    message = _last_error(result.transcript)
    return f"{outcome}: {message}" if message else outcome


#: The most of a script's last error message kept in a problem sentence (a service log tail with
#: a traceback fits; the whole output is in the transcript).
_ERROR_LINES = 25
_ERROR_LINE_WIDTH = 300


def _last_error(transcript: Path) -> str | None:
    """The last message the script printed on stderr with the indented lines that continue it
    (a service's log tail: a traceback, an argparse usage). The transcript is already redacted;
    it is read from its end, as it can be large."""
    try:
        with open(transcript, "rb") as handle:
            handle.seek(max(0, handle.seek(0, 2) - 256 * 1024))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    errors = [text for line in lines if " stderr | " in line and (text := line.split(" stderr | ", 1)[1]).strip()]
    start = next((i for i in range(len(errors) - 1, -1, -1) if not errors[i].startswith(" ")), None)
    if start is None:
        return None
    message = [line[:_ERROR_LINE_WIDTH] for line in errors[start:]]
    if len(message) > _ERROR_LINES:
        message = [message[0], f"    ({len(message) - _ERROR_LINES} lines left out; see {transcript.name})", *message[1 - _ERROR_LINES :]]
    return "\n".join(message)


class Verification(StrictModel):
    """Whether a service runs the release it should, healthy."""

    expected_release: str = Field(description="The release the service should report on /version.")
    url: str | None = Field(description="The base URL checked; none when the service had no live process.")
    healthy: bool = Field(description="Its health endpoint answered 200.")
    reported_release: str | None = Field(
        description="The release it serves: what it reports on services[].version_path, else the target's own record of what it started."
    )
    passed: bool = Field(description="Healthy and reporting the expected release.")
    problems: list[str] = Field(default_factory=list, description="What was wrong at the last check (empty when passed).")
    checked_at: UtcDatetime = Field(default_factory=utcnow, description="When the last check was made (UTC).")
    waited_seconds: float = Field(description="How long verification polled before passing or giving up.")


def verify_service(ctx: RunContext, service: str, expected: str) -> Verification:
    """Poll ``service`` until it is healthy on ``expected`` or its ``health_timeout`` passes."""
    settings = ctx.config.service(service)
    expected = ctx.target.deployed_name(ctx.env, service, expected)  # a dirty build reports its own name
    started = time.monotonic()
    deadline = started + settings.health_timeout.total_seconds()
    while True:
        url = ctx.target.service_url(ctx.env, service)
        if url is None:
            healthy, reported, problems = False, None, [f"not running: no live process serves its current release on {ctx.env}"]
        else:
            check = check_serving(ctx.target, ctx.config, ctx.env, service, expected, url)
            healthy, reported, problems = check.healthy, check.reported_release, check.problems
        if not problems or time.monotonic() >= deadline:
            return Verification(
                expected_release=expected,
                url=url,
                healthy=healthy,
                reported_release=reported,
                passed=not problems,
                problems=[ctx.redactor.redact(problem) for problem in problems],
                waited_seconds=round(time.monotonic() - started, 3),
            )
        time.sleep(0.1)


class Progress:
    """Live progress lines (service, phase, elapsed seconds), kept with timestamps for the log.

    A ticker repeats the phase of every service still busy every ``interval`` seconds, so a slow
    deploy never looks like a hung one. Safe to use from several threads."""

    def __init__(self, ctx: RunContext, tag: str, interval: float) -> None:
        self._ctx, self._tag, self._interval = ctx, tag, interval
        self._lock = threading.Lock()
        self._busy: dict[str, tuple[str, float]] = {}
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="predeploy-progress", daemon=True)

    def __enter__(self) -> Progress:
        self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._ticker.join()

    def begin(self, service: str, phase: str) -> None:
        with self._lock:
            self._busy[service] = (phase, time.monotonic())
        self._say(service, f"{phase} ...", 0.0)

    def end(self, service: str, outcome: str) -> None:
        with self._lock:
            phase, since = self._busy.pop(service, ("", time.monotonic()))
        self._say(service, f"{phase}: {outcome}" if phase else outcome, time.monotonic() - since)

    def note(self, line: str) -> None:
        with self._lock:
            self.lines.append(f"{_stamp(utcnow())} {line}")
            self._ctx.announce(line)

    def _say(self, service: str, text: str, elapsed: float) -> None:
        self.note(f"{self._tag} {service}: {text} ({elapsed:.1f}s)")

    def _tick(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                busy = sorted(self._busy.items())
            for service, (phase, since) in busy:
                self._say(service, f"{phase}: still running", time.monotonic() - since)


def run_each(items: list[str], work: Callable[[str], bool], max_parallel: int, cancel: threading.Event | None = None) -> None:
    """Call ``work`` for each item, at most ``max_parallel`` at once, in order; after a failure
    (``work`` returned False) start no more. On Ctrl-C or SIGTERM (which only the main thread
    receives), wherever it lands, ``cancel`` stops the running scripts' process groups and every
    worker already started is waited for, through further interrupts, before the interrupt goes
    on: a recovery never runs beside a deploy that is still under way."""
    if max_parallel <= 1:
        for item in items:
            if not work(item):
                return
        return
    queue = list(items)
    failed = False
    running: set[Future[bool]] = set()
    pool = ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="predeploy-deploy")
    try:
        while queue or running:
            while queue and not failed and len(running) < max_parallel:
                running.add(pool.submit(work, queue.pop(0)))
            if not running:
                break
            done, running = wait(running, return_when=FIRST_COMPLETED)
            failed = failed or not all(future.result() for future in done)
    except BaseException:
        if cancel is not None:
            cancel.set()
        queue.clear()
        join_through_interrupts(running)
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def join_through_interrupts(futures: Iterable[Future[bool]]) -> None:
    """Wait until every one of ``futures`` has ended, whatever interrupts arrive meanwhile (their
    scripts are being stopped: the wait is bounded by the scripts' kill grace and the checks)."""
    pending = set(futures)
    while pending:
        try:
            _, pending = wait(pending)
        except KeyboardInterrupt:
            continue


#: Interrupts the recovery absorbs (each starts it over: it is idempotent) before it gives up and
#: reports what staging serves as it is.
RECOVERY_INTERRUPTS = 10


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _short(problems: Iterable[str]) -> str:
    return "; ".join(problems)


# --- the deployment report -------------------------------------------------------------------


class VerifiedRun(StrictModel):
    """A script run for one service, then a check that the service runs the release it should."""

    service: str = Field(description="Service name.")
    release: str = Field(description="The release deployed or restored.")
    script: ScriptRun | None = Field(None, description="The script run.")
    verification: Verification | None = Field(None, description="Health and /version after the script.")
    error: str | None = Field(None, description="Why it failed, in a sentence.")


class ServiceDeployment(VerifiedRun):
    """One service's deployment of the candidate."""

    status: Literal["deployed", "failed", "not_run"] = Field(
        description="deployed (script succeeded and verified), failed, or not_run (the rehearsal stopped before this service)."
    )
    started_at: UtcDatetime | None = Field(None, description="When its deployment started (UTC).")
    ended_at: UtcDatetime | None = Field(None, description="When its deployment and verification ended (UTC).")
    duration_seconds: float | None = Field(None, description="Script plus verification, in seconds.")
    build: ReleaseIdentity | None = Field(
        None, description="What the local staging target built for the candidate (source kind, ref, commit, digest, dirty); none when the service is not on it."
    )


class BootstrapRecord(VerifiedRun):
    """A service that did not run the previous release before the rehearsal and was given it."""

    reason: str = Field(description="What staging ran instead (e.g. 'staging was empty').")
    status: Literal["bootstrapped", "failed", "not_run"] = Field(
        description="bootstrapped (deployed and verified), failed, or not_run (stopped after another service's bootstrap failed)."
    )


class RecoveryRecord(VerifiedRun):
    """One service returned to the previous release after a failed or interrupted rehearsal."""

    status: Literal["restored", "failed"] = Field(description="restored (verified healthy on the previous release) or failed.")


class Recovery(StrictModel):
    """The automatic recovery of a failed or interrupted rehearsal."""

    reason: str = Field(description="What triggered it.")
    services: list[RecoveryRecord] = Field(default_factory=list, description="Every service whose deployment had started, in the order restored.")
    served: dict[str, str | None] = Field(
        default_factory=dict,
        description="What each service serves after the recovery, read back from the target with a health check (null: nothing healthy answers).",
    )
    staging_on_previous: bool = Field(description="Every service restored and read back serving the previous release, healthy.")


def serving(ctx: RunContext, service: str) -> str | None:
    """The release ``service`` serves now: what the target itself started and sees running, when
    it answers its health path; None when nothing healthy it started answers."""
    url = ctx.target.service_url(ctx.env, service)
    if url is None:
        return None
    health = get_json(url + ctx.config.service(service).health_path)
    return ctx.target.running_release(ctx.env, service) if health.status == 200 else None


class DeploymentReport(ArtifactModel):
    """staging-deployment-report.json: the deployment rehearsal of one release on staging."""

    step: str = Field(STEP, description="The protocol step that produced the artifact.")
    environment: str = Field(description="The environment rehearsed on.")
    previous_release: str | None = Field(description="The release staging ran before (and returns to on failure).")
    max_parallel: int = Field(description="How many services were deployed at once.")
    started_at: UtcDatetime = Field(description="When the rehearsal started (UTC).")
    ended_at: UtcDatetime = Field(description="When it ended, recovery included (UTC).")
    duration_seconds: float = Field(description="Wall time of the whole rehearsal, in seconds.")
    outcome: Literal["succeeded", "failed", "interrupted"] = Field(description="succeeded: every service deployed and verified.")
    error: str | None = Field(None, description="The critical error, when the rehearsal failed.")
    bootstrap_note: str = Field(description="Whether staging had to be given the previous release first, and why.")
    bootstrap: list[BootstrapRecord] = Field(default_factory=list, description="Services given the previous release before the rehearsal.")
    services: list[ServiceDeployment] = Field(description="Every configured service, in configured order.")
    recovery: Recovery | None = Field(None, description="The return to the previous release after a failure or interrupt; none when not needed.")
    log: str = Field(names.DEPLOYMENT_LOG, description="The full transcript of the rehearsal, in the artifacts folder.")

    def summary_line(self) -> str:
        deployed = sum(s.status == "deployed" for s in self.services)
        line = f"{deployed}/{len(self.services)} services deployed {self.release} in {self.duration_seconds:.1f}s (max_parallel {self.max_parallel})"
        given = [b.service for b in self.bootstrap if b.status == "bootstrapped"]
        failed = [b.service for b in self.bootstrap if b.status == "failed"]
        if given:
            line += f"; bootstrapped {self.previous_release} on {', '.join(given)}"
        if failed:
            line += f"; bootstrap of {self.previous_release} FAILED on {', '.join(failed)}"
        if self.recovery is not None:
            line += "; recovered to " + str(self.previous_release) if self.recovery.staging_on_previous else "; recovery FAILED"
        dirty = [f"{s.service} as {s.build.deployed_as}" for s in self.services if s.build is not None and s.build.deployed_as != s.build.release]
        if dirty:
            line += f"; NOT the tag {self.release}: uncommitted changes deployed ({', '.join(dirty)})"
        ignored = [s.service for s in self.services if s.build is not None and s.build.dirty and s.build.kind == "git"]
        if ignored:
            line += f"; the working tree has uncommitted changes for {', '.join(ignored)}, NOT deployed (built from the tag {self.release})"
        return line


def deployment_problems(report: DeploymentReport) -> list[str]:
    """Why the rehearsal fails Gate 2, one sentence per problem naming the service (empty: it passes)."""
    problems: list[str] = []
    if report.outcome == "interrupted":
        problems.append("the deployment rehearsal was interrupted")
    for record in report.bootstrap:
        if record.status == "failed":
            problems.append(f"{record.service}: bootstrap of the previous release {record.release} failed: {record.error}")
    for service in report.services:
        if service.status == "failed":
            problems.append(f"{service.service}: deployment of {service.release} failed: {service.error}")
        elif service.status == "not_run" and report.outcome != "succeeded":
            problems.append(f"{service.service}: not deployed (the rehearsal stopped after an earlier failure)")
    if report.outcome == "failed" and not problems:
        problems.append(report.error or "the deployment rehearsal failed")
    if report.recovery is not None:
        for recovered in report.recovery.services:
            if recovered.status == "failed":
                problems.append(f"{recovered.service}: automatic recovery to {recovered.release} failed: {recovered.error}")
    return problems


# --- the rehearsal ---------------------------------------------------------------------------


class _Rehearsal:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.order = [service.name for service in ctx.config.services]
        self.started_at = utcnow()
        self.clock = time.monotonic()
        self.deployments = {name: ServiceDeployment(service=name, release=ctx.release, status="not_run") for name in self.order}
        self.bootstrap: list[BootstrapRecord] = []
        self.bootstrap_note = ""
        self.recovery: Recovery | None = None
        self.outcome: Literal["succeeded", "failed", "interrupted"] = "succeeded"
        self.error: str | None = None
        self.started: set[str] = set()
        self.sections: list[tuple[str, Path]] = []
        self.progress = Progress(ctx, "[STAGING]", ctx.config.staging.progress_interval.total_seconds())

    @property
    def max_parallel(self) -> int:
        return self.ctx.config.staging.max_parallel

    def _script(self, title: str, step: str, label: str, **placeholders: str) -> RunResult | str:
        """Run a step script; a configuration problem becomes the error text instead."""
        try:
            # capture given explicitly, so the text placeholders can never fill it (mypy checks that).
            result = self.ctx.run_step_script(step, label=label, capture=False, **placeholders)
        except KeyboardInterrupt:
            self.sections.append((title, self.ctx.transcript_path(step, label)))
            raise
        except PredeployError as exc:
            return str(exc)
        self.sections.append((title, result.transcript))
        return result

    def _run_and_verify(self, record: VerifiedRun, title: str, step: str, label: str, *, verify_failed_script: bool = False, **placeholders: str) -> None:
        """Run ``step`` for ``record.service``, then verify it runs ``record.release``; sets ``record.error``."""
        outcome = self._script(title, step, label, service=record.service, **placeholders)
        if isinstance(outcome, str):
            record.error = outcome
            return
        record.script = script_run(self.ctx, outcome)
        if self.ctx.cancel.is_set():
            record.error = "interrupted"  # the run is being cancelled: no verification to wait for
            return
        if not outcome.ok and not verify_failed_script:
            record.error = script_outcome(outcome)
            return
        record.verification = verify_service(self.ctx, record.service, record.release)
        if not record.verification.passed:
            problems = _short(record.verification.problems)
            record.error = problems if outcome.ok else f"{script_outcome(outcome)}; {problems}"

    # -- bootstrap --

    def prepare(self) -> bool:
        """Make every service run the previous release; False when that failed."""
        previous = self.ctx.previous_release
        if previous is None:
            self.bootstrap_note = "no previous release is known: staging was not prepared, and a failure cannot be rolled back"
            return True
        if not self.ctx.config.staging.bootstrap:
            self.bootstrap_note = f"bootstrap disabled (staging.bootstrap: false): staging is assumed to run {previous}"
            return True
        reasons = {name: reason for name in self.order if (reason := self._not_on_previous(name, previous))}
        if not reasons:
            self.bootstrap_note = f"staging already ran {previous} on every service"
            return True
        self.bootstrap_note = f"staging did not run {previous} on {', '.join(reasons)}: bootstrapped it first"
        self.progress.note(f"[STAGING] bootstrap: deploying the previous release {previous} to {', '.join(reasons)}")
        records = {name: BootstrapRecord(service=name, release=previous, reason=reasons[name], status="not_run") for name in reasons}
        self.bootstrap = list(records.values())

        def bootstrap_one(name: str) -> bool:
            record = records[name]
            self.progress.begin(name, f"bootstrap {previous}")
            self._run_and_verify(record, f"bootstrap {name}: deploy {previous}", "deploy", f"bootstrap-{name}", release=previous)
            record.status = "bootstrapped" if record.error is None else "failed"
            self.progress.end(name, "done" if record.error is None else f"FAILED: {record.error}")
            return record.error is None

        run_each(list(reasons), bootstrap_one, self.max_parallel, self.ctx.cancel)
        failed = [r.service for r in self.bootstrap if r.status == "failed"]
        if failed:
            # What happened, not what was attempted (issue 30, item 16b).
            wanted = ", ".join(f"{name} ({reason})" for name, reason in reasons.items())
            self.bootstrap_note = (
                f"staging did not run {previous} on {wanted}; giving it {previous} failed on {', '.join(failed)}, so the candidate was not deployed"
            )
            self.error = f"staging could not be given the previous release {previous} ({', '.join(failed)}); the candidate was not deployed"
        return not failed

    def _not_on_previous(self, name: str, previous: str) -> str | None:
        url = self.ctx.target.service_url(self.ctx.env, name)
        if url is None:
            current = self.ctx.target.current_release(self.ctx.env, name)
            return "staging was empty" if current is None else f"staging had {current} current but not running"
        check = check_serving(self.ctx.target, self.ctx.config, self.ctx.env, name, previous, url)
        if check.reported_release != previous:
            return f"staging ran {check.reported_release or 'an unknown release'}"
        return None if check.healthy else f"{previous} was not healthy"

    # -- deployment --

    def deploy_all(self) -> bool:
        run_each(self.order, self.deploy_one, self.max_parallel, self.ctx.cancel)
        failed = [name for name, d in self.deployments.items() if d.status == "failed"]
        if failed:
            self.error = f"deployment of {self.ctx.release} failed on {', '.join(failed)}"
        return not failed

    def deploy_one(self, name: str) -> bool:
        record = self.deployments[name]
        record.started_at = utcnow()
        started = time.monotonic()
        self.started.add(name)
        self.progress.begin(name, f"deploy {self.ctx.release}")
        self._run_and_verify(record, f"deploy {name}: {self.ctx.release}", "deploy", name)
        record.build = self.ctx.target.release_identity(self.ctx.env, name, self.ctx.release)
        record.status = "deployed" if record.error is None else "failed"
        record.ended_at = utcnow()
        record.duration_seconds = round(time.monotonic() - started, 3)
        self.progress.end(name, "deployed and verified" if record.error is None else f"FAILED: {record.error}")
        return record.error is None

    # -- recovery --

    def recover(self, reason: str) -> None:
        """Return every service whose deployment started to the previous release, in reverse order."""
        previous = self.ctx.previous_release
        services = [name for name in reversed(self.order) if name in self.started]
        if not services:  # the candidate never reached staging: nothing to return from
            return
        self.recovery = Recovery(reason=reason, staging_on_previous=False)
        if previous is None:
            self.recovery.reason += "; no previous release is known, so staging was left as it is"
            return
        self.progress.note(f"[STAGING] recovery: returning {', '.join(services)} to {previous}")
        for name in services:
            record = RecoveryRecord(service=name, release=previous, status="failed")
            self.recovery.services.append(record)
            self.progress.begin(name, f"restore {previous}")
            # The verification decides, not the exit status: "already current" (nothing to do) is fine.
            self._run_and_verify(record, f"recovery {name}: roll back to {previous}", "rollback", f"recovery-{name}", verify_failed_script=True)
            record.status = "restored" if record.error is None else "failed"
            self.progress.end(name, f"back on {previous}" if record.error is None else f"FAILED: {record.error}")
        self.read_back()

    def read_back(self) -> None:
        """What every service serves now, as the target reports it and its health answers: the
        evidence states that, never what the recovery meant to do."""
        assert self.recovery is not None
        previous = self.ctx.previous_release
        served: dict[str, str | None] = {}
        for name in self.order:
            try:
                served[name] = serving(self.ctx, name)
            except KeyboardInterrupt:
                served[name] = None  # not read back: it does not count as restored
        self.recovery.served = served
        restored = all(r.status == "restored" for r in self.recovery.services)
        self.recovery.staging_on_previous = previous is not None and restored and all(release == previous for release in served.values())

    # -- evidence --

    def report(self) -> DeploymentReport:
        ended = utcnow()
        return DeploymentReport(
            release=self.ctx.release,
            environment=self.ctx.env,
            previous_release=self.ctx.previous_release,
            max_parallel=self.max_parallel,
            started_at=self.started_at,
            ended_at=ended,
            duration_seconds=round(time.monotonic() - self.clock, 3),
            outcome=self.outcome,
            error=self.error,
            bootstrap_note=self.bootstrap_note,
            bootstrap=self.bootstrap,
            services=[self.deployments[name] for name in self.order],
            recovery=self.recovery,
        )

    def write(self) -> DeploymentReport:
        report = self.report()
        write_text_atomic(self.ctx.artifact(names.DEPLOYMENT_REPORT), self.ctx.redactor.redact(report.model_dump_json(indent=2)) + "\n")
        _write_log(self.ctx, report, self.sections, self.progress.lines)
        return report


def _write_log(ctx: RunContext, report: DeploymentReport, sections: list[tuple[str, Path]], progress: list[str]) -> None:
    """Stream the log into place: the transcripts are copied a chunk at a time, at most
    DEPLOYMENT_LOG_LIMIT bytes of them in all, so neither memory nor the file grows with what
    the scripts printed (each transcript is whole in ``transcripts/``)."""
    redactor = ctx.redactor
    with _atomic_output(ctx.artifact(names.DEPLOYMENT_LOG)) as out:
        out.write(redactor.redact("\n".join(_head(report, progress)) + "\n").encode("utf-8"))
        budget = DEPLOYMENT_LOG_LIMIT
        for title, transcript in sections:
            out.write(f"\n== {redactor.redact(title)} ==\n".encode())
            budget -= _copy_capped(transcript, out, budget, redactor)
        out.write(redactor.redact("\n".join(_tail(report)) + "\n").encode("utf-8"))


def _head(report: DeploymentReport, progress: list[str]) -> list[str]:
    return [
        f"# {names.DEPLOYMENT_LOG}: deployment rehearsal of {report.release} on {report.environment}",
        f"# previous release: {report.previous_release or '(none)'}; max_parallel: {report.max_parallel}",
        f"# started: {_stamp(report.started_at)}; ended: {_stamp(report.ended_at)}; duration: {report.duration_seconds:.3f}s",
        f"# outcome: {report.outcome}" + (f" ({report.error})" if report.error else ""),
        f"# bootstrap: {report.bootstrap_note}",
        "",
        "== progress ==",
        *progress,
    ]


def _tail(report: DeploymentReport) -> list[str]:
    out = ["", "== timings (seconds) ==", f"{'service':<20} {'phase':<10} {'status':<12} {'script':>8} {'verify':>8} {'total':>8}"]
    rows: list[tuple[str, str, str, ScriptRun | None, Verification | None, float | None]] = []
    rows += [(b.service, "bootstrap", b.status, b.script, b.verification, None) for b in report.bootstrap]
    rows += [(d.service, "deploy", d.status, d.script, d.verification, d.duration_seconds) for d in report.services]
    if report.recovery is not None:
        rows += [(r.service, "recovery", r.status, r.script, r.verification, None) for r in report.recovery.services]
    for service, phase, status, script, verification, total in rows:
        script_s = script.duration_seconds if script else None
        verify_s = verification.waited_seconds if verification else None
        if total is None and script_s is not None:
            total = script_s + (verify_s or 0.0)
        out.append(f"{service:<20} {phase:<10} {status:<12} {_num(script_s):>8} {_num(verify_s):>8} {_num(total):>8}")
    out += ["", "== summary ==", report.summary_line()]
    problems = deployment_problems(report)
    out += [f"problem: {problem}" for problem in problems] or ["no problems"]
    return out


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


#: The most of the scripts' transcripts ``staging-deployment-run.log`` copies, in all (the same
#: cap as one transcript); its own lines (progress, timings, summary) come on top, a few KiB.
DEPLOYMENT_LOG_LIMIT = TRANSCRIPT_LIMIT


@contextmanager
def _atomic_output(path: Path) -> Iterator[BinaryIO]:
    """A binary file written in place of ``path`` at once when the block ends without error
    (readers see the old file or the whole new one), removed otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _copy_capped(path: Path, out: BinaryIO, budget: int, redactor: Redactor) -> int:
    """Copy the transcript at ``path`` into ``out``, redacted, at most ``budget`` bytes of it;
    say how much was left out. Returns the bytes copied."""
    copied = 0
    stream = redactor.stream()
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            last = b"\n"
            while copied < budget and (chunk := handle.read(min(CHUNK, budget - copied))):
                data = stream.feed(chunk)
                out.write(data)
                copied += len(chunk)
                last = data[-1:] or last
            rest = stream.flush()
            out.write(rest)
            last = rest[-1:] or last
    except OSError:
        out.write(f"(transcript {path} could not be read)\n".encode())
        return copied
    if last != b"\n":
        out.write(b"\n")
    if size > copied:
        out.write(
            f"[{size - copied} more bytes of this transcript are not copied here (the log keeps {DEPLOYMENT_LOG_LIMIT // (1024 * 1024)} MiB of transcripts); the whole transcript: {names.TRANSCRIPTS_DIR}/{path.name}]\n".encode()
        )
    return copied


def rehearse_deployment(ctx: RunContext, before_switch: Callable[[], None] | None = None) -> DeploymentReport:
    """Run the deployment rehearsal and write its log and report (see the module docstring).

    ``before_switch`` is called once staging runs the previous release, just before the first
    candidate deploy (the observability baseline takes its "before" snapshot there). On
    KeyboardInterrupt staging is returned to the previous release, the evidence is written, and
    the interrupt is re-raised."""
    rehearsal = _Rehearsal(ctx)
    ctx.artifacts.mkdir(parents=True, exist_ok=True)
    with rehearsal.progress:
        try:
            if rehearsal.prepare():
                if before_switch is not None:
                    before_switch()
                rehearsal.deploy_all()
            if rehearsal.error is not None:
                rehearsal.outcome = "failed"
                rehearsal.progress.note(CRITICAL_ERROR)
                rehearsal.recover(rehearsal.error)
        except KeyboardInterrupt:
            rehearsal.outcome = "interrupted"
            rehearsal.error = "interrupted"
            rehearsal.progress.note(f"[STAGING] interrupted: returning staging to {ctx.previous_release or '(no previous release)'} before stopping")
            try:
                recover_through_interrupts(rehearsal, "the rehearsal was interrupted")
            finally:
                rehearsal.write()
            raise
    return rehearsal.write()


def recover_through_interrupts(rehearsal: _Rehearsal, reason: str) -> None:
    """Recover; a further interrupt starts the recovery over (it is idempotent: a service already
    back on the previous release is only verified), up to RECOVERY_INTERRUPTS times."""
    for attempt in range(RECOVERY_INTERRUPTS + 1):
        rehearsal.ctx.cancel.clear()  # the recovery's own scripts must run
        try:
            # In the main thread further interrupts wait for the recovery; elsewhere they restart it.
            with interrupts.deferred(f"returning staging to {rehearsal.ctx.previous_release}"):
                rehearsal.recover(reason if attempt == 0 else f"{reason} (recovery started over after {attempt} more interrupt(s))")
            return
        except KeyboardInterrupt:
            rehearsal.progress.note("[STAGING] interrupted again: the recovery starts over (a rollback is bounded by its timeout)")
    rehearsal.progress.note(f"[STAGING] recovery abandoned after {RECOVERY_INTERRUPTS} interrupts: staging is reported as read back")
    if rehearsal.recovery is not None:
        rehearsal.read_back()


def return_to_previous(ctx: RunContext, reason: str) -> DeploymentReport | None:
    """After a rehearsal that deployed but then failed its checks (the smoke and acceptance
    suites): every service back on the previous release, and the deployment report says so.
    None when there is no deployment report to amend or no previous release."""
    path = ctx.artifact(names.DEPLOYMENT_REPORT)
    try:
        report = DeploymentReport.model_validate_json(path.read_bytes())
    except (OSError, ValueError):
        return None
    if ctx.previous_release is None:
        return None
    rehearsal = _Rehearsal(ctx)
    rehearsal.started = {s.service for s in report.services if s.status != "not_run"}
    with rehearsal.progress:
        rehearsal.progress.note(f"[STAGING] {reason}: returning staging to {ctx.previous_release}")
        recover_through_interrupts(rehearsal, reason)
    report.recovery = rehearsal.recovery
    write_text_atomic(path, ctx.redactor.redact(report.model_dump_json(indent=2)) + "\n")
    return report
