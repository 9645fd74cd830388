"""Observability baseline (Protocol 10, step 2.3, GUIDELINE): what the services' own metrics
said before the deploy, after it and after the smoke tests, and whether any alert would fire.

Every service's Prometheus endpoint is scraped at each phase and parsed with prometheus-client's
text parser. Per service and phase we compute, from the metrics the process has recorded since
it started (a deploy starts a new process, so its counters start again at zero):

- request count: the sum of the request counter (``http_requests_total``) over all label sets;
- error ratio: requests answered 5xx over all requests (none when there were no requests);
- latency p50 / p95: from the latency histogram's buckets summed over all routes, interpolated
  inside a bucket the way PromQL's ``histogram_quantile`` does.

Configured alert rules (``error_ratio above 0.05``) are evaluated against each figure: firing or
not. Metrics that could not be read are "no data", reported as such and never as zeros.
With ``observability.prometheus``, the same points also ask a Prometheus server the configured
PromQL (:mod:`.prometheus`); with the local target's server, it is started and pointed at the
services first (:class:`PrometheusWatch`).
Writes ``observability-baseline.md`` (tables and an SVG chart) and ``observability-metrics.json``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import Field

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core.artifacts import ArtifactModel, write_artifact, write_text_atomic
from pytest_predeploy.core.errors import StepError
from pytest_predeploy.core.fields import StrictModel, UtcDatetime, utcnow
from pytest_predeploy.core.httpget import MAX_BODY, NoAnswer
from pytest_predeploy.core.httpget import http_get as core_http_get
from pytest_predeploy.rehearsal.prometheus import PrometheusObserver, PrometheusResult, prometheus_problems, render_prometheus_markdown
from pytest_predeploy.rehearsal.settings import AlertRule as AlertRule
from pytest_predeploy.rehearsal.settings import MetricName
from pytest_predeploy.rehearsal.settings import ObservabilityConfig as ObservabilityConfig
from pytest_predeploy.rehearsal.settings import ObservedProject as ObservedProject
from pytest_predeploy.targets.choose import target_for

STEP = "observability"

#: The phases of the rehearsal at which the plugin captures metrics, in order.
PHASE_BEFORE_DEPLOY = "before deploy"
PHASE_AFTER_DEPLOY = "after deploy"
PHASE_AFTER_SMOKE = "after smoke"

_METRIC_TITLES: dict[str, str] = {
    "request_count": "Requests",
    "error_ratio": "Error ratio (5xx)",
    "latency_p50": "Latency p50 (s)",
    "latency_p95": "Latency p95 (s)",
}


# --- reading a running service ------------------------------------------------------------


class Unreadable(Exception):
    """A service's endpoint could not be read or understood; the text says why, in a few words."""


class NotFound(Unreadable):
    """The endpoint answered 404."""


class NoCounter(Unreadable):
    """The service exposes no request counter: no metrics endpoint (404), or metrics without the
    configured counter. Unlike a broken endpoint, this is how most services are."""


def http_get(url: str, timeout: float) -> bytes:
    """GET ``url`` and return the body of a 200 answer; anything else raises :class:`Unreadable`."""
    try:
        response = core_http_get(url, timeout)
    except NoAnswer as exc:
        raise Unreadable(f"{url} {exc}") from None
    if response.status != 200:
        raise (NotFound if response.status == 404 else Unreadable)(f"{url} answered HTTP {response.status}")
    if response.truncated:
        raise Unreadable(f"{url}: the answer is larger than {MAX_BODY // (1024 * 1024)} MiB")
    return response.body


Series = tuple[str, str]  # (method, route)


@dataclass
class ParsedMetrics:
    """The two metric families we read, by label set."""

    requests: dict[tuple[str, str, str], float] = field(default_factory=dict)  # (method, route, status) -> count
    buckets: dict[Series, dict[float, float]] = field(default_factory=dict)  # (method, route) -> {le: cumulative}
    has_histogram: bool = False

    def requests_by_route(self) -> dict[Series, float]:
        totals: dict[Series, float] = defaultdict(float)
        for (method, route, _status), value in self.requests.items():
            totals[(method, route)] += value
        return dict(totals)


