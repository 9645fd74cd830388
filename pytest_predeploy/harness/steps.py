"""The protocol steps, as session fixtures. This module is the one list of them.

Each fixture runs one step of PROTOCOL-10 (a script, or library code where the protocol names no
script), writes the step's artifact, and returns the artifact's path. Fixture dependencies are
the step dependencies (rollback needs a deployment first), so running one gate module runs
exactly the steps that gate needs. Gate modules only read the artifacts and assert.

| fixture                 | protocol step                          | artifact                               |
|-------------------------|----------------------------------------|----------------------------------------|
| intake                  | 1.1 confirm upstream approvals         | intake-validation-report.json          |
| parity                  | 1.2 validate staging parity            | staging-parity-report.json             |
| data_refresh            | 1.3 refresh test data & feature flags  | staging-data-refresh.md                |
| deployment              | 2.1 staging deployment rehearsal       | staging-deployment-run.log (+ report)  |
| smoke                   | 2.2 smoke & acceptance tests           | staging-test-results.json              |
| api_contract            | 2.2 API contract vs previous release   | api-contract-report.json               |
| observability           | 2.3 observability baseline             | observability-baseline.md (+ metrics)  |
| rollback                | 3.1 rollback rehearsal                 | rollback-verification-report.json      |
| security                | 3.2 security & compliance checks       | security-compliance-report.json        |
| operational_readiness   | 3.3 runbooks & support coverage        | operational-readiness-checklist.md     |
| package_contents        | 4.1 go/no-go package (sealed at end)   | pre-deployment-manifest.json + zip     |
| signoffs                | 4.2 readiness review                   | readiness-approval.json                |
| deployment_checklist    | 4.3 deployment checklist updates       | deployment-checklist.md                |
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core.artifacts import read_artifact, write_artifact, write_bytes_atomic
from pytest_predeploy.core.background import StepHalted
from pytest_predeploy.core.errors import ArtifactError, PredeployError
from pytest_predeploy.core.runner import RunResult, script_name
from pytest_predeploy.core.runstate import load_state
from pytest_predeploy.harness.context import STEP_OUTPUTS, RunContext
from pytest_predeploy.harness.evidence import evidence  # noqa: F401  (a fixture gate tests use)
from pytest_predeploy.harness.keys import background_key, context_key, session_key

# Each step's own code is imported by the fixture that runs it, not here: the plugin imports this
# module at the start of every protocol run, and a run pays only for the steps its gates use.
if TYPE_CHECKING:
    from pytest_predeploy.readiness.checklist import ChecklistResult
    from pytest_predeploy.readiness.signoff import SignoffStatus
    from pytest_predeploy.rehearsal.contract import Contract
    from pytest_predeploy.rehearsal.observability import PrometheusWatch

#: The artifacts each step fixture writes (the HTML report links them from the tests that use them).
FIXTURE_ARTIFACTS: dict[str, list[str]] = names.fixture_artifacts()

#: A script's exit status meaning "done, and the artifact lists findings" (the gate judges them).
EXIT_FINDINGS = 1


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _tail(path: Path, lines: int = 8) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 4096))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    body = [line for line in text.splitlines() if not line.startswith("# ")][-lines:]
    return "\n".join(f"    | {line[:300]}" for line in body)


def step_failed(step: str, result: RunResult, problem: str | None = None) -> NoReturn:
    """Fail the current test naming the step, its script's status and its transcript."""
    what = problem or f"{script_name(result.argv)} {result.describe()}"
    message = f"step '{step}' failed: {what}\n  transcript: {_display(result.transcript)}"
    tail = _tail(result.transcript)
    if tail:
        message += "\n  last output:\n" + tail
    pytest.fail(message, pytrace=False)


def fail_step(step: str, error: PredeployError | str) -> NoReturn:
    pytest.fail(f"step '{step}' failed: {error}", pytrace=False)


