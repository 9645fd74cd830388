"""Every service is up, healthy and running the release under test."""

from __future__ import annotations

from typing import Any


def test_healthz_answers_ok(service: str, urls: dict[str, str], http: Any) -> None:
    status, body = http("GET", urls[service] + "/healthz")
    assert status == 200, f"{service}: GET /healthz -> {status} {body}"


def test_version_is_the_release_under_test(service: str, urls: dict[str, str], release: str, http: Any) -> None:
    status, body = http("GET", urls[service] + "/version")
    assert status == 200, f"{service}: GET /version -> {status} {body}"
    reported = body.get("release") if isinstance(body, dict) else body
    assert reported == release, f"{service} runs {reported}, expected {release}"
