"""`predeploy init` in another repository, end to end: real subprocesses, a real service of that
repository's own deployed to the local staging target, that repository's own scripts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_predeploy.config import load_config
from pytest_predeploy.harness.gates import ExitStatus
from pytest_predeploy.security.osv import BUNDLED_ZIP
from pytest_predeploy.tooling.scaffold import template_dir
from tests.httpfiles import serve
from tests.staging_support import processes_under
from tests.wheels import make_wheel

REPO = Path(__file__).resolve().parents[1]

#: A small service of the other repository's own: stdlib http.server plus prometheus-client,
#: honouring the local staging target's contract and serving one business endpoint.
SERVICE = '''\
"""Greeter: says hello. Answers /healthz, /version, /metrics, /routes and GET /greeting."""

import argparse
import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

RELEASE = json.loads(Path("release-manifest.json").read_text())["release"]
REGISTRY = CollectorRegistry()
REQUESTS = Counter("http_requests", "Requests served.", ["method", "route", "status"], registry=REGISTRY)
LATENCY = Histogram("http_request_duration_seconds", "Time to serve a request.", ["method", "route"], registry=REGISTRY)
BUSINESS = {"/greeting": lambda: {"greeting": "hello from " + RELEASE}}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/metrics":
            return self.send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
        started = time.perf_counter()
        if self.path == "/healthz":
            status, body = 200, {"status": "ok"}
        elif self.path == "/version":
            status, body = 200, {"service": "greeter", "release": RELEASE}
        elif self.path == "/routes":
            status, body = 200, {"routes": [{"method": "GET", "path": path} for path in BUSINESS]}
        elif self.path in BUSINESS:
            status, body = 200, BUSINESS[self.path]()
        else:
            status, body = 404, {"error": "no route " + self.path}
        self.send(status, json.dumps(body).encode(), "application/json")
        route = self.path if status != 404 else "unmatched"
        LATENCY.labels("GET", route).observe(time.perf_counter() - started)
        REQUESTS.labels("GET", route, str(status)).inc()

    def send(self, status, data, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=0)
parser.add_argument("--port-file", type=Path, required=True)
args = parser.parse_args()
server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
tmp = args.port_file.with_name(args.port_file.name + ".tmp")
tmp.write_text(str(server.server_address[1]))
os.replace(tmp, args.port_file)
server.serve_forever(poll_interval=0.1)
server.server_close()
'''

SMOKE_TEST = '''\
"""The greeter's business endpoint (named after the service: the rollback subset is -k greeter)."""


def test_greeter_says_hello(urls, release, predeploy_http):
    answer = predeploy_http("GET", urls["greeter"] + "/greeting")
    assert answer.status == 200
    assert answer.json() == {"greeting": "hello from " + release}
