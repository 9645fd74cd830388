"""HTTP probes of a running service: its health and the release it reports on ``/version``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Answer:
    """What one GET returned: a status and JSON body, or why there was none."""

    status: int | None
    body: Any
    error: str | None

    def describe(self) -> str:
        if self.error:
            return self.error
        return f"HTTP {self.status} {json.dumps(self.body)[:200]}"


def get_json(url: str, timeout: float = 2.0) -> Answer:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Answer(None, None, f"no answer from {url}: {reason}")
    try:
        body = json.loads(raw) if raw else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        body = raw[:200].decode("utf-8", "replace")
    return Answer(status, body, None)


@dataclass(frozen=True)
class ReleaseCheck:
    """One look at a service: is it healthy, which release does it report, what is wrong."""

    healthy: bool
    reported_release: str | None
    problems: list[str]


def check_release(base_url: str, expected_release: str, health_path: str = "/healthz") -> ReleaseCheck:
    problems = []
    health = get_json(base_url + health_path)
    if health.status != 200:
        problems.append(f"not healthy: GET {health_path} -> {health.describe()}")
    version = get_json(base_url + "/version")
    reported = version.body.get("release") if version.status == 200 and isinstance(version.body, dict) else None
    if reported != expected_release:
        seen = repr(reported) if reported is not None else version.describe()
        problems.append(f"/version reports {seen}, expected {expected_release!r}")
    return ReleaseCheck(health.status == 200, reported if isinstance(reported, str) else None, problems)
