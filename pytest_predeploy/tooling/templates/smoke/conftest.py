"""Fixtures of the smoke suite: where the services are, and a small JSON HTTP client.

scripts/run_smoke_tests.py runs this folder as its own pytest session against staging. It says
where each service is in PREDEPLOY_SERVICE_URLS (a JSON object: service name -> base URL) and
which release should be running in PREDEPLOY_RELEASE. To run it by hand:

    PREDEPLOY_SERVICE_URLS='{"app": "http://127.0.0.1:8000"}' PREDEPLOY_RELEASE=v1.0 pytest predeploy/smoke

Gate 2 wants smoke.min_coverage of the endpoints your services declare called by these tests.
Put the service's name in each test's name (or take a `service` argument): after a rollback the
rehearsal runs each service's subset with -k <service>.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from pytest_predeploy.api import smoke_request


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
def release() -> str:
    return os.environ.get("PREDEPLOY_RELEASE", "")


def call(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    """One request; returns the status and the answer (JSON decoded when it is JSON). Made with
    pytest-predeploy's recording client: for a service without a request counter, these calls
    are what smoke coverage counts."""
    answer = smoke_request(method, url, body)
    try:
        return answer.status, json.loads(answer.body) if answer.body else None
    except ValueError:
        return answer.status, answer.body.decode("utf-8", "replace")


@pytest.fixture(scope="session")
def http() -> Any:
    return call
