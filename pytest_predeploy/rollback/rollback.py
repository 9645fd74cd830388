"""Step 3.1, the rollback rehearsal: after a successful deployment rehearsal, prove per service
that staging can return to the previous release, and how fast.

For each service, in reverse deployment order (the order a production rollback would take):
run the rollback script (``steps.rollback``), verify the service is healthy and ``/version``
reports the previous release, run its smoke subset, and measure

- the switch time: the rollback script's wall time (switch, restart or slot switchback, and its
  own health check);
- the recovery time: from the start of the rollback until verified and smoke-green, held against
  ``rollback.recovery_target_seconds``.

Then the candidate is deployed again (``rollback.roll_forward``) and verified the same way. When
a rollback fails, the candidate is restored anyway, so a failed rehearsal never leaves a service
down. Evidence: ``rollback-verification-report.json`` (:class:`RollbackReport`), the input of
incident preparedness downstream (Protocol 13), so it reads on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, Protocol

from pydantic import Field

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core import template
from pytest_predeploy.core.artifacts import ArtifactModel, write_text_atomic
from pytest_predeploy.core.errors import PredeployError, StepError
from pytest_predeploy.core.fields import StrictModel, UtcDatetime, utcnow
from pytest_predeploy.core.runner import RunResult
from pytest_predeploy.rehearsal.deploy import Progress, ScriptRun, Verification, script_outcome, script_run, verify_service
from pytest_predeploy.rehearsal.deploy import RunContext as RehearsalContext
from pytest_predeploy.targets.base import check_serving
from pytest_predeploy.targets.releases import ReleaseIdentity, same_code_problem
from pytest_predeploy.targets.settings import RollbackConfig, TargetSettings

STEP = "3.1 rollback rehearsal"

#: Runs the smoke subset: (label for its files, pytest -k expression or None, release expected).
#: Returns a report with a ``problems`` list (empty: green) or a bool.
SmokeSubset = Callable[[str, str | None, str], Any]

StepName = Literal[
    "rollback",
    "verify rollback",
    "smoke after rollback",
    "roll forward",
    "verify roll forward",
    "smoke after roll forward",
    "restore candidate",
    "verify restore",
]


class RollbackSettings(TargetSettings, Protocol):
    """The services as the staging target knows them, and the rollback section."""

    @property
    def rollback(self) -> RollbackConfig: ...


class RunContext(RehearsalContext, Protocol):
    """What the rollback rehearsal needs of the protocol run (the rehearsal's needs, plus the
    rollback section of the configuration)."""

    @property
    def config(self) -> RollbackSettings: ...


class SmokeCheck(StrictModel):
    """A run of a service's smoke subset."""

    status: Literal["passed", "failed", "not run"] = Field(description="passed, failed, or not run (no smoke runner, or rollback.smoke is false).")
    select: str | None = Field(None, description="The pytest -k expression that chose the subset.")
    detail: str = Field("", description="What happened, in a sentence.")
    problems: list[str] = Field(default_factory=list, description="Failed tests and other problems (empty when passed).")


class RollbackStep(StrictModel):
    """One step of a service's rollback rehearsal."""

    name: StepName = Field(description="Which step.")
    status: Literal["passed", "failed"] = Field(description="Whether it succeeded.")
    started_at: UtcDatetime = Field(description="When it started (UTC).")
    ended_at: UtcDatetime = Field(description="When it ended (UTC).")
    duration_seconds: float = Field(description="Wall time in seconds.")
    detail: str = Field("", description="What happened, in a sentence.")
    script: ScriptRun | None = Field(None, description="The script run, for script steps.")
    verification: Verification | None = Field(None, description="Health and /version, for verify steps.")
    smoke: SmokeCheck | None = Field(None, description="The smoke subset, for smoke steps.")


class FinalState(StrictModel):
    """What a service runs when the rehearsal is over."""

    release: str | None = Field(description="The release /version reports (none when it does not answer).")
    healthy: bool = Field(description="Its health endpoint answered 200.")
    expected_release: str = Field(description="What it should run: the candidate, or the previous release when roll_forward is false.")
    url: str | None = Field(description="Where it was checked.")


