"""Fixtures of the demo's targeted regression suite (see demo/smoke/conftest.py for how it is run)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

import pytest


@pytest.fixture(scope="session")
def api() -> str:
    urls = json.loads(os.environ.get("PREDEPLOY_SERVICE_URLS", "{}"))
    if "api" not in urls:
        pytest.fail("PREDEPLOY_SERVICE_URLS has no 'api' entry: run this suite with scripts/run_smoke_tests.py")
    return str(urls["api"]).rstrip("/")


@pytest.fixture(scope="session")
def post() -> Any:
    def send(url: str, body: Any) -> int:
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    return send
