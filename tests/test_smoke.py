"""Smoke and acceptance step: suites run as real pytest subprocesses against real HTTP services
(the demo service, or a static file server standing in for a broken one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_predeploy.core.artifacts import read_artifact
from pytest_predeploy.rehearsal.smoke import TestResultsReport, run_smoke_tests, smoke_problems
from tests.smoke_project import REPO, StartService, free_port, make_config, start_service, static_server  # noqa: F401  (fixtures)


def write_suite(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


#: A suite conftest giving tests the URLs the way the demo suite reads them.
URLS_CONFTEST = """
import json, os, urllib.request
import pytest

@pytest.fixture
def get():
    urls = json.loads(os.environ["PREDEPLOY_SERVICE_URLS"])
    def get(service, path):
        with urllib.request.urlopen(urls[service] + path, timeout=5) as response:
            return response.status, json.loads(response.read())
    return get
"""


@pytest.fixture
def demo_urls(start_service: StartService) -> dict[str, str]:
    return {"api": start_service("api"), "worker": start_service("worker")}


def demo_suites() -> list[dict[str, object]]:
    return [{"name": "smoke", "path": str(REPO / "demo" / "smoke")}, {"name": "regression", "path": str(REPO / "demo" / "regression")}]


def test_demo_suites_pass_with_full_coverage(tmp_path: Path, demo_urls: dict[str, str]) -> None:
    config = make_config(tmp_path, services=["api", "worker"], suites=demo_suites(), urls=demo_urls)
    output = tmp_path / "out" / "staging-test-results.json"

    report = run_smoke_tests(config, "staging", "v1.2", output)

    assert [(s.name, s.status) for s in report.suites] == [("smoke", "passed"), ("regression", "passed")]
    assert report.problems == [] and smoke_problems(report, 0.8) == []
    assert report.totals.failed == 0 and report.totals.passed == report.totals.tests >= 12
    assert (report.coverage.declared, report.coverage.exercised, report.coverage.ratio) == (7, 7, 1.0)  # v1.2 declares new-checkout too
    smoke = report.suites[0]
    assert "test_api.py::test_an_order_is_placed_and_read_back" in {t.nodeid for t in smoke.tests}
    assert all(t.duration > 0 for t in smoke.tests)
    # The regression suite only touches the order endpoint: its own coverage says so.
    regression = report.suites[1].coverage
    assert {(e.method, e.path) for e in regression.endpoints if e.exercised} == {("POST", "/api/orders")}
    assert report.services == demo_urls
    assert read_artifact(output, TestResultsReport) == report
    assert (output.parent / "transcripts" / "staging-test-results-smoke.log").is_file()


def test_services_not_running_make_every_suite_no_data(tmp_path: Path) -> None:
    config = make_config(tmp_path, services=["api", "worker"], suites=demo_suites())

    report = run_smoke_tests(config, "staging", "v1.2", tmp_path / "results.json")

    assert [(s.name, s.status, s.tests) for s in report.suites] == [("smoke", "no-data", []), ("regression", "no-data", [])]
    assert report.coverage.status == "no-data"
    assert len(report.problems) == 2
    assert report.problems[0].startswith(
        "suite smoke could not run (no data): the services in staging cannot be reached: service api, worker is not running on staging"
    )


def test_a_service_answering_the_wrong_release_fails_naming_the_tests(tmp_path: Path, start_service: StartService) -> None:
    urls = {"api": start_service("api", release="v1.1"), "worker": start_service("worker", release="v1.2")}
    config = make_config(tmp_path, services=["api", "worker"], suites=demo_suites()[:1])

    report = run_smoke_tests(config, "staging", "v1.2", tmp_path / "results.json", urls=urls)

    failed = sorted(t.nodeid for t in report.suites[0].tests if t.outcome == "failed")
    assert failed == ["test_operational.py::test_healthz_reports_ok_for_the_release[api]", "test_operational.py::test_version_is_the_release_under_test[api]"]
    assert report.suites[0].status == "failed"
    assert any("test_version_is_the_release_under_test[api]" in p and "api runs v1.1, expected v1.2" in p for p in report.problems)


def test_an_injected_failing_test_is_named_in_the_problems(tmp_path: Path, demo_urls: dict[str, str]) -> None:
    suite = write_suite(
        tmp_path / "suite",
        {
            "conftest.py": URLS_CONFTEST,
            "test_checkout.py": "def test_products(get):\n    assert get('api', '/api/products')[0] == 200\n\n"
            "def test_checkout_total(get):\n    assert get('api', '/api/products/1')[1]['price'] == 1.0, 'wrong price'\n",
        },
    )
    config = make_config(tmp_path, services=["api", "worker"], suites=[{"name": "acceptance", "path": str(suite)}], min_coverage=0)

    report = run_smoke_tests(config, "staging", "v1.2", tmp_path / "results.json", urls=demo_urls)

    assert report.suites[0].status == "failed"
    assert (report.totals.passed, report.totals.failed) == (1, 1)
    assert report.problems == ["acceptance test failed: test_checkout.py::test_checkout_total: AssertionError: wrong price"]


def test_coverage_is_endpoints_exercised_over_endpoints_declared(tmp_path: Path, start_service: StartService) -> None:
    urls = {"api": start_service("api")}
    suite = write_suite(
        tmp_path / "suite",
        {
            "conftest.py": URLS_CONFTEST,
            "test_half.py": "def test_catalogue(get):\n    get('api', '/api/products')\n    get('api', '/api/products/2')\n    get('api', '/healthz')\n",
        },
    )
    config = make_config(tmp_path, services=["api"], suites=[{"name": "smoke", "path": str(suite)}])

    report = run_smoke_tests(config, "staging", "v1.2", tmp_path / "results.json", urls=urls)

    coverage = report.coverage
    assert (coverage.declared, coverage.exercised, coverage.ratio) == (5, 2, 0.4)
    exercised = {(e.method, e.path): e.requests for e in coverage.endpoints if e.exercised}
    assert exercised == {("GET", "/api/products"): 1.0, ("GET", "/api/products/{id}"): 1.0}
    assert report.suites[0].status == "passed"
    assert report.problems == ["coverage 40% is under the required 80% (not exercised: api GET /api/orders/{id}, api POST /api/checkout, api POST /api/orders)"]


@pytest.mark.parametrize(
    ("files", "select", "detail"),
    [
        (None, None, "suite not found"),
        (
            {"test_broken.py": "import no_such_module\n\ndef test_x():\n    pass\n"},
            None,
            "collection error in test_broken.py: ModuleNotFoundError: No module named 'no_such_module'",
        ),
        ({"test_fine.py": "def test_x():\n    pass\n"}, "nothing_matches", "pytest exit 5 (no tests collected)"),
        ({"test_slow.py": "import time\n\ndef test_x():\n    time.sleep(30)\n"}, None, "pytest timed out after 1s"),
    ],
    ids=["missing-folder", "collection-error", "nothing-selected", "timeout"],
)
def test_a_suite_that_cannot_run_is_no_data_not_a_pass(
    tmp_path: Path, demo_urls: dict[str, str], files: dict[str, str] | None, select: str | None, detail: str
) -> None:
    suite = tmp_path / "suite"
    if files is not None:
        write_suite(suite, files)
    # Only the hanging suite gets the short timeout: on a busy machine starting pytest alone can take a second.
    timeout = "1s" if detail.startswith("pytest timed out") else "120s"
    config = make_config(tmp_path, services=["api", "worker"], suites=[{"name": "smoke", "path": str(suite), "timeout": timeout}], min_coverage=0)

    report = run_smoke_tests(config, "staging", "v1.2", tmp_path / "results.json", select=select, urls=demo_urls)

    assert report.suites[0].status == "no-data"
    assert report.suites[0].detail.startswith(detail)
    assert any(p.startswith("suite smoke could not run (no data)") for p in report.problems)


def test_unreadable_metrics_make_coverage_no_data(tmp_path: Path, static_server: Callable[[dict[str, str]], str]) -> None:
    url = static_server({"routes": json.dumps({"routes": [{"method": "GET", "path": "/x"}]}), "metrics": "<html>not metrics</html>"})
    suite = write_suite(tmp_path / "suite", {"test_ok.py": "def test_ok():\n    pass\n"})
    config = make_config(tmp_path, services=["api"], suites=[{"name": "smoke", "path": str(suite)}])

    report = run_smoke_tests(config, "staging", "v1.2", tmp_path / "results.json", urls={"api": url})

    assert report.suites[0].status == "passed"
    assert report.coverage.status == "no-data" and report.coverage.ratio is None
    assert "not Prometheus text" in report.coverage.detail
    assert report.problems == [f"coverage: no data ({report.coverage.detail})"]


def test_select_runs_only_the_matching_subset(tmp_path: Path, demo_urls: dict[str, str]) -> None:
    config = make_config(tmp_path, services=["api", "worker"], suites=demo_suites())

    report = run_smoke_tests(config, "staging", "v1.2", tmp_path / "results.json", select="healthz or version", suites=["smoke"], urls=demo_urls)

    assert [s.name for s in report.suites] == ["smoke"]
    assert report.select == "healthz or version"
    assert (
        sorted(t.nodeid.split("::")[1].split("[")[0] for t in report.suites[0].tests)
        == ["test_healthz_reports_ok_for_the_release"] * 2 + ["test_version_is_the_release_under_test"] * 2
    )
    assert all(t.outcome == "passed" for t in report.suites[0].tests)
    assert report.coverage.exercised == 0  # health and version are not business endpoints
    assert report.problems == []  # a subset is partial by design: coverage is recorded, not judged


def test_secrets_in_failure_output_are_redacted(tmp_path: Path, demo_urls: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "s3cr3t-smoke-token-value"
    monkeypatch.setenv("SMOKE_TOKEN", secret)
    suite = write_suite(
        tmp_path / "suite",
        {"test_leak.py": "import os\n\ndef test_leak():\n    print(os.environ['SMOKE_TOKEN'])\n    assert False, os.environ['SMOKE_TOKEN']\n"},
    )
    config = make_config(
        tmp_path, services=["api", "worker"], suites=[{"name": "smoke", "path": str(suite)}], min_coverage=0, extra={"redact": {"env_vars": ["SMOKE_TOKEN"]}}
    )
    output = tmp_path / "out" / "results.json"

    report = run_smoke_tests(config, "staging", "v1.2", output, urls=demo_urls)

    assert report.suites[0].tests[0].message == "AssertionError: [REDACTED:SMOKE_TOKEN]\nassert False"
    for written in [output, *(output.parent / "transcripts").iterdir()]:
        assert secret not in written.read_text()


def test_script_exit_status_tells_pass_failure_and_could_not_run(tmp_path: Path, demo_urls: dict[str, str]) -> None:
    failing = write_suite(tmp_path / "failing", {"test_f.py": "def test_f():\n    assert False\n"})
    config = make_config(
        tmp_path,
        services=["api", "worker"],
        suites=[*demo_suites()[:1], {"name": "failing", "path": str(failing)}, {"name": "missing", "path": str(tmp_path / "missing")}],
    )
    url_args = [arg for name, url in demo_urls.items() for arg in ("--url", f"{name}={url}")]
    env = {**os.environ, "PREDEPLOY_RELEASE": "v1.2"}

    def script(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, str(REPO / "scripts" / "run_smoke_tests.py"), "--env", "staging", "--config", str(config.path), *url_args, *args]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)

    passed = script("--output", str(tmp_path / "a.json"), "--suite", "smoke")
    failed = script("--output", str(tmp_path / "b.json"), "--suite", "smoke", "--suite", "failing")
    not_run = script("--output", str(tmp_path / "c.json"), "--suite", "missing")
    bad_url = script("--output", str(tmp_path / "d.json"), "--url", "api")

    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "coverage 100%" in passed.stdout
    assert failed.returncode == 1
    assert "- failing test failed: test_f.py::test_f" in failed.stdout
    assert not_run.returncode == 2 and (tmp_path / "c.json").is_file()
    assert bad_url.returncode == 2 and "--url 'api': expected SERVICE=URL" in bad_url.stderr
    assert not (tmp_path / "d.json").exists()


def test_stopping_the_script_stops_the_suite_it_runs(tmp_path: Path, demo_urls: dict[str, str]) -> None:
    psutil = pytest.importorskip("psutil")
    slow = write_suite(tmp_path / "slow", {"test_slow.py": "import time\n\ndef test_slow():\n    time.sleep(60)\n"})
    config = make_config(tmp_path, services=["api", "worker"], suites=[{"name": "slow", "path": str(slow)}], urls=demo_urls)
    argv = [
        sys.executable,
        str(REPO / "scripts" / "run_smoke_tests.py"),
        "--env",
        "staging",
        "--config",
        str(config.path),
        "--release",
        "v1.2",
        "--output",
        str(tmp_path / "r.json"),
    ]
    script = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        suite_pids: list[int] = []
        while not suite_pids and time.monotonic() < deadline:
            suite_pids = [p.pid for p in psutil.Process(script.pid).children(recursive=True) if "pytest" in " ".join(p.cmdline())]
            time.sleep(0.05)
        assert suite_pids, "the suite never started"

        script.terminate()  # what the plugin's runner sends first when a step times out

        assert script.wait(timeout=30) == 130
        assert all(not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE for pid in suite_pids)
        assert not (tmp_path / "r.json").exists()
    finally:
        if script.poll() is None:
            os.killpg(script.pid, 9)
            script.wait()