def run_report_step(ctx: RunContext, step: str) -> tuple[Path, RunResult]:
    """Run a scripted step that writes a JSON artifact to {output}.

    Exit 0 (clean) and 1 (findings recorded in the artifact) both leave the verdict to the gate;
    anything else, or no artifact, fails the step. A stale artifact from an earlier run is
    removed first so it can never be mistaken for this run's.
    """
    output = ctx.artifact(STEP_OUTPUTS[step])
    output.unlink(missing_ok=True)
    try:
        result = ctx.run_step_script(step)
    except PredeployError as exc:
        fail_step(step, exc)
    if not result.ok and result.returncode != EXIT_FINDINGS:
        step_failed(step, result)
    if not output.exists():
        step_failed(step, result, f"{script_name(result.argv)} ({result.describe()}) wrote no artifact at {_display(output)}")
    leaked = scrub_secrets(ctx, output)
    if leaked:
        step_failed(
            step,
            result,
            f"{_display(output)} contained {'; '.join(leaked)}; it was redacted in place. "
            "Stop that value from being written there (where it came from: the script, a test, or the service it reports on)",
        )
    return output, result


def scrub_secrets(ctx: RunContext, path: Path) -> list[str]:
    """Redact known secret values a script wrote into its artifact; return where each was found."""
    data = path.read_bytes()
    places = ctx.redactor.locate(data)
    if places:
        write_bytes_atomic(path, ctx.redactor.redact_bytes(data))
    return places


def scrub_artifacts_folder(ctx: RunContext) -> list[str]:
    """Every file the package would hold (declared artifact or not: a script may write anything
    into $PREDEPLOY_ARTIFACTS) scanned for known secret values, streaming (memory stays bounded
    whatever a file's size), inside gzip, bzip2, xz and zip files too. A hit in a text file is
    redacted in place; a file that is not text (an image, an archive) is never rewritten byte-wise:
    it is kept as written and refused, as is an archive that cannot be looked into.
    Returns one line per file naming it and the secrets found (never their values)."""
    from pytest_predeploy.core.scan import Unscannable, redact_in_place, scan_file
    from pytest_predeploy.readiness.package import PackageError, collect_files

    try:
        files = collect_files(ctx.artifacts, ctx.config.package.exclude)
    except PackageError:
        return []  # a link or special file: the package cannot be sealed, and says why
    found = []
    for rel, path in files:
        named = sorted({name for name, _, _ in ctx.redactor.hits(rel.encode("utf-8", "surrogateescape"))})
        if named:
            # The name itself would be sealed (the manifest, the zip's entries): never show it.
            found.append(f"a file's name under {_display(ctx.artifacts)} contains the value of {', '.join(named)}: rename or remove it")
            continue
        try:
            scan = scan_file(ctx.redactor, path)
        except Unscannable as exc:
            found.append(f"{_display(path)} {exc}, so it may hold a secret: kept as written; remove it or write it uncompressed")
            continue
        if not scan.found:
            continue
        if scan.text:
            found.append(f"{_display(path)} contained {'; '.join(redact_in_place(ctx.redactor, path, scan))} (redacted in place)")
        else:
            what = f"a {scan.archive} file" if scan.archive else "not text"
            found.append(f"{_display(path)} ({what}) contains {'; '.join(scan.places())}: kept as written, since it cannot be redacted without breaking it")
    return found


def ask_yes_no(config: pytest.Config, question: str) -> bool | None:
    """Ask on the terminal when --predeploy-interactive and there is one; None means nobody was asked.

    The question goes to the controlling terminal (/dev/tty), not stdin/stdout: pytest captures
    those, and a process without a terminal (CI) cannot open it, so nothing ever waits there."""
    if not config.getoption("predeploy_interactive"):
        return None
    try:
        reader = open("/dev/tty", encoding="utf-8", errors="replace")  # noqa: SIM115 (closed below)
    except OSError:
        return None
    with reader, open("/dev/tty", "w", encoding="utf-8") as writer:
        while True:
            writer.write(f"{question} (yes/no) ")
            writer.flush()
            answer = reader.readline()
            if not answer:
                return None
            answer = answer.strip().lower()
            if answer in ("yes", "y", "no", "n"):
                return answer.startswith("y")


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def predeploy(pytestconfig: pytest.Config) -> RunContext:
    """The run context: config, release, artifacts dir, how scripts run."""
    return pytestconfig.stash[context_key]