def parse_metrics(text: str, config: ObservabilityConfig) -> ParsedMetrics:
    """Parse Prometheus text; raises :class:`Unreadable` when it is not valid or lacks the counter."""
    parsed = ParsedMetrics()
    counter_seen = False
    bucket_name = config.latency_histogram + "_bucket"
    try:
        # Imported here, not at the top: prometheus_client is a large package and a protocol run
        # that captures no metrics never needs it (tests/test_plugin_startup.py).
        from prometheus_client.parser import text_string_to_metric_families

        families = list(text_string_to_metric_families(text))
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        # The parser raises several types on malformed input; all mean "not Prometheus text".
        raise Unreadable(f"not Prometheus text ({exc})") from None
    counter_family = config.request_counter.removesuffix("_total")
    for family in families:
        # A labelled metric nobody has incremented yet exposes only its TYPE line: known, zero.
        if family.name in (config.request_counter, counter_family):
            counter_seen = True
        if family.name == config.latency_histogram:
            parsed.has_histogram = True
        for sample in family.samples:
            labels = sample.labels
            series = (labels.get(config.method_label, ""), labels.get(config.route_label, ""))
            if sample.name == config.request_counter:
                counter_seen = True
                key = (*series, labels.get(config.status_label, ""))
                parsed.requests[key] = parsed.requests.get(key, 0.0) + sample.value
            elif sample.name == bucket_name:
                parsed.has_histogram = True
                try:
                    le = float(labels["le"])
                except (KeyError, ValueError):
                    raise Unreadable(f"{bucket_name} sample without a numeric 'le' label") from None
                parsed.buckets.setdefault(series, {})[le] = sample.value
    if not counter_seen:
        raise NoCounter(f"no {config.request_counter} counter in the metrics")
    return parsed


def scrape(base_url: str, config: ObservabilityConfig) -> ParsedMetrics:
    """Read and parse one service's metrics endpoint."""
    url = base_url.rstrip("/") + config.metrics_path
    try:
        body = http_get(url, config.scrape_timeout.total_seconds())
    except NotFound as exc:
        raise NoCounter(str(exc)) from None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Unreadable("metrics are not UTF-8 text") from None
    return parse_metrics(text, config)


# --- figures ------------------------------------------------------------------------------


