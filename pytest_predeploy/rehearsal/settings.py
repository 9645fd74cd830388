"""The rehearsal's sections of ``predeploy.yaml`` (``smoke``, ``contract``, ``observability``).

Apart from the code that runs those steps (:mod:`.smoke`, :mod:`.contract`, :mod:`.observability`,
:mod:`.prometheus`, which import them from here): loading the configuration, which every protocol
run does first, then imports only these models, and a run imports a step's code when it runs the
step.
"""

from __future__ import annotations

import re
import urllib.parse
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import Field, field_validator, model_validator

from pytest_predeploy.core.fields import ConfigPath, Duration, StrictModel, UtcDatetime, format_duration
from pytest_predeploy.targets.settings import TargetSettings

if TYPE_CHECKING:
    from pytest_predeploy.rehearsal.contractdiff import Change

# --- smoke and acceptance suites (Gate 2) ---------------------------------------------------


class SuiteConfig(StrictModel):
    """One pytest suite run against staging (smoke, acceptance, targeted regression ...)."""

    name: str = Field(description="Suite name shown in reports (e.g. smoke, regression).")
    path: ConfigPath = Field(description="Folder (or file) of the suite, relative to the config file. Its own settings go in a pytest.ini there.")
    args: list[str] = Field(default_factory=list, description="Extra pytest arguments for this suite (e.g. ['-m', 'not slow']).")
    timeout: Duration = Field(timedelta(minutes=5), description="How long the suite may run before it is stopped and reported as not run.")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise ValueError("use letters, digits, '.', '_' and '-' (the name is part of file names)")
        return name


class SmokeConfig(StrictModel):
    """Smoke and acceptance suites (Gate 2) and the coverage they must reach."""

    suites: list[SuiteConfig] = Field(
        default_factory=list, description="Suites run in order against the staging services; with none, Gate 2 has no test results (no data)."
    )
    min_coverage: float = Field(
        0.8, ge=0, le=1, description="Smallest endpoint coverage (exercised / declared, 0..1) Gate 2 accepts; 0 turns the requirement off."
    )
    routes_path: str = Field(
        "/routes",
        description='Path at which services list their declared business endpoints as JSON {"routes": [{"method": ..., "path": ...}]}, unless a service sets its own endpoints (services[].endpoints).',
    )

    @field_validator("suites")
    @classmethod
    def _unique_names(cls, suites: list[SuiteConfig]) -> list[SuiteConfig]:
        seen: set[str] = set()
        for suite in suites:
            if suite.name in seen:
                raise ValueError(f"suite {suite.name!r} is listed twice")
            seen.add(suite.name)
        return suites


# --- the API contract check (Gate 2) --------------------------------------------------------


class ContractWaiverMatch(StrictModel):
    """Which breaking changes a waiver covers: shell-style globs, every given field must match."""

    change: str = Field(description="The change's rule id, e.g. 'api-removed-without-deprecation' or 'request-parameter-*'.")
    service: str | None = Field(None, description="Service name.")
    operation: str | None = Field(None, description="Operation as the report shows it, e.g. 'DELETE /items/{item_id}'.")


class ContractWaiver(StrictModel):
    """An accepted breaking change: its clients were told, or it has none."""

    id: str = Field(description="Waiver identifier, shown beside every change it covers.")
    match: ContractWaiverMatch = Field(description="The changes it covers.")
    owner: str = Field(description="Who accepted the break (and told its clients).")
    justification: str = Field(description="Why the break is acceptable.")
    expires_at: UtcDatetime = Field(description="When the waiver stops applying; the change then fails Gate 2 again.")

    def covers(self, service: str, change: Change) -> bool:
        checks = [(self.match.service, service), (self.match.operation, change.operation)]
        return fnmatchcase(change.id, self.match.change) and all(pattern is None or fnmatchcase(value, pattern) for pattern, value in checks)


class ContractConfig(StrictModel):
    """The API contract check of Gate 2: the candidate's served contract against the previous release's."""

    enabled: bool = Field(True, description="Compare the contracts. Off, the report says so and Gate 2 does not judge them.")
    waivers: list[ContractWaiver] = Field(default_factory=list, description="Accepted breaking changes, each with an owner and an expiry.")


# --- the observability baseline (Gate 2 guideline) ------------------------------------------

MetricName = Literal["request_count", "error_ratio", "latency_p50", "latency_p95"]


class Comparison(StrictModel):
    """How a query's value may move from the previous release (the pre-deploy point) to the candidate."""

    mode: Literal["ratio", "difference"] = Field(description="ratio: candidate / previous; difference: candidate - previous.")
    above: float | None = Field(None, description="Breach when the ratio or difference is strictly above this.")
    below: float | None = Field(None, description="Breach when the ratio or difference is strictly below this.")

    @model_validator(mode="after")
    def _one_bound(self) -> Comparison:
        if self.above is None and self.below is None:
            raise ValueError("a comparison needs 'above' or 'below' (e.g. {mode: ratio, above: 1.5})")
        return self


