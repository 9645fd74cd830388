"""Observability against a real Prometheus server (Debian's ``prometheus``) scraping real demo
services: values recorded at each point equal what Prometheus answers for the same query at the
same instant; a broken threshold and a broken comparison with the previous release are breaches
naming the PromQL and the values; a stopped server or an empty result is "no data", never a pass.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree

import pytest
from pydantic import ValidationError

from pytest_predeploy.rehearsal.prometheus import (
    PrometheusConfig,
    PrometheusObserver,
    PrometheusResult,
    prometheus_problems,
    render_prometheus_markdown,
)
from pytest_predeploy.targets.prometheus import INSTALL_HINT, PrometheusServer, find_binary
from tests.smoke_project import StartService, start_service  # noqa: F401  (fixture)

needs_prometheus = pytest.mark.skipif(find_binary("prometheus") is None, reason=f"needs the Prometheus server: {INSTALL_HINT}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PrometheusServer]:
    """A Prometheus server folder; whatever runs from it is stopped at teardown."""
    prom = PrometheusServer(tmp_path / "prometheus")
    yield prom
    prom.stop()


def _start(server: PrometheusServer, targets: dict[str, str | None], rule_files: list[Path] | None = None) -> str:
    return server.start("prometheus", targets, scrape_interval=timedelta(seconds=1), timeout=timedelta(seconds=30), rule_files=rule_files)


def _get(url: str, times: int = 1) -> None:
    for _ in range(times):
        with urllib.request.urlopen(url, timeout=5) as response:
            response.read()


def _ask(prom_url: str, promql: str, at: datetime) -> list[tuple[dict[str, str], float]]:
    query = urllib.parse.urlencode({"query": promql, "time": f"{at.timestamp():.3f}"})
    with urllib.request.urlopen(f"{prom_url}/api/v1/query?{query}", timeout=5) as response:
        answer = json.loads(response.read())
    return [(item["metric"], float(item["value"][1])) for item in answer["data"]["result"]]


def _fresh(server: PrometheusServer, targets: dict[str, str | None]) -> None:
    """Wait until Prometheus has scraped each service at its current address after now."""
    assert server.wait_for_scrapes(datetime.now(UTC), targets, timeout=20) == []


def _config(url: str, queries: list[dict[str, object]]) -> PrometheusConfig:
    return PrometheusConfig.model_validate({"url": url, "queries": queries})


@needs_prometheus
def test_recorded_values_are_what_prometheus_answers_at_the_same_instant(server: PrometheusServer, start_service: StartService, tmp_path: Path) -> None:
    api, worker = start_service("api"), start_service("worker")
    url = _start(server, {"api": api, "worker": worker})
    assert url.startswith("http://127.0.0.1:")
    _get(api + "/healthz", 3)
    _fresh(server, {"api": api, "worker": worker})
    config = _config(
        url,
        [
            {"name": "requests", "query": "sum by (service) (http_requests_total)", "above": 1000},
            {"name": "up", "query": "sum(up)", "below": 2, "window": "30s"},
        ],
    )
    observer = PrometheusObserver(config)
    observer.capture("before deploy")
    _get(worker + "/healthz", 5)
    _fresh(server, {"api": api, "worker": worker})
    observer.capture("after smoke")
    result = observer.finish(["api", "worker"])

    for query in result.queries:
        for point in query.points:
            expected = {json.dumps(labels, sort_keys=True): value for labels, value in _ask(url, query.promql, point.evaluated_at)}
            recorded = {json.dumps(s.labels, sort_keys=True): s.value for s in point.series}
            assert recorded == expected and recorded, (query.name, point.phase)
    requests = result.queries[0]
    assert {s.labels["service"] for s in requests.points[-1].series} == {"api", "worker"}
    assert [p.state for q in result.queries for p in q.points] == ["ok"] * 4
    assert prometheus_problems(result) == []
    assert requests.series and all(s.points for s in requests.series)  # the chart's range query
    markdown = "\n".join(render_prometheus_markdown(result))
    assert "sum by (service) (http_requests_total)" in markdown
    ElementTree.fromstring(markdown[markdown.index("<svg") : markdown.index("</svg>") + 6])

    pid = json.loads(server.state_path.read_text())["pid"]
    assert server.stop() == "stopped"
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
    assert (tmp_path / "prometheus" / "data").is_dir()  # the data stays with the target
    config_text = (tmp_path / "prometheus" / "prometheus.yml").read_text()
    assert "scrape_interval: 1s" in config_text


@needs_prometheus
def test_a_threshold_the_candidate_breaks_is_a_breach_naming_the_query_and_values(server: PrometheusServer, start_service: StartService) -> None:
    api = start_service("api")
    url = _start(server, {"api": api})
    _get(api + "/healthz", 4)
    _fresh(server, {"api": api})
    observer = PrometheusObserver(_config(url, [{"name": "traffic", "query": 'sum(http_requests_total{service="api"})', "above": 2}]))
    observer.capture("after smoke")
    result = observer.finish(["api"])

    point = result.queries[0].points[0]
    assert point.state == "breach" and point.series[0].value == 4
    assert prometheus_problems(result) == ['query traffic after smoke: breach 4 > 2 for `sum(http_requests_total{service="api"})`']


@needs_prometheus
def test_the_candidate_compared_with_the_previous_release(server: PrometheusServer, start_service: StartService) -> None:
    previous, candidate = start_service("api", "v1.1"), start_service("api", "v1.2")
    url = _start(server, {"api": previous})
    _get(previous + "/healthz", 2)
    _fresh(server, {"api": previous})
    config = _config(url, [{"name": "traffic", "query": "sum(http_requests_total)", "compare": {"mode": "ratio", "above": 2}}])
    observer = PrometheusObserver(config)
    observer.capture("before deploy")
    server.set_targets({"api": candidate})  # the deploy: the same job now scrapes the new process
    _get(candidate + "/healthz", 6)
    _fresh(server, {"api": candidate})  # the old process is no longer counted
    observer.capture("after deploy")
    result = observer.finish(["api"])

    before, after = result.queries[0].points
    assert before.state == "ok" and before.series[0].value == 2
    assert after.state == "breach"
    assert (after.series[0].previous, after.series[0].value, after.series[0].change) == (2, 6, 3)
    assert prometheus_problems(result) == ["query traffic after deploy: breach ratio to previous 3 > 2 (6 vs 2) for `sum(http_requests_total)`"]


@needs_prometheus
def test_firing_alerts_of_the_staging_services_are_listed(server: PrometheusServer, start_service: StartService, tmp_path: Path) -> None:
    api = start_service("api")
    rules = tmp_path / "rules.yml"
    rules.write_text('groups:\n  - name: demo\n    rules:\n      - alert: ApiAlwaysUp\n        expr: up{service="api"} == 1\n')
    url = _start(server, {"api": api}, rule_files=[rules])
    _fresh(server, {"api": api})
    observer = PrometheusObserver(_config(url, [{"name": "up", "query": "sum(up)", "below": 1}]))
    deadline = datetime.now(UTC) + timedelta(seconds=20)
    result = observer.finish(["api"])
    while not result.alerts and datetime.now(UTC) < deadline:
        result = observer.finish(["api"])
    assert [(a.name, a.service) for a in result.alerts] == [("ApiAlwaysUp", "api")]
    assert "alert ApiAlwaysUp firing for api" in prometheus_problems(result)[-1]
    assert observer.finish(["worker"]).alerts == []  # another service's alert is not ours


@needs_prometheus
def test_a_stopped_server_and_an_empty_result_are_no_data(server: PrometheusServer, start_service: StartService) -> None:
    api = start_service("api")
    url = _start(server, {"api": api})
    _fresh(server, {"api": api})
    observer = PrometheusObserver(
        _config(
            url,
            [
                {"name": "missing", "query": "sum(metric_nobody_exposes)", "below": 1},
                {"name": "nan", "query": "sum(up) / 0 * 0", "above": 1},
            ],
        )
    )
    observer.capture("after deploy")
    assert server.stop() == "stopped"
    observer.capture("after smoke")
    result = observer.finish(["api"])

    states = [(q.name, p.phase, p.state) for q in result.queries for p in q.points]
    assert states == [
        ("missing", "after deploy", "no-data"),
        ("missing", "after smoke", "no-data"),
        ("nan", "after deploy", "no-data"),
        ("nan", "after smoke", "no-data"),
    ]
    problems = prometheus_problems(result)
    assert "query missing after deploy: no data (empty result: no series matched the query)" in problems[0]
    assert "could not be reached" in problems[1] and "sum(metric_nobody_exposes)" in problems[1]
    assert "NaN" in problems[2]
    assert problems[-1].startswith("alerts: no data (Prometheus at http://127.0.0.1:")
    assert all(p.state == "no-data" for q in result.queries for p in q.points)
    assert result.queries[0].range_detail  # no chart pretends to be data
    PrometheusResult.model_validate_json(result.model_dump_json())


def test_a_server_that_never_ran_is_no_data_for_every_query() -> None:
    with __import__("socket").socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    observer = PrometheusObserver(_config(f"http://127.0.0.1:{port}", [{"name": "q", "query": "up", "below": 1}]))
    observer.capture("before deploy")
    result = observer.finish(["api"])
    assert result.queries[0].points[0].state == "no-data"
    assert result.alerts_state == "no-data"
    assert len(prometheus_problems(result)) == 2
    assert "no data" in "\n".join(render_prometheus_markdown(result))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"url": "http://user:hunter2@127.0.0.1:9090", "queries": []}, "credentials in the URL"),
        ({"url": "127.0.0.1:9090", "queries": []}, "expected an http(s) URL"),
        ({"url": "http://127.0.0.1:9090", "queries": [{"name": "q", "query": "up"}]}, "checks nothing"),
        ({"url": "http://127.0.0.1:9090", "queries": [{"name": "q", "query": "up", "compare": {"mode": "ratio"}}]}, "needs 'above' or 'below'"),
        ({"url": "http://127.0.0.1:9090", "queries": [{"name": "q", "query": "up", "above": 1}, {"name": "q", "query": "up", "above": 1}]}, "used twice"),
    ],
)
def test_bad_prometheus_config_is_refused_with_the_reason(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        PrometheusConfig.model_validate(data)
    assert message in str(info.value)


def test_missing_binary_names_the_install_command(tmp_path: Path) -> None:
    from pytest_predeploy.core.errors import StepError

    with pytest.raises(StepError, match="apt-get install prometheus"):
        PrometheusServer(tmp_path / "p").start("prometheus-not-installed-here", {}, scrape_interval=timedelta(seconds=1), timeout=timedelta(seconds=5))
    assert not (tmp_path / "p" / "server.json").exists()


def test_window_is_filled_in_as_a_promql_duration() -> None:
    config = _config(
        "http://127.0.0.1:9",
        [{"name": "r", "query": "rate(x[{window}])", "above": 1, "window": "90s"}, {"name": "m", "query": "rate(x[{window}])", "above": 1, "window": "5m"}],
    )
    assert [q.promql for q in config.queries] == ["rate(x[90s])", "rate(x[5m])"]


@needs_prometheus
def test_the_demo_queries_and_rules_answer_for_the_demo_services(server: PrometheusServer, start_service: StartService) -> None:
    import yaml

    repo = Path(__file__).resolve().parent.parent
    overlay = yaml.safe_load((repo / "demo" / "prometheus" / "overlay.yaml").read_text())
    api, worker = start_service("api"), start_service("worker")
    url = _start(server, {"api": api, "worker": worker}, rule_files=[repo / path for path in overlay["staging"]["prometheus"]["rule_files"]])
    _get(api + "/healthz", 3)
    _get(worker + "/healthz", 3)
    _fresh(server, {"api": api, "worker": worker})
    observer = PrometheusObserver(PrometheusConfig.model_validate(overlay["observability"]["prometheus"]), url=url)
    observer.capture("before deploy")
    observer.capture("after deploy")
    result = observer.finish(["api", "worker"])

    by_name = {q.name: q for q in result.queries}
    assert {s.labels.get("service") for s in by_name["error-ratio"].points[0].series} == {"api", "worker"}
    assert [s.value for s in by_name["error-ratio"].points[0].series] == [0, 0]
    assert all(s.value is not None and 0 < s.value <= 0.5 for s in by_name["latency-p95"].points[0].series)
    assert by_name["services-up"].points[1].series[0].change == 0
    assert prometheus_problems(result) == []


@needs_prometheus
def test_a_query_prometheus_rejects_is_no_data_with_its_reason(server: PrometheusServer, start_service: StartService) -> None:
    url = _start(server, {"api": start_service("api")})
    observer = PrometheusObserver(
        _config(
            url,
            [
                {"name": "typo", "query": "sum(up", "below": 1},
                {"name": "matrix", "query": "up[{window}]", "below": 1},
            ],
        )
    )
    observer.capture("after deploy")
    result = observer.finish(["api"])

    typo, matrix = result.queries
    assert typo.points[0].state == "no-data" and "answered HTTP 400" in typo.points[0].detail
    assert matrix.points[0].state == "no-data" and "returned a matrix" in matrix.points[0].detail
    assert typo.range_detail and matrix.range_detail


def test_without_a_server_to_ask_every_query_is_no_data_with_the_reason() -> None:
    observer = PrometheusObserver(PrometheusConfig.model_validate({"queries": [{"name": "q", "query": "up", "below": 1}]}))
    observer.capture("before deploy")
    observer.capture("after deploy", unavailable="Prometheus binary 'prometheus' not found; install it (apt-get install prometheus)")
    result = observer.finish(["api"])
    assert [p.state for p in result.queries[0].points] == ["no-data", "no-data"]
    problems = prometheus_problems(result)
    assert "no Prometheus server to ask" in problems[0] and "apt-get install prometheus" in problems[1]
    assert problems[-1].startswith("alerts: no data")