def merge_buckets(series: list[dict[float, float]]) -> list[tuple[float, float]]:
    """Sum cumulative bucket counts of several histograms into one (le ascending).

    A series that lacks a boundary contributes its count at the nearest boundary below it, which
    is exact when all series share their buckets (the usual case) and a lower bound otherwise.
    """
    bounds = sorted({le for one in series for le in one})
    merged: list[tuple[float, float]] = []
    for bound in bounds:
        total = 0.0
        for one in series:
            below = [le for le in one if le <= bound]
            if below:
                total += one[max(below)]
        merged.append((bound, total))
    return merged


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The q-quantile of a cumulative histogram, as PromQL's ``histogram_quantile`` computes it.

    Linear interpolation inside the bucket the rank falls in (from 0 for the first bucket); a rank
    in the +Inf bucket returns the highest finite bound. None when there are no observations or
    no +Inf bucket (the histogram is incomplete).
    """
    if not buckets or not math.isinf(buckets[-1][0]):
        return None
    total = buckets[-1][1]
    if total <= 0:
        return None
    rank = q * total
    previous_bound, previous_count = 0.0, 0.0
    for index, (bound, count) in enumerate(buckets):
        if count >= rank:
            if math.isinf(bound):
                return buckets[index - 1][0] if index > 0 else None
            if index == 0 and bound <= 0:
                return bound
            if count == previous_count:
                return bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / (count - previous_count)
        previous_bound, previous_count = bound, count
    return None


class RouteMetrics(StrictModel):
    """Figures of one route of one service."""

    method: str = Field(description="HTTP method.")
    route: str = Field(description="Route template as labelled by the service.")
    request_count: float = Field(description="Requests handled.")
    error_count: float = Field(description="Requests answered 5xx.")
    latency_p95: float | None = Field(None, description="p95 latency in seconds; none without observations or histogram.")


class ServiceMetrics(StrictModel):
    """One service's figures at one phase, or why there are none."""

    service: str = Field(description="Service name.")
    url: str | None = Field(None, description="Base URL scraped; none when the service's address was unknown.")
    status: Literal["ok", "no-data"] = Field(description="ok, or no-data when the metrics could not be read.")
    detail: str = Field("", description="Why there is no data, or notes on the figures.")
    request_count: float | None = Field(None, description="Requests handled since the process started.")
    error_count: float | None = Field(None, description="Of those, answered 5xx.")
    error_ratio: float | None = Field(None, description="error_count / request_count; none without requests.")
    latency_available: bool = Field(False, description="Whether the latency histogram was exposed.")
    latency_p50: float | None = Field(None, description="Median latency in seconds, from histogram buckets.")
    latency_p95: float | None = Field(None, description="p95 latency in seconds, from histogram buckets.")
    routes: list[RouteMetrics] = Field(default_factory=list, description="Per-route figures.")

    def figure(self, metric: MetricName) -> tuple[float | None, str | None]:
        """The figure's value, and why it is missing when it is missing for lack of data."""
        if self.status != "ok":
            return None, f"no data ({self.detail})"
        if metric.startswith("latency") and not self.latency_available:
            return None, "no data (no latency histogram)"
        value: float | None = getattr(self, metric)
        return value, None


def service_metrics(service: str, url: str, parsed: ParsedMetrics) -> ServiceMetrics:
    """Figures of one service from its parsed metrics."""
    routes: list[RouteMetrics] = []
    errors_by_series: dict[Series, float] = defaultdict(float)
    for (method, route, status), value in parsed.requests.items():
        if status.startswith("5"):
            errors_by_series[(method, route)] += value
    for series, count in sorted(parsed.requests_by_route().items()):
        buckets = parsed.buckets.get(series)
        p95 = histogram_quantile(0.95, merge_buckets([buckets])) if buckets else None
        routes.append(RouteMetrics(method=series[0], route=series[1], request_count=count, error_count=errors_by_series[series], latency_p95=p95))
    requests = sum(parsed.requests.values())
    errors = sum(errors_by_series.values())
    merged = merge_buckets(list(parsed.buckets.values()))
    return ServiceMetrics(
        service=service,
        url=url,
        status="ok",
        detail="" if parsed.has_histogram else "no latency histogram exposed",
        request_count=requests,
        error_count=errors,
        error_ratio=errors / requests if requests else None,
        latency_available=parsed.has_histogram,
        latency_p50=histogram_quantile(0.5, merged),
        latency_p95=histogram_quantile(0.95, merged),
        routes=routes,
    )


class MetricsSnapshot(StrictModel):
    """Every service's figures at one moment of the rehearsal."""

    label: str = Field(description="The phase: 'before deploy', 'after deploy', 'after smoke' ...")
    environment: str = Field(description="The environment scraped.")
    taken_at: UtcDatetime = Field(default_factory=utcnow, description="When the scrape started (UTC).")
    services: list[ServiceMetrics] = Field(description="One entry per configured service, in config order.")


def _service_url(config: ObservedProject, env: str, service: str, urls: dict[str, str] | None) -> tuple[str | None, str]:
    """The service's base URL, or None and why (one service not running leaves the others readable)."""
    if urls is not None:
        return urls.get(service), f"no address given for service {service!r}"
    try:
        url = target_for(config).service_url(env, service)
    except StepError as exc:
        return None, str(exc)
    return url, f"service {service!r} is not running on {env}"


