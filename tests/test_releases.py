"""Real releases end to end on the local staging target: a project adopting the plugin in its own
git repository deploys each tag's code, rolls back to the previous tag's code and forward again;
two tags of the same code fail the rollback rehearsal by name. Real git, real services, real
scripts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from pytest_predeploy.rehearsal.deploy import rehearse_deployment
from pytest_predeploy.rollback.rollback import rehearse_rollback, rollback_problems
from pytest_predeploy.targets.local import service_target, service_url
from tests.staging_support import REPO, StagingProject, processes_under, service, staging  # noqa: F401  (fixture)
from tests.wheels import make_wheel

V11 = REPO / "demo" / "releases" / "v1.1" / "server.py"
V12 = REPO / "demo" / "releases" / "v1.2" / "server.py"


def git(repo: Path, *args: str) -> str:
    command = [
        "git",
        "-C",
        str(repo),
        "-c",
        "user.name=Test",
        "-c",
        "user.email=test@example.test",
        "-c",
        "commit.gpgsign=false",
        "-c",
        "tag.gpgsign=false",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def tagged_repository(root: Path, first: Path, second: Path) -> Path:
    """A git repository at ``root`` whose ``shop/server.py`` is ``first`` at tag v1, ``second`` at v2."""
    git(root, "init", "-q", "-b", "main")
    (root / ".gitignore").write_text(".staging/\nartifacts/\npredeploy.yaml\n")
    (root / "shop").mkdir()
    for tag, server in (("v1", first), ("v2", second)):
        (root / "shop" / "server.py").write_text(server.read_text())
        git(root, "add", "-A")
        git(root, "commit", "-q", "--allow-empty", "-m", tag)
        git(root, "tag", tag)
    return root / "shop"


def checkout_status(project: StagingProject) -> int:
    assert project.config is not None
    url = service_url(project.config, "staging", "api")
    assert url is not None
    body = json.dumps({"items": [{"product_id": 1, "quantity": 1}]}).encode()
    request = urllib.request.Request(url + "/api/checkout", data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


class CheckoutSmoke:
    """The smoke subset of these tests: new-checkout answers only on v2's code."""

    def __init__(self, project: StagingProject) -> None:
        self.project = project
        self.seen: list[tuple[str, int]] = []

    def __call__(self, label: str, select: str | None, release: str) -> bool:
        status = checkout_status(self.project)
        self.seen.append((release, status))
        return status == (201 if release == "v2" else 404)


def test_a_git_project_deploys_rolls_back_and_rolls_forward_each_tags_own_code(staging: StagingProject, tmp_path: Path) -> None:
    source = tagged_repository(tmp_path, V11, V12)
    (source / "server.py").write_text("uncommitted edits are not any release\n")  # dirty working tree
    staging.write(services=[service("api", source=str(source), env={"DEMO_FLAGS": "new-checkout"})], staging={"releases": {"kind": "auto"}})

    deployment = rehearse_deployment(staging.context("v2"))
    assert deployment.outcome == "succeeded", deployment.error
    assert checkout_status(staging) == 201  # v2's code, not the working tree, not v1
    smoke = CheckoutSmoke(staging)
    report = rehearse_rollback(staging.context("v2"), smoke)

    assert rollback_problems(report) == []
    assert smoke.seen == [("v1", 404), ("v2", 201)]  # rolled back to v1's code, then forward to v2's
    [record] = report.services
    assert record.from_build is not None and record.to_build is not None
    assert (record.from_build.kind, record.from_build.ref, record.from_build.commit) == ("git", "v2", git(tmp_path, "rev-parse", "v2"))
    assert (record.to_build.kind, record.to_build.ref, record.to_build.commit) == ("git", "v1", git(tmp_path, "rev-parse", "v1"))
    assert record.from_build.digest != record.to_build.digest
    assert record.from_build.dirty is True and record.from_build.changed == ["shop/server.py"]


