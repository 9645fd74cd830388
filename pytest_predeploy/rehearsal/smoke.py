"""Smoke and acceptance tests (Protocol 10, step 2.2): run the team's own pytest suites against
the services in staging and write ``staging-test-results.json``.

Each configured suite runs as its own pytest subprocess, isolated from this project's pytest
setup: its own rootdir and ini file (the suite folder's ``pytest.ini`` if it has one), conftest
lookup stopping at the suite folder, no cache, and this plugin switched off. The suite learns
where the services are from the environment:

- ``PREDEPLOY_SERVICE_URLS``: a JSON object ``{"<service>": "<base URL>", ...}``;
- ``PREDEPLOY_URL_<SERVICE>``: one base URL per service (name upper-cased, other characters ``_``);
- ``PREDEPLOY_RELEASE`` and ``PREDEPLOY_ENV``: the release expected to be running, and where;
- ``PREDEPLOY_HEALTH_PATHS``: a JSON object ``{"<service>": "<health path>", ...}`` (``services[].health_path``).

**Coverage** is endpoints exercised over endpoints declared:

- *declared*: the union of each service's business endpoints, a (service, method, path template)
  each, from its OpenAPI document, its route-list endpoint or the configuration, in that order
  (``services[].endpoints``, see :mod:`pytest_predeploy.rehearsal.endpoints`);
- *exercised*: the declared endpoints that received requests while the suite ran. Requests are
  read from the service's request counter (``observability.request_counter``, summed over status
  codes) scraped just before and just after the suite (a counter that went down, because the
  process restarted, counts from zero); for a service whose metrics have no such counter (or with
  ``endpoints.requests: client``), from the suite's own calls through the ``predeploy_http``
  fixture, which every suite gets (``-p pytest_predeploy.harness.http``) and which records each
  call's method, path and status in ``PREDEPLOY_REQUEST_LOG``.

Coverage is computed per suite and for the whole run (an endpoint is exercised if any suite
exercised it). When any service's declared endpoints cannot be read, or its counter is required
(``requests: counter``) and cannot be read, coverage is "no data", never a number.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from pydantic import Field

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core.artifacts import MAX_ARTIFACT_BYTES, ArtifactModel, write_artifact
from pytest_predeploy.core.errors import StepError
from pytest_predeploy.core.fields import StrictModel, UtcDatetime, utcnow
from pytest_predeploy.core.nesting import json_loads
from pytest_predeploy.core.redact import Redactor
from pytest_predeploy.core.runner import RunResult, run_command
from pytest_predeploy.rehearsal.endpoints import EndpointsUnreadable, declared_endpoints
from pytest_predeploy.rehearsal.openapi import RouteTable
from pytest_predeploy.rehearsal.requestlog import ENV_REQUEST_LOG, count_requests
from pytest_predeploy.rehearsal.settings import ObservedProject, SuiteConfig
from pytest_predeploy.rehearsal.settings import SmokeConfig as SmokeConfig
from pytest_predeploy.targets.base import service_urls
from pytest_predeploy.targets.choose import target_for

if TYPE_CHECKING:
    from pytest_predeploy.rehearsal.observability import ParsedMetrics

STEP = "smoke"

ENV_SERVICE_URLS = "PREDEPLOY_SERVICE_URLS"
#: Each service's health path (services[].health_path) as a JSON object, so a suite never keeps its own copy.
ENV_HEALTH_PATHS = "PREDEPLOY_HEALTH_PATHS"
ENV_URL_PREFIX = "PREDEPLOY_URL_"

#: Longest failure message kept per test (the transcript has the whole traceback).
MESSAGE_LIMIT = 500
#: How much of each service's log a failed run keeps in the report and the gate's message.
LOG_LINES = 20
LOG_LINE_CHARS = 300

#: pytest's documented exit codes other than 0 (passed) and 1 (tests failed).
_PYTEST_EXIT = {2: "interrupted or collection error", 3: "internal error", 4: "usage error", 5: "no tests collected"}

#: Where a suite's own settings go; without it the suite runs with an empty one, so the
#: project's pyproject.toml or a parent folder's ini never applies to it.
SUITE_INI = "pytest.ini"


# --- the artifact -------------------------------------------------------------------------

Outcome = Literal["passed", "failed", "error", "skipped", "xfailed", "xpassed"]
SuiteStatus = Literal["passed", "failed", "no-data"]


class SmokeTestResult(StrictModel):
    """One test of a suite."""

    __test__: ClassVar[bool] = False  # not a pytest test class, despite the name

    nodeid: str = Field(description="pytest node id, relative to the suite folder.")
    outcome: Outcome = Field(description="passed, failed, error (setup/teardown or collection), skipped, xfailed or xpassed.")
    duration: float = Field(description="Seconds spent in setup, call and teardown.")
    message: str | None = Field(None, description="The failure's first lines (redacted); the whole traceback is in the suite's transcript.")


class Totals(StrictModel):
    """Counts of test outcomes."""

    tests: int = Field(0, description="Tests reported.")
    passed: int = Field(0, description="Passed.")
    failed: int = Field(0, description="Failed.")
    errors: int = Field(0, description="Errored (setup, teardown or collection).")
    skipped: int = Field(0, description="Skipped.")
    xfailed: int = Field(0, description="Expected failures.")
    xpassed: int = Field(0, description="Unexpected passes (non-strict).")
    duration: float = Field(0.0, description="Seconds, summed over suites.")

    @classmethod
    def of(cls, tests: Iterable[SmokeTestResult], duration: float) -> Totals:
        totals = cls(duration=duration)
        field_of = {"passed": "passed", "failed": "failed", "error": "errors", "skipped": "skipped", "xfailed": "xfailed", "xpassed": "xpassed"}
        for test in tests:
            totals.tests += 1
            name = field_of[test.outcome]
            setattr(totals, name, getattr(totals, name) + 1)
        return totals


class Endpoint(StrictModel):
    """One declared endpoint and whether the suite exercised it."""

    service: str = Field(description="Service declaring the endpoint.")
    method: str = Field(description="HTTP method.")
    path: str = Field(description="Path template as declared (e.g. /api/products/{id}).")
    requests: float = Field(description="Increase of the request counter for this endpoint during the suite.")
    exercised: bool = Field(description="Whether the counter increased.")


class Coverage(StrictModel):
    """Endpoints exercised over endpoints declared (see the module documentation)."""

    status: Literal["ok", "no-data"] = Field(description="ok, or no-data when routes or metrics could not be read.")
    detail: str = Field("", description="Why there is no data.")
    declared: int = Field(0, description="Endpoints declared by all services.")
    exercised: int = Field(0, description="Of those, exercised.")
    ratio: float | None = Field(None, description="exercised / declared; none without data or without declared endpoints.")
    endpoints: list[Endpoint] = Field(default_factory=list, description="Every declared endpoint.")


class SuiteResult(StrictModel):
    """One suite's run."""

    name: str = Field(description="Suite name.")
    path: str = Field(description="Suite folder or file.")
    status: SuiteStatus = Field(description="passed, failed (a test failed or errored), or no-data (the suite could not run or report).")
    detail: str = Field("", description="What happened, in a sentence.")
    command: list[str] = Field(default_factory=list, description="The pytest command line (redacted).")
    exit_code: int | None = Field(None, description="pytest's exit status; none when it did not exit by itself.")
    started_at: UtcDatetime | None = Field(None, description="When the suite started.")
    duration: float = Field(0.0, description="Wall time in seconds.")
    transcript: str | None = Field(None, description="The suite's output, relative to the report's folder.")
    tests: list[SmokeTestResult] = Field(default_factory=list, description="Every test reported.")
    totals: Totals = Field(default_factory=Totals, description="Counts of outcomes.")
    coverage: Coverage = Field(description="Endpoints this suite exercised.")