def capture_metrics(config: ObservedProject, env: str, label: str, *, urls: dict[str, str] | None = None) -> MetricsSnapshot:
    """Scrape every configured service's metrics now. Never raises for a service that cannot be
    read: that service is 'no data' with the reason. ``urls`` overrides the local staging target."""
    taken_at = utcnow()
    results: list[ServiceMetrics] = []
    for service in config.services:
        url, reason = _service_url(config, env, service.name, urls)
        if url is None:
            results.append(ServiceMetrics(service=service.name, status="no-data", detail=reason))
            continue
        try:
            parsed = scrape(url, config.observability)
        except Unreadable as exc:
            results.append(ServiceMetrics(service=service.name, url=url, status="no-data", detail=str(exc)))
            continue
        results.append(service_metrics(service.name, url, parsed))
    return MetricsSnapshot(label=label, environment=env, taken_at=taken_at, services=results)


class PrometheusWatch:
    """The Prometheus side of the baseline across one rehearsal: at each point, asks the
    configured PromQL. Without ``observability.prometheus.url`` the local staging target's server
    is used: started at the first point, pointed at the services' current addresses at every
    point (a deploy moves them), and asked only once it has scraped every service after the
    event, so "after smoke" includes the smoke traffic."""

    def __init__(self, config: ObservedProject, env: str, announce: Callable[[str], None] | None = None) -> None:
        self.config, self.env = config, env
        #: Says on the terminal that Prometheus was started and asked (a --prometheus run said nothing).
        self.announce = announce or (lambda line: None)
        section = config.observability.prometheus
        self.observer = PrometheusObserver(section) if section is not None else None
        self.local = section is not None and section.url is None

    def point(self, label: str) -> None:
        if self.observer is None:
            return
        unavailable = self._local_server() if self.local else None
        self.observer.capture(label, unavailable=unavailable)
        asked = f"unavailable: {unavailable}" if unavailable else f"PromQL checks asked of {self.observer.url}"
        self.announce(f"[PROMETHEUS] {label}: {asked}")

    def _local_server(self) -> str | None:
        """Start or retarget the local server and wait for fresh scrapes; why not, or None."""
        settings = self.config.staging.prometheus
        if not settings.enabled:
            return "observability.prometheus has no url and staging.prometheus.enabled is false: no server to ask"
        target = target_for(self.config)
        server = target.prometheus(self.env)
        if server is None:
            return f"observability.prometheus has no url and the {target.kind} staging target runs no Prometheus server: give observability.prometheus.url"
        since = datetime.now(UTC)
        urls: dict[str, str | None] = {}
        for service in self.config.services:
            try:
                urls[service.name] = target.service_url(self.env, service.name)
            except StepError:
                urls[service.name] = None
        fresh_start = server.url() is None
        try:
            url = server.start(
                settings.binary, urls, scrape_interval=settings.scrape_interval, timeout=settings.start_timeout, rule_files=list(settings.rule_files)
            )
        except StepError as exc:
            return str(exc)
        assert self.observer is not None
        if fresh_start:
            self.announce(f"[PROMETHEUS] started the local Prometheus server at {url} (scraping {', '.join(name for name, u in urls.items() if u)})")
        self.observer.url = url
        wait = settings.scrape_wait.total_seconds()
        stale = server.wait_for_scrapes(since, urls, wait)
        if fresh_start and not stale:
            # A window function (rate, increase) needs two samples: wait for a second scrape.
            stale = server.wait_for_scrapes(datetime.now(UTC), urls, wait)
        if stale:
            return f"Prometheus did not see {', '.join(stale)} as it runs now within {wait:g}s (current address scraped, no series of an earlier one; log: {server.root / 'prometheus.log'})"
        return None

    def finish(self) -> PrometheusResult | None:
        if self.observer is None:
            return None
        unavailable = None
        server = target_for(self.config).prometheus(self.env) if self.local else None
        if self.local and (self.observer.url == "" or server is None or server.url() is None):
            unavailable = "the local Prometheus server is not running"
        return self.observer.finish([service.name for service in self.config.services], unavailable=unavailable)


# --- alerts and the baseline --------------------------------------------------------------


