"""What `predeploy init` detects about a service from its folder: start command, port, health
path, OpenAPI document; and what it leaves as a placeholder."""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from pytest_predeploy.tooling.detect import detect_service, service_block

SERVER = """
import argparse
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    HTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_procfile_web_process_with_port_variable(tmp_path: Path) -> None:
    found = detect_service(
        write(tmp_path, {"Procfile": "worker: celery -A app worker\nweb: python3 app.py --bind 127.0.0.1:$PORT\n", "app.py": "ROUTES = ['/healthz']\n"}), "shop"
    )
    assert found.command == "{python} app.py --bind 127.0.0.1:{port}"
    assert found.health_path == "/healthz"
    assert found.todo == []
    assert found.found[0] == "start command from Procfile (web: ...)"


def test_procfile_line_that_needs_a_shell_runs_under_sh(tmp_path: Path) -> None:
    found = detect_service(write(tmp_path, {"Procfile": "web: cd app && PORT=${PORT} ./serve\n"}), "shop")
    assert found.command == "sh -c 'cd app && PORT={port} ./serve'"


def test_main_module_with_a_port_option(tmp_path: Path) -> None:
    found = detect_service(write(tmp_path, {"__main__.py": SERVER + "\nmain()\n"}), "shop")
    assert found.command == "{python} . --port {port}"
    assert found.health_path == "/health"


def test_package_main_module_reading_port_from_the_environment(tmp_path: Path) -> None:
    code = "import os\nPORT = int(os.environ.get('PORT', '8000'))\nHEALTH = '/readyz'\n"
    found = detect_service(write(tmp_path, {"shop/__main__.py": code, "shop/__init__.py": "", "tests/test_x.py": "'/healthz'\n"}), "shop")
    assert found.command == "{python} -m shop"
    assert found.env == {"PORT": "{port}"}
    assert found.health_path == "/readyz"  # tests/ is not the service's code


def test_single_script_with_main_guard_and_openapi_file(tmp_path: Path) -> None:
    found = detect_service(
        write(
            tmp_path,
            {"server.py": SERVER + "\nif __name__ == '__main__':\n    main()\n", "helpers.py": "X = 1\n", "openapi.yaml": "openapi: 3.0.0\npaths: {}\n"},
        ),
        "shop",
    )
    assert found.command == "{python} server.py --port {port}"
    assert found.openapi == "openapi.yaml"


def test_nothing_to_go_on_leaves_placeholders_that_say_what_to_set(tmp_path: Path) -> None:
    found = detect_service(write(tmp_path, {"a.py": "X = 1\n", "b.py": "Y = 2\n"}), "shop")
    assert found.command is None and found.health_path is None and found.openapi is None
    assert [line.split(":")[0] for line in found.todo] == ["set `command`", "set `health_path`"]


def test_project_script_command_starts_the_service_and_it_answers_health(tmp_path: Path) -> None:
    source = write(
        tmp_path / "svc",
        {
            "pyproject.toml": '[project]\nname = "shop"\nversion = "1"\n[project.scripts]\nshop-serve = "shop.server:main"\n',
            "src/shop/__init__.py": "",
            "src/shop/server.py": SERVER,
        },
    )
    found = detect_service(source, "shop")
    assert found.found[0] == "start command from [project.scripts] shop-serve in pyproject.toml"
    assert found.health_path == "/health" and found.todo == []
    # The detected command, expanded as the local staging target expands it, really starts it.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [part.format(python=sys.executable, port=port) for part in shlex.split(found.command or "")]
    process = subprocess.Popen(argv, cwd=source, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        status = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{found.health_path}", timeout=1) as answer:
                    status = answer.status
                    break
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        assert status == 200, process.stderr.read().decode() if process.poll() is not None and process.stderr else "no answer"
    finally:
        process.kill()
        process.wait(timeout=10)


def test_the_service_block_parses_and_says_what_to_set(tmp_path: Path) -> None:
    found = detect_service(
        write(tmp_path / "a", {"Procfile": "web: python app.py --port $PORT  # the app\n", "app.py": "H = '/health'\n", "openapi.json": "{}"}), "shop"
    )
    block = yaml.safe_load(service_block("shop", "shop", found))[0]
    assert block["command"] == "{python} app.py --port {port}"
    assert block["health_path"] == "/health" and block["endpoints"] == {"openapi": "shop/openapi.json"}
    unknown = service_block("shop", None, detect_service(write(tmp_path / "b", {"x.py": ""}), "shop"))
    assert [line.split("# SET ME")[0].split(":")[0].strip() for line in unknown.splitlines() if "# SET ME" in line] == [
        "source",
        "command",
        "health_path",
        "routes",
    ]
    assert yaml.safe_load(unknown)[0]["endpoints"] == {"routes": []}
