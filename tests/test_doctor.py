"""`predeploy doctor`'s checks: one row per check, each failed one naming the problem and the fix;
trial starts of services leave nothing running."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from pytest_predeploy.core.errors import ConfigError
from pytest_predeploy.targets.settings import load_target_config
from pytest_predeploy.tooling.doctor import Check, check_command, check_fresh, check_service_starts, from_problems, guarded, render

REPO = Path(__file__).resolve().parents[1]

SERVICE = """
import argparse, os, pathlib
from http.server import BaseHTTPRequestHandler, HTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=0)
parser.add_argument("--port-file")
parser.add_argument("--mode", default="ok")
args = parser.parse_args()
if args.mode == "crash":
    raise SystemExit(3)
pathlib.Path(os.environ["RECORD_PID"]).write_text(str(os.getpid())) if os.environ.get("RECORD_PID") else None


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/healthz" and args.mode == "ok" else 503)
        self.end_headers()

    def log_message(self, *a):
        pass


server = HTTPServer(("127.0.0.1", args.port), Handler)
if args.port_file:
    pathlib.Path(args.port_file).write_text(str(server.server_address[1]))
server.serve_forever()
"""


@pytest.fixture
def service(tmp_path: Path) -> Path:
    source = tmp_path / "svc"
    source.mkdir()
    (source / "server.py").write_text(textwrap.dedent(SERVICE))
    return source


def test_scripts_named_by_commands_must_exist_and_direct_ones_be_executable(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts/deploy.sh").write_text("#!/bin/sh\n")
    (tmp_path / "scripts/smoke.py").write_text("")
    (tmp_path / "scripts/direct.sh").write_text("#!/bin/sh\n")
    rows = [
        check_command("deploy", "bash scripts/deploy.sh --env {env}", tmp_path, "steps.deploy.command"),
        check_command("smoke", "{python} scripts/smoke.py --output {output}", tmp_path, "steps.smoke.command"),
        check_command("rollback", "bash scripts/rollback.sh --env {env}", tmp_path, "steps.rollback.command"),
        check_command("direct", "scripts/direct.sh", tmp_path, "steps.deploy.command"),
        check_command("helm", "no-such-helm-xyz upgrade", tmp_path, "steps.deploy.command"),
    ]
    assert [row.ok for row in rows] == [True, True, False, False, False]
    assert rows[2].detail == f"{tmp_path}/scripts/rollback.sh does not exist"
    assert "steps.rollback.command" in rows[2].fix
    assert rows[3].detail.endswith("direct.sh is not executable") and rows[3].fix.startswith("chmod +x")
    assert rows[4].detail == "program 'no-such-helm-xyz' is not on PATH"
    os.chmod(tmp_path / "scripts/direct.sh", 0o755)
    assert check_command("direct", "scripts/direct.sh", tmp_path, "steps.deploy.command").ok


def trial(service: Path, command: str, timeout: str = "20s", env: dict[str, str] | None = None, **staging: object) -> Check:
    """``check_service_starts`` of service ``api`` from ``service`` (its working tree) as configured."""
    config_file = service.parent / "predeploy.yaml"
    entry = {"name": "api", "source": service.name, "command": command, "health_timeout": timeout, "env": env or {}}
    config_file.write_text(yaml.safe_dump({"services": [entry], "staging": staging}))
    config = load_target_config(config_file)
    return check_service_starts(config, "api", "v1", service.parent / "api.log", working_tree=not staging)


@pytest.mark.parametrize("command", ["{python} server.py --port {port}", "{python} server.py --port 0 --port-file {port_file}"])
def test_a_service_that_starts_and_answers_health_passes(service: Path, command: str) -> None:
    row = trial(service, command)
    assert row.ok, row.line()
    assert row.detail.startswith("release v1 answered GET /healthz with 200 after ")
    assert not (service / "__pycache__").exists()  # it ran in a release folder, as the target's releases do


def test_a_service_that_never_gets_healthy_is_named_and_stopped(service: Path, tmp_path: Path) -> None:
    row = trial(service, "{python} server.py --port {port} --mode sick", timeout="1s", env={"RECORD_PID": str(tmp_path / "pid")})
    assert not row.ok
    assert row.line().startswith("FAIL  service api starts: release v1 missed its health deadline of 1s (last answer: HTTP 503")
    assert f"(output in {tmp_path / 'api.log'})" in row.detail and "services.health_path" in row.fix
    pid = int((tmp_path / "pid").read_text())
    assert not Path(f"/proc/{pid}").exists()  # stopped and reaped


def test_a_service_that_crashes_at_start_says_so(service: Path) -> None:
    row = trial(service, "{python} server.py --mode crash")
    assert not row.ok and row.detail.startswith("release v1 crashed at start (exit status 3)"), row.line()


def test_a_missing_release_folder_is_a_row_not_a_traceback(service: Path, tmp_path: Path) -> None:
    row = trial(service, "{python} server.py --port {port}", releases={"kind": "folder", "folder": "releases/{release}"})
    assert not row.ok and row.detail.startswith(f"no folder for release v1: {tmp_path / 'releases' / 'v1'} does not exist"), row.line()
    assert row.fix == "correct services or staging.releases"


def test_environment_values_fill_known_placeholders_and_keep_other_braces(service: Path, tmp_path: Path) -> None:
    # As the staging target does: a value may hold JSON, whose braces are not placeholders.
    row = trial(service, "{python} server.py --port {port}", env={"RECORD_PID": str(tmp_path / "{service}.pid"), "SETTINGS": '{"mode": "ok"}'})
    assert row.ok, row.line()
    assert (tmp_path / "api.pid").exists()


def test_freshness_problems_and_user_errors_become_rows() -> None:
    now = datetime(2026, 11, 29, 12, tzinfo=UTC)
    assert check_fresh("advisories", now - timedelta(hours=5), timedelta(days=2), now, "update").ok
    stale = check_fresh("advisories", now - timedelta(days=3, hours=5), timedelta(days=2), now, "run predeploy advisories update")
    assert stale.line() == "FAIL  advisories: 3.2 days old, older than max_age 2d -> fix: run predeploy advisories update"
    assert (
        from_problems("approvals", ["protocol-4: expired on 2026-01-01", "protocol-9: missing"], "3/3", "renew").detail
        == "protocol-4: expired on 2026-01-01 (and 1 more)"
    )

    def broken() -> Check:
        raise ConfigError("signers.yaml:4: field 'keys': expected a list\nmore detail")

    assert guarded("signers file", "fix signers.yaml", broken) == Check(
        "signers file", False, "signers.yaml:4: field 'keys': expected a list", "fix signers.yaml"
    )
    lines, status = render([Check("a", True, "fine"), stale])
    assert status == 1 and lines[-1] == "doctor: 1/2 checks passed; fix the 1 above and run it again"


def _demo_copy(root: Path) -> Path:
    root.mkdir()
    for name in ("predeploy.yaml", "demo", "scripts"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__", ".staging", ".artifacts"))
        else:
            shutil.copy2(source, root / name)
    return root


def doctor(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_predeploy", "doctor", *args], cwd=root, capture_output=True, text=True, timeout=120)


def test_doctor_passes_on_the_demo_and_names_each_problem_of_a_broken_copy(tmp_path: Path) -> None:
    demo = _demo_copy(tmp_path / "demo")
    done = doctor(demo, "--release", "v1.2")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert all(line.startswith("ok    ") for line in lines[:-1]) and lines[-1] == f"doctor: {len(lines) - 1}/{len(lines) - 1} checks passed"
    assert {"step deploy", "service api starts", "service worker starts", "approval protocol-4-quality-audit", "advisory data"} <= {
        line[6:].split(":")[0] for line in lines[:-1]
    }

    broken = _demo_copy(tmp_path / "broken")
    (broken / "scripts" / "rollback_backend.sh").unlink()
    config = yaml.safe_load((broken / "predeploy.yaml").read_text())
    config["services"][0].update(health_path="/never-healthy", health_timeout="2s")
    (broken / "predeploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    record = broken / "demo" / "approvals" / "protocol-4-quality-audit.yaml"
    record.write_text(record.read_text().replace("expires_at: 2030-12-31T00:00:00Z", "expires_at: 2026-01-01T00:00:00Z"))
    done = doctor(broken, "--release", "v1.2")
    assert done.returncode == 1
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert [line.split(":")[0] for line in failed] == ["FAIL  step rollback", "FAIL  service api starts", "FAIL  approval protocol-4-quality-audit"]
    assert f"{broken}/scripts/rollback_backend.sh does not exist -> fix: create it or correct the path in steps.rollback.command" in failed[0]
    assert "release v1.2 missed its health deadline of 2s (last answer: HTTP 404" in failed[1] and "services[0].health_path" in failed[1]
    assert "expired: expired at 2026-01-01T00:00:00+00:00 -> fix: ask for a renewed" in failed[2]
    assert done.stdout.splitlines()[-1].endswith("; fix the 3 above and run it again")
    assert "Traceback" not in done.stdout + done.stderr


def test_doctor_names_a_signers_file_where_one_person_would_have_to_sign_every_role(tmp_path: Path) -> None:
    demo = _demo_copy(tmp_path / "demo")
    signers = demo / "demo" / "signers.yaml"
    data = yaml.safe_load(signers.read_text())
    data["signers"] = data["signers"][:1]
    data["signers"][0]["roles"] = ["release-manager", "qa-lead"]
    signers.write_text(yaml.safe_dump(data, sort_keys=False))
    done = doctor(demo)
    assert done.returncode == 1
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 and failed[0].startswith("FAIL  signers file:"), done.stdout
    assert "2 required roles but only 1 people may sign them" in failed[0] and "add another signer" in failed[0]

    signers.write_text("signers:\n  - identity: ana\n    roles: [qa-lead]\n    keys: [not-a-key]\n")
    done = doctor(demo)
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 and failed[0].startswith("FAIL  signers file:") and "signers.yaml" in failed[0] and "Traceback" not in done.stdout + done.stderr


#: A service packaged as a wheel that needs a dependency the interpreter running pytest lacks.
WHEEL_SERVICE = """
import argparse, http.server, greetlib

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int)
port = parser.parse_args().port

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()
        self.wfile.write(greetlib.HELLO.encode())

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


