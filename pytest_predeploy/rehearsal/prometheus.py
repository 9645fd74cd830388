"""Observability against a Prometheus server: PromQL queries with thresholds, compared with the
previous release, at the points of the rehearsal; the alerts firing for the staging services.

The teams that adopt this tool already express their release checks as PromQL against their own
Prometheus (Argo Rollouts analysis, Keptn quality gates, Kayenta). Each configured query is
evaluated with ``/api/v1/query`` at exactly the instant each rehearsal point was captured (the
instant is recorded, so anyone can ask Prometheus the same question and get the same answer),
and over the whole rehearsal with ``/api/v1/query_range`` for the chart.

A query that cannot be answered (server unreachable, query rejected, empty result, NaN) is
"no data" with the reason, never a pass: a missing figure must not read as a healthy one.
"""

from __future__ import annotations

import math
import urllib.parse
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from pytest_predeploy.core.fields import Duration, StrictModel, UtcDatetime
from pytest_predeploy.core.httpget import NoAnswer, http_get
from pytest_predeploy.core.nesting import json_loads
from pytest_predeploy.core.timechart import Line, time_series_svg
from pytest_predeploy.rehearsal.settings import Comparison, PrometheusQuery, promql_duration
from pytest_predeploy.rehearsal.settings import PrometheusConfig as PrometheusConfig

#: The point whose values stand for the previous release in comparisons (captured before the
#: candidate takes traffic).
BASELINE_PHASE = "before deploy"
#: Range queries are capped to about this many points per series: enough for a small chart.
RANGE_POINTS = 120


# --- the HTTP API -------------------------------------------------------------------------


class PrometheusUnavailable(Exception):
    """The server could not answer the question; the text says why in a few words."""


def _rfc3339(at: datetime) -> str:
    return f"{at.timestamp():.3f}"


def _parse_value(raw: object) -> float | None:
    """A sample value as Prometheus sends it (a string; 'NaN' and '+Inf' included); None for NaN."""
    try:
        value = float(str(raw))
    except ValueError:
        return None
    return None if math.isnan(value) else value


class PrometheusClient:
    """The few read-only calls of Prometheus' HTTP API we use."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        target = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        try:
            response = http_get(target, self.timeout)
        except NoAnswer as exc:
            raise PrometheusUnavailable(f"Prometheus at {self.url} {exc}") from None
        if response.status != 200:
            # A rejected query answers 400/422 with a JSON error: that message is the useful part.
            detail = ""
            try:
                detail = str(json_loads(response.body).get("error", ""))
            except (ValueError, AttributeError):
                pass
            raise PrometheusUnavailable(f"Prometheus at {self.url} answered HTTP {response.status}" + (f": {detail}" if detail else ""))
        try:
            answer = json_loads(response.body)
        except ValueError:
            raise PrometheusUnavailable(f"{self.url}{path} did not answer JSON (is this a Prometheus server?)") from None
        if not isinstance(answer, dict) or answer.get("status") != "success" or "data" not in answer:
            error = answer.get("error", "no 'data' in the answer") if isinstance(answer, dict) else "not a JSON object"
            raise PrometheusUnavailable(f"Prometheus at {self.url} did not answer {path}: {error}")
        return answer["data"]

    def ready(self) -> bool:
        try:
            return http_get(self.url + "/-/ready", self.timeout, max_bytes=4096).status == 200
        except NoAnswer:
            return False

    def instant(self, promql: str, at: datetime) -> list[tuple[dict[str, str], float | None]]:
        """The query's value at ``at``: one (labels, value) per series; a scalar has no labels."""
        data = self._get("/api/v1/query", {"query": promql, "time": _rfc3339(at)})
        kind, result = data.get("resultType"), data.get("result")
        if kind == "vector" and isinstance(result, list):
            return [(dict(item.get("metric", {})), _parse_value(item.get("value", [0, "NaN"])[1])) for item in result]
        if kind == "scalar" and isinstance(result, list) and len(result) == 2:
            return [({}, _parse_value(result[1]))]
        raise PrometheusUnavailable(f"the query returned a {kind}, not a number per series (wrap a range selector in rate() or avg_over_time())")

    def range(self, promql: str, start: datetime, end: datetime, step: timedelta) -> list[tuple[dict[str, str], list[tuple[datetime, float | None]]]]:
        data = self._get("/api/v1/query_range", {"query": promql, "start": _rfc3339(start), "end": _rfc3339(end), "step": f"{step.total_seconds():.3f}"})
        out = []
        for item in data.get("result") or []:
            points = [(datetime.fromtimestamp(float(t), tz=UTC), _parse_value(v)) for t, v in item.get("values", [])]
            out.append((dict(item.get("metric", {})), points))
        return out

    def alerts(self) -> list[dict[str, Any]]:
        data = self._get("/api/v1/alerts")
        alerts = data.get("alerts") if isinstance(data, dict) else None
        return [alert for alert in alerts or [] if isinstance(alert, dict)]

    def targets(self) -> list[dict[str, Any]]:
        data = self._get("/api/v1/targets", {"state": "active"})
        return [target for target in (data.get("activeTargets") or []) if isinstance(target, dict)]


