"""Fixtures of the smoke suite: where the services are, their health paths, the release.

scripts/run_smoke_tests.py runs this folder as its own pytest session against staging. It says
where each service is in PREDEPLOY_SERVICE_URLS (a JSON object: service name -> base URL), each
service's health path (services[].health_path of predeploy.yaml) in PREDEPLOY_HEALTH_PATHS, and
which release should be running in PREDEPLOY_RELEASE. To run it by hand:

    PREDEPLOY_SERVICE_URLS='{"app": "http://127.0.0.1:8000"}' PREDEPLOY_RELEASE=v1.0 pytest predeploy/smoke

Call the services through the `predeploy_http` fixture (pytest-predeploy gives it to every suite
the smoke step runs): `predeploy_http("GET", url)` returns an answer with `.status`, `.body` and
`.json()`, HTTP errors included, and for a service without a request counter these calls are
what smoke coverage counts. It follows redirects as Python's urllib does (GET and HEAD follow
301/302/303/307/308; POST follows 301/302/303 as a GET; any other redirect is the answer) and
counts the URL the test asked for.

Gate 2 wants smoke.min_coverage of the endpoints your services declare called by these tests.
Put the service's name in each test's name (or take a `service` argument): after a rollback the
rehearsal runs each service's subset with -k <service>.
"""

from __future__ import annotations

import json
import os

import pytest


def service_urls() -> dict[str, str]:
    return {name: url.rstrip("/") for name, url in json.loads(os.environ.get("PREDEPLOY_SERVICE_URLS", "{}")).items()}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # A test taking `service` runs once per service, and its id names the service.
    if "service" in metafunc.fixturenames:
        metafunc.parametrize("service", sorted(service_urls()))


@pytest.fixture(scope="session")
def urls() -> dict[str, str]:
    found = service_urls()
    if not found:
        pytest.skip("PREDEPLOY_SERVICE_URLS is not set: this suite runs against staging through scripts/run_smoke_tests.py")
    return found


@pytest.fixture(scope="session")
def health_paths() -> dict[str, str]:
    """Each service's health path, from predeploy.yaml (services[].health_path)."""
    return dict(json.loads(os.environ.get("PREDEPLOY_HEALTH_PATHS", "{}")))


@pytest.fixture(scope="session")
def release() -> str:
    return os.environ.get("PREDEPLOY_RELEASE", "")