class ServiceLog(StrictModel):
    """The last lines a service wrote while its tests failed: where the root cause usually is."""

    service: str = Field(description="Service name.")
    log: str = Field(description="The log file (or the target's word for where its output goes).")
    lines: list[str] = Field(description=f"Its last lines (at most {LOG_LINES}, each cut at {LOG_LINE_CHARS} characters), redacted.")


class TestResultsReport(ArtifactModel):
    """staging-test-results.json: smoke and acceptance results and coverage."""

    __test__: ClassVar[bool] = False

    step: str = Field(STEP, description="The protocol step that produced the artifact.")
    environment: str = Field(description="The environment the suites ran against.")
    select: str | None = Field(None, description="The -k expression that selected a subset of tests, if any.")
    services: dict[str, str] = Field(default_factory=dict, description="Base URL of each service tested.")
    min_coverage: float = Field(description="The coverage required (smoke.min_coverage).")
    suites: list[SuiteResult] = Field(description="Each suite, in run order.")
    totals: Totals = Field(description="Counts over all suites.")
    coverage: Coverage = Field(description="Endpoints exercised by any suite over endpoints declared.")
    problems: list[str] = Field(default_factory=list, description="Why the results do not pass Gate 2 (empty: they do).")
    service_logs: list[ServiceLog] = Field(
        default_factory=list,
        description="When a test failed or errored: each service's last log lines, redacted (the service's traceback is usually the cause).",
    )

    def summary_line(self) -> str:
        """The key figure of Gate 2's smoke test: pass rate and coverage."""
        t = self.totals
        rate = f"{t.passed}/{t.tests} passed" if t.tests else "no tests ran"
        cover = (
            f"coverage {self.coverage.ratio:.0%} ({self.coverage.exercised}/{self.coverage.declared} endpoints)"
            if self.coverage.ratio is not None
            else "coverage: no data"
        )
        return f"smoke {rate}, {cover}"


