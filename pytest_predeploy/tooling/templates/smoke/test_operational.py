"""Every service is up, healthy and, when it can say so, running the release under test."""

from __future__ import annotations

from typing import Any

import pytest


def test_health_answers_ok(service: str, urls: dict[str, str], health_paths: dict[str, str], predeploy_http: Any) -> None:
    path = health_paths.get(service, "/healthz")
    answer = predeploy_http("GET", urls[service] + path)
    assert answer.status == 200, f"{service}: GET {path} -> {answer.status} {answer.body[:200]!r}"


def test_version_is_the_release_under_test(service: str, urls: dict[str, str], release: str, predeploy_http: Any) -> None:
    # Optional: the staging target already knows which release it started. A service that says
    # which release it runs (GET /version answering {"release": TAG}) is checked against it.
    answer = predeploy_http("GET", urls[service] + "/version")
    if answer.status == 404:
        pytest.skip(f"{service} has no GET /version: the release it runs is the one the staging target started")
    assert answer.status == 200, f"{service}: GET /version -> {answer.status} {answer.body[:200]!r}"
    body = answer.json()
    reported = body.get("release") if isinstance(body, dict) else body
    assert reported == release, f"{service} runs {reported}, expected {release}"