# --- evaluation ---------------------------------------------------------------------------

State = Literal["ok", "breach", "no-data"]


class SeriesValue(StrictModel):
    """One series of a query at one point, judged against the thresholds."""

    labels: dict[str, str] = Field(default_factory=dict, description="The series' labels (empty for an aggregate or a scalar).")
    value: float | None = Field(None, description="The value; none for NaN.")
    state: State = Field(description="ok, breach (a threshold or the comparison is broken), or no-data.")
    detail: str = Field("", description="What was broken, or why there is no value.")
    previous: float | None = Field(None, description="The same series at the pre-deploy point (previous release), when compared.")
    change: float | None = Field(None, description="Ratio or difference to the previous value, when compared.")


class QueryPoint(StrictModel):
    """A query at one point of the rehearsal."""

    phase: str = Field(description="The point: 'before deploy', 'after deploy', 'after smoke'.")
    evaluated_at: UtcDatetime = Field(description="The instant the query was evaluated at (the 'time' parameter sent).")
    state: State = Field(description="breach if any series breaches, no-data when there is no value at all, else ok.")
    detail: str = Field("", description="Why there is no data.")
    series: list[SeriesValue] = Field(default_factory=list, description="Values per series.")


class TimeSeries(StrictModel):
    """One series over the rehearsal (chart data)."""

    labels: dict[str, str] = Field(default_factory=dict, description="The series' labels.")
    points: list[tuple[UtcDatetime, float | None]] = Field(default_factory=list, description="(time, value) pairs; none for NaN.")


class QueryResult(StrictModel):
    """One configured query: what was asked, and its answers."""

    name: str = Field(description="The query's name.")
    promql: str = Field(description="The PromQL sent, window filled in.")
    above: float | None = Field(None, description="Upper threshold.")
    below: float | None = Field(None, description="Lower threshold.")
    window: Duration = Field(description="The query's window.")
    compare: Comparison | None = Field(None, description="The comparison with the previous release, if any.")
    points: list[QueryPoint] = Field(default_factory=list, description="The query at each point of the rehearsal.")
    range_detail: str = Field("", description="Why the time series is missing, when it is.")
    series: list[TimeSeries] = Field(default_factory=list, description="The query over the rehearsal (query_range), for the chart.")


class FiringAlert(StrictModel):
    """An alert Prometheus reported firing for a staging service."""

    name: str = Field(description="alertname.")
    service: str = Field(description="The staging service the alert's labels name.")
    labels: dict[str, str] = Field(default_factory=dict, description="The alert's labels.")
    active_at: str = Field("", description="When the alert became active, as Prometheus reports it.")
    value: str = Field("", description="The alert expression's value, as Prometheus reports it.")


class PrometheusResult(StrictModel):
    """Everything asked of Prometheus during the rehearsal."""

    url: str = Field(description="The server asked.")
    queries: list[QueryResult] = Field(default_factory=list, description="Every configured query.")
    alerts_state: Literal["ok", "no-data"] = Field("ok", description="no-data when the alerts could not be read.")
    alerts_detail: str = Field("", description="Why the alerts could not be read.")
    alerts: list[FiringAlert] = Field(default_factory=list, description="Alerts firing for the staging services when the rehearsal ended.")