def run_intake(ctx: RunContext) -> Path:
    """Step 1.1 itself (see BACKGROUND_STEPS)."""
    from pytest_predeploy.intake.approvals import validate_intake

    report = validate_intake(ctx.config.approvals, ctx.release)
    return write_artifact(ctx.artifact(names.INTAKE_REPORT), report)


def run_security(ctx: RunContext) -> tuple[Path, RunResult]:
    """Step 3.2 itself (see BACKGROUND_STEPS)."""
    return run_report_step(ctx, "security")


def run_operational_readiness(ctx: RunContext) -> Path:
    """Step 3.3 itself (see BACKGROUND_STEPS)."""
    from pytest_predeploy.rollback.operational import check_operational_readiness

    try:
        check_operational_readiness(ctx.config, ctx.release, ctx.previous_release, ctx.artifacts)
    except PredeployError as exc:
        fail_step("operational_readiness", exc)
    return ctx.artifact(names.OPERATIONAL_CHECKLIST)


#: The steps that need nothing from staging. With ``gates.overlap`` the session starts those a
#: collected test needs when the protocol starts, beside the rehearsal, and their fixture takes
#: the result (see pytest_predeploy.core.background); otherwise the fixture runs them itself.
#: ``data_refresh`` writes into staging and ``parity`` decides whether anything deploys, so
#: both stay in sequence.
BACKGROUND_STEPS: dict[str, Callable[[RunContext], Any]] = {
    "intake": run_intake,
    "security": run_security,
    "operational_readiness": run_operational_readiness,
}


def run_or_take(config: pytest.Config, ctx: RunContext, step: str) -> Any:
    """The step's result: taken from the step started beside the rehearsal, else run now.

    A step that failed there fails here with its own message, as it would have in sequence."""
    scheduler = config.stash.get(background_key, None)
    job = scheduler.get(step) if scheduler is not None else None
    if job is None:
        return BACKGROUND_STEPS[step](ctx)
    asked = time.monotonic()
    try:
        return job.result()
    except StepHalted as exc:
        fail_step(step, f"not run: stopped beside the rehearsal ({exc.reason})")
    finally:
        if job.halt is None:
            outcome = "done" if job.state == "done" else "failed"
            ctx.announce(f"[BACKGROUND] {step}: {outcome} in {job.duration:.1f}s, beside the rehearsal (waited {time.monotonic() - asked:.1f}s for it)")


@pytest.fixture(scope="session")
def intake(predeploy: RunContext, pytestconfig: pytest.Config) -> Path:
    """Step 1.1: upstream approvals -> intake-validation-report.json."""
    path: Path = run_or_take(pytestconfig, predeploy, "intake")
    return path


@pytest.fixture(scope="session")
def parity(predeploy: RunContext, pytestconfig: pytest.Config) -> Path:
    """Step 1.2: compare_environments.py -> staging-parity-report.json."""
    path, result = run_report_step(predeploy, "parity")
    if result.returncode == EXIT_FINDINGS:
        predeploy.announce("[ERROR] Staging configuration drift detected against production baseline.")
        if ask_yes_no(pytestconfig, "[DRIFT ALERT] Staging parity check failed. Confirm remediation applied before continuing?"):
            path, result = run_report_step(predeploy, "parity")
            if result.returncode == EXIT_FINDINGS:
                predeploy.announce("[ERROR] Staging configuration drift detected against production baseline.")
    return path


@pytest.fixture(scope="session")
def data_refresh(predeploy: RunContext) -> Path:
    """Step 1.3 (GUIDELINE): refresh test data and feature flags -> staging-data-refresh.md."""
    from pytest_predeploy.intake.refresh import run_data_refresh

    try:
        run_data_refresh(predeploy.config, predeploy.env, predeploy.release, predeploy.artifacts, predeploy)
    except PredeployError as exc:
        fail_step("data_refresh", exc)
    return predeploy.artifact(names.DATA_REFRESH)


