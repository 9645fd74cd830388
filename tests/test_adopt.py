"""Adopting the plugin in another repository: the messages a new user meets are true there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_predeploy.api import run_smoke_tests
from pytest_predeploy.config import ProjectConfig, load_config
from tests.httpfiles import serve
from tests.project import make_project

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