def _label_text(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else ""


def judge(query: PrometheusQuery, labels: dict[str, str], value: float | None, previous: dict[str, float | None] | None) -> SeriesValue:
    """One series against the thresholds and, when ``previous`` (the pre-deploy values by label
    text) is given, against the previous release."""
    if value is None:
        return SeriesValue(labels=labels, state="no-data", detail="NaN (nothing to compute from, e.g. no requests in the window)")
    broken: list[str] = []
    if query.above is not None and value > query.above:
        broken.append(f"{value:g} > {query.above:g}")
    if query.below is not None and value < query.below:
        broken.append(f"{value:g} < {query.below:g}")
    series = SeriesValue(labels=labels, value=value, state="ok")
    if query.compare is not None and previous is not None:
        key = _label_text(labels)
        if key not in previous and len(previous) == 1:
            # One series on each side (an aggregate whose labels changed with the release): compare them.
            key = next(iter(previous))
        before = previous.get(key)
        if key not in previous or before is None:
            series.state, series.detail = "no-data", "no value of this series before the deploy to compare with"
            return series
        series.previous = before
        if query.compare.mode == "difference":
            series.change = value - before
        elif before == 0:
            series.state, series.detail = "no-data", f"the previous release's value is 0, a ratio to it is undefined (now {value:g})"
            return series
        else:
            series.change = value / before
        change, mode = series.change, query.compare.mode
        if query.compare.above is not None and change > query.compare.above:
            broken.append(f"{mode} to previous {change:g} > {query.compare.above:g} ({value:g} vs {before:g})")
        if query.compare.below is not None and change < query.compare.below:
            broken.append(f"{mode} to previous {change:g} < {query.compare.below:g} ({value:g} vs {before:g})")
    if broken:
        series.state, series.detail = "breach", "; ".join(broken)
    return series


class PrometheusObserver:
    """Asks the configured queries at each point of the rehearsal, then the range and the alerts."""

    def __init__(self, config: PrometheusConfig, url: str | None = None) -> None:
        """``url`` is the server to ask when the config names none (the local target's); it may
        also be set later, once that server runs."""
        self.config = config
        self.url = (url or config.url or "").rstrip("/")
        self.results = [QueryResult(name=q.name, promql=q.promql, above=q.above, below=q.below, window=q.window, compare=q.compare) for q in config.queries]

    @property
    def client(self) -> PrometheusClient:
        return PrometheusClient(self.url, self.config.timeout.total_seconds())

    def capture(self, phase: str, at: datetime | None = None, *, unavailable: str | None = None) -> None:
        """Evaluate every query at ``at`` (default: now). Never raises: a failure is "no data";
        ``unavailable`` records every query as no data for that reason without asking."""
        at = at or datetime.now(UTC)
        if unavailable is None and not self.url:
            unavailable = "no Prometheus server to ask (observability.prometheus.url, or staging.prometheus.enabled)"
        for query, result in zip(self.config.queries, self.results, strict=True):
            previous = self._previous(result) if phase != BASELINE_PHASE and query.compare is not None else None
            try:
                if unavailable is not None:
                    raise PrometheusUnavailable(unavailable)
                answer = self.client.instant(query.promql, at)
            except PrometheusUnavailable as exc:
                result.points.append(QueryPoint(phase=phase, evaluated_at=at, state="no-data", detail=str(exc)))
                continue
            if not answer:
                result.points.append(QueryPoint(phase=phase, evaluated_at=at, state="no-data", detail="empty result: no series matched the query"))
                continue
            series = [judge(query, labels, value, previous) for labels, value in sorted(answer, key=lambda item: _label_text(item[0]))]
            states = {s.state for s in series}
            state: State = "breach" if "breach" in states else ("no-data" if states == {"no-data"} else "ok")
            detail = series[0].detail if state == "no-data" else ""
            result.points.append(QueryPoint(phase=phase, evaluated_at=at, state=state, detail=detail, series=series))

    @staticmethod
    def _previous(result: QueryResult) -> dict[str, float | None]:
        for point in result.points:
            if point.phase == BASELINE_PHASE:
                return {_label_text(s.labels): s.value for s in point.series}
        return {}

    def finish(self, services: list[str], *, unavailable: str | None = None) -> PrometheusResult:
        """The time series of each query over the rehearsal, and the alerts firing now."""
        if unavailable is None and not self.url:
            unavailable = "no Prometheus server to ask"
        outcome = PrometheusResult(url=self.url or "(none)", queries=self.results)
        if unavailable is not None:
            for result in self.results:
                result.range_detail = unavailable
            outcome.alerts_state, outcome.alerts_detail = "no-data", unavailable
            return outcome
        for query, result in zip(self.config.queries, self.results, strict=True):
            if not result.points:
                result.range_detail = "no point of the rehearsal was captured"
                continue
            start = result.points[0].evaluated_at - query.window
            end = result.points[-1].evaluated_at
            step = timedelta(seconds=max(1.0, (end - start).total_seconds() / RANGE_POINTS))
            try:
                answer = self.client.range(query.promql, start, end, step)
            except PrometheusUnavailable as exc:
                result.range_detail = str(exc)
                continue
            result.series = [TimeSeries(labels=labels, points=points) for labels, points in sorted(answer, key=lambda item: _label_text(item[0]))]
            if not answer:
                result.range_detail = "empty result: no series matched the query over the rehearsal"
        try:
            alerts = self.client.alerts()
        except PrometheusUnavailable as exc:
            outcome.alerts_state, outcome.alerts_detail = "no-data", str(exc)
            return outcome
        for alert in alerts:
            labels = {str(k): str(v) for k, v in (alert.get("labels") or {}).items()}
            if alert.get("state") != "firing":
                continue
            service = next((labels[label] for label in self.config.alert_labels if labels.get(label) in services), None)
            if service is None:
                continue
            outcome.alerts.append(
                FiringAlert(
                    name=labels.get("alertname", "(unnamed)"),
                    service=service,
                    labels=labels,
                    active_at=str(alert.get("activeAt", "")),
                    value=str(alert.get("value", "")),
                )
            )
        return outcome


def prometheus_problems(result: PrometheusResult) -> list[str]:
    """Breaches, missing figures and firing alerts, one sentence each, with the PromQL and values."""
    problems: list[str] = []
    for query in result.queries:
        for point in query.points:
            if point.state == "no-data" and not point.series:
                problems.append(f"query {query.name} {point.phase}: no data ({point.detail}) for `{query.promql}`")
                continue
            for series in point.series:
                if series.state == "ok":
                    continue
                what = "breach" if series.state == "breach" else "no data"
                problems.append(f"query {query.name} {point.phase}: {what} {series.detail} for `{query.promql}`{_label_text(series.labels)}")
    if result.alerts_state != "ok":
        problems.append(f"alerts: no data ({result.alerts_detail})")
    for alert in result.alerts:
        problems.append(f"alert {alert.name} firing for {alert.service} (active since {alert.active_at or 'unknown'})")
    return problems


# --- rendering ----------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _point_text(point: QueryPoint) -> str:
    if not point.series:
        return "-"
    parts = []
    for series in point.series:
        value = "NaN" if series.value is None else f"{series.value:g}"
        label = _label_text(series.labels)
        mark = {"ok": "", "breach": " **BREACH**", "no-data": " no data"}[series.state]
        parts.append(f"{label} {value}{mark}".strip())
    return "<br>".join(parts)


def query_chart(query: QueryResult) -> str:
    """The query over the rehearsal: one line per series, thresholds dashed, one marker per point."""
    lines = [Line(label=_label_text(s.labels) or query.name, points=list(s.points)) for s in query.series]
    thresholds = [(label, value) for label, value in (("above", query.above), ("below", query.below)) if value is not None]
    markers = [(point.phase, point.evaluated_at) for point in query.points]
    return time_series_svg(query.name, lines, thresholds=thresholds, markers=markers)


def render_prometheus_markdown(result: PrometheusResult) -> list[str]:
    """The Prometheus section of the observability baseline: the PromQL, thresholds, values per
    point, a chart per query and the firing alerts."""
    lines = [
        "## Prometheus queries",
        "",
        f"Asked of {result.url}. Each value is the query at the recorded instant (`/api/v1/query?time=`);",
        'the charts are `/api/v1/query_range` over the rehearsal. "no data" is never a pass.',
        "",
    ]
    if not result.queries:
        lines += ["No queries are configured (observability.prometheus.queries).", ""]
    for query in result.queries:
        lines += [f"### {query.name}", "", f"```promql\n{query.promql}\n```", ""]
        checks = []
        if query.above is not None:
            checks.append(f"above {query.above:g}")
        if query.below is not None:
            checks.append(f"below {query.below:g}")
        if query.compare is not None:
            bounds = ", ".join(f"{name} {v:g}" for name, v in (("above", query.compare.above), ("below", query.compare.below)) if v is not None)
            checks.append(f"{query.compare.mode} to the previous release ({BASELINE_PHASE}) {bounds}")
        window = promql_duration(query.window)
        lines += [f"Breach when: {'; '.join(checks)}. Window {window} (fills `{{window}}` in the query; the chart starts {window} before the first point).", ""]
        lines += ["| Point | Evaluated at (UTC) | Values | Verdict | Detail |", "|---|---|---|---|---|"]
        for point in query.points:
            verdict = {"ok": "ok", "breach": "**BREACH**", "no-data": "no data"}[point.state]
            details = "; ".join(s.detail for s in point.series if s.detail) or point.detail
            lines.append(
                f"| {point.phase} | {point.evaluated_at.isoformat(timespec='milliseconds')} | {_cell(_point_text(point))} | {verdict} | {_cell(details)} |"
            )
        lines += ["", query_chart(query), ""]
        if query.range_detail:
            lines += [f"Time series: no data ({query.range_detail}).", ""]
    lines += ["### Alerts firing for the staging services", ""]
    if result.alerts_state != "ok":
        lines.append(f"no data: {result.alerts_detail}")
    elif not result.alerts:
        lines.append("None.")
    else:
        lines += ["| Alert | Service | Active since | Value | Labels |", "|---|---|---|---|---|"]
        for alert in result.alerts:
            lines.append(f"| {alert.name} | {alert.service} | {alert.active_at} | {alert.value} | {_cell(_label_text(alert.labels))} |")
    lines.append("")
    return lines
