"""Fixtures of the demo smoke suite: where the services are and a tiny JSON HTTP client.

pytest-predeploy runs this suite against staging and says where each service is in
PREDEPLOY_SERVICE_URLS (a JSON object: service name -> base URL) and which release should be
running in PREDEPLOY_RELEASE. To run it by hand against your own services:

    PREDEPLOY_SERVICE_URLS='{"api": "http://127.0.0.1:8001", "worker": "http://127.0.0.1:8002"}' \
    PREDEPLOY_RELEASE=v1.2 pytest demo/smoke
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if "PREDEPLOY_SERVICE_URLS" not in os.environ:
        raise pytest.UsageError("PREDEPLOY_SERVICE_URLS is not set: run this suite with scripts/run_smoke_tests.py, or see this conftest's docstring")


@pytest.fixture(scope="session")
def urls() -> dict[str, str]:
    return {name: url.rstrip("/") for name, url in json.loads(os.environ["PREDEPLOY_SERVICE_URLS"]).items()}


@pytest.fixture(scope="session")
def release() -> str:
    return os.environ.get("PREDEPLOY_RELEASE", "")


def call(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    """One request; returns the status and the decoded JSON answer (errors are answers too)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture(scope="session")
def http() -> Any:
    return call
