"""The protocol session: everything a run with ``--predeploy-release`` holds from configure to
unconfigure. It loads ``predeploy.yaml``, takes the artifacts dir's lock, points the HTML/JSON/
JUnit reports into the artifacts dir, collects the gates in order and registers the step
fixtures and the :class:`~pytest_predeploy.harness.gates.GateController`.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Generator
from contextlib import nullcontext, suppress
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from filelock import FileLock, Timeout

from pytest_predeploy.config import ProjectConfig, check_gates_dir, load_config
from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core.artifacts import RUN_STATE
from pytest_predeploy.core.background import Halt, Scheduler
from pytest_predeploy.core.errors import PredeployError
from pytest_predeploy.core.fields import utcnow
from pytest_predeploy.core.protocol import READINESS_GATE, UPSTREAM_GATES
from pytest_predeploy.core.redact import Redactor
from pytest_predeploy.core.runstate import GateRecord, RunState, current_user, git_commit, load_state, save_state
from pytest_predeploy.harness import artifactsdir, report, steps
from pytest_predeploy.harness.artifactsdir import LOCK_FILE
from pytest_predeploy.harness.context import RunContext
from pytest_predeploy.harness.gates import GATE_FILE, PROTOCOL_COMPLETE, ExitStatus, Gate, GateController, cannot_write, gate_of
from pytest_predeploy.harness.keys import background_key, context_key, controller_key
from pytest_predeploy.harness.report import github_step_summary
from pytest_predeploy.harness.steps import ask_yes_no, scrub_artifacts_folder
from pytest_predeploy.readiness.package import seal_package
from pytest_predeploy.readiness.sealed import rehearsed_releases, release_source_digest
from pytest_predeploy.readiness.signoff import record_signoff
from pytest_predeploy.targets.choose import target_for
from pytest_predeploy.targets.runlock import StagingLock

#: Output lines of a step running beside the rehearsal shown on the terminal, and their width.
STREAM_LINES = 100
STREAM_WIDTH = 300


def _resolve_config_path(config: pytest.Config, option: str) -> Path:
    path = Path(option)
    if path.is_absolute():
        return path
    for base in (config.invocation_params.dir, config.rootpath):
        if (base / path).exists():
            return base / path
    return config.invocation_params.dir / path


class ProtocolSession:
    """Everything a protocol run holds from configure to unconfigure."""

    def __init__(self, config: pytest.Config, project: ProjectConfig, context: RunContext, lock: FileLock) -> None:
        self.config = config
        self.project = project
        self.context = context
        self.lock = lock
        # Re-entrant: the main thread holds it across pytest's capture transitions (see
        # _outside_capture) and prints while holding it.
        self._print_lock = threading.RLock()
        self._old_sigterm: Any = None
        self.package_sha256: str | None = None
        self.package_note: str | None = None
        self.reports: Any = None
        self.reused_package: Any = None
        self.seal_requested = False
        self.staging_lock: StagingLock | None = None
        #: "gate4-" when this run re-checks a sealed package with Gate 4 alone: its reports and run
        #: state go beside the full run's (the reviewers' copy, sealed in the package), never over them.
        self.report_prefix = ""
        #: Files this run could not write (disk full, read-only folder), shown in the summary.
        self.write_problems: list[str] = []
        #: When this run began: the manifest's generated_at (the zip entries keep the fixed time).
        self.started_at = utcnow()
        self.controller = GateController(config, context.release, project.gates.no_data, self.live)
        self.controller.artifacts = context.artifacts
        self.controller.on_halt = self._halt_background
        #: Steps started beside the rehearsal, and the first gate that needs each.
        self.background = Scheduler()
        self._needed_by: dict[str, int] = {}
        self._background_decided = False

    @classmethod
    def start(cls, config: pytest.Config, release: str) -> ProtocolSession:
        config_path = _resolve_config_path(config, config.getoption("predeploy_config"))
        project = load_config(config_path)
        env = config.getoption("predeploy_env")
        project.environment(env)
        redactor = Redactor(project.secret_values())
        short = redactor.short_secret_warning()
        if short is not None:
            config.issue_config_time_warning(pytest.PytestConfigWarning(f"{project.path}: {short}"), stacklevel=2)
        option = config.getoption("predeploy_artifacts")
        artifacts = (config.invocation_params.dir / option) if option else project.base_dir / ".artifacts" / "pre-deployment"
        artifacts = artifacts.resolve()
        artifactsdir.claim(artifacts)
        lock = FileLock(str(artifacts / LOCK_FILE))
        try:
            lock.acquire(timeout=0)
        except Timeout:  # an OSError too: caught first
            # Not "use another artifacts folder": the two runs would still share staging.
            raise PredeployError(f"another protocol run is using {artifacts} (lock {artifacts / LOCK_FILE}); wait for it to finish.") from None
        except OSError as exc:
            raise PredeployError(
                f"the artifacts folder {artifacts} is not writable ({exc.strerror or exc}); make it writable or give this run another --predeploy-artifacts folder"
            ) from None
        try:
            staging_lock = target_for(project).lock(env, f"the run of release {release} writing to {artifacts}")
        except PredeployError:
            lock.release()
            raise
        previous = config.getoption("predeploy_previous") or project.previous_release
        context = RunContext(
            config=project,
            release=release,
            previous_release=previous,
            env=env,
            artifacts=artifacts,
            redactor=redactor,
        )
        session = cls(config, project, context, lock)
        session.staging_lock = staging_lock
        context.announcer = session.live
        if (artifacts / names.PACKAGE).exists() and _gates_named(config) == {READINESS_GATE}:
            session.report_prefix = "gate4-"
        session._configure_reports()
        session._configure_collection()
        config.stash[context_key] = context
        config.stash[controller_key] = session.controller
        if project.gates.overlap:
            config.stash[background_key] = session.background
        config.pluginmanager.register(session.controller, "predeploy-gates")
        config.pluginmanager.register(steps, "predeploy-steps")
        config.pluginmanager.register(session, "predeploy-session")
        session.reports = report.register(config, session)
        session._old_sigterm = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
        return session

    # -- setup ------------------------------------------------------------------------------
    def _configure_reports(self) -> None:
        option = self.config.option
        artifacts = self.context.artifacts
        prefix = self.report_prefix
        if hasattr(option, "htmlpath") and not option.htmlpath:
            option.htmlpath = str(artifacts / (prefix + names.HTML_REPORT))
            option.self_contained_html = True
        if hasattr(option, "json_report") and not option.json_report:
            option.json_report = True
            option.json_report_file = str(artifacts / (prefix + names.JSON_REPORT))
            option.json_report_indent = 2
        if hasattr(option, "xmlpath") and not option.xmlpath:
            option.xmlpath = str(artifacts / (prefix + names.JUNIT_REPORT))

    def _configure_collection(self) -> None:
        # With no paths on the command line, a protocol run means the gates, not tests/.
        if self.config.args_source != pytest.Config.ArgsSource.ARGS:
            self.config.args = [str(check_gates_dir(self.project))]

    def live(self, line: str) -> None:
        """Print a protocol line now, even from inside a fixture whose output is captured."""
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        with self._print_lock:
            # Also from worker threads (parallel deploys): the main thread is then only waiting.
            suspend = capman.global_and_fixture_disabled() if capman is not None else nullcontext()
            with suspend:
                if terminal is not None:
                    terminal.ensure_newline()
                    if self.config.get_terminal_writer().width_of_current_line:
                        terminal.write("\n")
                    terminal.write_line(line)
                else:
                    print(line, flush=True)

    # -- steps beside the rehearsal ----------------------------------------------------------
    @pytest.hookimpl(tryfirst=True, specname="pytest_runtest_setup")
    def pytest_runtest_setup_background(self, item: pytest.Item) -> None:
        """At the first test: start every step that needs nothing from staging and that a
        collected test needs (so a gate run alone starts only what that gate needs)."""
        if self._background_decided:
            return
        self._background_decided = True
        if not self.project.gates.overlap:
            return
        for collected in item.session.items:
            found = gate_of(collected)
            fixtures = getattr(collected, "fixturenames", ())
            for step in steps.BACKGROUND_STEPS:
                if step in fixtures:
                    number = found[0] if found else 0
                    self._needed_by[step] = min(self._needed_by.get(step, number), number)
        for step, gate in self._needed_by.items():
            artifacts = [self.context.artifact(name) for name in steps.FIXTURE_ARTIFACTS.get(step, [])]
            self.background.start(step, self._background_work(step), artifacts)
            self.live(f"[BACKGROUND] {step}: started beside the rehearsal (Gate {gate} takes its result)")

    def _background_work(self, step: str) -> Callable[[threading.Event], Any]:
        prefix = f"[{step}] "
        streamed = 0

        def announce(line: str) -> None:
            self.live(line if line.startswith(prefix) else prefix + line)

        def stream(text: str) -> None:
            # The transcript keeps everything (up to its cap); the terminal gets the first lines,
            # so a script printing megabytes neither floods it nor stalls the rehearsal's lines.
            nonlocal streamed
            streamed += 1
            if streamed <= STREAM_LINES:
                announce(self.context.redactor.redact(text)[:STREAM_WIDTH])
            elif streamed == STREAM_LINES + 1:
                announce(f"... more output in {names.TRANSCRIPTS_DIR}/{step}.log")

        def work(cancel: threading.Event) -> Any:
            # Its own cancel event (halting stops this step, not the rehearsal), its lines and
            # its script's output prefixed with its name; its transcript is its own already.
            ctx = replace(self.context, cancel=cancel, announcer=announce, on_line=stream)
            return steps.BACKGROUND_STEPS[step](ctx)

        return work

    def _halt_background(self, gate: Gate) -> None:
        later = [step for step, number in self._needed_by.items() if number > gate.number]
        self._report_halts(self.background.stop(later, f"halted: Gate {gate.number} ({gate.name}) failed"))

    def _stop_background(self, reason: str) -> None:
        self._report_halts(self.background.stop_untaken(reason))

    def _report_halts(self, halts: list[Halt]) -> None:
        for halt in halts:
            if halt.was_running or halt.removed or not halt.ended:
                self.live(f"[HALTED] {halt.describe()}")

    # pytest suspends and resumes its output capture around each test phase, in the main thread,
    # while a step beside the rehearsal may be printing (suspending capture from its own thread).
    # Interleaved, the two would send a protocol line into a test's captured output instead of
    # the terminal, or leave capture on while pytest writes its own lines. So the print lock is
    # held across each transition: taken before the capture plugin resumes (outermost wrapper),
    # released inside it (innermost wrapper), taken again before it suspends, released after.
    def _outside_capture(self) -> Generator[None, Any, Any]:
        self._print_lock.acquire()
        try:
            return (yield)
        finally:
            # Not held only when a Ctrl-C cut the re-acquire in _inside_capture short.
            with suppress(RuntimeError):
                self._print_lock.release()

    def _inside_capture(self) -> Generator[None, Any, Any]:
        self._print_lock.release()
        try:
            return (yield)
        finally:
            self._print_lock.acquire()

    @pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_runtest_setup")
    def pytest_runtest_setup_outside_capture(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._outside_capture())

    @pytest.hookimpl(wrapper=True, trylast=True, specname="pytest_runtest_setup")
    def pytest_runtest_setup_inside_capture(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._inside_capture())

    @pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_runtest_call")
    def pytest_runtest_call_outside_capture(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._outside_capture())

    @pytest.hookimpl(wrapper=True, trylast=True, specname="pytest_runtest_call")
    def pytest_runtest_call_inside_capture(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._inside_capture())

    @pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_runtest_teardown")
    def pytest_runtest_teardown_outside_capture(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._outside_capture())

    @pytest.hookimpl(wrapper=True, trylast=True, specname="pytest_runtest_teardown")
    def pytest_runtest_teardown_inside_capture(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._inside_capture())

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self) -> None:
        self._stop_background("the run was interrupted")

    # -- hooks ------------------------------------------------------------------------------
    def pytest_report_header(self) -> list[str]:
        ctx = self.context
        return [
            f"predeploy: release {ctx.release} (previous {ctx.previous_release or 'unknown'}), environment {ctx.env}",
            f"predeploy: config {self.project.path} (sha256 {self.project.digest[:12]}), artifacts {ctx.artifacts}",
        ]

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_makereport(self, item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        # Every report (terminal, HTML, JSON, JUnit, the gate summary) is made from this object;
        # as the innermost wrapper we redact it before anything else reads it.
        report = yield
        redactor = self.context.redactor
        if redactor:
            if report.longrepr is not None:
                text = report.longreprtext
                if redactor.contains_secret(text.encode("utf-8", "surrogateescape")):
                    report.longrepr = redactor.redact(text)
            report.sections = [(title, redactor.redact(body)) for title, body in report.sections]
            report.user_properties = [(name, redactor.redact(value) if isinstance(value, str) else value) for name, value in report.user_properties]
        return report

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self._require_previous_release(items)

    def _require_previous_release(self, items: list[pytest.Item]) -> None:
        """A collected test that needs the previous release (the rollback rehearsal, or a step
        whose command names it) without one known is a usage error now, before anything deploys."""
        if self.context.previous_release:
            return
        # Fixture name of each scripted step (the deploy script runs in the "deployment" fixture).
        fixtures = {"parity": "parity", "deploy": "deployment", "smoke": "smoke", "rollback": "rollback", "security": "security"}
        wanted = {"rollback": "the rollback rehearsal returns staging to it"}
        for step, step_config in self.project.steps.items():
            if "previous_release" in step_config.placeholders():
                wanted.setdefault(fixtures[step], f"steps.{step}.command uses {{previous_release}}")
        for item in items:
            needs = [why for fixture, why in wanted.items() if fixture in getattr(item, "fixturenames", ())]
            if needs:
                raise pytest.UsageError(
                    f"{self.project.path}: previous_release is not set, and {item.nodeid} needs it ({needs[0]}); "
                    "set previous_release in the config or pass --predeploy-previous=TAG"
                )

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if 1 in self.controller.gates:
            for note in artifactsdir.archive_previous_run(self.context.artifacts):
                self.live(note)

    @pytest.hookimpl(specname="pytest_sessionfinish", wrapper=True, trylast=True)
    def pytest_sessionfinish_seal(self, session: pytest.Session) -> Generator[None, None, None]:
        # Before every plain hook: the exit status the reports record (go, no-go, awaiting
        # sign-off ...). After them (pytest-html, json-report and junitxml have written their
        # files), and before the terminal summary is printed: the package is sealed.
        # A step started beside the rehearsal that no gate took (its gate was halted or never
        # reached) is stopped and its files removed, before the run state and the package.
        self._stop_background("the run ended before its gate took its result")
        self.controller.settle()
        session.exitstatus = self.controller.exit_status(int(session.exitstatus))
        if session.exitstatus != ExitStatus.USAGE_ERROR:
            self._save_state()
        result = None
        try:
            result = yield
        except OSError as exc:
            # A report plugin could not write its file (disk full, read-only folder): say so in
            # the summary instead of an INTERNALERROR, and seal nothing (the reports belong in it).
            self.write_problems.append(f"reports: {cannot_write(exc, self.context.artifacts)}")
        if self.seal_requested and self._package_test_passed() and not self.controller.interrupted:
            problem = self.write_problems[0] if self.write_problems else self._seal()
            if problem is not None:
                self._not_sealed(session, problem)
        try:
            github_step_summary(self, int(session.exitstatus))
        except OSError as exc:
            self.write_problems.append(f"GitHub step summary: {cannot_write(exc, self.context.artifacts)}")
        return result

    def _not_sealed(self, session: pytest.Session, problem: str) -> None:
        """Gate 4 cannot end awaiting sign-off (or GO) without a package: it failed, and says why."""
        self.package_note = f"package NOT sealed: {problem}"
        gate = self.controller.gates[READINESS_GATE]
        gate.status, gate.pending_roles = "failed", []
        gate.reason = f"the package could not be sealed: {problem}"
        session.exitstatus = ExitStatus.NO_GO
        self._save_state()

    def _package_test_passed(self) -> bool:
        gate = self.controller.gates.get(READINESS_GATE)
        return gate is not None and gate.status in ("passed", "awaiting sign-off")

    def upstream_gates_not_passed(self) -> list[str]:
        """Gates before Gate 4 that have not passed for this release (this run, or the run that
        produced these artifacts when Gate 4 runs alone)."""
        state = load_state(self.context.artifacts)
        recorded = state.gates if state is not None and state.release == self.context.release else {}
        problems = []
        numbers = sorted(
            {n for n in self.controller.gates if n < READINESS_GATE}
            | {int(k.removeprefix("gate")) for k in recorded if int(k.removeprefix("gate")) < READINESS_GATE}
        )
        for number in numbers or list(UPSTREAM_GATES):
            gate = self.controller.gates.get(number)
            status = gate.status if gate is not None and gate.started else (recorded[f"gate{number}"].status if f"gate{number}" in recorded else "not run")
            if status != "passed":
                problems.append(f"Gate {number} {status} for {self.context.release}")
        return problems

    def upstream_gates_from_state(self) -> list[int]:
        """Gates before Gate 4 that did not run in this run but are recorded as passed for this
        release (Gate 4 run alone after an earlier run): their evidence must be re-judged."""
        state = load_state(self.context.artifacts)
        if state is None or state.release != self.context.release:
            return []
        ran = {gate.number for gate in self.controller.gates.values() if gate.started}
        recorded = {int(key.removeprefix("gate")) for key, record in state.gates.items() if record.status == "passed" and key.removeprefix("gate").isdigit()}
        return sorted(number for number in recorded if number < READINESS_GATE and number not in ran)

    def manifest_fields(self) -> dict[str, Any]:
        ctx = self.context
        return {
            "release": ctx.release,
            "previous_release": ctx.previous_release,
            "git_commit": git_commit(self.project.base_dir),
            "config_digest": self.project.digest,
            "gate_outcomes": self._gate_outcomes(),
            "generated_at": self.started_at,
            "release_source_digest": release_source_digest(self.project, ctx.release),
            "releases": rehearsed_releases(ctx.artifacts),
            "config": self.project.package,
        }

    def _gate_outcomes(self) -> dict[str, str]:
        state = load_state(self.context.artifacts)
        outcomes = {k: v.status for k, v in state.gates.items()} if state and state.release == self.context.release else {}
        outcomes.update({k: v for k, v in self.controller.outcomes().items() if v != "not run"})
        return outcomes

    def _seal(self) -> str | None:
        """Seal the package; None when done, else why not."""
        try:
            # Once more after the reports were written: nothing with a secret value is ever sealed.
            leaked = scrub_artifacts_folder(self.context)
            if leaked:
                return "a secret value was found (redacted in place): " + "; ".join(leaked)
            sealed = seal_package(self.context.artifacts, project_dir=self.project.base_dir, **self.manifest_fields())
        except PredeployError as exc:
            return str(exc)
        except OSError as exc:
            return cannot_write(exc, self.context.artifacts)
        self.package_sha256 = sealed.sha256
        self._readiness_prompt(sealed.sha256)
        return None

    def _readiness_prompt(self, sha256: str) -> None:
        answer = ask_yes_no(self.config, "[READINESS REVIEW] Pre-deployment package compiled. Approve handoff to Protocol 11?")
        if answer is None:
            return
        readiness = self.project.readiness
        role = readiness.interactive_role or readiness.required_roles[0]
        record_signoff(
            self.context.artifact(names.READINESS_APPROVAL),
            package_sha256=sha256,
            release=self.context.release,
            role=role,
            approver=current_user(),
            decision="go" if answer else "no-go",
            expires_in=readiness.signoff_validity,
        )
        # The prompt has no key to sign with: its answer is recorded unsigned, which counts only
        # where readiness.allow_unsigned says so (and is shown, ignored, everywhere else).
        counted = "" if readiness.allow_unsigned else " (unsigned: it does not count; sign with `predeploy approve --key`)"
        self.package_note = f"readiness review: {'go' if answer else 'no-go'} recorded for role {role} by {current_user()}{counted}"

    def _save_state(self) -> None:
        ctx = self.context
        state = load_state(ctx.artifacts) if not self.report_prefix else None
        if state is None or state.release != ctx.release:
            state = RunState(
                release=ctx.release,
                previous_release=ctx.previous_release,
                environment=ctx.env,
                git_commit=git_commit(self.project.base_dir),
                config_digest=self.project.digest,
                run_by=current_user(),
            )
        for gate in self.controller.gates.values():
            if gate.status == "not run":
                continue
            state.gates[f"gate{gate.number}"] = GateRecord(
                name=gate.name, status=gate.status, reason=gate.reason, figures=gate.figures, advisories=gate.advisories
            )
        if 2 in self.controller.gates and self.controller.gates[2].started:
            state.run_by = current_user()
        state.generated_at = utcnow()
        try:
            save_state(ctx.artifacts, state, self.report_prefix + RUN_STATE)
        except OSError as exc:
            self.write_problems.append(f"run state: {cannot_write(exc, self.context.artifacts)}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        tr = terminalreporter
        ctx = self.context
        tr.write_sep("=", f"pre-deployment gates: release {ctx.release}")
        for gate in sorted(self.controller.gates.values(), key=lambda g: g.number):
            figures = "; ".join(gate.figures)
            detail = gate.reason if gate.status in ("failed", "halted", "awaiting sign-off", "interrupted") else figures
            # The reason in full, every line: a gate's reason lists each blocking problem.
            first, *rest = detail.splitlines() or [""]
            tr.write_line(f"Gate {gate.number}  {gate.name:<28} {gate.status.upper():<18} {first}")
            for line in rest:
                tr.write_line(f"{'':<52}{line}")
            for advisory in gate.advisories:
                tr.write_line(f"        advisory: {advisory}")
        if self.package_sha256:
            tr.write_line(f"package: {ctx.artifacts / names.PACKAGE} sha256 {self.package_sha256}")
        if self.package_note:
            tr.write_line(self.package_note)
        for problem in dict.fromkeys(self.write_problems):
            tr.write_line(f"NOT WRITTEN: {problem}", red=True)
        if self.report_prefix:
            ours = ", ".join(self.report_prefix + name for name in names.RUN_REPORTS)
            tr.write_line(f"reports of this Gate 4 run: {ours} (in {ctx.artifacts})")
            tr.write_line(f"reports of the run that produced the package (the reviewers' copy, sealed in it): {', '.join(names.RUN_REPORTS)}")
        failed = [g for g in self.controller.gates.values() if g.status == "failed"]
        if failed:
            tr.write_line(f"NO-GO: Gate {failed[0].number} ({failed[0].name}) failed (exit status {int(ExitStatus.NO_GO)})", red=True, bold=True)
        elif self.controller.interrupted:
            tr.write_line(
                f"INTERRUPTED: staging was left on the previous release where a rehearsal was under way (exit status {int(ExitStatus.INTERRUPTED)})", red=True
            )
        elif self.controller.pending_roles():
            tr.write_line(
                f"AWAITING SIGN-OFF: awaiting sign-off from: {', '.join(self.controller.pending_roles())} (exit status {int(ExitStatus.AWAITING_SIGNOFF)})",
                yellow=True,
                bold=True,
            )
        elif self.controller.complete() and READINESS_GATE in self.controller.gates:
            tr.write_line(PROTOCOL_COMPLETE, green=True, bold=True)

    def close(self) -> None:
        self.background.stop_untaken("the run ended")
        if self._old_sigterm is not None:
            signal.signal(signal.SIGTERM, self._old_sigterm)
        if getattr(self.project.staging, "stop_on_exit", False):
            try:
                target_for(self.project).stop_all(self.context.env)
            except PredeployError as exc:
                print(f"predeploy: could not stop staging processes: {exc}")
        if self.staging_lock is not None:
            self.staging_lock.release()
        self.lock.release()


def _gates_named(config: pytest.Config) -> set[int] | None:
    """The gate numbers the command line names by module, or None when it names anything else
    (a folder, another file, nothing: then every gate may be collected)."""
    if config.args_source != pytest.Config.ArgsSource.ARGS or not config.args:
        return None
    numbers = set()
    for arg in config.args:
        path = Path(arg.split("::", 1)[0])
        matched = GATE_FILE.match(path.name)
        if matched is None or path.suffix != ".py":
            return None
        numbers.add(int(matched.group(1)))
    return numbers


def _sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    # CI cancels a job with SIGTERM; treat it like Ctrl-C so every cleanup path runs.
    raise KeyboardInterrupt
