"""Shared by the smoke, observability and Prometheus tests: the real demo service started on a free
port of 127.0.0.1 (stopped after the test), a static metrics server, and a small project config.

No tests here."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_predeploy.config import ProjectConfig, load_config

REPO = Path(__file__).resolve().parents[1]
#: The candidate's code (the manifest's release is only the name it reports), with its flag on as in staging.
DEMO_SERVER = REPO / "demo" / "releases" / "v1.2" / "server.py"

StartService = Callable[..., str]


def _wait_for_file(path: Path, proc: subprocess.Popen[bytes], what: str) -> str:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().strip():
            return path.read_text().strip()
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode} before listening")
        time.sleep(0.05)
    raise AssertionError(f"{what} did not start listening")


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[StartService]:
    """Starts a real demo service process (``role``, ``release``, optional ``fault``) on a free
    port and returns its base URL; every process is stopped at teardown."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(role: str, release: str = "v1.2", fault: str | None = None) -> str:
        folder = tmp_path / f"svc-{role}-{len(procs)}"
        folder.mkdir()
        manifest = {"service": role, "release": release, **({"fault": fault} if fault else {})}
        (folder / "release-manifest.json").write_text(json.dumps(manifest))
        proc = subprocess.Popen(
            [sys.executable, str(DEMO_SERVER), "--role", role, "--port", "0", "--port-file", "port"],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "DEMO_FLAGS": "new-checkout"},
        )
        procs.append(proc)
        port = _wait_for_file(folder / "port", proc, f"demo {role}")
        return f"http://127.0.0.1:{port}"

    yield start
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def static_server(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], str]]:
    """A real HTTP server answering fixed files (``{"routes": "...", "metrics": "..."}``): a
    service whose endpoints answer, but not what a Prometheus scraper can read."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(files: dict[str, str]) -> str:
        root = tmp_path / f"static-{len(procs)}"
        root.mkdir()
        for name, text in files.items():
            (root / name).write_text(text)
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(proc)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return f"http://127.0.0.1:{port}"
            except OSError:
                time.sleep(0.05)
        raise AssertionError("static server did not start")

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def free_port() -> int:
    """A port nothing listens on (bound and released; nothing else binds it in the meantime in practice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_config(
    tmp_path: Path,
    *,
    services: list[str],
    suites: list[dict[str, object]],
    min_coverage: float = 0.8,
    urls: dict[str, str] | None = None,
    extra: dict[str, object] | None = None,
) -> ProjectConfig:
    """A config of ``services`` (with ``url`` where ``urls`` gives one; the others are looked for
    on a local staging target under tmp_path, where nothing runs)."""
    urls = urls or {}
    data = {
        "version": 1,
        "project": "shop-test",
        "environments": {"staging": {}, "production": {}},
        "services": [{"name": name, **({"url": urls[name]} if name in urls else {})} for name in services],
        "staging": {"root": str(tmp_path / "staging")},
        "approvals": {"allow_none": True},
        "smoke": {"min_coverage": min_coverage, "suites": suites},
        **(extra or {}),
    }
    path = tmp_path / "predeploy.yaml"
    path.write_text(json.dumps(data))
    return load_config(path)