'''

#: A line the repository's own deploy script prints: proof that its script, not ours, ran.
OWN_SCRIPT_MARKER = "greeter repository's own deploy script"


def predeploy(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_predeploy", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[Path]:
    """An empty git repository holding only a small service of its own."""
    root = tmp_path / "greeter"
    (root / "service").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True, timeout=30)
    (root / "service" / "app.py").write_text(SERVICE)
    yield root
    leftovers = processes_under(tmp_path)
    for process in leftovers:
        process.kill()
    assert not leftovers, f"processes left running: {[p.cmdline() for p in leftovers]}"


def test_init_writes_a_valid_starter_with_copies_of_the_gates_and_scripts(repository: Path) -> None:
    done = predeploy("init", "--service", "greeter=service", cwd=repository)
    assert done.returncode == 0, done.stdout + done.stderr
    config = load_config(repository / "predeploy.yaml")
    assert [(s.name, s.source) for s in config.services] == [("greeter", repository / "service")]
    assert config.security.source_paths == [repository / "service"]
    assert config.smoke.suites[0].path == repository / "predeploy" / "smoke"
    for kind in ("gates", "scripts"):
        shipped = sorted(p.name for p in template_dir(kind).iterdir() if p.suffix in (".py", ".sh"))
        assert shipped, kind
        for name in shipped:
            assert (repository / kind / name).read_bytes() == (REPO / kind / name).read_bytes(), f"{kind}/{name}"
            assert f"wrote   {kind}/{name}" in done.stdout
    assert os.access(repository / "scripts" / "deploy_backend.sh", os.X_OK)
    for written in (
        "predeploy/smoke/conftest.py",
        "predeploy/approvals/protocol-4-quality-audit.example.yaml",
        "predeploy/environments/production/infrastructure.yaml",
        "predeploy/ops/runbooks/greeter.md",
        "predeploy/ops/oncall.yaml",
        "predeploy/ops/escalation.yaml",
        ".gitignore",
    ):
        assert (repository / written).is_file(), written
    assert "SET ME" in (repository / "predeploy.yaml").read_text()  # the OSV database, the previous release ...
    assert "Next steps:" in done.stdout and "predeploy advisories update" in done.stdout


def test_init_never_overwrites_and_lists_what_it_skipped(repository: Path) -> None:
    # An existing .gitignore keeps its own lines and gets the ones it lacks, once.
    (repository / ".gitignore").write_text("node_modules/\n.staging\n")
    first = predeploy("init", cwd=repository)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "  added   .artifacts/, .predeploy/ to .gitignore (it existed: its own lines are kept as they were)" in first.stdout
    assert (repository / ".gitignore").read_text() == (
        "node_modules/\n.staging\n# pytest-predeploy: the evidence of each run, the local staging target, the advisory database\n.artifacts/\n.predeploy/\n"
    )
    assert ".gitignore" not in " ".join(next_steps_of(first.stdout))
    (repository / "predeploy.yaml").write_text("# mine\n")
    (repository / "gates" / "test_gate1_intake.py").write_text("# my gate\n")
    files = sorted(p for p in repository.rglob("*") if p.is_file() and ".git" not in p.relative_to(repository).parts)

    second = predeploy("init", cwd=repository)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "wrote 0 file(s)" in second.stdout
    assert "skipped .gitignore (exists; never overwritten)" in second.stdout and "  added " not in second.stdout
    assert "  wrote " not in second.stdout
    for path in files:
        if path.parent.name != "service":
            assert f"skipped {path.relative_to(repository).as_posix()} (exists" in second.stdout
    assert (repository / "predeploy.yaml").read_text() == "# mine\n"
    assert (repository / "gates" / "test_gate1_intake.py").read_text() == "# my gate\n"


def next_steps_of(stdout: str) -> list[str]:
    return stdout.split("Next steps:", 1)[1].splitlines()


def test_init_from_an_installed_wheel_copies_the_templates_packaged_in_it(tmp_path: Path) -> None:
    # An editable install reads gates/ and scripts/ from the checkout; a wheel carries them as
    # pytest_predeploy.gate_templates and .script_templates (pyproject.toml). Build one from a
    # copy of the sources (the build writes into its source folder) and init from it.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        (source / name).write_bytes((REPO / name).read_bytes())
    for name in ("pytest_predeploy", "gates", "scripts"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300
    )
    if built.returncode != 0:
        pytest.skip(f"cannot build a wheel here (pip fetches setuptools>=68 for the build): {built.stderr.strip()[-300:]}")
    wheel = next((tmp_path / "dist").glob("pytest_predeploy-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        packaged = {name for name in archive.namelist() if "_templates/" in name}
    assert {f"pytest_predeploy/gate_templates/{p.name}" for p in (REPO / "gates").glob("test_gate*.py")} <= packaged
    assert {f"pytest_predeploy/script_templates/{p.name}" for p in (REPO / "scripts").iterdir() if p.suffix in (".py", ".sh")} <= packaged
    site = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)], capture_output=True, text=True, timeout=120
    )
    assert installed.returncode == 0, installed.stderr
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest_predeploy", "init", "--dir", str(tmp_path / "repo")], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    where = subprocess.run(
        [sys.executable, "-c", "from pytest_predeploy.tooling.scaffold import template_dir; print(template_dir('gates'))"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert Path(where.stdout.strip()) == site / "pytest_predeploy" / "gate_templates"
    for kind in ("gates", "scripts"):
        for path in (REPO / kind).iterdir():
            if path.suffix in (".py", ".sh"):
                assert (tmp_path / "repo" / kind / path.name).read_bytes() == path.read_bytes()


@pytest.mark.parametrize(
    ("service", "problem"), [("greeter=nowhere", "is not a folder"), ("greeter=.", "a folder of the service's own"), ("bad/name", "a service name is")]
)
def test_init_refuses_a_bad_service_and_writes_nothing(repository: Path, service: str, problem: str) -> None:
    done = predeploy("init", "--service", service, cwd=repository)
    assert done.returncode == 2
    assert problem in done.stderr and done.stderr.startswith("predeploy init: error:")
    assert not (repository / "predeploy.yaml").exists()


def _adjust_as_a_user_would(repository: Path) -> None:
    """What a team does after `predeploy init`: point the config at its service and the advisory
    database, write its smoke test and the release's approval records."""
    path = repository / "predeploy.yaml"
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    service = config["services"][0]
    service.update(name="greeter", source="service", command="{python} app.py --port {port} --port-file {port_file}")
    security = config["security"]
    security.update(source_paths=["service"], distributions=["prometheus-client"])
    # security.osv stays as init wrote it (.predeploy/osv-pypi.zip, max_age 2d): the team runs
    # `predeploy advisories update` as the next steps say (see the test).
    # pip-audit asks PyPI over the network: off here, so the test runs offline (the OSV scan above
    # is the vulnerability scan of record).
    security["pip_audit"]["enabled"] = False
    config["operational"]["runbooks"] = ["predeploy/ops/runbooks/greeter.md"]
    path.write_text(yaml.safe_dump(config, sort_keys=False))

    (repository / "predeploy" / "smoke" / "test_greeter.py").write_text(SMOKE_TEST)
    for example in (repository / "predeploy" / "approvals").glob("*.example.yaml"):
        record = yaml.safe_load(example.read_text())
        record.update(release="v2.0", expires_at="2099-01-01T00:00:00Z")
        example.with_name(example.name.replace(".example", "")).write_text(yaml.safe_dump(record))
    # The team's deploy script is theirs to change; the marker proves this copy is what runs.
    script = repository / "scripts" / "deploy_backend.sh"
    text = script.read_text()
    script.write_text(text.replace('exec "$python"', f'echo "{OWN_SCRIPT_MARKER}: $*"\nexec "$python"', 1))


#: The greeter as the team changes it for v2.0: different code, so the rollback proves something.
SERVICE_V2 = SERVICE.replace(
    'BUSINESS = {"/greeting": lambda: {"greeting": "hello from " + RELEASE}}',
    'GREETING = "hello from "\nBUSINESS = {"/greeting": lambda: {"greeting": GREETING + RELEASE}}',
)


def _tag_two_releases(repository: Path) -> None:
    """The team's releases are git tags: v1.0 (in production) and v2.0 (the candidate)."""

    def git(*args: str) -> None:
        subprocess.run(
            [
                "git",
                "-C",
                str(repository),
                "-c",
                "user.name=Team",
                "-c",
                "user.email=team@example.test",
                "-c",
                "commit.gpgsign=false",
                "-c",
                "tag.gpgsign=false",
                *args,
            ],
            check=True,
            timeout=30,
            capture_output=True,
        )

    git("add", "-A")
    git("commit", "-q", "-m", "greeter v1.0 with pytest-predeploy")
    git("tag", "v1.0")
    assert SERVICE_V2 != SERVICE
    (repository / "service" / "app.py").write_text(SERVICE_V2)
    git("commit", "-q", "-am", "greeter v2.0")
    git("tag", "v2.0")


def test_init_then_the_protocol_runs_with_the_repositorys_own_scripts_and_service(repository: Path) -> None:
    done = predeploy("init", "--service", "greeter", cwd=repository)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "predeploy advisories update" in done.stdout
    _adjust_as_a_user_would(repository)
    _tag_two_releases(repository)
    # osv.dev's PyPI export, here served from 127.0.0.1 (the same zip format as the bundled snapshot).
    with serve({"/PyPI/all.zip": (200, BUNDLED_ZIP.read_bytes(), {})}) as url:
        update = predeploy("advisories", "update", "--url", f"{url}/PyPI/all.zip", cwd=repository)
    assert update.returncode == 0, update.stdout + update.stderr
    assert (repository / ".predeploy" / "osv-pypi.zip").is_file()

    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--predeploy-release=v2.0", "--predeploy-previous=v1.0"],
        cwd=repository,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = run.stdout
    assert run.returncode in (ExitStatus.AWAITING_SIGNOFF, 0), out[-5000:] + run.stderr[-2000:]
    for line in (
        "[AUTOMATION] compare_environments.py executed: success",
        "[AUTOMATION] deploy_backend.sh executed: success (greeter)",
        "[AUTOMATION] run_smoke_tests.py executed: success",
        "[AUTOMATION] rollback_backend.sh executed: success (greeter)",
        "[AUTOMATION] run_security_audit.py executed: success",
        "[PHASE 3 COMPLETE] - Rollback & Security finished successfully.",
    ):
        assert line in out, line
    artifacts = repository / ".artifacts" / "pre-deployment"
    state = json.loads((artifacts / "predeploy-run.json").read_text())
    assert {gate: state["gates"][gate]["status"] for gate in ("gate1", "gate2", "gate3")} == dict.fromkeys(("gate1", "gate2", "gate3"), "passed")

    deployment_log = (artifacts / "staging-deployment-run.log").read_text()
    assert f"{OWN_SCRIPT_MARKER}: --env staging --release v2.0 --service greeter" in deployment_log
    assert "greeter: deploy v2.0: deployed and verified" in deployment_log
    staging = repository / ".staging" / "staging" / "greeter"
    assert os.readlink(staging / "current").endswith("v2.0")  # rolled back, then forward to the candidate
    assert (staging / "releases" / "v2.0" / "app.py").read_text() == SERVICE_V2  # each tag's own code
    assert (staging / "releases" / "v1.0" / "app.py").read_text() == SERVICE
    results = json.loads((artifacts / "staging-test-results.json").read_text())
    assert results["coverage"]["ratio"] == 1.0
    assert any(test["nodeid"].endswith("test_greeter_says_hello") for suite in results["suites"] for test in suite["tests"])


def test_the_starter_smoke_suite_skips_outside_a_protocol_run(tmp_path: Path) -> None:
    # A team's plain `pytest` may collect the suite: without staging URLs it must not fail.
    done = predeploy("init", "--dir", str(tmp_path / "repo"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREDEPLOY_")}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "predeploy/smoke"],
        cwd=tmp_path / "repo",
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert run.returncode == 0, run.stdout
    assert "2 skipped" in run.stdout and "failed" not in run.stdout


def test_init_finds_a_service_released_as_wheels_and_installs_each_release(tmp_path: Path) -> None:
    root = tmp_path / "blog"
    make_wheel(root / "dist", "flaskr", "1.0.0", {"flaskr/__init__.py": b""})
    done = predeploy("init", "--service", "flaskr", cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    config = load_config(root / "predeploy.yaml")
    releases = config.staging.releases
    assert (releases.kind, releases.dist, releases.pip_args) == ("dist", "dist/{service}-{version}-*.whl", ["--no-index", "--find-links", "dist"])
    assert config.services[0].source is None and config.security.environment == "release"
    assert "released as wheels (dist/)" in (root / "predeploy.yaml").read_text()
    # Without wheels, each release is its git tag's code, as before.
    plain = tmp_path / "plain"
    assert predeploy("init", "--dir", str(plain), "--service", "app", cwd=tmp_path).returncode == 0
    assert load_config(plain / "predeploy.yaml").staging.releases.kind == "auto"