class ServiceRollback(StrictModel):
    """The rollback rehearsal of one service."""

    service: str = Field(description="Service name.")
    strategy: str = Field(description="Its strategy on the local target: restart, or blue_green (rollback is the switchback).")
    from_release: str = Field(description="The candidate it ran before the rollback.")
    to_release: str = Field(description="The previous release it was rolled back to.")
    status: Literal["passed", "failed"] = Field(
        description="passed: rolled back, verified, smoke green, within the recovery target, and (when configured) rolled forward again."
    )
    error: str | None = Field(None, description="The first thing that went wrong, naming the service.")
    switch_seconds: float | None = Field(None, description="Wall time of the rollback script.")
    recovery_seconds: float | None = Field(
        None, description="From the start of the rollback until healthy on the previous release with the smoke subset green; none when it never got there."
    )
    recovery_target_seconds: float = Field(description="The target (rollback.recovery_target_seconds).")
    within_target: bool | None = Field(None, description="recovery_seconds <= recovery_target_seconds; none when there was no recovery.")
    smoke: Literal["passed", "failed", "not run"] = Field("not run", description="The smoke subset after the rollback.")
    rolled_forward: bool | None = Field(None, description="The candidate was deployed again and verified; none when roll-forward is off.")
    from_build: ReleaseIdentity | None = Field(
        None, description="The candidate as built on the local staging target (source kind, ref, commit, digest, dirty); none when the service is not on it."
    )
    to_build: ReleaseIdentity | None = Field(None, description="The previous release as built on the local staging target; none as for from_build.")
    steps: list[RollbackStep] = Field(default_factory=list, description="Every step, in order, with timings.")
    final: FinalState | None = Field(None, description="What the service runs at the end.")


class RollbackReport(ArtifactModel):
    """rollback-verification-report.json: the rollback rehearsal of every service."""

    step: str = Field(STEP, description="The protocol step that produced the artifact.")
    environment: str = Field(description="The environment rehearsed on.")
    previous_release: str = Field(description="The release rolled back to.")
    recovery_target_seconds: float = Field(description="Recovery-time target per service (rollback.recovery_target_seconds).")
    roll_forward: bool = Field(description="Whether the candidate was deployed again after the rollback (rollback.roll_forward).")
    started_at: UtcDatetime = Field(description="When the rehearsal started (UTC).")
    ended_at: UtcDatetime = Field(description="When it ended (UTC).")
    duration_seconds: float = Field(description="Wall time of the whole rehearsal, in seconds.")
    outcome: Literal["passed", "failed", "interrupted"] = Field(description="passed: every service passed.")
    services: list[ServiceRollback] = Field(description="Every service rehearsed, in the order rolled back.")

    def summary_line(self) -> str:
        passed = sum(s.status == "passed" for s in self.services)
        times = [s.recovery_seconds for s in self.services if s.recovery_seconds is not None]
        slowest = f"; slowest recovery {max(times):.1f}s (target {self.recovery_target_seconds:g}s)" if times else ""
        return f"{passed}/{len(self.services)} services rolled back to {self.previous_release} and verified{slowest}"


def rollback_problems(report: RollbackReport) -> list[str]:
    """Why the rollback rehearsal fails Gate 3, one sentence per problem naming the service."""
    problems: list[str] = []
    if report.outcome == "interrupted":
        problems.append("the rollback rehearsal was interrupted")
    if not report.services:
        problems.append("no service was rehearsed")
    for service in report.services:
        name = service.service
        if service.error:
            problems.append(service.error)
        elif service.within_target is False:
            problems.append(f"{name}: recovery took {service.recovery_seconds:.1f}s, over the target of {service.recovery_target_seconds:g}s")
        if service.final is not None and not (service.final.healthy and service.final.release == service.final.expected_release):
            problems.append(
                f"{name}: ends on {service.final.release or 'nothing'} ({'healthy' if service.final.healthy else 'not healthy'}), expected {service.final.expected_release} healthy"
            )
    return problems