def test_doctor_is_green_for_a_correct_dist_config_it_starts_the_release_as_the_target_does(tmp_path: Path) -> None:
    from tests.wheels import make_wheel

    demo = _demo_copy(tmp_path / "demo")
    wheels = demo / "wheels"
    make_wheel(wheels, "greetlib", "1.0", {"greetlib.py": b'HELLO = "hello"\n'})
    make_wheel(wheels, "shopsvc", "1.2", {"shopsvc/__init__.py": b"", "shopsvc/__main__.py": WHEEL_SERVICE.encode()}, requires=("greetlib",))
    source = demo / "src" / "shopsvc"  # the service's source too, as `predeploy init` leaves it
    source.mkdir(parents=True)
    (source / "__main__.py").write_text(WHEEL_SERVICE)
    config = yaml.safe_load((demo / "predeploy.yaml").read_text())
    config["services"] = [{"name": "shop", "source": "src", "command": "{python} -m shopsvc --port {port}", "health_timeout": "20s"}]
    config["staging"]["releases"] = {"kind": "dist", "dist": "wheels/shopsvc-{version}-*.whl", "pip_args": ["--no-index", "--find-links", str(wheels)]}
    (demo / "predeploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    done = doctor(demo, "--release", "v1.2")
    rows = [line for line in done.stdout.splitlines() if "service shop" in line]
    assert rows and rows[0].startswith("ok    service shop starts:"), done.stdout + done.stderr
    assert done.returncode == 0, done.stdout
    assert "Traceback" not in done.stdout + done.stderr