class PrometheusQuery(StrictModel):
    """One PromQL check, evaluated at every point of the rehearsal."""

    name: str = Field(min_length=1, description="Short name shown in the baseline (e.g. error-ratio).")
    query: str = Field(min_length=1, description="PromQL; '{window}' is replaced by the window as a Prometheus duration (e.g. rate(x[{window}])).")
    above: float | None = Field(None, description="Breach when a value is strictly above this.")
    below: float | None = Field(None, description="Breach when a value is strictly below this.")
    window: Duration = Field(
        timedelta(minutes=1), description="The time window of the query ('{window}' in the PromQL); also how far before the rehearsal the chart starts."
    )
    compare: Comparison | None = Field(None, description="Optional comparison with the previous release: the same query at the pre-deploy point.")

    @model_validator(mode="after")
    def _some_check(self) -> PrometheusQuery:
        if self.above is None and self.below is None and self.compare is None:
            raise ValueError(f"query {self.name!r} checks nothing: give 'above', 'below' or 'compare'")
        return self

    @property
    def promql(self) -> str:
        """The query as sent, with the window filled in."""
        return self.query.replace("{window}", promql_duration(self.window))

    def threshold_text(self) -> str:
        parts = []
        if self.above is not None:
            parts.append(f"> {self.above:g}")
        if self.below is not None:
            parts.append(f"< {self.below:g}")
        if self.compare is not None:
            bounds = " or ".join(f"{op} {v:g}" for op, v in ((">", self.compare.above), ("<", self.compare.below)) if v is not None)
            parts.append(f"{self.compare.mode} to previous {bounds}")
        return "breach if " + "; ".join(parts)


class PrometheusConfig(StrictModel):
    """A Prometheus server to ask, and the PromQL checks of the observability baseline."""

    url: str | None = Field(
        None,
        description="Base URL of the Prometheus server (http://host:9090); absent: the server the local staging target runs (staging.prometheus). Credentials in the URL are refused.",
    )
    queries: list[PrometheusQuery] = Field(default_factory=list, description="PromQL checks evaluated at each point of the rehearsal.")
    timeout: Duration = Field(timedelta(seconds=5), description="How long one API call may take before the server counts as unavailable.")
    alert_labels: list[str] = Field(
        default_factory=lambda: ["service", "job"],
        description="Alert labels that name a service; firing alerts whose label names a staging service are listed.",
    )

    @field_validator("url")
    @classmethod
    def _plain_http(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http(s) URL such as http://127.0.0.1:9090")
        if parts.username or parts.password:
            # A password in the URL would be copied into every artifact that names the server.
            raise ValueError("credentials in the URL are not supported; put Prometheus behind a local proxy or use a URL without user:password")
        if parts.query or parts.fragment:
            raise ValueError("the URL must not carry a query string or fragment")
        return value.rstrip("/")

    @field_validator("queries")
    @classmethod
    def _unique_names(cls, value: list[PrometheusQuery]) -> list[PrometheusQuery]:
        seen: set[str] = set()
        for query in value:
            if query.name in seen:
                raise ValueError(f"query name {query.name!r} is used twice")
            seen.add(query.name)
        return value


def promql_duration(value: timedelta) -> str:
    """A timedelta as a PromQL duration ('90s', '5m', '1h'); PromQL has no fractional units."""
    seconds = value.total_seconds()
    if seconds >= 1 and seconds == int(seconds):
        return format_duration(timedelta(seconds=int(seconds)))
    return f"{max(1, round(seconds * 1000))}ms"


class AlertRule(StrictModel):
    """One alert threshold, evaluated per service and phase."""

    name: str = Field(description="Alert name shown in the baseline (e.g. high-error-ratio).")
    metric: MetricName = Field(description="The figure the rule watches: request_count, error_ratio, latency_p50 or latency_p95.")
    above: float = Field(ge=0, description="The alert fires when the figure is strictly above this value (seconds for latencies, a fraction for error_ratio).")
    services: list[str] = Field(default_factory=list, description="Services the rule applies to; empty: every service.")
    phases: list[str] = Field(
        default_factory=list, description="Phases the rule applies to ('before deploy', 'after deploy', 'after smoke'); empty: every phase."
    )


def _default_alerts() -> list[AlertRule]:
    return [
        AlertRule(name="high-error-ratio", metric="error_ratio", above=0.05),
        AlertRule(name="slow-p95", metric="latency_p95", above=0.5),
    ]


class ObservabilityConfig(StrictModel):
    """How the services' metrics are read, and the alert thresholds of the baseline."""

    metrics_path: str = Field("/metrics", description="Path of each service's Prometheus text endpoint.")
    request_counter: str = Field("http_requests_total", description="Counter of handled requests (sample name as exposed, with _total).")
    latency_histogram: str = Field("http_request_duration_seconds", description="Histogram of request durations in seconds (name without _bucket).")
    method_label: str = Field("method", description="Label carrying the HTTP method on both metrics.")
    route_label: str = Field("route", description="Label carrying the route template (e.g. /api/products/{id}) on both metrics.")
    status_label: str = Field("status", description="Label carrying the HTTP status code on the request counter.")
    scrape_timeout: Duration = Field(timedelta(seconds=5), description="How long one scrape may take before the service counts as 'no data'.")
    alerts: list[AlertRule] = Field(
        default_factory=_default_alerts,
        description="Alert thresholds evaluated on every service and phase (default: error_ratio above 0.05, latency_p95 above 0.5 s).",
    )
    prometheus: PrometheusConfig | None = Field(
        None,
        description="PromQL checks asked of a Prometheus server at the same points (docs/prometheus.md); absent: only the built-in scrape.",
    )


class ObservedProject(TargetSettings, Protocol):
    """What the baseline needs from the project's configuration: the services (reached through
    the staging target) and this section."""

    @property
    def project(self) -> str: ...

    @property
    def observability(self) -> ObservabilityConfig: ...