def _smoke_check(result: Any, select: str | None) -> SmokeCheck:
    """Read what the smoke runner returned: a bool, or a report with ``problems``."""
    if isinstance(result, bool):
        return SmokeCheck(status="passed" if result else "failed", select=select, detail="smoke subset " + ("passed" if result else "failed"))
    problems = getattr(result, "problems", None)
    if not isinstance(problems, list):
        return SmokeCheck(status="failed", select=select, detail=f"the smoke runner returned {type(result).__name__}, not a report")
    totals = getattr(result, "totals", None)
    counts = f"{totals.passed} passed, {totals.failed} failed" if totals is not None else f"{len(problems)} problems"
    return SmokeCheck(status="failed" if problems else "passed", select=select, detail=counts, problems=[str(p) for p in problems])


class _ServiceRehearsal:
    def __init__(self, ctx: RunContext, name: str, smoke: SmokeSubset | None, progress: Progress) -> None:
        assert ctx.previous_release is not None
        self.ctx, self.name, self.smoke_runner, self.progress = ctx, name, smoke, progress
        self.previous: str = ctx.previous_release
        settings = ctx.config.rollback
        self.record = ServiceRollback(
            service=name,
            strategy=ctx.config.service(name).strategy,
            from_release=ctx.release,
            to_release=self.previous,
            status="failed",
            recovery_target_seconds=settings.recovery_target_seconds,
        )

    def fail(self, what: str) -> None:
        if self.record.error is None:
            self.record.error = f"{self.name}: {what}"

    def _step(self, name: StepName, started_at: Any, clock: float, ok: bool, detail: str, **evidence: Any) -> RollbackStep:
        step = RollbackStep(
            name=name,
            status="passed" if ok else "failed",
            started_at=started_at,
            ended_at=utcnow(),
            duration_seconds=round(time.monotonic() - clock, 3),
            detail=self.ctx.redactor.redact(detail),
            **evidence,
        )
        self.record.steps.append(step)
        return step

    def script(self, name: StepName, step: str, label: str, **placeholders: str) -> RunResult | None:
        started_at, clock = utcnow(), time.monotonic()
        self.progress.begin(self.name, name)
        try:
            # capture given explicitly, so the text placeholders can never fill it (mypy checks that).
            result = self.ctx.run_step_script(step, label=label, capture=False, **placeholders)
        except PredeployError as exc:
            self._step(name, started_at, clock, False, str(exc))
            self.progress.end(self.name, f"FAILED: {exc}")
            self.fail(f"{name} failed: {exc}")
            return None
        detail = script_outcome(result)
        self._step(name, started_at, clock, result.ok, detail, script=script_run(self.ctx, result))
        self.progress.end(self.name, "done" if result.ok else f"FAILED: {detail}")
        if not result.ok:
            self.fail(f"{name} to {placeholders.get('release', self.previous)} failed: {detail}")
        return result

    def verify(self, name: StepName, expected: str) -> bool:
        started_at, clock = utcnow(), time.monotonic()
        verification = verify_service(self.ctx, self.name, expected)
        detail = f"healthy on {expected}" if verification.passed else "; ".join(verification.problems)
        self._step(name, started_at, clock, verification.passed, detail, verification=verification)
        if not verification.passed:
            self.fail(f"{name} failed: {detail}")
        return verification.passed

    def smoke(self, name: StepName, label: str, release: str) -> SmokeCheck:
        settings = self.ctx.config.rollback
        select = template.fill(settings.smoke_select, {"service": self.name}, "rollback.smoke_select") or None
        if self.smoke_runner is None or not settings.smoke:
            why = "rollback.smoke is false" if not settings.smoke else "no smoke runner was given"
            return SmokeCheck(status="not run", select=select, detail=why)
        started_at, clock = utcnow(), time.monotonic()
        self.progress.begin(self.name, name)
        try:
            check = _smoke_check(self.smoke_runner(label, select, release), select)
        except PredeployError as exc:
            check = SmokeCheck(status="failed", select=select, detail=str(exc))
        self._step(name, started_at, clock, check.status == "passed", check.detail, smoke=check)
        self.progress.end(self.name, check.detail)
        if check.status == "failed":
            self.fail(f"{name} failed: " + ("; ".join(check.problems[:3]) or check.detail))
        return check

    def different_code(self) -> bool:
        """Record what both releases are; False (and the service fails) when they are the same
        code, so rolling back between them would prove nothing. A release the local target never
        built is left to the rollback script, which refuses it by name."""
        target, env, record = self.ctx.target, self.ctx.env, self.record
        record.from_build = target.release_identity(env, self.name, self.ctx.release)
        record.to_build = target.release_identity(env, self.name, self.previous)
        problem = same_code_problem(self.name, record.to_build, record.from_build)
        if problem is not None:
            record.error = self.ctx.redactor.redact(problem)
            return False
        return True

    def run(self) -> ServiceRollback:
        record = self.record
        clock = time.monotonic()
        if not self.different_code():
            record.final = self._final(self.ctx.release)
            return record
        result = self.script("rollback", "rollback", self.name, service=self.name)
        if result is not None:
            record.switch_seconds = round(result.duration, 3)
        if result is not None and result.ok and self.verify("verify rollback", self.previous):
            smoke = self.smoke("smoke after rollback", f"rollback-{self.name}", self.previous)
            record.smoke = smoke.status
            if smoke.status != "failed":
                record.recovery_seconds = round(time.monotonic() - clock, 3)
                record.within_target = record.recovery_seconds <= record.recovery_target_seconds
        rolled_back = record.recovery_seconds is not None
        expected_end = self.ctx.release
        if rolled_back and self.ctx.config.rollback.roll_forward:
            record.rolled_forward = self._forward("roll forward", "verify roll forward", f"rollforward-{self.name}")
            if record.rolled_forward:
                self.smoke("smoke after roll forward", f"rollforward-{self.name}", self.ctx.release)
        elif not rolled_back:
            # A failed rollback must not leave the service down: put the candidate back.
            self._forward("restore candidate", "verify restore", f"restore-{self.name}")
        else:
            expected_end = self.previous
        record.final = self._final(expected_end)
        record.status = "passed" if record.error is None and record.within_target else "failed"
        return record

    def _forward(self, name: StepName, verify: StepName, label: str) -> bool:
        result = self.script(name, "deploy", label, service=self.name)
        return result is not None and result.ok and self.verify(verify, self.ctx.release)

    def _final(self, expected: str) -> FinalState:
        expected = self.ctx.target.deployed_name(self.ctx.env, self.name, expected)
        url = self.ctx.target.service_url(self.ctx.env, self.name)
        if url is None:
            return FinalState(release=None, healthy=False, expected_release=expected, url=None)
        check = check_serving(self.ctx.target, self.ctx.config, self.ctx.env, self.name, expected, url)
        return FinalState(release=check.reported_release, healthy=check.healthy, expected_release=expected, url=url)


