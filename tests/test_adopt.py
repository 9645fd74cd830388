"""Adopting the plugin in another repository: the messages a new user meets are true there."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from pytest_predeploy.api import run_smoke_tests
from pytest_predeploy.config import ProjectConfig, load_config
from pytest_predeploy.harness.gates import ExitStatus
from pytest_predeploy.rehearsal.observability import ObservabilityConfig, parse_metrics
from pytest_predeploy.security.osv import BUNDLED_ZIP
from tests.httpfiles import serve
from tests.project import make_project
from tests.staging_support import StagingProject, processes_under, staging  # noqa: F401  (fixture)
from tests.wheels import make_wheel

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
    answers: dict[str, tuple[int, bytes, dict[str, str]]] = {
        "/openapi.json": (200, OPENAPI, {}),
        "/items": (200, b"[]", {}),
        "/items/1": (200, b'{"id": 1}', {}),
    }
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


def test_shop_lists_items(urls, predeploy_http):
    answer = predeploy_http("GET", urls["shop"] + "/items")
    assert answer.status == 200 and [item["name"] for item in answer.json()] == ["kettle", "teapot"]


def test_shop_shows_one_item(urls, predeploy_http):
    answer = predeploy_http("GET", urls["shop"] + "/items/2")
    assert answer.status == 200 and answer.json()["name"] == "teapot"
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

    1. write a smoke test of the business endpoints in predeploy/smoke/ (through the `predeploy_http` fixture);
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


# --- a failing smoke test shows the service's own traceback --------------------------------

BOOM = """\
import argparse, os, signal, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            body = b"ok"
        else:
            raise RuntimeError("cannot open the orders database with password " + os.environ["DB_PASSWORD"])
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int)
server = ThreadingHTTPServer(("127.0.0.1", parser.parse_args().port), Handler)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
server.serve_forever(poll_interval=0.1)
"""

BOOM_SUITE = """\
import json, os
import pytest

def test_orders_lists_orders(predeploy_http):
    url = json.loads(os.environ["PREDEPLOY_SERVICE_URLS"])["orders"]
    with pytest.raises(Exception):
        predeploy_http("GET", url + "/orders")  # the server drops the connection: its traceback is in its log
    raise AssertionError("GET /orders got no answer")
"""


def test_a_failing_smoke_test_carries_the_services_log_tail_redacted(staging: StagingProject, monkeypatch: pytest.MonkeyPatch) -> None:
    source = staging.root / "orders-src"
    source.mkdir()
    (source / "app.py").write_text(BOOM)
    suite = staging.root / "suite"
    suite.mkdir()
    (suite / "test_orders.py").write_text(BOOM_SUITE)
    secret = "s3cr3t-orders-pw"
    monkeypatch.setenv("ORDERS_DB_PASSWORD", secret)
    orders = {"name": "orders", "source": str(source), "command": "{python} app.py --port {port}", "health_path": "/health", "env": {"DB_PASSWORD": secret}}
    config = staging.write(
        [orders],
        redact={"env_vars": ["ORDERS_DB_PASSWORD"]},
        smoke={"min_coverage": 0, "suites": [{"name": "smoke", "path": "suite"}]},
    )
    deployed = staging.script("deploy_backend.sh", "--release", "v1", "--service", "orders")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    report = run_smoke_tests(config, "staging", "v1", staging.root / "artifacts" / "staging-test-results.json")
    assert report.totals.failed == 1
    [log] = report.service_logs
    assert log.service == "orders" and log.log == ".staging/staging/orders/logs/main.log"
    assert any("RuntimeError: cannot open the orders database with password" in line for line in log.lines), log.lines
    text = (staging.root / "artifacts" / "staging-test-results.json").read_text()
    assert secret not in text
    # Gate 2's failure message carries the same tail.
    assert report.problems[-1].startswith("orders wrote, at the end of .staging/staging/orders/logs/main.log:\n    | ")
    assert "RuntimeError: cannot open the orders database with password [REDACTED" in report.problems[-1]


def test_the_kube_demo_on_a_host_that_refuses_podmans_defaults_names_the_whole_fix(tmp_path: Path) -> None:
    # Before anything is installed or built: the same fix the kube tests' skip names, in full.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "podman").write_text(
        '#!/bin/sh\n[ "$1 $2" = "pod start" ] && { echo "Error: crun: setrlimit RLIMIT_NPROC: Operation not permitted: OCI permission denied" >&2; exit 126; }\nexit 0\n'
    )
    (bin_dir / "runc").write_text("#!/bin/sh\nexit 0\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env.pop("CONTAINERS_CONF", None)
    run = subprocess.run(["bash", str(REPO / "demo" / "run-protocol.sh"), "--kube"], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stdout == "", run.stdout + run.stderr
    assert run.stderr.splitlines() == [
        "--kube: podman cannot start a container on this host (Error: crun: setrlimit RLIMIT_NPROC: Operation not permitted: OCI permission denied).",
        "Give it a containers.conf for this run and export it, then rerun (docs/kube.md, 'Sandboxed hosts'):",
        '  printf \'[containers]\\ndefault_ulimits = []\\n[engine]\\ncgroup_manager = "cgroupfs"\\nruntime = "runc"\\n\' > /tmp/predeploy-containers.conf',
        "  export CONTAINERS_CONF=/tmp/predeploy-containers.conf",
    ]


# --- done when: a real third-party WSGI service, installed from wheels ------------------------

#: Flask's own tutorial application, flaskr (examples/tutorial of github.com/pallets/flask,
#: BSD-3-Clause, LICENSE.txt beside it), exactly as published; its wheels are built here.
FLASKR = REPO / "tests" / "data" / "adopt" / "flaskr"
#: flask 3.1.3 and its dependencies as PyPI ships them (markupsafe's wheel is CPython 3.11 on x86-64 Linux).
FLASK_WHEELS = REPO / "tests" / "data" / "adopt" / "wheels"
#: v2.0.0 drops this route (no smoke test calls it): the contract check must catch it.
DELETE_ROUTE = """@bp.route("/<int:id>/delete", methods=("POST",))
@login_required
def delete(id):"""

FLASKR_SMOKE = '''\
"""flaskr's pages (named after the service: the rollback subset is -k flaskr)."""