AlertState = Literal["firing", "ok", "no-data"]


class AlertEvaluation(StrictModel):
    """One alert rule on one service at one phase."""

    alert: str = Field(description="The rule's name.")
    metric: MetricName = Field(description="The figure watched.")
    above: float = Field(description="The threshold; the alert fires when the figure is above it.")
    service: str = Field(description="Service.")
    phase: str = Field(description="Phase.")
    value: float | None = Field(None, description="The figure; none without data or without requests.")
    state: AlertState = Field(description="firing, ok (not firing), or no-data (the figure could not be read).")
    detail: str = Field("", description="Why there is no value.")


class ObservabilityResult(ArtifactModel):
    """observability-metrics.json: the figures behind observability-baseline.md."""

    step: str = Field(STEP, description="The protocol step that produced the artifact.")
    environment: str = Field(description="The environment observed.")
    phases: list[str] = Field(description="Phase labels in capture order.")
    snapshots: list[MetricsSnapshot] = Field(description="The figures per phase and service.")
    alerts: list[AlertEvaluation] = Field(description="Every alert rule evaluated on every service and phase it applies to.")
    prometheus: PrometheusResult | None = Field(
        None, description="The PromQL checks and firing alerts asked of Prometheus (observability.prometheus); none when not configured."
    )


def evaluate_alerts(rules: list[AlertRule], snapshots: list[MetricsSnapshot]) -> list[AlertEvaluation]:
    evaluations: list[AlertEvaluation] = []
    for rule in rules:
        for snapshot in snapshots:
            if rule.phases and snapshot.label not in rule.phases:
                continue
            for metrics in snapshot.services:
                if rule.services and metrics.service not in rule.services:
                    continue
                value, missing = metrics.figure(rule.metric)
                state: AlertState
                if missing:
                    state, detail = "no-data", missing
                elif value is None:
                    state, detail = "ok", "no requests yet"
                else:
                    state, detail = ("firing" if value > rule.above else "ok"), ""
                evaluations.append(
                    AlertEvaluation(
                        alert=rule.name,
                        metric=rule.metric,
                        above=rule.above,
                        service=metrics.service,
                        phase=snapshot.label,
                        value=value,
                        state=state,
                        detail=detail,
                    )
                )
    return evaluations


def observability_problems(result: ObservabilityResult) -> list[str]:
    """Firing alerts and figures without data, one sentence each (empty: baseline is clean)."""
    problems: list[str] = []
    unreadable: set[tuple[str, str]] = set()
    for snapshot in result.snapshots:
        for metrics in snapshot.services:
            if metrics.status != "ok":
                unreadable.add((metrics.service, snapshot.label))
                problems.append(f"{metrics.service} {snapshot.label}: no data ({metrics.detail})")
    for alert in result.alerts:
        if alert.state == "firing":
            problems.append(
                f"alert {alert.alert} firing for {alert.service} {alert.phase}: {alert.metric} {_number(alert.metric, alert.value)} > {_number(alert.metric, alert.above)}"
            )
        elif alert.state == "no-data" and (alert.service, alert.phase) not in unreadable:
            # A service without any data is reported once above; here only a figure missing on its own.
            problems.append(f"alert {alert.alert} for {alert.service} {alert.phase}: {alert.detail}")
    if result.prometheus is not None:
        problems += [f"prometheus {problem}" for problem in prometheus_problems(result.prometheus)]
    return problems


def write_observability_baseline(
    config: ObservedProject, release: str, snapshots: list[MetricsSnapshot], artifacts: Path, prometheus: PrometheusResult | None = None
) -> ObservabilityResult:
    """Evaluate the alerts on ``snapshots`` and write the JSON export and the Markdown baseline."""
    environment = snapshots[0].environment if snapshots else ""
    result = ObservabilityResult(
        release=release,
        environment=environment,
        phases=[snapshot.label for snapshot in snapshots],
        snapshots=snapshots,
        alerts=evaluate_alerts(config.observability.alerts, snapshots),
        prometheus=prometheus,
    )
    write_artifact(artifacts / names.OBSERVABILITY_METRICS, result)
    write_text_atomic(artifacts / names.OBSERVABILITY_BASELINE, render_baseline(config, result))
    return result


