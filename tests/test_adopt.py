"""Adopting the plugin in another repository: the messages a new user meets are true there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from pytest_predeploy.api import run_smoke_tests
from pytest_predeploy.config import ProjectConfig, load_config
from pytest_predeploy.harness.gates import ExitStatus
from pytest_predeploy.rehearsal.observability import ObservabilityConfig, parse_metrics
from tests.httpfiles import serve
from tests.project import make_project
from tests.staging_support import processes_under

REPO = Path(__file__).resolve().parents[1]

#: Makes `import psutil` fail as it does in a venv without the test extra.
HIDE_PSUTIL = """
import sys

class _Hide:
    def find_spec(self, name, path=None, target=None):
        if name == "psutil":
            raise ModuleNotFoundError("No module named 'psutil'", name="psutil")
        return None

sys.meta_path.insert(0, _Hide())
"""


def test_a_gate_without_a_release_says_what_to_do_in_any_repository(pytester: pytest.Pytester) -> None:
    make_project(pytester)  # a repository with gates and no tests/ folder
    result = pytester.runpytest_subprocess("gates/test_gate1_intake.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    line = next(line for line in result.stderr.lines if "is a protocol gate" in line)
    assert line == (
        "ERROR: test_gate1_intake.py is a protocol gate: run it with --predeploy-release=TAG "
        "(without a release pytest runs no gate: name other test paths, or deselect the gates' folder)."
    )
    assert "tests/" not in line


def test_plain_pytest_without_the_test_extra_says_to_install_it(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(HIDE_PSUTIL)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout[-2000:]
    assert "ERROR: this project's own tests need the test extra: pip install -e '.[test]' (psutil is not installed)" in run.stderr
    assert "ModuleNotFoundError" not in run.stdout + run.stderr


# --- coverage of a service with an OpenAPI document and no counters ---------------------------

OPENAPI = json.dumps(
    {
        "openapi": "3.0.3",
        "paths": {"/items": {"get": {}, "post": {}}, "/items/{item_id}": {"get": {}}, "/health": {"get": {}}},
    }
).encode()

SUITE = """
import json, os

URL = json.loads(os.environ["PREDEPLOY_SERVICE_URLS"])["shop"]

def test_list(predeploy_http):
    assert predeploy_http("GET", URL + "/items").status == 200

def test_one(predeploy_http):
    assert predeploy_http("GET", URL + "/items/1").json() == {"id": 1}
    assert predeploy_http("GET", URL + "/items/1").status == 200
"""


def _config(tmp_path: Path, url: str, endpoints: dict[str, object]) -> ProjectConfig:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_shop.py").write_text(SUITE)
    data = {
        "version": 1,
        "project": "shop",
        "environments": {"staging": {}, "production": {}},
        "services": [{"name": "shop", "url": url, "endpoints": endpoints}],
        "staging": {"root": str(tmp_path / "staging")},
        "approvals": {"allow_none": True},
        "smoke": {"min_coverage": 0.5, "suites": [{"name": "smoke", "path": "suite"}]},
    }
    (tmp_path / "predeploy.yaml").write_text(json.dumps(data))
    return load_config(tmp_path / "predeploy.yaml")


def test_coverage_from_an_openapi_document_and_the_suites_own_calls(tmp_path: Path) -> None:
    answers = {"/openapi.json": (200, OPENAPI, {}), "/items": (200, b"[]", {}), "/items/1": (200, b'{"id": 1}', {})}
    with serve(answers) as url:  # no /metrics, no /routes
        report = run_smoke_tests(_config(tmp_path, url, {"openapi": "/openapi.json"}), "staging", "v1", tmp_path / "results.json")
    assert report.totals.passed == 2
    assert report.coverage.status == "ok"
    assert {(e.method, e.path): e.requests for e in report.coverage.endpoints} == {
        ("GET", "/health"): 0,
        ("GET", "/items"): 1,
        ("POST", "/items"): 0,
        ("GET", "/items/{item_id}"): 2,
    }
    assert report.coverage.ratio == 0.5 and report.problems == []


def test_a_counter_that_is_required_but_absent_is_no_data(tmp_path: Path) -> None:
    with serve({"/openapi.json": (200, OPENAPI, {}), "/items": (200, b"[]", {}), "/items/1": (200, b'{"id": 1}', {})}) as url:
        report = run_smoke_tests(_config(tmp_path, url, {"openapi": "/openapi.json", "requests": "counter"}), "staging", "v1", tmp_path / "results.json")
    assert report.coverage.status == "no-data"
    assert report.coverage.detail == f"suite smoke: metrics of shop: {url}/metrics answered HTTP 404"
    assert report.problems == [f"coverage: no data ({report.coverage.detail})"]


# --- acceptance: a new repository adopts the plugin with only the edits init asks for ---------

SHOP = REPO / "tests" / "data" / "adopt" / "shop"

SHOP_SMOKE = '''\
"""The shop's business endpoints (named after the service: the rollback subset is -k shop)."""