class SmokeProject(ObservedProject, Protocol):
    """What the smoke step needs from the project's configuration: the services and their
    metrics (as the baseline reads them) and this section."""

    @property
    def path(self) -> Path: ...

    @property
    def smoke(self) -> SmokeConfig: ...

    def secret_values(self) -> dict[str, str]: ...


def smoke_problems(report: TestResultsReport, min_coverage: float) -> list[str]:
    """Why ``report`` fails Gate 2, one sentence each: every failed or errored test by name, each
    suite that could not run, no suite at all, and coverage under ``min_coverage`` or unreadable.
    Coverage is not judged when ``min_coverage`` is 0, for a subset run with ``select`` (it is
    partial by design), or when no suite ran at all (that is reported already)."""
    problems: list[str] = []
    if not report.suites:
        problems.append("no smoke suite ran (smoke.suites is empty): no data")
    elif report.totals.passed == 0 and not any(suite.status == "no-data" for suite in report.suites):
        # Every test skipped (or none collected) proves nothing, whatever smoke.min_coverage says.
        problems.append(f"no smoke test passed ({report.totals.tests} reported, {report.totals.skipped} skipped): nothing was verified on staging (no data)")
    for suite in report.suites:
        for test in suite.tests:
            if test.outcome in ("failed", "error"):
                what = "failed" if test.outcome == "failed" else "errored"
                because = f": {test.message.splitlines()[0]}" if test.message else ""
                problems.append(f"{suite.name} test {what}: {test.nodeid}{because}")
        if suite.status == "no-data":
            problems.append(f"suite {suite.name} could not run (no data): {suite.detail}")
        elif suite.status == "failed" and not any(t.outcome in ("failed", "error") for t in suite.tests):
            problems.append(f"suite {suite.name} failed: {suite.detail}")
    if problems:
        for log in report.service_logs:
            shown = "\n".join(f"    | {line}" for line in log.lines)
            problems.append(f"{log.service} wrote, at the end of {log.log}:\n{shown}")
    if min_coverage > 0 and report.select is None and any(suite.status != "no-data" for suite in report.suites):
        coverage = report.coverage
        if coverage.status != "ok" or coverage.ratio is None:
            problems.append(f"coverage: no data ({coverage.detail or 'no declared endpoints'})")
        elif coverage.ratio < min_coverage:
            missed = ", ".join(f"{e.service} {e.method} {e.path}" for e in coverage.endpoints if not e.exercised)
            problems.append(f"coverage {coverage.ratio:.0%} is under the required {min_coverage:.0%} (not exercised: {missed})")
    return problems


