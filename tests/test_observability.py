"""Observability baseline: Prometheus parsing, histogram quantiles, alerts, and 'no data' from
real services (the demo service, and a static file server that is not a metrics endpoint)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

import pytest

from pytest_predeploy.core.artifacts import read_artifact
from pytest_predeploy.rehearsal.observability import (
    PHASE_AFTER_DEPLOY,
    PHASE_AFTER_SMOKE,
    PHASE_BEFORE_DEPLOY,
    ObservabilityConfig,
    ObservabilityResult,
    capture_metrics,
    histogram_quantile,
    merge_buckets,
    observability_problems,
    parse_metrics,
    service_metrics,
    write_observability_baseline,
)
from tests.smoke_project import StartService, free_port, make_config, start_service, static_server  # noqa: F401  (fixtures)

INF = float("inf")

#: Two routes with the same buckets: 100 observations in all, 50 under 0.1 s, 90 under 0.5 s.
METRICS_TEXT = """\
# TYPE http_requests_total counter
http_requests_total{method="GET",route="/a",status="200"} 60
http_requests_total{method="GET",route="/a",status="503"} 5
http_requests_total{method="POST",route="/b",status="201"} 35
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.1",method="GET",route="/a"} 40
http_request_duration_seconds_bucket{le="0.5",method="GET",route="/a"} 60
http_request_duration_seconds_bucket{le="1.0",method="GET",route="/a"} 65
http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/a"} 65
http_request_duration_seconds_count{method="GET",route="/a"} 65
http_request_duration_seconds_sum{method="GET",route="/a"} 12
http_request_duration_seconds_bucket{le="0.1",method="POST",route="/b"} 10
http_request_duration_seconds_bucket{le="0.5",method="POST",route="/b"} 30
http_request_duration_seconds_bucket{le="1.0",method="POST",route="/b"} 35
http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/b"} 35
http_request_duration_seconds_count{method="POST",route="/b"} 35
http_request_duration_seconds_sum{method="POST",route="/b"} 9
"""


def test_histogram_quantiles_interpolate_inside_buckets_like_promql() -> None:
    buckets = [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (INF, 100.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)  # rank 50: top of the first bucket
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.05)  # rank 25: half-way from 0 to 0.1
    assert histogram_quantile(0.7, buckets) == pytest.approx(0.3)  # rank 70: half-way through 0.1..0.5
    assert histogram_quantile(0.95, buckets) == pytest.approx(0.75)  # rank 95: half-way through 0.5..1
    # A rank in the +Inf bucket answers the highest finite bound; no observations, no answer.
    assert histogram_quantile(0.95, [(0.1, 10.0), (INF, 100.0)]) == pytest.approx(0.1)
    assert histogram_quantile(0.5, [(0.1, 0.0), (INF, 0.0)]) is None
    assert histogram_quantile(0.5, [(0.1, 5.0), (0.5, 10.0)]) is None  # no +Inf bucket: incomplete


def test_parsed_metrics_give_counts_error_ratio_and_percentiles() -> None:
    parsed = parse_metrics(METRICS_TEXT, ObservabilityConfig())
    assert merge_buckets(list(parsed.buckets.values())) == [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (INF, 100.0)]

    figures = service_metrics("api", "http://x", parsed)

    assert (figures.request_count, figures.error_count, figures.error_ratio) == (100, 5, 0.05)
    assert figures.latency_p50 == pytest.approx(0.1)
    assert figures.latency_p95 == pytest.approx(0.75)
    route_a = next(route for route in figures.routes if route.route == "/a")
    assert (route_a.request_count, route_a.error_count) == (65, 5)
    assert route_a.latency_p95 == pytest.approx(0.5 + 0.5 * (0.95 * 65 - 60) / 5)


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_capture_reads_the_demo_service_figures(tmp_path: Path, start_service: StartService) -> None:
    config = make_config(tmp_path, services=["api"], suites=[])
    url = start_service("api")
    for path in ["/api/products", "/api/products/1", "/api/products/2", "/api/products/99"]:
        _get(url + path)

    snapshot = capture_metrics(config, "staging", PHASE_AFTER_SMOKE, urls={"api": url})

    (api,) = snapshot.services
    assert api.status == "ok"
    # Started after the port file exists, so the only requests are ours (404 is not an error).
    assert (api.request_count, api.error_count, api.error_ratio) == (4, 0, 0)
    assert api.latency_p50 is not None and api.latency_p95 is not None and 0 < api.latency_p50 <= api.latency_p95
    assert {(r.route, r.request_count) for r in api.routes} == {("/api/products", 1), ("/api/products/{id}", 3)}


def test_an_unhealthy_service_fires_the_error_ratio_alert(tmp_path: Path, start_service: StartService) -> None:
    config = make_config(tmp_path, services=["api", "worker"], suites=[])
    urls = {"api": start_service("api"), "worker": start_service("worker", fault="unhealthy")}
    for _ in range(3):
        assert _get(urls["worker"] + "/healthz") == 503
        assert _get(urls["api"] + "/healthz") == 200

    result = write_observability_baseline(config, "v1.2", [capture_metrics(config, "staging", PHASE_AFTER_DEPLOY, urls=urls)], tmp_path)

    states = {(a.alert, a.service): a.state for a in result.alerts}
    assert states == {("high-error-ratio", "api"): "ok", ("high-error-ratio", "worker"): "firing", ("slow-p95", "api"): "ok", ("slow-p95", "worker"): "ok"}
    assert observability_problems(result) == ["alert high-error-ratio firing for worker after deploy: error_ratio 100.00% > 5.00%"]
    assert "| high-error-ratio | error_ratio > 5.00% | worker | after deploy | 100.00% | **FIRING** |" in (tmp_path / "observability-baseline.md").read_text()


def test_unreadable_metrics_are_no_data_never_zeros(tmp_path: Path, static_server: Callable[[dict[str, str]], str]) -> None:
    urls = {"api": static_server({"metrics": "<html>dashboard moved</html>"}), "worker": f"http://127.0.0.1:{free_port()}"}
    config = make_config(tmp_path, services=["api", "worker", "jobs"], suites=[], urls=urls)

    snapshot = capture_metrics(config, "staging", PHASE_BEFORE_DEPLOY)
    result = write_observability_baseline(config, "v1.2", [snapshot], tmp_path)

    details = {m.service: (m.status, m.request_count, m.error_ratio, m.latency_p95, m.detail) for m in snapshot.services}
    assert details["api"][:4] == ("no-data", None, None, None) and "not Prometheus text" in details["api"][4]
    assert details["worker"][:4] == ("no-data", None, None, None) and "could not be reached" in details["worker"][4]
    assert details["jobs"] == ("no-data", None, None, None, "service 'jobs' is not running on staging")
    assert {a.state for a in result.alerts} == {"no-data"}
    problems = observability_problems(result)
    assert len(problems) == 3 and all(": no data (" in p for p in problems)
    baseline = (tmp_path / "observability-baseline.md").read_text()
    assert "| before deploy |" in baseline and "no data: " in baseline and "| 0 |" not in baseline


def test_metrics_without_the_request_counter_are_no_data(tmp_path: Path, static_server: Callable[[dict[str, str]], str]) -> None:
    config = make_config(tmp_path, services=["api"], suites=[])
    url = static_server({"metrics": "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1.5\n"})

    (api,) = capture_metrics(config, "staging", PHASE_AFTER_SMOKE, urls={"api": url}).services

    assert (api.status, api.request_count) == ("no-data", None)
    assert api.detail == "no http_requests_total counter in the metrics"


def test_baseline_has_tables_chart_and_a_json_export_across_phases(tmp_path: Path, start_service: StartService) -> None:
    config = make_config(tmp_path, services=["api", "worker"], suites=[])
    urls = {"api": start_service("api", release="v1.1"), "worker": start_service("worker", release="v1.1")}
    snapshots = [capture_metrics(config, "staging", PHASE_BEFORE_DEPLOY, urls=urls)]
    _get(urls["api"] + "/api/products")
    snapshots.append(capture_metrics(config, "staging", PHASE_AFTER_DEPLOY, urls=urls))
    for _ in range(4):
        _get(urls["worker"] + "/jobs/1")
    snapshots.append(capture_metrics(config, "staging", PHASE_AFTER_SMOKE, urls={"api": urls["api"]}))  # worker unknown: no data

    result = write_observability_baseline(config, "v1.2", snapshots, tmp_path)

    assert result.phases == [PHASE_BEFORE_DEPLOY, PHASE_AFTER_DEPLOY, PHASE_AFTER_SMOKE]
    assert read_artifact(tmp_path / "observability-metrics.json", ObservabilityResult) == result
    assert json.loads((tmp_path / "observability-metrics.json").read_text())["step"] == "observability"
    counts = [[m.request_count for m in s.services] for s in result.snapshots]
    assert counts == [[0, 0], [1, 0], [1, None]]
    baseline = (tmp_path / "observability-baseline.md").read_text()
    assert "### api" in baseline and "### worker" in baseline
    assert "| after smoke |" in baseline and "no data: no address given for service 'worker'" in baseline
    svg = baseline[baseline.index("<svg") : baseline.index("</svg>") + len("</svg>")]
    assert svg.count("<polyline") >= 2 and "n/d" in svg and "alert &gt; 5.00%" in svg
    assert ElementTree.fromstring(svg).tag == "{http://www.w3.org/2000/svg}svg"  # well-formed
    assert observability_problems(result) == ["worker after smoke: no data (no address given for service 'worker')"]