def test_two_tags_of_the_same_code_fail_the_rollback_rehearsal_by_name(staging: StagingProject, tmp_path: Path) -> None:
    source = tagged_repository(tmp_path, V11, V11)
    staging.write(services=[service("api", source=str(source))], staging={"releases": {"kind": "auto"}})
    assert rehearse_deployment(staging.context("v2")).outcome == "succeeded"

    report = rehearse_rollback(staging.context("v2"), CheckoutSmoke(staging))

    [problem] = rollback_problems(report)
    assert problem.startswith("api: nothing would be rolled back: v1 and v2 are the same code (digest ")
    [record] = report.services
    assert record.status == "failed" and record.steps == []  # nothing was rolled back
    assert record.from_build is not None and record.to_build is not None and record.from_build.digest == record.to_build.digest
    assert record.final is not None and (record.final.release, record.final.healthy) == ("v2", True)


def test_a_wheel_release_runs_from_its_own_virtualenv(staging: StagingProject, tmp_path: Path) -> None:
    for version, server in (("1", V11), ("2", V12)):
        make_wheel(tmp_path / "dist", "demo_shop", version, {"demo_shop.py": server.read_bytes()})
    command = "{python} -m demo_shop --role api --port {port} --port-file {port_file}"
    staging.write(
        services=[{"name": "api", "command": command, "health_timeout": "15s", "env": {"DEMO_FLAGS": "new-checkout"}}],
        staging={"releases": {"kind": "dist", "dist": "dist/demo_shop-{version}-*.whl", "system_site_packages": True}},
    )
    for tag, expected in (("v1", 404), ("v2", 201)):
        result = staging.script("deploy_backend.sh", "--release", tag)
        assert result.returncode == 0, result.stderr
        assert checkout_status(staging) == expected
    identity = staging.target("api").identity("v2")
    assert identity is not None and (identity.kind, identity.ref, identity.python) == ("dist", "dist/demo_shop-2-py3-none-any.whl", "venv/bin/python")
    [record] = staging.target("api").records()
    [service] = psutil.Process(record.pid).children()  # under its log launcher (targets/logcap.py)
    assert Path(service.cmdline()[0]) == staging.target("api").releases / "v2" / "venv" / "bin" / "python"


def test_a_changed_lock_rebuilds_the_dist_release_instead_of_reusing_its_stale_environment(staging: StagingProject, tmp_path: Path) -> None:
    make_wheel(tmp_path / "wheels", "greetlib", "1.0", {"greetlib.py": b""})
    make_wheel(tmp_path / "wheels", "greetlib", "2.0", {"greetlib.py": b""})
    make_wheel(tmp_path / "dist", "shopsvc", "1", {"shopsvc.py": b"import greetlib\n"}, requires=("greetlib",))
    (tmp_path / "locks").mkdir()
    lock = tmp_path / "locks" / "v1.txt"
    lock.write_text("greetlib==1.0\n")
    pip_args = ["--no-index", "--find-links", "wheels", "--constraint", "locks/{release}.txt"]
    staging.write(
        services=[{"name": "shop", "command": "{python} -m shopsvc"}],
        staging={"releases": {"kind": "dist", "dist": "dist/shopsvc-{version}-*.whl", "pip_args": pip_args}},
    )
    assert staging.target("shop").build("v1").identity.installed == ["greetlib==1.0", "shopsvc==1"]
    assert staging.target("shop").build("v1").identity.installed == ["greetlib==1.0", "shopsvc==1"]  # reused: nothing changed
    lock.write_text("greetlib==2.0\n")
    lines: list[str] = []
    assert staging.config is not None
    rebuilt = service_target(staging.config, "staging", "shop", say=lines.append).build("v1")
    assert rebuilt.identity.installed == ["greetlib==2.0", "shopsvc==1"]
    assert any(line.startswith("shop: rebuilt release v1") and "its dependencies' inputs changed (locks/v1.txt)" in line for line in lines), lines