def test_shop_lists_items(urls, http):
    status, body = http("GET", urls["shop"] + "/items")
    assert status == 200 and [item["name"] for item in body] == ["kettle", "teapot"]


def test_shop_shows_one_item(urls, http):
    status, body = http("GET", urls["shop"] + "/items/2")
    assert status == 200 and body["name"] == "teapot"
'''


def predeploy(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_predeploy", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def shop_repository(tmp_path: Path) -> Iterator[Path]:
    """A new git repository holding only a plain stdlib HTTP service: its own metric names
    (shop_hits_total by verb/handler/code), an OpenAPI file, no /routes, the port as --port."""
    root = tmp_path / "shop-repo"
    shutil.copytree(SHOP, root / "shop")
    subprocess.run(["git", "init", "-q", str(root)], check=True, timeout=30)
    yield root
    leftovers = processes_under(tmp_path)
    for process in leftovers:
        process.kill()
    assert not leftovers, f"processes left running: {[p.cmdline() for p in leftovers]}"


def _commit_and_tag(root: Path, tag: str) -> None:
    for args in (["add", "-A"], ["commit", "-q", "-m", tag], ["tag", tag]):
        git = ["git", "-C", str(root), "-c", "user.name=Team", "-c", "user.email=team@example.test", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"]
        subprocess.run([*git, *args], check=True, timeout=30, capture_output=True)


def test_a_stdlib_service_reaches_awaiting_signoff_with_only_the_edits_init_asks_for(shop_repository: Path) -> None:
    """`predeploy init --service shop=shop`, then the edits its next steps ask for, and no other:

    1. write a smoke test of the business endpoints in predeploy/smoke/ (through the `http` fixture);
    2. record the upstream approvals: copy predeploy/approvals/*.example.yaml to *.yaml for the release;
    3. the dependencies: the shop has none, so, as the next step says, `enabled: false` on the
       dependency scanners (security.osv, licenses, sbom; reported 'disabled'). The advisory
       database update that step also asks for is then not needed.

    Three edits, then the two releases are committed and tagged (v1.0, and v2.0 with a change to
    the shop: the local target builds each tag's own code). Nothing else about the service is edited: init found its start command (the
    `__main__` guard of app.py), that it takes --port, its health path /health and its OpenAPI
    file; coverage is counted from the smoke suite's own calls since the shop's counter has
    names of its own; there is no --port-file and no /routes.
    """
    root = shop_repository
    done = predeploy("init", "--service", "shop=shop", cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    config = yaml.safe_load((root / "predeploy.yaml").read_text())
    assert config["services"][0] == {
        "name": "shop",
        "source": "shop",
        "command": "{python} app.py --port {port}",
        "port": 0,
        "strategy": "restart",
        "health_path": "/health",
        "health_timeout": "30s",
        "endpoints": {"openapi": "shop/openapi.yaml"},
    }
    assert "predeploy doctor" in done.stdout

    # 1. the smoke test
    (root / "predeploy" / "smoke" / "test_shop.py").write_text(SHOP_SMOKE)
    # 2. the approval records of this release
    for example in (root / "predeploy" / "approvals").glob("*.example.yaml"):
        record = yaml.safe_load(example.read_text())
        record.update(release="v2.0")
        example.with_name(example.name.replace(".example", "")).write_text(yaml.safe_dump(record))
    # 3. no dependencies to scan
    config = yaml.safe_load((root / "predeploy.yaml").read_text())
    for scanner in ("osv", "licenses", "sbom"):
        config["security"].setdefault(scanner, {})["enabled"] = False
    (root / "predeploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    checked = predeploy("doctor", "--release", "v2.0", cwd=root)
    # Everything a run up to the sign-off needs passes; the one failure is the signers file init
    # leaves empty (nobody could sign yet), which only the sign-off needs.
    failed = [line for line in checked.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 and failed[0].startswith("FAIL  signers file:") and "nobody may sign" in failed[0], checked.stdout + checked.stderr

    # The releases are the repository's git tags (staging.releases kind auto): the team commits what
    # it runs in production as v1.0 and its change as v2.0, so the rollback runs different code.
    _commit_and_tag(root, "v1.0")
    app = root / "shop" / "app.py"
    app.write_text(app.read_text() + "\n# v2.0: the candidate\n")
    _commit_and_tag(root, "v2.0")

    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--predeploy-release=v2.0", "--predeploy-previous=v1.0"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == ExitStatus.AWAITING_SIGNOFF, run.stdout[-6000:] + run.stderr[-2000:]
    assert "AWAITING SIGN-OFF: awaiting sign-off from: release-manager, qa-lead" in run.stdout
    artifacts = root / ".artifacts" / "pre-deployment"
    results = json.loads((artifacts / "staging-test-results.json").read_text())
    exercised = {(e["method"], e["path"]): e["exercised"] for e in results["coverage"]["endpoints"]}
    assert exercised == {("GET", "/items"): True, ("GET", "/items/{item_id}"): True}
    assert results["coverage"]["ratio"] == 1.0
    assert not (artifacts / "transcripts" / "transcripts").exists()  # transcripts one level deep
    report = (artifacts / "pytest-report.html").read_text()
    assert "predeploy-verdict-awaiting" in report and "AWAITING SIGN-OFF &middot; release v2.0" in report


def test_the_worked_prometheus_client_example_in_the_docs_reads_its_metrics() -> None:
    # docs/adopting.md's observability settings, applied to what prometheus-client exposes for the
    # metrics declared there: the example must stay true.
    text = (REPO / "docs" / "adopting.md").read_text()
    block = text.split("```yaml\nobservability:\n", 1)[1].split("```", 1)[0]
    settings = ObservabilityConfig(**yaml.safe_load("observability:\n" + block)["observability"])
    registry = CollectorRegistry()
    requests = Counter("shop_requests", "Requests handled", ["method", "handler", "code"], registry=registry)
    latency = Histogram("shop_request_duration_seconds", "Request duration", ["method", "handler"], registry=registry)
    requests.labels("GET", "/items/{item_id}", "200").inc(3)
    requests.labels("GET", "/items/{item_id}", "500").inc()
    latency.labels("GET", "/items/{item_id}").observe(0.02)
    parsed = parse_metrics(generate_latest(registry).decode(), settings)
    assert parsed.requests_by_route() == {("GET", "/items/{item_id}"): 4.0}
    assert parsed.has_histogram


def test_a_protocol_run_in_a_venv_without_the_test_extra_is_not_refused(tmp_path: Path) -> None:
    # The demo's venv has no test extra; its protocol run loads tests/conftest.py as well.
    (tmp_path / "sitecustomize.py").write_text(HIDE_PSUTIL)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--predeploy-release=v1.2",
            f"--predeploy-artifacts={tmp_path / 'artifacts'}",
            "--collect-only",
            "-q",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "test extra" not in run.stdout + run.stderr
    assert run.returncode == 11, run.stdout[-2000:] + run.stderr[-2000:]  # --collect-only judges nothing
    assert "gates/test_gate1_intake.py" in run.stdout
