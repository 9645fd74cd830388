"""The local staging target: releases, the atomic `current` switch, processes, blue/green, and
the demo service's contract (the smoke tests and the metrics scraper rely on it)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from pytest_predeploy.core.errors import ConfigError, StepError
from pytest_predeploy.targets.local import current_release, service_urls, stop_all
from pytest_predeploy.targets.local.target import MANIFEST, point
from pytest_predeploy.targets.processes import is_running
from tests.staging_support import DEMO_SERVICE, StagingProject, service, staging  # noqa: F401  (fixture)


def get(url: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def post(url: str, body: object) -> tuple[int, object]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_deploy_builds_a_release_switches_current_and_serves_the_demo_contract(staging: StagingProject) -> None:
    config = staging.write()
    result = staging.script("deploy_backend.sh", "--release", "v1")
    assert result.returncode == 0, result.stderr

    api = staging.target("api")
    assert os.readlink(api.current) == "releases/v1"
    manifest = json.loads((api.releases / "v1" / MANIFEST).read_text())
    assert manifest["release"] == "v1" and manifest["service"] == "api" and "server.py" in manifest["files"]
    urls = service_urls(config, "staging")
    assert set(urls) == {"api", "worker"} and all(url.startswith("http://127.0.0.1:") for url in urls.values())

    assert get(urls["api"] + "/healthz") == (200, {"status": "ok", "service": "api", "release": "v1"})
    assert get(urls["worker"] + "/version") == (200, {"service": "worker", "release": "v1"})
    status, routes = get(urls["api"] + "/routes")
    assert status == 200 and {"method": "POST", "path": "/api/orders"} in routes["routes"]  # type: ignore[index]
    status, order = post(urls["api"] + "/api/orders", {"product_id": 1, "quantity": 2})
    assert status == 201
    assert get(f"{urls['api']}/api/orders/{order['id']}")[1]["quantity"] == 2  # type: ignore[index]
    assert post(urls["api"] + "/api/orders", {"product_id": "x", "quantity": 2})[0] == 400
    status, job = post(urls["worker"] + "/jobs", {"task": "reindex"})
    assert status == 202 and get(f"{urls['worker']}/jobs/{job['id']}") == (200, {"id": job["id"], "status": "done"})  # type: ignore[index]

    with urllib.request.urlopen(urls["api"] + "/metrics", timeout=5) as response:
        metrics = response.read().decode()
    assert 'http_requests_total{method="POST",route="/api/orders",status="201"} 1.0' in metrics
    assert 'http_request_duration_seconds_bucket{le="0.005",method="GET",route="/api/orders/{id}"}' in metrics


def test_processes_run_in_their_own_group_with_pid_file_and_log(staging: StagingProject) -> None:
    staging.write(services=[service("api")])
    assert staging.script("deploy_backend.sh", "--release", "v1").returncode == 0
    record = staging.target("api").record("main")
    assert record is not None and record.release == "v1"
    assert os.getpgid(record.pid) == record.pid and os.getsid(record.pid) == record.pid
    assert "listening on 127.0.0.1:" in Path(record.log).read_text()


def test_atomic_switch_never_leaves_current_missing_for_a_polling_reader(tmp_path: Path) -> None:
    for tag in ("v1", "v2"):
        (tmp_path / "releases" / tag).mkdir(parents=True)
    current = tmp_path / "current"
    point(current, "releases/v1")
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
            import os, sys
            current, stop = sys.argv[1], sys.argv[2]
            reads = missing = 0
            print("ready", flush=True)
            while not os.path.exists(stop):
                reads += 1
                try:
                    target = os.readlink(current)
                    if not os.path.isdir(os.path.join(os.path.dirname(current), target)):
                        missing += 1
                except OSError:
                    missing += 1
            print(reads, missing)
        """),
            str(current),
            str(tmp_path / "stop"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout is not None and reader.stdout.readline().strip() == "ready"
    for switch in range(500):
        point(current, f"releases/v{switch % 2 + 1}")
    (tmp_path / "stop").touch()
    out, _ = reader.communicate(timeout=30)
    reads, missing = map(int, out.split())
    assert reads > 0
    assert missing == 0
    assert [entry.name for entry in tmp_path.iterdir() if ".tmp-" in entry.name] == []


def test_old_releases_are_pruned_but_never_one_that_is_current_or_running(staging: StagingProject) -> None:
    staging.write(services=[service("api"), service("worker", "worker", strategy="blue_green")], staging={"keep_releases": 2})
    for tag in ("v1", "v2", "v3"):
        assert staging.script("deploy_backend.sh", "--release", tag, "--service", "api").returncode == 0
    assert staging.target("api").release_tags() == ["v2", "v3"]

    # Blue/green: v1 is the oldest release but still runs in the blue slot, kept for switchback.
    assert staging.script("deploy_backend.sh", "--release", "v1", "--service", "worker").returncode == 0
    assert staging.script("deploy_backend.sh", "--release", "v2", "--service", "worker").returncode == 0
    assert staging.script("rollback_backend.sh", "--release", "v1", "--service", "worker").returncode == 0
    assert staging.script("deploy_backend.sh", "--release", "v3", "--service", "worker").returncode == 0
    worker = staging.target("worker")
    assert worker.current_release() == "v3"
    assert worker.release_tags() == ["v1", "v3"]
    blue = worker.running("blue")
    assert blue is not None and blue.release == "v1"


@pytest.mark.parametrize("fault, message", [("crash", "crashed at start"), ("unhealthy", "missed its health deadline of 1s")])
def test_a_failing_candidate_exits_1_naming_the_fault_and_is_not_left_running(staging: StagingProject, fault: str, message: str) -> None:
    staging.write(services=[service("api", health_timeout="1s", inject={"v2": fault})])
    assert staging.script("deploy_backend.sh", "--release", "v1").returncode == 0
    result = staging.script("deploy_backend.sh", "--release", "v2")
    assert result.returncode == 1
    assert f"api: release v2 {message}" in result.stderr
    api = staging.target("api")
    assert api.record("main") is None  # the failed process was stopped; current stays for rollback
    assert api.current_release() == "v2"


def test_rollback_refusals_have_their_own_exit_status_and_change_nothing(staging: StagingProject) -> None:
    staging.write(services=[service("api")])
    assert staging.script("deploy_backend.sh", "--release", "v1").returncode == 0
    single = staging.script("rollback_backend.sh", "--release", "v1")
    assert single.returncode == 4 and "only release" in single.stderr
    assert staging.script("deploy_backend.sh", "--release", "v2").returncode == 0
    api = staging.target("api")
    before = api.record("main")

    unknown = staging.script("rollback_backend.sh", "--release", "v0")
    assert unknown.returncode == 3 and "cannot roll back to v0: it was never deployed" in unknown.stderr
    current = staging.script("rollback_backend.sh", "--release", "v2")
    assert current.returncode == 5 and "already the current release" in current.stderr
    bad = staging.script("rollback_backend.sh", "--release", "../v1")
    assert bad.returncode == 2 and "release tag" in bad.stderr

    assert api.current_release() == "v2" and api.record("main") == before


def test_blue_green_switches_slots_without_restarting_and_rolls_back_by_switchback(staging: StagingProject) -> None:
    config = staging.write(services=[service("worker", "worker", strategy="blue_green")])
    assert staging.script("deploy_backend.sh", "--release", "v1").returncode == 0
    assert staging.script("deploy_backend.sh", "--release", "v2").returncode == 0
    worker = staging.target("worker")
    blue, green = worker.running("blue"), worker.running("green")
    assert blue is not None and green is not None
    assert (blue.release, green.release, worker.active_slot()) == ("v1", "v2", "green")

    result = staging.script("rollback_backend.sh", "--release", "v1")
    assert result.returncode == 0, result.stderr
    assert "switching without a restart" in result.stdout
    assert worker.active_slot() == "blue" and worker.current_release() == "v1"
    assert worker.running("blue") == blue and worker.running("green") == green  # same processes
    assert get(service_urls(config, "staging")["worker"] + "/version")[1] == {"service": "worker", "release": "v1"}

    assert staging.script("deploy_backend.sh", "--release", "v2").returncode == 0  # roll forward: switch again
    assert worker.active_slot() == "green" and worker.running("green") == green


def test_blue_green_failed_candidate_never_becomes_active(staging: StagingProject) -> None:
    config = staging.write(services=[service("worker", "worker", strategy="blue_green", inject={"v2": "crash"})])
    assert staging.script("deploy_backend.sh", "--release", "v1").returncode == 0
    assert staging.script("deploy_backend.sh", "--release", "v2").returncode == 1
    assert current_release(config, "staging", "worker") == "v1"
    assert get(service_urls(config, "staging")["worker"] + "/healthz")[0] == 200


def test_service_urls_names_the_service_that_is_not_running(staging: StagingProject) -> None:
    config = staging.write()
    assert staging.script("deploy_backend.sh", "--release", "v1", "--service", "api").returncode == 0
    with pytest.raises(StepError, match="service worker is not running on staging"):
        service_urls(config, "staging")


def test_stop_all_stops_every_process_it_started(staging: StagingProject) -> None:
    config = staging.write()
    for tag in ("v1", "v2"):
        assert staging.script("deploy_backend.sh", "--release", tag).returncode == 0
    records = [r for name in ("api", "worker") for r in staging.target(name).records()]
    assert len(records) == 3  # api main, worker blue and green
    stopped = stop_all(config, "staging")
    assert len(stopped) == 3
    assert not any(is_running(r.pid, r.start_ticks) for r in records)


def test_unknown_config_problems_are_messages_not_tracebacks(staging: StagingProject) -> None:
    staging.write(services=[service("api")])
    staging.path.write_text(staging.path.read_text().replace("health_timeout: 15s", "health_timeout: soon"))
    result = staging.script("deploy_backend.sh", "--release", "v1")
    assert result.returncode == 2
    assert "services.0.health_timeout" in result.stderr and "Traceback" not in result.stderr


def test_a_changed_source_is_rebuilt_when_nothing_runs_its_tag_and_refused_with_the_way_out_while_it_runs(staging: StagingProject, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "server.py").write_text((DEMO_SERVICE / "server.py").read_text())
    staging.write(services=[service("api", source=str(source))], staging={"releases": {"kind": "working_tree"}})
    assert staging.script("deploy_backend.sh", "--release", "v1").returncode == 0
    (source / "NOTES.txt").write_text("changed after v1 was built")
    result = staging.script("deploy_backend.sh", "--release", "v1")
    assert result.returncode == 1 and "release v1 is running (main slot, pid" in result.stderr
    assert "python -m pytest_predeploy.targets.local stop --env staging --service api" in result.stderr
    assert staging.target("api").current_release() == "v1" and "NOTES.txt" not in staging.target("api").manifest("v1").files  # type: ignore[union-attr]
    # The edit-and-rerun loop: once nothing runs v1 (current alone is no process), v1 is rebuilt.
    staging.target("api").stop_all()
    result = staging.script("deploy_backend.sh", "--release", "v1")
    assert result.returncode == 0, result.stderr
    assert f"rebuilt release v1 from working tree {source} (digest " in result.stdout and "(its code changed since" in result.stdout
    assert "NOTES.txt" in staging.target("api").manifest("v1").files  # type: ignore[union-attr]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("strategy", ["restart", "blue_green"])
def test_two_services_on_one_fixed_port_are_refused_at_load(staging: StagingProject, strategy: str) -> None:
    port = free_port()
    # With blue_green the green slot takes port + 1, so a neighbour there collides too.
    other = port + 1 if strategy == "blue_green" else port
    with pytest.raises(ConfigError, match=rf"services api.* and worker both use port {other} on 127.0.0.1; give each service its own port"):
        staging.write(services=[service("api", port=port, strategy=strategy), service("worker", "worker", port=other)])
    result = staging.script("deploy_backend.sh", "--release", "v1")
    assert result.returncode == 2 and f"both use port {other}" in result.stderr and "Traceback" not in result.stderr


def test_a_service_whose_port_is_answered_by_another_service_is_not_healthy(staging: StagingProject, tmp_path: Path) -> None:
    port = free_port()
    staging.write(services=[service("api", port=port)])
    assert staging.script("deploy_backend.sh", "--release", "v1").returncode == 0
    # Another project on this machine configured with the same port: its worker cannot bind,
    # and the api answering there must not pass for it.
    other = StagingProject(tmp_path / "other")
    other.root.mkdir()
    other.write(services=[service("worker", "worker", port=port, health_timeout="3s")])
    try:
        result = other.script("deploy_backend.sh", "--release", "v1")
    finally:
        assert other.config is not None
        stop_all(other.config, "staging")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"is not what answers on port {port}: service 'api' does" in result.stderr


#: An off-the-shelf service: health on its own path, plain-text answers, no /version, the port as
#: its only argument, and its release known only from the folder it was started in.
PLAIN_SERVICE = """
import http.server, pathlib, sys

RELEASE = pathlib.Path("RELEASE").read_text().strip()

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status, body = (200, b"ok") if self.path == "/health" else (200, RELEASE.encode()) if self.path == "/about" else (404, b"not found")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def plain_project(staging: StagingProject, **extra: object) -> None:
    for tag in ("v1", "v2"):
        folder = staging.root / "releases" / "plain" / tag
        folder.mkdir(parents=True)
        (folder / "app.py").write_text(PLAIN_SERVICE)
        (folder / "RELEASE").write_text(f"{tag}\n")
    staging.write(services=[{"name": "plain", "command": "{python} app.py {port}", "health_path": "/health", "health_timeout": "5s", **extra}])


def test_a_service_without_a_version_endpoint_deploys_and_is_identified_by_what_the_target_started(staging: StagingProject) -> None:
    from pytest_predeploy.rehearsal.deploy import deployment_problems, rehearse_deployment

    plain_project(staging)
    report = rehearse_deployment(staging.context("v2", previous="v1"))
    assert deployment_problems(report) == [] and report.outcome == "succeeded"
    (deployed,) = report.services
    assert deployed.verification is not None and deployed.verification.reported_release == "v2"
    assert get_text(service_urls(staging.config, "staging")["plain"] + "/about") == "v2"  # type: ignore[arg-type]


def test_the_target_s_record_is_the_identity_check_a_wrong_release_fails_it(staging: StagingProject) -> None:
    from pytest_predeploy.targets.base import check_serving
    from pytest_predeploy.targets.local import LocalTarget

    plain_project(staging)
    assert staging.script("deploy_backend.sh", "--release", "v1").returncode == 0
    assert staging.config is not None
    target = LocalTarget(staging.config)
    url = target.service_url("staging", "plain")
    assert url is not None
    assert check_serving(target, staging.config, "staging", "plain", "v1", url).problems == []
    wrong = check_serving(target, staging.config, "staging", "plain", "v2", url)
    assert wrong.reported_release == "v1"
    assert wrong.problems == ["the local target runs v1 of plain (its own record of what it started), expected v2"]


def test_a_configured_version_path_is_an_extra_check_on_what_the_service_reports(staging: StagingProject) -> None:
    from pytest_predeploy.targets.base import check_serving
    from pytest_predeploy.targets.local import LocalTarget

    plain_project(staging, version_path="/health")  # answers 'ok', not {"release": "v1"}
    assert staging.script("deploy_backend.sh", "--release", "v1").returncode == 0
    assert staging.config is not None
    target = LocalTarget(staging.config)
    url = target.service_url("staging", "plain")
    assert url is not None
    check = check_serving(target, staging.config, "staging", "plain", "v1", url)
    assert check.problems == ["/health reports 'ok', expected 'v1'"]


def get_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


#: A service that keeps running when it cannot bind its port (some servers retry instead of exiting).
STUBBORN_SERVICE = """
import socket, sys, time

try:
    socket.create_server(("127.0.0.1", int(sys.argv[1])))
except OSError:
    pass
while True:
    time.sleep(1)
"""


def test_a_port_answered_by_another_program_is_not_taken_for_the_started_service(staging: StagingProject, tmp_path: Path) -> None:
    port = free_port()
    other = tmp_path / "other"
    other.mkdir()
    (other / "app.py").write_text(PLAIN_SERVICE)
    (other / "RELEASE").write_text("someone else\n")
    foreign = subprocess.Popen([sys.executable, "app.py", str(port)], cwd=other)
    try:
        deadline = time.monotonic() + 10
        while get_text_or_none(f"http://127.0.0.1:{port}/health") != "ok" and time.monotonic() < deadline:
            time.sleep(0.05)
        folder = staging.root / "releases" / "plain" / "v1"
        folder.mkdir(parents=True)
        (folder / "app.py").write_text(STUBBORN_SERVICE)
        staging.write(services=[{"name": "plain", "command": "{python} app.py {port}", "port": port, "health_path": "/health", "health_timeout": "3s"}])
        result = staging.script("deploy_backend.sh", "--release", "v1")
    finally:
        foreign.kill()
        foreign.wait()
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"plain: release v1 is not what answers on port {port}: another program listens there" in result.stderr


def get_text_or_none(url: str) -> str | None:
    try:
        return get_text(url)
    except OSError:
        return None