@pytest.fixture(scope="session")
def metrics_snapshots() -> list[Any]:
    """Metrics scraped across the rehearsal (before deploy, after deploy, after smoke)."""
    return []


@pytest.fixture(scope="session")
def prometheus_watch(predeploy: RunContext) -> PrometheusWatch:
    """The PromQL checks asked of Prometheus at the same points (observability.prometheus)."""
    from pytest_predeploy.rehearsal.observability import PrometheusWatch

    return PrometheusWatch(predeploy.config, predeploy.env, announce=predeploy.announce)


def _snapshot(ctx: RunContext, snapshots: list[Any], label: str, watch: PrometheusWatch) -> None:
    from pytest_predeploy.rehearsal.observability import capture_metrics

    snapshots.append(capture_metrics(ctx.config, ctx.env, label))
    watch.point(label)


@pytest.fixture(scope="session")
def contracts_before() -> dict[str, Contract]:
    """The services' API contracts as the previous release served them, just before the switch."""
    return {}


@pytest.fixture(scope="session")
def deployment(predeploy: RunContext, metrics_snapshots: list[Any], prometheus_watch: PrometheusWatch, contracts_before: dict[str, Contract]) -> Path:
    """Step 2.1: deploy_backend.sh per service -> staging-deployment-run.log and its report."""
    from pytest_predeploy.rehearsal.contract import read_contracts
    from pytest_predeploy.rehearsal.deploy import rehearse_deployment

    def before_switch() -> None:
        _snapshot(predeploy, metrics_snapshots, "before deploy", prometheus_watch)
        if predeploy.previous_release is not None and predeploy.config.contract.enabled:
            contracts_before.update(read_contracts(predeploy.config, predeploy.env))

    try:
        rehearse_deployment(predeploy, before_switch=before_switch)
    except PredeployError as exc:
        fail_step("deployment", exc)
    _snapshot(predeploy, metrics_snapshots, "after deploy", prometheus_watch)
    return predeploy.artifact(names.DEPLOYMENT_REPORT)


def _require_deployed(ctx: RunContext, deployment: Path, step: str) -> None:
    from pytest_predeploy.rehearsal.deploy import DeploymentReport, deployment_problems

    try:
        report = read_artifact(deployment, DeploymentReport)
    except ArtifactError as exc:
        fail_step(step, exc)
    if deployment_problems(report):
        fail_step(step, f"not run: the deployment rehearsal of {ctx.release} failed (see {names.DEPLOYMENT_LOG})")


@pytest.fixture(scope="session")
def smoke(predeploy: RunContext, deployment: Path, metrics_snapshots: list[Any], prometheus_watch: PrometheusWatch) -> Path:
    """Step 2.2: run_smoke_tests.py -> staging-test-results.json."""
    _require_deployed(predeploy, deployment, "smoke")
    path, _ = run_report_step(predeploy, "smoke")
    _snapshot(predeploy, metrics_snapshots, "after smoke", prometheus_watch)
    _recover_after_failed_smoke(predeploy, path)
    return path


def _recover_after_failed_smoke(ctx: RunContext, path: Path) -> None:
    """A candidate that fails its smoke and acceptance suites does not stay on staging: a failed
    rehearsal leaves staging on the previous release, and the deployment report says what it
    serves afterwards (read back)."""
    from pytest_predeploy.rehearsal.deploy import return_to_previous
    from pytest_predeploy.rehearsal.smoke import TestResultsReport, smoke_problems

    try:
        failing = bool(smoke_problems(read_artifact(path, TestResultsReport), ctx.config.smoke.min_coverage))
    except ArtifactError:
        failing = True
    if not failing:
        return
    report = return_to_previous(ctx, "the smoke and acceptance suites failed")
    if report is not None and report.recovery is not None:
        served = ", ".join(f"{name} {release or 'nothing healthy'}" for name, release in report.recovery.served.items())
        verdict = "back on" if report.recovery.staging_on_previous else "NOT back on"
        ctx.announce(f"[STAGING] after the failed smoke tests staging is {verdict} {ctx.previous_release} (read back: {served})")


