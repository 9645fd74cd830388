"""Requests counted from the smoke run itself, for services that expose no request counters.

A smoke suite that calls the services through :func:`request` (or the ``predeploy_http``
fixture of :mod:`pytest_predeploy.harness.http`, which is the same function) leaves one line per request in the file named by
``PREDEPLOY_REQUEST_LOG``; :func:`count_requests` then matches every line to a declared
endpoint. Only the method, the URL's path (never its query string or body, which may carry
credentials) and the status are written.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_predeploy.core.nesting import json_loads
from pytest_predeploy.rehearsal.openapi import RouteTable

ENV_REQUEST_LOG = "PREDEPLOY_REQUEST_LOG"

#: A line longer than this is not one we wrote (paths are cut to fit); reading stops counting it.
MAX_LINE = 4096
#: Requests counted at most per run; a suite making more is load-testing, not smoke-testing.
MAX_REQUESTS = 1_000_000

Endpoint = tuple[str, str, str]  # (service, METHOD, path template)


def record(method: str, url: str, status: int | None) -> None:
    """Append one request to the log named by ``PREDEPLOY_REQUEST_LOG`` (nothing without it)."""
    log = os.environ.get(ENV_REQUEST_LOG)
    if not log:
        return
    parts = urllib.parse.urlsplit(url)
    line = json.dumps({"method": method.upper(), "base": f"{parts.scheme}://{parts.netloc}", "path": parts.path[:2048] or "/", "status": status})
    # One write of a line shorter than PIPE_BUF with O_APPEND: concurrent writers never interleave.
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Response:
    """An answer; HTTP errors are answers too (a smoke test asserts on the status)."""

    status: int
    body: bytes

    def json(self) -> Any:
        return json_loads(self.body or b"null")


def request(method: str, url: str, body: Any = None, *, headers: Mapping[str, str] | None = None, timeout: float = 10.0) -> Response:
    """One HTTP request (``body`` sent as JSON when given), recorded for coverage."""
    # Here, not at the top: urllib.request loads http.client and ssl, which the plugin's process
    # does not need (it imports this module for the smoke step; the suites send the requests).
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    sent = {"Content-Type": "application/json", **(headers or {})}
    req = urllib.request.Request(url, data=data, method=method.upper(), headers=sent)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            response = Response(answer.status, answer.read())
    except urllib.error.HTTPError as exc:
        response = Response(exc.code, exc.read())
    except OSError:
        record(method, url, None)
        raise
    record(method, url, response.status)
    return response


def _service_of(base: str, urls: Mapping[str, str]) -> str | None:
    for service, url in urls.items():
        parts = urllib.parse.urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" == base:
            return service
    return None


def count_requests(log: Path, urls: Mapping[str, str], tables: Mapping[str, RouteTable]) -> Counter[Endpoint]:
    """Requests per declared endpoint in ``log``: a line is counted for the service whose base
    URL it was sent to and the declared route its path matches; other lines (undeclared paths,
    other hosts, calls that got no answer, malformed lines) are not counted. A missing log counts nothing."""
    counts: Counter[Endpoint] = Counter()
    try:
        stream = log.open("rb")
    except FileNotFoundError:
        return counts
    with stream:
        for n, raw in enumerate(stream):
            if n >= MAX_REQUESTS:
                break
            if len(raw) > MAX_LINE:
                continue
            try:
                entry = json_loads(raw)
                method, base, path = str(entry["method"]), str(entry["base"]), str(entry["path"])
            except (ValueError, TypeError, KeyError):
                continue
            if entry.get("status") is None:
                continue  # never answered: the endpoint was not exercised
            service = _service_of(base, urls)
            if service is None or service not in tables:
                continue
            route = tables[service].match(method, path)
            if route is not None:
                counts[(service, route[0], route[1])] += 1
    return counts