def rehearse_rollback(ctx: RunContext, smoke: SmokeSubset | None) -> RollbackReport:
    """Rehearse the rollback of every service and write rollback-verification-report.json.

    ``smoke(label, select, release)`` runs the smoke subset chosen by the -k expression
    ``select`` expecting ``release``; None skips the smoke checks (recorded as 'not run')."""
    if ctx.previous_release is None:
        raise StepError("rollback rehearsal: no previous release is known; set previous_release in the config or pass --predeploy-previous")
    settings = ctx.config.rollback
    started_at, clock = utcnow(), time.monotonic()
    services: list[ServiceRollback] = []
    outcome: Literal["passed", "failed", "interrupted"] = "interrupted"
    ctx.artifacts.mkdir(parents=True, exist_ok=True)
    try:
        with Progress(ctx, "[ROLLBACK]", ctx.config.staging.progress_interval.total_seconds()) as progress:
            for service in reversed(ctx.config.services):
                services.append(_ServiceRehearsal(ctx, service.name, smoke, progress).run())
        outcome = "passed" if all(s.status == "passed" for s in services) else "failed"
    finally:
        report = RollbackReport(
            release=ctx.release,
            environment=ctx.env,
            previous_release=ctx.previous_release,
            recovery_target_seconds=settings.recovery_target_seconds,
            roll_forward=settings.roll_forward,
            started_at=started_at,
            ended_at=utcnow(),
            duration_seconds=round(time.monotonic() - clock, 3),
            outcome=outcome,
            services=services,
        )
        write_text_atomic(ctx.artifact(names.ROLLBACK_REPORT), ctx.redactor.redact(report.model_dump_json(indent=2)) + "\n")
    return report
