"""Gate 2 on a copy of the demo with a real Prometheus beside the services (the local staging
target starts it): the observability baseline records what Prometheus answers, a threshold the
candidate breaks is an ADVISORY naming the PromQL and the values, and a server that does not
answer is "no data"; nothing is left running."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_predeploy.targets.prometheus import INSTALL_HINT, PrometheusServer, find_binary
from tests.staging_support import processes_under

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(find_binary("prometheus") is None, reason=f"needs the Prometheus server: {INSTALL_HINT}")
BREAKING = {"name": "traffic", "query": "sum(http_requests_total)", "above": 0}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Path]:
    """A copy of the demo whose config asks the local target for Prometheus (demo/prometheus/overlay.yaml)."""
    root = tmp_path / "demo-project"
    root.mkdir()
    for name in ("predeploy.yaml", "conftest.py"):
        shutil.copy(REPO / name, root / name)
    for name in ("demo", "gates", "scripts"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    config = _merge(yaml.safe_load((root / "predeploy.yaml").read_text()), yaml.safe_load((root / "demo/prometheus/overlay.yaml").read_text()))
    (root / "predeploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    yield root
    leftovers = processes_under(tmp_path)
    for process in leftovers:
        process.kill()
    assert not leftovers, f"processes left running: {[p.cmdline() for p in leftovers]}"


def _edit(root: Path, change: Any) -> None:
    config = yaml.safe_load((root / "predeploy.yaml").read_text())
    change(config)
    (root / "predeploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def _gate2(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--predeploy-release=v1.2", "gates/test_gate2_rehearsal.py"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )


def _ask(url: str, promql: str, at: datetime) -> dict[str, float]:
    query = urllib.parse.urlencode({"query": promql, "time": f"{at.timestamp():.3f}"})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=5) as response:
        answer = json.loads(response.read())
    return {json.dumps(item["metric"], sort_keys=True): float(item["value"][1]) for item in answer["data"]["result"]}


def test_gate2_records_what_the_real_prometheus_answers_and_a_broken_threshold_is_advisory(demo: Path) -> None:
    _edit(demo, lambda c: c["observability"]["prometheus"]["queries"].append(BREAKING))

    result = _gate2(demo)

    assert result.returncode == 11, result.stdout[-4000:]  # Gate 2 alone: not a protocol verdict
    assert "advisory: test_observability_baseline_captured: observability baseline incomplete:" in result.stdout
    assert "query traffic after smoke: breach" in result.stdout and "for `sum(http_requests_total)`" in result.stdout
    assert "[PROMETHEUS] started the local Prometheus server at http://127.0.0.1:" in result.stdout  # the terminal says so
    assert "[PROMETHEUS] after smoke: PromQL checks asked of http://127.0.0.1:" in result.stdout
    artifacts = demo / ".artifacts" / "pre-deployment"
    metrics = json.loads((artifacts / "observability-metrics.json").read_text())["prometheus"]
    by_name = {q["name"]: q for q in metrics["queries"]}
    assert [p["phase"] for p in by_name["traffic"]["points"]] == ["before deploy", "after deploy", "after smoke"]
    # The demo's own checks pass: only the breaking one is a problem.
    assert {name: [p["state"] for p in q["points"]] for name, q in by_name.items()} == {
        "error-ratio": ["ok"] * 3,
        "latency-p95": ["ok"] * 3,
        "services-up": ["ok"] * 3,
        "traffic": ["breach"] * 3,
    }
    baseline = (artifacts / "observability-baseline.md").read_text()
    assert "```promql\nsum(http_requests_total)\n```" in baseline and baseline.count("<svg") == 1 + len(by_name)
    html = next(artifacts.glob("*.html")).read_text()
    assert "traffic: sum(http_requests_total)" in html

    # The server was stopped with the services; its data stayed under .staging. Started again on
    # that data, Prometheus gives the recorded values for the same PromQL at the recorded instants.
    server = PrometheusServer(demo / ".staging" / "staging" / "prometheus")
    assert server.url() is None and (server.root / "data").is_dir()
    url = server.start("prometheus", {}, scrape_interval=timedelta(seconds=1), timeout=timedelta(seconds=30))
    try:
        for query in metrics["queries"]:
            for point in query["points"]:
                recorded = {json.dumps(s["labels"], sort_keys=True): s["value"] for s in point["series"]}
                assert recorded and recorded == _ask(url, query["promql"], datetime.fromisoformat(point["evaluated_at"])), (query["name"], point["phase"])
    finally:
        server.stop()


def test_gate2_with_a_prometheus_that_does_not_answer_is_advisory_no_data(demo: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    def nobody_listens(config: dict[str, Any]) -> None:
        config["observability"]["prometheus"]["url"] = f"http://127.0.0.1:{port}"
        config["staging"]["prometheus"]["enabled"] = False

    _edit(demo, nobody_listens)

    result = _gate2(demo)

    assert result.returncode == 11, result.stdout[-4000:]  # Gate 2 alone: not a protocol verdict
    assert "advisory: test_observability_baseline_captured: observability baseline incomplete:" in result.stdout
    assert f"query error-ratio before deploy: no data (Prometheus at http://127.0.0.1:{port} could not be reached" in result.stdout
    metrics = json.loads((demo / ".artifacts" / "pre-deployment" / "observability-metrics.json").read_text())["prometheus"]
    assert {p["state"] for q in metrics["queries"] for p in q["points"]} == {"no-data"}
    assert metrics["alerts_state"] == "no-data"