# --- running ------------------------------------------------------------------------------

Route = tuple[str, str, str]  # (service, method, path)


def url_env(urls: dict[str, str]) -> dict[str, str]:
    """The variables through which a suite learns the service URLs."""
    env = {ENV_SERVICE_URLS: json.dumps(urls, sort_keys=True)}
    for service, url in urls.items():
        env[ENV_URL_PREFIX + re.sub(r"[^A-Z0-9]", "_", service.upper())] = url
    return env


def declared_routes(config: SmokeProject, urls: dict[str, str]) -> list[Route]:
    """Every service's declared endpoints; raises :class:`Unreadable` naming the service."""
    from pytest_predeploy.rehearsal.observability import Unreadable

    routes: list[Route] = []
    timeout = config.observability.scrape_timeout.total_seconds()
    for service in config.services:
        if service.name not in urls:
            raise Unreadable(f"no address known for service {service.name!r}")
        try:
            found, _ = declared_endpoints(service.endpoints, urls[service.name], config.path.parent, timeout, config.smoke.routes_path)
        except EndpointsUnreadable as exc:
            raise Unreadable(f"{service.name}: {exc}") from None
        routes += [(service.name, method, path) for method, path in found]
    return sorted(set(routes))


class Uncounted(str):
    """Why a service has no request counter to read (it exposes none): not a failure, its
    requests are counted from the suites' own calls unless ``requests: counter`` demands one."""


Scrape = dict[str, "ParsedMetrics | str"]  # per service: its metrics, or why they cannot be read


def scrape_all(config: SmokeProject, urls: dict[str, str]) -> Scrape:
    from pytest_predeploy.rehearsal.observability import NoCounter, Unreadable, scrape

    parsed: Scrape = {}
    for service in config.services:
        try:
            parsed[service.name] = scrape(urls[service.name], config.observability)
        except NoCounter as exc:
            parsed[service.name] = Uncounted(f"metrics of {service.name}: {exc}")
        except Unreadable as exc:
            parsed[service.name] = f"metrics of {service.name}: {exc}"
    return parsed


def measure_coverage(config: SmokeProject, routes: list[Route] | str, before: Scrape, after: Scrape, called: Counter[Route]) -> Coverage:
    """Coverage of one suite (see the module documentation): counter increases between the two
    scrapes, or the suite's own recorded calls (``called``) for a service counted by the client;
    a string is a no-data reason."""
    if isinstance(routes, str):
        return Coverage(status="no-data", detail=routes)
    from pytest_predeploy.rehearsal.observability import ParsedMetrics

    modes = {service.name: service.endpoints.requests for service in config.services}
    endpoints: list[Endpoint] = []
    for service, method, path in routes:
        old, new = before.get(service, "not scraped"), after.get(service, "not scraped")
        mode = modes.get(service, "auto")
        if mode == "auto":
            # The client counts only for a service that exposes no counter; metrics that are
            # there but broken (unreachable, not Prometheus text) are no data, as ever.
            mode = "client" if isinstance(old, Uncounted) or isinstance(new, Uncounted) else "counter"
        if mode == "client":
            increase = float(called.get((service, method, path), 0))
        elif isinstance(old, ParsedMetrics) and isinstance(new, ParsedMetrics):
            before_count = old.requests_by_route().get((method, path), 0.0)
            after_count = new.requests_by_route().get((method, path), 0.0)
            # A counter that went down was reset by a restart: everything since counts.
            increase = after_count - before_count if after_count >= before_count else after_count
        else:
            return Coverage(status="no-data", detail=next(state for state in (old, new) if isinstance(state, str)))
        endpoints.append(Endpoint(service=service, method=method, path=path, requests=increase, exercised=increase > 0))
    return _coverage_of(endpoints)


