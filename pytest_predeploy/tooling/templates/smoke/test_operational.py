"""Every service is up, healthy and running the release under test."""

from __future__ import annotations

from typing import Any


#: Each service's health path (services[].health_path in predeploy.yaml).
HEALTH_PATHS: dict[str, str] = {}  # __HEALTH_PATHS__


def test_health_answers_ok(service: str, urls: dict[str, str], http: Any) -> None:
    path = HEALTH_PATHS.get(service, "/healthz")
    status, body = http("GET", urls[service] + path)
    assert status == 200, f"{service}: GET {path} -> {status} {body}"


def test_version_is_the_release_under_test(service: str, urls: dict[str, str], release: str, http: Any) -> None:
    status, body = http("GET", urls[service] + "/version")
    assert status == 200, f"{service}: GET /version -> {status} {body}"
    reported = body.get("release") if isinstance(body, dict) else body
    assert reported == release, f"{service} runs {reported}, expected {release}"
