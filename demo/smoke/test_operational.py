"""Every service is up, healthy and running the release under test."""

from __future__ import annotations

from typing import Any

import pytest

SERVICES = ["api", "worker"]


@pytest.mark.parametrize("service", SERVICES)
def test_healthz_reports_ok_for_the_release(service: str, urls: dict[str, str], release: str, http: Any) -> None:
    status, body = http("GET", urls[service] + "/healthz")
    assert status == 200
    assert body == {"status": "ok", "service": service, "release": release}


@pytest.mark.parametrize("service", SERVICES)
def test_version_is_the_release_under_test(service: str, urls: dict[str, str], release: str, http: Any) -> None:
    status, body = http("GET", urls[service] + "/version")
    assert status == 200
    assert body["release"] == release, f"{service} runs {body['release']}, expected {release}"