def _called(log: Path, routes: list[Route] | str, urls: dict[str, str]) -> Counter[Route]:
    """The suite's recorded calls per declared endpoint."""
    if isinstance(routes, str):
        return Counter()
    templates: dict[str, list[tuple[str, str]]] = {}
    for service, method, path in routes:
        templates.setdefault(service, []).append((method, path))
    return count_requests(log, urls, {service: RouteTable.of(pairs) for service, pairs in templates.items()})


def _coverage_of(endpoints: list[Endpoint]) -> Coverage:
    exercised = sum(1 for e in endpoints if e.exercised)
    ratio = exercised / len(endpoints) if endpoints else None
    detail = "" if endpoints else "the services declare no endpoints"
    return Coverage(status="ok", detail=detail, declared=len(endpoints), exercised=exercised, ratio=ratio, endpoints=endpoints)


def combined_coverage(suites: list[SuiteResult]) -> Coverage:
    """An endpoint is exercised by the run if any suite exercised it."""
    if not suites:
        return Coverage(status="no-data", detail="no suite ran")
    for suite in suites:
        if suite.coverage.status != "ok":
            return Coverage(status="no-data", detail=f"suite {suite.name}: {suite.coverage.detail}")
    merged: dict[Route, Endpoint] = {}
    for suite in suites:
        for e in suite.coverage.endpoints:
            key = (e.service, e.method, e.path)
            if key in merged:
                seen = merged[key]
                merged[key] = seen.model_copy(update={"requests": seen.requests + e.requests, "exercised": seen.exercised or e.exercised})
            else:
                merged[key] = e
    return _coverage_of([merged[key] for key in sorted(merged)])


def _collection_errors(data: dict[str, Any], redactor: Redactor) -> list[SmokeTestResult]:
    """Modules (or classes) that could not be collected, from a pytest-json-report document."""
    return [
        SmokeTestResult(
            nodeid=collector.get("nodeid") or "(collection)", outcome="error", duration=0.0, message=_message(_error_lines(collector.get("longrepr")), redactor)
        )
        for collector in data.get("collectors", [])
        if collector.get("outcome") == "failed"
    ]


def _test_results(data: dict[str, Any], redactor: Redactor) -> list[SmokeTestResult]:
    """Tests from a pytest-json-report document."""
    results: list[SmokeTestResult] = []
    for test in data.get("tests", []):
        phases = [test.get(phase) or {} for phase in ("setup", "call", "teardown")]
        message = None
        if test.get("outcome") in ("failed", "error", "xpassed"):
            for phase in phases:
                if phase.get("outcome") == "failed":
                    message = _message((phase.get("crash") or {}).get("message") or phase.get("longrepr"), redactor)
                    break
        results.append(
            SmokeTestResult(
                nodeid=test["nodeid"],
                outcome=test["outcome"],
                duration=sum(float(phase.get("duration", 0.0)) for phase in phases),
                message=message,
            )
        )
    return results


def _error_lines(longrepr: object) -> str:
    """The ``E   ...`` lines of a pytest traceback (the error itself), else its last line."""
    lines = str(longrepr or "").strip().splitlines()
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    return "\n".join(errors) if errors else (lines[-1] if lines else "")


def _message(text: object, redactor: Redactor) -> str | None:
    if not text:
        return None
    message = redactor.redact(str(text)).strip()
    return message if len(message) <= MESSAGE_LIMIT else message[: MESSAGE_LIMIT - 1] + "…"


def _suite_argv(suite: SuiteConfig, rootdir: Path, ini: Path, report_file: Path, select: str | None) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "pytest",
        str(suite.path),
        "-p",
        "no:predeploy",
        "-p",
        "no:cacheprovider",
        "-p",
        "pytest_predeploy.harness.http",
        "-c",
        str(ini),
        "--rootdir",
        str(rootdir),
        "--confcutdir",
        str(rootdir),
        "--json-report",
        f"--json-report-file={report_file}",
        "--json-report-omit",
        "log",
        "keywords",
        "streams",
        "-q",
        "-rfE",
        "--color=no",
    ]
    if select:
        argv += ["-k", select]
    return argv + suite.args


