"""HTTP probes of a running service: its health and the release it reports (``version_path``)."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any

from pytest_predeploy.core.nesting import json_loads

#: The most of an answer a probe reads; health and version bodies are a few hundred bytes.
_MAX_ANSWER = 1 << 20


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


def _answer(status: int, raw: bytes) -> Answer:
    try:
        body = json_loads(raw) if raw else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        body = raw[:200].decode("utf-8", "replace")
    return Answer(status, body, None)


def get_json(url: str, timeout: float = 2.0) -> Answer:
    """GET any URL (http or https, proxies as configured in the environment)."""
    # Imported here, not for a cycle: the deploy command only probes its own local processes
    # (local_get_json) and starts faster without urllib, which httpget loads.
    from pytest_predeploy.core.httpget import NoAnswer, http_get

    try:
        answer = http_get(url, timeout, max_bytes=_MAX_ANSWER)
    except NoAnswer as exc:
        return Answer(None, None, f"no answer from {url}: {exc.reason}")
    return _answer(answer.status, answer.body)


def local_get_json(port: int, path: str, timeout: float = 2.0) -> Answer:
    """GET ``http://127.0.0.1:<port><path>`` with one HTTP/1.0 exchange over a plain socket.

    The local staging target polls its processes' health checks with this while they start:
    it costs a fraction of urllib's CPU per request and never goes through an HTTP proxy set in
    the environment (which urllib would use for 127.0.0.1 unless NO_PROXY says otherwise)."""
    url = f"http://127.0.0.1:{port}{path}"
    raw = bytearray()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as connection:
            connection.settimeout(timeout)
            connection.connect(("127.0.0.1", port))
            connection.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n\r\n".encode("latin-1"))
            while len(raw) < _MAX_ANSWER and not _complete(raw) and (chunk := connection.recv(65536)):
                raw += chunk
    except OSError as exc:
        return Answer(None, None, f"no answer from {url}: {exc}")
    head, separator, body = bytes(raw).partition(b"\r\n\r\n")
    parts = head.split(b"\r\n", 1)[0].split()
    if not separator or len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return Answer(None, None, f"no answer from {url}: not an HTTP response ({bytes(raw[:60])!r})")
    return _answer(int(parts[1]), body[: _content_length(head)])


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return int(value)
    return None


def _complete(raw: bytearray) -> bool:
    """Whether the answer so far is whole by its Content-Length (a server that keeps the
    connection open despite HTTP/1.0 is not waited for); without one, the server's close ends it."""
    head, separator, body = bytes(raw).partition(b"\r\n\r\n")
    length = _content_length(head) if separator else None
    return length is not None and len(body) >= length


@dataclass(frozen=True)
class ReleaseCheck:
    """One look at a service: is it healthy, which release does it report, what is wrong."""

    healthy: bool
    reported_release: str | None
    problems: list[str]


def other_service(answer: Answer, service: str | None) -> str | None:
    """The service name an answer gives when it is not ``service`` (None: it matches, or the
    answer names no service, which services of your own need not do)."""
    if service is None or not isinstance(answer.body, dict):
        return None
    named = answer.body.get("service")
    return str(named) if named is not None and named != service else None


def check_release(
    base_url: str, expected_release: str, health_path: str = "/healthz", service: str | None = None, version_path: str | None = "/version"
) -> ReleaseCheck:
    """Health of the service at ``base_url`` and, with ``version_path``, the release it reports
    there (None: not asked; the caller knows the release otherwise, see targets.base.check_serving).
    With ``service``, an answer naming another service is a problem: the release alone cannot tell
    which service answered (two services on one port both report the candidate)."""
    problems = []
    health = get_json(base_url + health_path)
    if health.status != 200:
        problems.append(f"not healthy: GET {health_path} -> {health.describe()}")
    answers = [health]
    reported = None
    if version_path is not None:
        version = get_json(base_url + version_path)
        answers.append(version)
        reported = version.body.get("release") if version.status == 200 and isinstance(version.body, dict) else None
        if reported != expected_release:
            seen = repr(reported) if reported is not None else (repr(version.body) if version.status == 200 else version.describe())
            problems.append(f"{version_path} reports {seen}, expected {expected_release!r}")
    answering = next((name for answer in reversed(answers) if (name := other_service(answer, service)) is not None), None)
    if answering is not None:
        problems.append(f"{base_url} is answered by service {answering!r}, not {service!r} (do two services share a port?)")
    return ReleaseCheck(health.status == 200, reported if isinstance(reported, str) else None, problems)