@pytest.fixture(scope="session")
def api_contract(predeploy: RunContext, deployment: Path, contracts_before: dict[str, Contract]) -> Path:
    """Step 2.2 (contract): the candidate's API contract against the previous release's -> api-contract-report.json."""
    from pytest_predeploy.rehearsal.contract import contract_report, read_contracts

    _require_deployed(predeploy, deployment, "api_contract")
    config = predeploy.config
    after = read_contracts(config, predeploy.env) if config.contract.enabled else {}
    report = contract_report(config.contract, predeploy.release, predeploy.env, predeploy.previous_release, contracts_before, after)
    return write_artifact(predeploy.artifact(names.API_CONTRACT_REPORT), report)


@pytest.fixture(scope="session")
def observability(predeploy: RunContext, smoke: Path, metrics_snapshots: list[Any], prometheus_watch: PrometheusWatch) -> Path:
    """Step 2.3 (GUIDELINE): metrics across the rehearsal -> observability-baseline.md."""
    from pytest_predeploy.rehearsal.observability import write_observability_baseline

    write_observability_baseline(predeploy.config, predeploy.release, metrics_snapshots, predeploy.artifacts, prometheus_watch.finish())
    return predeploy.artifact(names.OBSERVABILITY_BASELINE)


@pytest.fixture(scope="session")
def rollback(predeploy: RunContext, deployment: Path) -> Path:
    """Step 3.1: rollback_backend.sh per service, verified, then roll forward -> rollback-verification-report.json."""
    from pytest_predeploy.rehearsal.smoke import run_smoke_tests
    from pytest_predeploy.rollback.rollback import rehearse_rollback

    _require_deployed(predeploy, deployment, "rollback")

    def smoke_subset(label: str, select: str | None, release: str) -> Any:
        # After a rollback the services answer the previous release: the subset expects that one.
        # Its report is a transcript of the rehearsal, and so are its suites' logs: one folder,
        # not transcripts/transcripts/.
        transcripts = predeploy.artifacts / names.TRANSCRIPTS_DIR
        return run_smoke_tests(
            predeploy.config, predeploy.env, release, transcripts / f"smoke-{label}.json", select=select, suites=["smoke"], transcripts=transcripts
        )

    try:
        rehearse_rollback(predeploy, smoke_subset)
    except PredeployError as exc:
        fail_step("rollback", exc)
    return predeploy.artifact(names.ROLLBACK_REPORT)


@pytest.fixture(scope="session")
def security(predeploy: RunContext, pytestconfig: pytest.Config) -> Path:
    """Step 3.2: run_security_audit.py -> security-compliance-report.json (+ SBOM)."""
    from pytest_predeploy.security.report import headline_of

    outcome: tuple[Path, RunResult] = run_or_take(pytestconfig, predeploy, "security")
    path, result = outcome
    if result.returncode == EXIT_FINDINGS:
        # Here, not where the audit ran: the blocker is announced when Gate 3 judges it.
        predeploy.announce(headline_of(path))
    return path


@pytest.fixture(scope="session")
def operational_readiness(predeploy: RunContext, pytestconfig: pytest.Config) -> Path:
    """Step 3.3 (GUIDELINE): runbooks, on-call, escalation -> operational-readiness-checklist.md."""
    path: Path = run_or_take(pytestconfig, predeploy, "operational_readiness")
    return path


