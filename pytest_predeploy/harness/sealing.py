"""The end of a protocol run (registered as ``predeploy-sealing``): the verdict, the run record,
this run's reports under their final names, and the package, sealed only by a full run.

Only a full run seals: one that started from Gate 1 (so it archived the folder's last run) and
judged every criterion of gates 1-3 itself, and whose verdict is "awaiting sign-off". Gate 4 run
alone judges an existing package and never seals one; a run that does not seal never writes its
reports over the sealing run's (the reviewers' copy).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core import interrupts
from pytest_predeploy.core.artifacts import write_text_atomic
from pytest_predeploy.core.errors import PredeployError
from pytest_predeploy.core.fields import utcnow
from pytest_predeploy.core.nesting import json_loads
from pytest_predeploy.core.protocol import READINESS_GATE
from pytest_predeploy.core.runstate import current_user, git_commit
from pytest_predeploy.harness.gates import ExitStatus, cannot_write
from pytest_predeploy.harness.report import github_step_summary
from pytest_predeploy.harness.steps import ask_yes_no, scrub_artifacts_folder
from pytest_predeploy.harness.verdict import Verdict, decide

if TYPE_CHECKING:
    from pytest_predeploy.config import ProjectConfig
    from pytest_predeploy.harness.context import RunContext
    from pytest_predeploy.harness.controller import GateController
    from pytest_predeploy.harness.overlap import Overlap
    from pytest_predeploy.harness.runrecord import RunRecord


class SealedRun(Protocol):
    """The protocol session as the end of the run uses it (the session registers this plugin, so
    it is described here rather than imported)."""

    config: pytest.Config
    context: RunContext
    project: ProjectConfig
    controller: GateController
    overlap: Overlap
    record: RunRecord
    earlier_reports: bool
    archived: bool
    report_prefix: str
    reused_package: Any

    @property
    def package_sha256(self) -> str | None: ...

    @property
    def verdict(self) -> Verdict | None: ...

    @property
    def package_note(self) -> str | None: ...

    @property
    def write_problems(self) -> list[str]: ...

    @property
    def seal_pending(self) -> bool: ...

    @property
    def git_commit(self) -> str | None: ...

    def unjudged_upstream(self) -> list[str]: ...


#: The name prefix this run's reports are written under while it is not known whether it seals.
PROVISIONAL = ".run-"


class Sealing:
    """The verdict and, for a full run, the package."""

    def __init__(self, session: SealedRun) -> None:
        self.session = session
        self.verdict: Verdict | None = None
        self.package_sha256: str | None = None
        self.package_note: str | None = None
        #: The sealed package Gate 4 judged again in this run (and found holding), if any.
        self.reused_package: Any = None
        #: The package criterion's test built the manifest of a package to seal at the end.
        self.seal_requested = False
        #: When this run began: the manifest's generated_at (the zip entries keep the fixed time).
        self.started_at = utcnow()

    @pytest.hookimpl(specname="pytest_sessionfinish", wrapper=True, trylast=True)
    def pytest_sessionfinish_seal(self, session: pytest.Session) -> Generator[None, None, None]:
        # Before every plain hook: the exit status the reports record (go, no-go, awaiting
        # sign-off ...). After them (pytest-html, json-report and junitxml have written their
        # files), and before the terminal summary is printed: the package is sealed.
        # A step started beside the rehearsal that no gate took (its gate was halted or never
        # reached) is stopped and its files removed, before the run state and the package.
        run = self.session
        controller = run.controller
        run.overlap.stop_untaken("the run ended before its gate took its result")
        controller.settle()
        staging = None
        if controller.interrupted:
            with interrupts.deferred("returning staging to the previous release"):
                staging = self._staging_after_interrupt()
        self.verdict = decide(controller, int(session.exitstatus), sealed_rejudged=self.reused_package is not None, staging=staging)
        session.exitstatus = self.verdict.status
        sealing = self.seals()
        if run.earlier_reports and not run.archived:
            run.report_prefix = "gate4-" if set(controller.gates) == {READINESS_GATE} else "partial-"
        else:
            run.report_prefix = ""
        if session.exitstatus != ExitStatus.USAGE_ERROR:
            run.record.save_state(controller, run.report_prefix)
        result = None
        try:
            result = yield
        except OSError as exc:
            # A report plugin could not write its file (disk full, read-only folder): say so in
            # the summary instead of an INTERNALERROR, and seal nothing (the reports belong in it).
            run.record.write_problems.append(f"reports: {cannot_write(exc, run.context.artifacts)}")
        self._name_reports()
        if sealing:
            problem = run.record.write_problems[0] if run.record.write_problems else self._seal()
            if problem is not None:
                self._not_sealed(session, problem)
        run.record.journal("end", controller.outcomes(), self.package_sha256)
        try:
            github_step_summary(run, int(session.exitstatus))
        except OSError as exc:
            run.record.write_problems.append(f"GitHub step summary: {cannot_write(exc, run.context.artifacts)}")
        return result

    def _staging_after_interrupt(self) -> str:
        """After an interrupt: staging back on the previous release if this run deployed the
        candidate and nothing has returned it yet, and what it serves, read back."""
        # Imported here, as below: only a run that seals, is interrupted or asks for a sign-off
        # needs the package's, the deployment's or the sign-off's code.
        from pytest_predeploy.rehearsal.deploy import DeploymentReport, return_to_previous

        run = self.session
        ctx = run.context
        try:
            report = DeploymentReport.model_validate_json(ctx.artifact(names.DEPLOYMENT_REPORT).read_bytes())
        except (OSError, ValueError):
            return "this run had not deployed to staging"
        if report.started_at < self.started_at:
            return "this run had not deployed to staging"
        if report.recovery is None and any(s.status != "not_run" for s in report.services):
            try:
                report = return_to_previous(ctx, "the run was interrupted after the deployment") or report
            except KeyboardInterrupt:
                pass  # interrupted once more while returning: report what staging serves as it is
        if report.recovery is None:
            return "this run had not deployed to staging"
        served = ", ".join(f"{name} {release or 'nothing healthy'}" for name, release in report.recovery.served.items())
        where = "back on" if report.recovery.staging_on_previous else "NOT back on"
        return f"staging is {where} {ctx.previous_release} (read back: {served})"

    def seals(self) -> bool:
        """A full run whose every criterion before sign-off was judged and met seals its package."""
        run = self.session
        return (
            self.verdict is not None
            and self.verdict.status == ExitStatus.AWAITING_SIGNOFF
            and self.seal_requested
            and self.reused_package is None
            and run.archived
            and not run.unjudged_upstream()
        )

    def _name_reports(self) -> None:
        """This run's reports under their final names in the artifacts folder: moved from their
        provisional names, or copied in from where the command line pointed them (--html=...),
        since the package carries the run's own reports."""
        run = self.session
        artifacts = run.context.artifacts
        option = run.config.option
        options = {names.HTML_REPORT: "htmlpath", names.JSON_REPORT: "json_report_file", names.JUNIT_REPORT: "xmlpath"}
        for name, attribute in options.items():
            configured = getattr(option, attribute, None)
            final = artifacts / (run.report_prefix + name)
            provisional = artifacts / (PROVISIONAL + name)
            try:
                if provisional.exists():
                    os.replace(provisional, final)
                    setattr(option, attribute, str(final))  # what reads the report after this finds it
                elif configured and Path(configured).resolve() != final.resolve() and Path(configured).is_file():
                    shutil.copyfile(configured, final)
            except OSError as exc:
                run.record.write_problems.append(f"reports: {cannot_write(exc, artifacts)}")

    def _not_sealed(self, session: pytest.Session, problem: str) -> None:
        """Gate 4 cannot end awaiting sign-off (or GO) without a package: it failed, and says why."""
        run = self.session
        self.package_note = f"package NOT sealed: {problem}"
        gate = run.controller.gates[READINESS_GATE]
        gate.status, gate.pending_roles = "failed", []
        gate.reason = f"the package could not be sealed: {problem}"
        session.exitstatus = ExitStatus.NO_GO
        self.verdict = Verdict(
            ExitStatus.NO_GO, f"NO-GO: Gate {READINESS_GATE} ({gate.name}) failed: the package could not be sealed (exit status {int(ExitStatus.NO_GO)})"
        )
        run.record.save_state(run.controller, run.report_prefix)
        self._amend_json_report(gate.reason)

    def _amend_json_report(self, reason: str) -> None:
        """The JSON report was written before sealing, saying "awaiting sign-off": no package holds
        it, so it is brought up to date (the HTML report is, by the review page's final write)."""
        run = self.session
        path = getattr(run.config.option, "json_report_file", None)
        if not path or not Path(path).is_file() or self.verdict is None:
            return
        try:
            report = json_loads(Path(path).read_text(encoding="utf-8"))
            report["exitcode"] = int(self.verdict.status)
            predeploy = report.setdefault("predeploy", {})
            predeploy["verdict"] = self.verdict.line
            gate = predeploy.get("gates", {}).get(f"gate{READINESS_GATE}")
            if isinstance(gate, dict):
                gate.update(status="failed", reason=reason)
            write_text_atomic(Path(path), run.context.redactor.redact(json.dumps(report, indent=2)))
        except (OSError, ValueError) as exc:
            problem = cannot_write(exc, run.context.artifacts) if isinstance(exc, OSError) else f"{path} cannot be read back ({exc})"
            run.record.write_problems.append(f"JSON report (it still says what it said before sealing): {problem}")

    def manifest_fields(self) -> dict[str, Any]:
        from pytest_predeploy.readiness.anchors import file_sha256
        from pytest_predeploy.security.osv import database_digest
        from pytest_predeploy.verdict.sealed import rehearsed_releases, release_source_digest

        run = self.session
        ctx = run.context
        return {
            "release": ctx.release,
            "previous_release": ctx.previous_release,
            "git_commit": git_commit(run.project.base_dir),
            "config_digest": run.project.digest,
            "gate_outcomes": {k: v for k, v in run.controller.outcomes().items() if v != "not run"},
            "generated_at": self.started_at,
            "release_source_digest": release_source_digest(run.project, ctx.release),
            "advisory_database_sha256": database_digest(run.project.security.osv.database),
            "signers_sha256": file_sha256(run.project.readiness.signers),
            "releases": rehearsed_releases(ctx.artifacts),
            "config": run.project.package,
        }

    def _seal(self) -> str | None:
        """Seal the package; None when done, else why not."""
        from pytest_predeploy.readiness.package import seal_package

        run = self.session
        for name in (names.HTML_REPORT, names.JSON_REPORT):
            # The package carries the run's own report: reviewers read it (a -p no:html run has none).
            if not run.context.artifact(name).is_file():
                return f"{name} was not written (is its pytest plugin blocked or pointed elsewhere?); the package must carry this run's report"
        try:
            # Once more after the reports were written: nothing with a secret value is ever sealed.
            leaked = scrub_artifacts_folder(run.context)
            if leaked:
                return "a secret value was found: " + "; ".join(leaked)
            sealed = seal_package(run.context.artifacts, project_dir=run.project.base_dir, **self.manifest_fields())
        except PredeployError as exc:
            return str(exc)
        except OSError as exc:
            return cannot_write(exc, run.context.artifacts)
        self.package_sha256 = sealed.sha256
        self._readiness_prompt(sealed.sha256)
        return None

    def _readiness_prompt(self, sha256: str) -> None:
        from pytest_predeploy.readiness.record import find_repository
        from pytest_predeploy.readiness.signoff import record_signoff

        run = self.session
        answer = ask_yes_no(run.config, "[READINESS REVIEW] Pre-deployment package compiled. Approve handoff to Protocol 11?")
        if answer is None:
            return
        readiness = run.project.readiness
        role = readiness.interactive_role or readiness.required_roles[0]
        record_signoff(
            run.context.artifact(names.READINESS_APPROVAL),
            package_sha256=sha256,
            release=run.context.release,
            role=role,
            approver=current_user(),
            decision="go" if answer else "no-go",
            expires_in=readiness.signoff_validity,
            repository=find_repository(run.project.base_dir),
        )
        # The prompt has no key to sign with: its answer is recorded unsigned, which counts only
        # where readiness.allow_unsigned says so (and is shown, ignored, everywhere else).
        counted = "" if readiness.allow_unsigned else " (unsigned: it does not count; sign with `predeploy approve --key`)"
        self.package_note = f"readiness review: {'go' if answer else 'no-go'} recorded for role {role} by {current_user()}{counted}"