def _suite_env(env_name: str, release: str, urls: dict[str, str], request_log: Path, health_paths: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    # Options meant for the outer pytest run (e.g. --predeploy-release) must not reach the suite.
    for name in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS"):
        env.pop(name, None)
    env.update(url_env(urls))
    env.update({"PREDEPLOY_RELEASE": release, "PREDEPLOY_ENV": env_name, ENV_REQUEST_LOG: str(request_log)})
    env[ENV_HEALTH_PATHS] = json.dumps(health_paths, sort_keys=True)
    return env


def _run_suite(
    suite: SuiteConfig,
    *,
    env_name: str,
    release: str,
    urls: dict[str, str],
    select: str | None,
    transcript: Path,
    redactor: Redactor,
    request_log: Path,
    health_paths: dict[str, str],
) -> SuiteResult:
    """Run one suite; the coverage field is filled in by the caller."""
    base = SuiteResult(name=suite.name, path=str(suite.path), status="no-data", started_at=utcnow(), coverage=Coverage(status="no-data", detail="not measured"))
    if not suite.path.exists():
        base.detail = f"suite not found: {suite.path} (smoke.suites[].path is relative to the config file)"
        return base
    rootdir = suite.path if suite.path.is_dir() else suite.path.parent
    with tempfile.TemporaryDirectory(prefix="predeploy-smoke-") as tmp:
        ini = rootdir / SUITE_INI
        if not ini.is_file():
            ini = Path(tmp) / SUITE_INI
            ini.write_text("[pytest]\n")
        report_file = Path(tmp) / "report.json"
        argv = _suite_argv(suite, rootdir, ini, report_file, select)
        run = run_command(
            argv,
            step=STEP,
            label=suite.name,
            transcript=transcript,
            timeout=suite.timeout.total_seconds(),
            cwd=rootdir,
            env=_suite_env(env_name, release, urls, request_log, health_paths),
            redactor=redactor,
        )
        base.command = [redactor.redact(arg) for arg in argv]
        base.exit_code = run.returncode
        base.transcript = f"{transcript.parent.name}/{transcript.name}"
        base.duration = run.duration
        base.started_at = run.started_at
        data = _read_report(report_file)
    collection_errors = _collection_errors(data, redactor) if data is not None else []
    if data is not None:
        base.tests = collection_errors + _test_results(data, redactor)
    base.totals = Totals.of(base.tests, run.duration)
    base.status, base.detail = _suite_verdict(run, data, base.tests, collection_errors)
    return base


def _read_report(path: Path) -> dict[str, Any] | None:
    """The suite's pytest-json-report; None when it wrote none or one that cannot be read (too
    large, too deep, not JSON): the suite then fails for want of a report."""
    try:
        with open(path, "rb") as stream:
            raw = stream.read(MAX_ARTIFACT_BYTES + 1)
        if len(raw) > MAX_ARTIFACT_BYTES:
            return None
        return json_loads(raw)  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def _suite_verdict(
    run: RunResult, data: dict[str, Any] | None, tests: list[SmokeTestResult], collection_errors: list[SmokeTestResult]
) -> tuple[SuiteStatus, str]:
    if run.error or run.timed_out or run.signal:
        return "no-data", f"pytest {run.describe()}"
    if collection_errors:
        first = collection_errors[0]
        why = first.message.splitlines()[0] if first.message else "see the transcript"
        return "no-data", f"collection error in {first.nodeid}: {why}"
    if data is None:
        return "no-data", f"pytest wrote no report ({run.describe()}); see the transcript"
    counts = Totals.of(tests, run.duration)
    if run.returncode == 0:
        return "passed", f"{counts.passed} passed" + (f", {counts.skipped} skipped" if counts.skipped else "")
    if run.returncode == 1:
        return "failed", f"{counts.failed} failed, {counts.errors} errors, {counts.passed} passed"
    return "no-data", f"pytest exit {run.returncode} ({_PYTEST_EXIT.get(run.returncode or 0, 'unexpected')})"


def service_logs(config: SmokeProject, env: str, redactor: Redactor) -> list[ServiceLog]:
    """Each service's last log lines on ``env``, redacted and bounded; the target says where its
    log is (a service it keeps no readable log for is left out)."""
    target = target_for(config)
    logs = []
    for service in config.services:
        found = target.log_tail(env, service.name, LOG_LINES)
        if found is None or not found[1]:
            continue
        where, lines = found
        shown = Path(where)
        if shown.is_absolute() and shown.is_relative_to(config.path.parent):
            where = shown.relative_to(config.path.parent).as_posix()
        kept = [redactor.redact(line)[:LOG_LINE_CHARS] for line in lines[-LOG_LINES:]]
        logs.append(ServiceLog(service=service.name, log=where, lines=kept))
    return logs


def run_smoke_tests(
    config: SmokeProject,
    env: str,
    release: str,
    output: Path,
    *,
    select: str | None = None,
    suites: list[str] | None = None,
    urls: dict[str, str] | None = None,
    transcripts: Path | None = None,
) -> TestResultsReport:
    """Run the configured suites (or those named in ``suites``) against ``env`` and write the
    report to ``output``. ``select`` is a pytest ``-k`` expression (it matches test names and
    marker names) that runs a subset, as the rollback rehearsal does; a suite in which it selects
    nothing is reported as not run, so pass ``suites`` too. ``urls`` overrides the local staging
    target's addresses. Transcripts go to ``<transcripts>/<output stem>-<suite>.log``, by default
    ``<output folder>/transcripts``."""
    # The metrics are read with the baseline's code, imported when a suite runs (the plugin imports
    # this module to read the smoke results; reading them needs none of it).
    from pytest_predeploy.rehearsal.observability import Unreadable

    chosen = list(config.smoke.suites)
    if suites is not None:
        unknown = sorted(set(suites) - {suite.name for suite in chosen})
        if unknown:
            known = ", ".join(suite.name for suite in chosen) or "(none)"
            raise StepError(f"{config.path}: no smoke suite named {unknown[0]!r}; smoke.suites: {known}")
        chosen = [suite for suite in chosen if suite.name in suites]
    redactor = Redactor(config.secret_values())
    unreachable = ""
    if urls is None:
        try:
            urls = service_urls(target_for(config), config, env, f"nothing answers for it on the {config.staging.target} staging target")
        except StepError as exc:
            urls, unreachable = {}, f"the services in {env} cannot be reached: {exc}"

    results: list[SuiteResult] = []
    if unreachable:
        results = [
            SuiteResult(name=s.name, path=str(s.path), status="no-data", detail=unreachable, coverage=Coverage(status="no-data", detail=unreachable))
            for s in chosen
        ]
    else:
        try:
            routes: list[Route] | str = declared_routes(config, urls)
        except Unreadable as exc:
            routes = f"declared routes: {exc}"
        before = scrape_all(config, urls)
        transcripts = transcripts or output.parent / names.TRANSCRIPTS_DIR
        with tempfile.TemporaryDirectory(prefix="predeploy-requests-") as scratch:
            for suite in chosen:
                request_log = Path(scratch) / f"{suite.name}.jsonl"
                result = _run_suite(
                    suite,
                    env_name=env,
                    release=release,
                    urls=urls,
                    select=select,
                    transcript=transcripts / f"{output.stem}-{suite.name}.log",
                    redactor=redactor,
                    request_log=request_log,
                    health_paths={service.name: service.health_path for service in config.services},
                )
                after = scrape_all(config, urls)
                result.coverage = measure_coverage(config, routes, before, after, _called(request_log, routes, urls))
                results.append(result)
                before = after

    failed = any(test.outcome in ("failed", "error") for suite in results for test in suite.tests)
    logs = service_logs(config, env, redactor) if failed and not unreachable else []
    durations = sum(suite.duration for suite in results)
    report = TestResultsReport(
        release=release,
        environment=env,
        select=select,
        services=dict(urls),
        min_coverage=config.smoke.min_coverage,
        suites=results,
        totals=Totals.of((t for s in results for t in s.tests), durations),
        coverage=combined_coverage(results),
        service_logs=logs,
    )
    report.problems = smoke_problems(report, config.smoke.min_coverage)
    write_artifact(output, report)
    return report