# --- rendering ----------------------------------------------------------------------------


def _number(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    if metric == "request_count":
        return f"{value:g}"
    if metric == "error_ratio":
        return f"{value:.2%}"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.3f} s"


def render_baseline(config: ObservedProject, result: ObservabilityResult) -> str:
    lines = [
        f"# Observability baseline: {config.project} {result.release} ({result.environment})",
        "",
        f"Generated {result.generated_at.isoformat()}. Phases: {' → '.join(result.phases) or '(none captured)'}.",
        "Figures are what each service process recorded since it started (a deploy starts a new",
        "process, so its counters start at zero). Error ratio is 5xx answers over all requests;",
        'latencies are interpolated from histogram buckets. "no data" means the metrics could not be read.',
        "",
        "## Alerts",
        "",
    ]
    if result.alerts:
        lines += ["| Alert | Rule | Service | Phase | Value | State |", "|---|---|---|---|---|---|"]
        order = {"firing": 0, "no-data": 1, "ok": 2}
        for alert in sorted(result.alerts, key=lambda a: order[a.state]):
            value = _number(alert.metric, alert.value) if alert.value is not None else (alert.detail or "-")
            state = {"firing": "**FIRING**", "no-data": "no data", "ok": "ok"}[alert.state]
            lines.append(f"| {alert.alert} | {alert.metric} > {_number(alert.metric, alert.above)} | {alert.service} | {alert.phase} | {value} | {state} |")
    else:
        lines.append("No alert rules are configured (observability.alerts).")
    lines += ["", "## Figures by phase", ""]
    for service in config.services:
        lines += [f"### {service.name}", "", "| Phase | Scraped at | Requests | Error ratio | p50 | p95 |", "|---|---|---|---|---|---|"]
        for snapshot in result.snapshots:
            metrics = next((m for m in snapshot.services if m.service == service.name), None)
            stamp = snapshot.taken_at.strftime("%H:%M:%S")
            if metrics is None or metrics.status != "ok":
                why = metrics.detail if metrics else "not scraped"
                lines.append(f"| {snapshot.label} | {stamp} | no data: {_cell(why)} | no data | no data | no data |")
                continue
            latency = (
                [_number("latency_p50", metrics.latency_p50), _number("latency_p95", metrics.latency_p95)]
                if metrics.latency_available
                else ["no data", "no data"]
            )
            lines.append(
                f"| {snapshot.label} | {stamp} | {_number('request_count', metrics.request_count)} | {_number('error_ratio', metrics.error_ratio)} | {latency[0]} | {latency[1]} |"
            )
        lines.append("")
    if result.snapshots:
        last = result.snapshots[-1]
        lines += [f'## Routes at "{last.label}"', "", "| Service | Method | Route | Requests | 5xx | p95 |", "|---|---|---|---|---|---|"]
        for metrics in last.services:
            for route in metrics.routes:
                lines.append(
                    f"| {metrics.service} | {route.method} | `{route.route}` | {route.request_count:g} | {route.error_count:g} | {_number('latency_p95', route.latency_p95)} |"
                )
        lines.append("")
    lines += ["## Chart", "", render_chart(config, result), ""]
    if result.prometheus is not None:
        lines += render_prometheus_markdown(result.prometheus)
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
_PANEL_W, _PANEL_H, _PAD = 250, 170, 36