def test_the_deployment_summary_says_when_uncommitted_changes_were_not_deployed(staging: StagingProject, tmp_path: Path) -> None:
    source = tagged_repository(tmp_path, V11, V12)
    (source / "server.py").write_text(V12.read_text() + "\n# an edit not committed\n")
    staging.write(services=[service("api", source=str(source))], staging={"releases": {"kind": "auto"}})
    report = rehearse_deployment(staging.context("v2"))
    assert report.outcome == "succeeded", report.error
    assert report.summary_line().endswith("; the working tree has uncommitted changes for api, NOT deployed (built from the tag v2)")
    assert report.services[0].build is not None and report.services[0].build.changed == ["shop/server.py"]


def test_with_allow_dirty_changed_code_runs_under_a_dirty_name_and_every_report_says_so(staging: StagingProject, tmp_path: Path) -> None:
    source = tagged_repository(tmp_path, V11, V12)
    (source / "server.py").write_text(V12.read_text() + "\n# an edit not committed\n")
    staging.write(services=[service("api", source=str(source))], staging={"releases": {"kind": "working_tree", "allow_dirty": True}})
    report = rehearse_deployment(staging.context("v3"))  # no tag v3: the working tree is HEAD plus edits
    assert report.outcome == "succeeded", report.error
    build = report.services[0].build
    assert build is not None and build.deployed_as.startswith("v3+dirty.") and build.dirty
    assert staging.target("api").current_release() == build.deployed_as
    assert report.services[0].verification is not None and report.services[0].verification.reported_release == build.deployed_as
    assert f"NOT the tag v3: uncommitted changes deployed (api as {build.deployed_as})" in report.summary_line()


def test_a_release_folder_of_an_older_format_is_rebuilt_once_nothing_runs_it(staging: StagingProject) -> None:
    staging.write(services=[service("api")])
    assert staging.script("deploy_backend.sh", "--release", "v1").returncode == 0
    target = staging.target("api")
    manifest = target.releases / "v1" / "release-manifest.json"
    old = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({key: old[key] for key in ("service", "release", "built_at", "files")} | {"source": "src", "source_digest": "0" * 64}))
    refused = staging.script("deploy_backend.sh", "--release", "v1")
    assert refused.returncode == 1 and "its folder has no readable release manifest" in refused.stderr
    target.stop_all()
    rebuilt = staging.script("deploy_backend.sh", "--release", "v1")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "rebuilt release v1 from folder releases/api/v1" in rebuilt.stdout
    assert target.identity("v1") is not None


def test_the_demo_with_two_releases_of_the_same_code_fails_gate_3_naming_it(tmp_path: Path) -> None:
    root = tmp_path / "demo-project"
    root.mkdir()
    for name in ("predeploy.yaml", "conftest.py"):
        shutil.copy(REPO / name, root / name)
    for name in ("demo", "gates", "scripts"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.rmtree(root / "demo" / "releases" / "v1.1")
    shutil.copytree(root / "demo" / "releases" / "v1.2", root / "demo" / "releases" / "v1.1")  # "v1.1" is v1.2's code
    try:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--predeploy-release=v1.2", "gates/test_gate3_rollback_security.py"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        leftovers = processes_under(tmp_path)
        for process in leftovers:
            process.kill()
    assert not leftovers, f"processes left running: {[p.cmdline() for p in leftovers]}"
    assert run.returncode == 1, run.stdout[-3000:]
    assert "Gate 3  Rollback & Security          FAILED" in run.stdout
    assert "api: nothing would be rolled back: v1.1 and v1.2 are the same code" in run.stdout
    report = json.loads((root / ".artifacts" / "pre-deployment" / "rollback-verification-report.json").read_text())
    assert all(s["from_build"]["digest"] == s["to_build"]["digest"] and s["steps"] == [] for s in report["services"])