@pytest.fixture(scope="session")
def package_contents(predeploy: RunContext, pytestconfig: pytest.Config) -> Path:
    """Step 4.1: the go/no-go package. Re-running Gate 4 alone re-judges the sealed package (so
    the sign-offs bound to its digest stay valid, and count only on evidence that still holds);
    otherwise the manifest of what will be sealed at the end of this run is written now, and the
    package itself after the pytest reports."""
    from pytest_predeploy.readiness.package import build_manifest
    from pytest_predeploy.readiness.signing import SEALED_SIGNERS
    from pytest_predeploy.verdict.sealed import judge_sealed_package

    session = pytestconfig.stash[session_key]
    if predeploy.artifact(names.PACKAGE).exists():
        # Never replaced here: a package that fails its re-check is kept for inspection, and only
        # a run of the whole protocol (which archives it) makes a new one.
        sealed, problems = judge_sealed_package(predeploy.artifacts, predeploy.release, predeploy.config)
        if problems or sealed is None:
            more = "".join(f"\n  {problem}" for problem in problems[1:])
            fail_step("package", f"package is stale: {problems[0]}; rerun the protocol (the package is kept for inspection){more}")
        session.reused_package = sealed
        predeploy.announce(f"re-checked the sealed package {names.PACKAGE} (sha256 {sealed.sha256}): evidence of gates 1-3 still holds")
        return predeploy.artifact(names.MANIFEST)
    unjudged = session.unjudged_upstream()
    if unjudged:
        fail_step(
            "package",
            "not built: only a full run of the protocol seals a package (pytest --predeploy-release=TAG, from Gate 1), "
            f"and this run did not judge and pass: {'; '.join(unjudged)}",
        )
    # The signers file as it stood when the package was sealed: a reviewer with the package alone
    # checks the sign-offs against it once its digest is the one they know (`--signers-sha256`).
    signers = predeploy.config.readiness.signers
    if signers.is_file():
        write_bytes_atomic(predeploy.artifact(SEALED_SIGNERS), signers.read_bytes())
    leaked = scrub_artifacts_folder(predeploy)
    if leaked:
        fail_step("package", "not built: a secret value was found in the artifacts folder (find what wrote it there):\n  " + "\n  ".join(leaked))
    try:
        manifest = build_manifest(predeploy.artifacts, **session.manifest_fields())
    except PredeployError as exc:
        fail_step("package", exc)
    write_artifact(predeploy.artifact(names.MANIFEST), manifest)
    session.seal_requested = True
    return predeploy.artifact(names.MANIFEST)


@pytest.fixture(scope="session")
def signoffs(predeploy: RunContext, package_contents: Path, pytestconfig: pytest.Config) -> SignoffStatus | None:
    """Step 4.2: the readiness review: required sign-offs on the sealed package's digest."""
    from pytest_predeploy.readiness.signoff import judge_signoffs

    session = pytestconfig.stash[session_key]
    if session.reused_package is None:
        return None  # sealed at the end of this run: nobody can have signed its digest yet
    state = load_state(predeploy.artifacts)
    try:
        return judge_signoffs(
            predeploy.config.base_dir,
            session.reused_package.sha256,
            session.reused_package.manifest.signers_sha256,
            predeploy.config.readiness,
            rehearsed_by=state.run_by if state else None,
            release=predeploy.release,
            export=predeploy.artifact(names.READINESS_APPROVAL),
            rehearsed_by_source=state.run_by_source if state else None,
        )
    except PredeployError as exc:
        fail_step("readiness review", exc)


@pytest.fixture(scope="session")
def deployment_checklist(predeploy: RunContext) -> ChecklistResult:
    """Step 4.3 (GUIDELINE): append rehearsal insights and owners -> deployment-checklist.md."""
    from pytest_predeploy.readiness.checklist import write_deployment_checklist

    readiness = predeploy.config.readiness
    try:
        # Once the package is sealed, the checklist in it is what reviewers sign: never appended to.
        sealed = predeploy.artifact(names.PACKAGE).exists()
        return write_deployment_checklist(
            predeploy.artifacts,
            predeploy.release,
            readiness.checklist_owners,
            slow_step=readiness.slow_step,
            write=not sealed,
        )
    except PredeployError as exc:
        fail_step("deployment_checklist", exc)