def render_chart(config: ObservedProject, result: ObservabilityResult) -> str:
    """An inline SVG: one panel per figure (requests, error ratio, p95), phases along x, one line
    per service, alert thresholds dashed; a phase without data is marked 'n/d' and not drawn."""
    # Here and in _panel, not at the top: xml.sax.saxutils imports urllib.request, http.client and
    # ssl, which a protocol run that draws no chart does not need.
    from xml.sax.saxutils import escape

    panels: list[MetricName] = ["request_count", "error_ratio", "latency_p95"]
    services = [service.name for service in config.services]
    width = len(panels) * (_PANEL_W + _PAD) + _PAD
    height = _PANEL_H + 2 * _PAD + 18 * ((len(services) + 3) // 4)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">']
    out.append(f'<rect width="{width}" height="{height}" fill="white"/>')
    for index, metric in enumerate(panels):
        left = _PAD + index * (_PANEL_W + _PAD)
        out += _panel(result, services, metric, left, _PAD)
    legend_top = _PANEL_H + _PAD + 40
    for index, name in enumerate(services):
        x = _PAD + (index % 4) * 160
        y = legend_top + 18 * (index // 4)
        colour = _COLOURS[index % len(_COLOURS)]
        out.append(f'<line x1="{x}" y1="{y - 4}" x2="{x + 20}" y2="{y - 4}" stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{x + 26}" y="{y}">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _panel(result: ObservabilityResult, services: list[str], metric: MetricName, left: float, top: float) -> list[str]:
    from xml.sax.saxutils import escape

    phases = result.phases
    thresholds = sorted({alert.above for alert in result.alerts if alert.metric == metric})
    values: dict[str, list[tuple[float | None, bool]]] = {}
    for name in services:
        row = []
        for snapshot in result.snapshots:
            metrics = next((m for m in snapshot.services if m.service == name), None)
            value, missing = metrics.figure(metric) if metrics else (None, "not scraped")
            row.append((value, missing is not None))
        values[name] = row
    known = [v for row in values.values() for v, _ in row if v is not None]
    top_value = max(known + thresholds + [0.0]) or 1.0
    top_value *= 1.1

    def x_of(i: int) -> float:
        return left + (_PANEL_W * (i + 0.5) / len(phases) if phases else 0)

    def y_of(v: float) -> float:
        return top + _PANEL_H - _PANEL_H * v / top_value

    out = [
        f'<text x="{left}" y="{top - 12}" font-weight="bold">{escape(_METRIC_TITLES[metric])}</text>',
        f'<rect x="{left}" y="{top}" width="{_PANEL_W}" height="{_PANEL_H}" fill="none" stroke="#999"/>',
        f'<text x="{left - 4}" y="{top + 10}" text-anchor="end" font-size="9">{escape(_number(metric, top_value))}</text>',
        f'<text x="{left - 4}" y="{top + _PANEL_H}" text-anchor="end" font-size="9">0</text>',
    ]
    for i, phase in enumerate(phases):
        out.append(f'<text x="{x_of(i):.1f}" y="{top + _PANEL_H + 14}" text-anchor="middle" font-size="9">{escape(phase)}</text>')
    for threshold in thresholds:
        y = y_of(threshold)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + _PANEL_W}" y2="{y:.1f}" stroke="#d62728" stroke-dasharray="4 3"/>')
        out.append(
            f'<text x="{left + _PANEL_W - 2}" y="{y - 3:.1f}" text-anchor="end" font-size="9" fill="#d62728">alert &gt; {escape(_number(metric, threshold))}</text>'
        )
    for s_index, name in enumerate(services):
        colour = _COLOURS[s_index % len(_COLOURS)]
        points: list[str] = []
        for i, (value, no_data) in enumerate(values[name]):
            if value is None:
                if no_data:
                    out.append(f'<text x="{x_of(i):.1f}" y="{top + _PANEL_H - 4 - 10 * s_index}" text-anchor="middle" font-size="9" fill="{colour}">n/d</text>')
                if len(points) > 1:
                    out.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" stroke-width="2"/>')
                points = []
                continue
            x, y = x_of(i), y_of(value)
            points.append(f"{x:.1f},{y:.1f}")
            out.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{escape(name)} {escape(phases[i])}: {escape(_number(metric, value))}</title></circle>'
            )
        if len(points) > 1:
            out.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" stroke-width="2"/>')
    return out
