"""The protocol session: everything a run with ``--predeploy-release`` holds from configure to
unconfigure. It loads ``predeploy.yaml``, takes the artifacts dir's lock, points the HTML/JSON/
JUnit reports into the artifacts dir, collects the gates in order and registers one plugin per
concern: the gate controller (``predeploy-gates``), the step fixtures (``predeploy-steps``), live
output (``predeploy-live``), the steps beside the rehearsal (``predeploy-overlap``), the end of the
run: verdict, run record and sealing (``predeploy-sealing``), and itself (``predeploy-session``:
redaction of reports, the archive of the last run, the summary).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from filelock import FileLock, Timeout

from pytest_predeploy.config import ProjectConfig, check_gates_dir, load_config
from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core import interrupts
from pytest_predeploy.core.errors import PredeployError
from pytest_predeploy.core.redact import Redactor
from pytest_predeploy.core.runstate import git_commit
from pytest_predeploy.harness import artifactsdir, report, steps
from pytest_predeploy.harness.artifactsdir import LOCK_FILE
from pytest_predeploy.harness.context import RunContext
from pytest_predeploy.harness.controller import GateController
from pytest_predeploy.harness.keys import background_key, context_key, controller_key
from pytest_predeploy.harness.liveoutput import LiveOutput
from pytest_predeploy.harness.overlap import Overlap
from pytest_predeploy.harness.preflight import Preflight
from pytest_predeploy.harness.redaction import ReportRedaction
from pytest_predeploy.harness.runrecord import RunRecord
from pytest_predeploy.harness.sealing import PROVISIONAL, Sealing
from pytest_predeploy.harness.summary import TerminalSummary
from pytest_predeploy.harness.verdict import Verdict
from pytest_predeploy.targets.choose import target_for
from pytest_predeploy.targets.runlock import StagingLock
from pytest_predeploy.verdict.criteria import Criterion, judge_evidence, sealed_criteria

#: Names of the plugins a run registers: blocking any (``-p no:NAME``) is a usage error.
PLUGIN_NAMES = (
    "predeploy-gates",
    "predeploy-steps",
    "predeploy-live",
    "predeploy-overlap",
    "predeploy-sealing",
    "predeploy-summary",
    "predeploy-preflight",
    "predeploy-redaction",
    "predeploy-session",
    "predeploy-report",
)


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
        #: The SIGINT and SIGTERM handlers before this run (restored at close).
        self._old_handlers: dict[int, Any] = {}
        self.reports: Any = None
        self.staging_lock: StagingLock | None = None
        #: An earlier run's reports (or package) were in the folder when this run started.
        self.earlier_reports = False
        #: This run archived the folder's last run: a full run, the only kind that seals.
        self.archived = False
        #: The prefix of this run's report file names ("gate4-" or "partial-" beside a sealed
        #: package: the reviewers' copy is never written over by a run that does not seal).
        self.report_prefix = ""
        self.live = LiveOutput(config)
        self.controller = GateController(config, context.release, project.gates.no_data, self.live.live, self.judge)
        self.controller.artifacts = context.artifacts
        self.overlap = Overlap(context, project.gates.overlap, self.live.live)
        self.controller.on_halt = self.overlap.halt
        self.record = RunRecord(context.artifacts, context.release, context.previous_release, context.env, project.base_dir, project.digest)
        self.sealing = Sealing(self)
        self.summary = TerminalSummary(self)

    def _plugins(self) -> Iterator[tuple[object, str]]:
        yield self.controller, "predeploy-gates"
        yield steps, "predeploy-steps"
        yield self.live, "predeploy-live"
        yield self.overlap, "predeploy-overlap"
        yield self.sealing, "predeploy-sealing"
        yield self.summary, "predeploy-summary"
        yield Preflight(self.project, self.context), "predeploy-preflight"
        yield ReportRedaction(self.context.redactor), "predeploy-redaction"
        yield self, "predeploy-session"

    # What the step fixtures and the reports read of the end of the run (see keys.RunSession).
    @property
    def verdict(self) -> Verdict | None:
        return self.sealing.verdict

    @property
    def package_sha256(self) -> str | None:
        return self.sealing.package_sha256

    @property
    def package_note(self) -> str | None:
        return self.sealing.package_note

    @property
    def reused_package(self) -> Any:
        return self.sealing.reused_package

    @reused_package.setter
    def reused_package(self, value: Any) -> None:
        self.sealing.reused_package = value

    @property
    def seal_requested(self) -> bool:
        return self.sealing.seal_requested

    @seal_requested.setter
    def seal_requested(self, value: bool) -> None:
        self.sealing.seal_requested = value

    @cached_property
    def git_commit(self) -> str | None:
        """The project's commit as the reports name it: read once, so every report of the run
        names the same one (each read is a git process)."""
        return git_commit(self.project.base_dir)

    @property
    def seal_pending(self) -> bool:
        """This run seals a package once its reports are written."""
        return self.sealing.seals()

    @property
    def write_problems(self) -> list[str]:
        return self.record.write_problems

    def manifest_fields(self) -> dict[str, Any]:
        return self.sealing.manifest_fields()

    def judge(self, criterion: Criterion) -> list[str]:
        """The declared judge of ``criterion`` applied to its artifact in the folder, as it is now."""
        try:
            raw: bytes | None = self.context.artifact(criterion.artifact).read_bytes()
        except OSError:
            raw = None
        return judge_evidence(criterion, raw, self.project, "in the artifacts folder")

    def unjudged_upstream(self) -> list[str]:
        """The MUST criteria of gates before Gate 4 this run did not judge and pass itself (a
        package is sealed only by a run that judged every one of them)."""
        problems = []
        for criterion in sealed_criteria():
            result = self.controller.results.get(criterion.key)
            status = result.status if result is not None else "not judged in this run"
            if status != "passed":
                problems.append(f"Gate {criterion.gate} '{criterion.key}' {status}")
        return problems

    @classmethod
    def start(cls, config: pytest.Config, release: str) -> ProtocolSession:
        """Start the protocol session of this run; see :func:`start_session`."""
        return start_session(config, release)

    # -- setup ------------------------------------------------------------------------------
    def _configure_reports(self, prefix: str) -> None:
        option = self.config.option
        artifacts = self.context.artifacts
        self.report_prefix = prefix
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

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        option = self.config.option
        if any(getattr(option, name, False) for name in ("collectonly", "setupplan")):
            # Listing or planning runs nothing: the folder (a sealed package awaiting sign-off
            # among it) stays as it is, and the journal records no run of a gate.
            return
        if 1 in self.controller.gates:
            # A run from Gate 1 is a full run: it starts from an empty folder and may seal.
            for note in artifactsdir.archive_previous_run(self.context.artifacts):
                self.live.live(note)
            self.archived = True
        self.record.journal("start", {f"gate{n}": "collected" for n in sorted(self.controller.gates)})

    def print_verdict(self) -> None:
        self.summary.print_verdict()

    def close(self) -> None:
        with interrupts.deferred("stopping staging and releasing the run's locks"):
            self._close()

    def restore_signals(self) -> None:
        """Last of all: Ctrl-C and SIGTERM do what they did before the run (held since an interrupt)."""
        interrupts.release()
        for signum, handler in self._old_handlers.items():
            signal.signal(signum, handler)

    def _close(self) -> None:
        self.overlap.background.stop_untaken("the run ended")
        if getattr(self.project.staging, "stop_on_exit", False):
            try:
                target_for(self.project).stop_all(self.context.env)
            except PredeployError as exc:
                print(f"predeploy: could not stop staging processes: {exc}")
        if self.staging_lock is not None:
            self.staging_lock.release()
        self.lock.release()


def start_session(config: pytest.Config, release: str) -> ProtocolSession:
    """Load the project, hold the artifacts folder and staging, and register the run's plugins."""
    blocked = [name for name in PLUGIN_NAMES if config.pluginmanager.is_blocked(name)]
    if blocked:
        raise PredeployError(f"-p no:{blocked[0]} blocks a part of the protocol ({', '.join(blocked)}): a run without it cannot be judged; drop that -p option")
    config_path = _resolve_config_path(config, config.getoption("predeploy_config"))
    project = load_config(config_path)
    env = config.getoption("predeploy_env")
    project.environment(env)
    redactor = Redactor(project.secret_values())
    short = redactor.short_secret_warning()
    if short is not None:
        config.issue_config_time_warning(pytest.PytestConfigWarning(f"{project.path}: {short}"), stacklevel=2)
    artifacts, lock = _lock_artifacts(config, project)
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
    session = ProtocolSession(config, project, context, lock)
    session.staging_lock = staging_lock
    context.announcer = session.live.live
    # With an earlier run's reports in the folder, this run's are written under a provisional
    # name and named once it is known whether this is a full run: a run that is not never
    # writes over a full run's reports (the reviewers' copy, or the record of its NO-GO).
    session.earlier_reports = any((artifacts / name).exists() for name in (names.HTML_REPORT, names.JSON_REPORT, names.PACKAGE))
    session._configure_reports(PROVISIONAL if session.earlier_reports else "")
    session._configure_collection()
    config.stash[context_key] = context
    config.stash[controller_key] = session.controller
    if project.gates.overlap:
        config.stash[background_key] = session.overlap.background
    for plugin, name in session._plugins():
        config.pluginmanager.register(plugin, name)
    session.reports = report.register(config, session)
    for signum in (signal.SIGINT, signal.SIGTERM):
        session._old_handlers[signum] = signal.signal(signum, _interrupt_once)
    return session


def _lock_artifacts(config: pytest.Config, project: ProjectConfig) -> tuple[Path, FileLock]:
    """The artifacts folder, created and held for this run (one run at a time writes there)."""
    option = config.getoption("predeploy_artifacts")
    artifacts = (config.invocation_params.dir / option) if option else project.base_dir / ".artifacts" / "pre-deployment"
    artifacts = artifacts.resolve()
    artifactsdir.claim(artifacts)  # created here, or one the tool made: never a folder of the user's
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
    return artifacts, lock


def _interrupt_once(signum: int, frame: FrameType | None) -> None:
    """The first Ctrl-C or SIGTERM (CI cancels a job with SIGTERM) interrupts the run, so every
    cleanup path runs; from then on both are only noted until the run has ended (staging back on
    the previous release, reports written, locks released): pressed five times, Ctrl-C must not
    cut the recovery or pytest's own report short."""
    interrupts.hold("ending the interrupted run (staging back on the previous release, locks released)")
    raise KeyboardInterrupt