def test_flaskr_says_hello(urls, predeploy_http):
    answer = predeploy_http("GET", urls["flaskr"] + "/hello")
    assert answer.status == 200 and answer.body == b"Hello, World!"


def test_flaskr_lists_posts(urls, predeploy_http):
    assert b"<h1>Posts</h1>" in predeploy_http("GET", urls["flaskr"] + "/").body


def test_flaskr_register_and_login_forms(urls, predeploy_http):
    assert predeploy_http("GET", urls["flaskr"] + "/auth/register").status == 200
    assert predeploy_http("GET", urls["flaskr"] + "/auth/login").status == 200
'''


def flaskr_wheel(dist: Path, version: str, change: Callable[[str, str], str] = lambda name, text: text) -> Path:
    """flaskr's wheel at ``version``, each source file passed through ``change``."""
    package = FLASKR / "flaskr"
    files = {f"flaskr/{path.relative_to(package).as_posix()}": change(path.name, path.read_text()).encode() for path in package.rglob("*") if path.is_file()}
    files[f"flaskr-{version}.dist-info/LICENSE.txt"] = (FLASKR / "LICENSE.txt").read_bytes()
    return make_wheel(dist, "flaskr", version, files, ("flask",))


def without_delete(name: str, text: str) -> str:
    if name != "blog.py":
        return text
    assert DELETE_ROUTE in text
    return text.replace(DELETE_ROUTE, "def delete(id):", 1)


@pytest.fixture
def no_leftovers(tmp_path: Path) -> Iterator[None]:
    yield
    leftovers = processes_under(tmp_path)
    for process in leftovers:
        process.kill()
    assert not leftovers, f"processes left running: {[p.cmdline() for p in leftovers]}"


@pytest.mark.skipif(
    sys.implementation.name != "cpython" or sys.version_info[:2] != (3, 11) or platform.machine() != "x86_64" or sys.platform != "linux",
    reason="the vendored markupsafe wheel is CPython 3.11 on x86-64 Linux (the CI machine)",
)
def test_a_real_flask_service_from_wheels_reaches_signoff_rolls_back_and_a_dropped_endpoint_is_no_go(tmp_path: Path, no_leftovers: None) -> None:
    """Flask's tutorial app flaskr, released as wheels (v1.0.0; v1.1.0 with a new title; v2.0.0
    without its delete route), adopted with `predeploy init` and the edits its next steps name:

    1. the start command (`flask --app flaskr init-db`, then `flask run`), the health path
       (/hello) and the endpoints (a list: flaskr serves no contract), where init says SET ME;
    2. a smoke test of its pages; 3. the release's approval records; 4. `predeploy advisories
    update`; 5. bandit's source folder (the service is released as wheels), and a waiver for
    what detect-secrets rightly finds there (the tutorial's development SECRET_KEY).
    """
    root = tmp_path / "blog"
    dist = root / "dist"
    for wheel in FLASK_WHEELS.iterdir():
        dist.mkdir(parents=True, exist_ok=True)
        shutil.copy(wheel, dist)
    flaskr_wheel(dist, "1.0.0")
    flaskr_wheel(
        dist,
        "1.1.0",
        lambda name, text: text.replace(
            "<title>{% block title %}{% endblock %} - Flaskr</title>", "<title>{% block title %}{% endblock %} - Flaskr 1.1</title>"
        ),
    )
    shutil.copytree(FLASKR / "flaskr", root / "flaskr")  # the team's source, for bandit and detect-secrets
    subprocess.run(["git", "init", "-q", str(root)], check=True, timeout=30)

    done = predeploy("init", "--service", "flaskr", cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    config = yaml.safe_load((root / "predeploy.yaml").read_text())
    assert config["staging"]["releases"] == {"kind": "dist", "dist": "dist/{service}-{version}-*.whl", "pip_args": ["--no-index", "--find-links", "dist"]}
    assert config["security"]["environment"] == "release"

    # 1. what init marked SET ME about the service
    config["services"][0].update(
        command="sh -c '{python} -m flask --app flaskr init-db && exec {python} -m flask --app flaskr run --port {port}'",
        health_path="/hello",
        endpoints={"routes": ["GET /hello", "GET /", "GET /auth/register", "GET /auth/login", "POST /{id}/delete"]},
    )
    # 5. bandit's and detect-secrets' source, and the finding the team accepts: flaskr's
    # development SECRET_KEY="dev", which production overrides from its instance config.
    config["security"]["source_paths"] = ["flaskr"]
    config["security"]["waivers"] = [
        {
            "id": "W-1",
            "match": {"id": "secret:Secret Keyword", "scanner": "secrets", "file": "flaskr/__init__.py"},
            "owner": "Blog team",
            "justification": "the development key; production sets SECRET_KEY in instance/config.py",
            "expires_at": "2099-01-01T00:00:00Z",
        }
    ]
    config["security"]["pip_audit"]["enabled"] = False  # asks PyPI: offline here
    (root / "predeploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    # 2. the smoke test
    (root / "predeploy" / "smoke" / "test_flaskr.py").write_text(FLASKR_SMOKE)
    # 4. the advisory data, from a mirror of osv.dev's export on 127.0.0.1
    with serve({"/PyPI/all.zip": (200, BUNDLED_ZIP.read_bytes(), {})}) as url:
        update = predeploy("advisories", "update", "--url", f"{url}/PyPI/all.zip", cwd=root)
    assert update.returncode == 0, update.stdout + update.stderr

    def protocol(release: str) -> subprocess.CompletedProcess[str]:
        # 3. the approval records of the release
        for example in (root / "predeploy" / "approvals").glob("*.example.yaml"):
            record = yaml.safe_load(example.read_text())
            record.update(release=release)
            example.with_name(example.name.replace(".example", "")).write_text(yaml.safe_dump(record))
        argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--predeploy-release={release}", "--predeploy-previous=v1.0.0"]
        return subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=900)

    run = protocol("v1.1.0")
    assert run.returncode == ExitStatus.AWAITING_SIGNOFF, run.stdout[-8000:] + run.stderr[-2000:]
    artifacts = root / ".artifacts" / "pre-deployment"
    # Rolled back to v1.0.0's own code: another wheel, installed in its own virtualenv.
    [rolled] = json.loads((artifacts / "rollback-verification-report.json").read_text())["services"]
    assert (rolled["status"], rolled["from_release"], rolled["to_release"], rolled["smoke"]) == ("passed", "v1.1.0", "v1.0.0", "passed"), rolled
    assert rolled["to_build"]["ref"] == "dist/flaskr-1.0.0-py3-none-any.whl" and rolled["from_build"]["ref"] == "dist/flaskr-1.1.0-py3-none-any.whl"
    assert rolled["to_build"]["digest"] != rolled["from_build"]["digest"]
    # The audit scanned that release's own dependencies, and named each licence.
    security = json.loads((artifacts / "security-compliance-report.json").read_text())
    assert {d["name"]: (d["version"], d["license"]) for d in security["dependencies"]} == {
        "blinker": ("1.9.0", "MIT"),
        "click": ("8.5.1", "BSD-3-Clause"),
        "flask": ("3.1.3", "BSD-3-Clause"),
        "flaskr": ("1.1.0", "BSD-3-Clause"),
        "itsdangerous": ("2.2.0", "BSD-3-Clause"),
        "jinja2": ("3.1.6", "BSD-3-Clause"),
        "markupsafe": ("3.0.4", "BSD-3-Clause"),
        "werkzeug": ("3.1.9", "BSD-3-Clause"),
    }
    [scanned] = security["scanned"]
    assert scanned.startswith("flaskr: release v1.1.0's own virtualenv, built from dist/flaskr-1.1.0-py3-none-any.whl"), scanned
    assert scanned.endswith(": 8 distributions"), scanned
    contract = json.loads((artifacts / "api-contract-report.json").read_text())
    assert [(s["status"], s["changes"]) for s in contract["services"]] == [("compared", [])]

    # v2.0.0 drops POST /<id>/delete, which no smoke test calls.
    flaskr_wheel(dist, "2.0.0", without_delete)
    run = protocol("v2.0.0")
    assert run.returncode == ExitStatus.NO_GO, run.stdout[-8000:] + run.stderr[-2000:]
    assert "NO-GO: Gate 2 (Deployment Rehearsal) failed" in run.stdout
    removed = "flaskr: POST /{id}/delete: the operation was removed [api-path-removed-without-deprecation]"
    assert removed in run.stdout, run.stdout[-8000:]
    results = json.loads((artifacts / "staging-test-results.json").read_text())
    assert results["totals"]["failed"] == 0 and results["totals"]["passed"] > 0  # only the contract check sees it
