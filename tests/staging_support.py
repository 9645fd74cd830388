"""Shared by the staging, rehearsal and rollback tests: a small project in ``tmp_path`` whose
services are the real demo service, deployed by the real scripts to a real local staging target.

No tests here. The ``staging`` fixture stops every process the test started and fails the test
if any process is still running from its folder afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from pytest_predeploy.config import ProjectConfig, load_config
from pytest_predeploy.harness.context import RunContext
from pytest_predeploy.targets.local import service_target, stop_all
from pytest_predeploy.targets.local.target import ServiceTarget

REPO = Path(__file__).resolve().parents[1]
DEMO_SERVICE = REPO / "demo" / "releases" / "v1.1"
#: The tags these tests deploy; each gets a release folder of its own code (see ``StagingProject.write``).
TAGS = ("v0", "v1", "v1.1", "v1.2", "v2", "v3")
SCRIPTS = REPO / "scripts"


def service(name: str, role: str = "api", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "source": str(DEMO_SERVICE),
        "command": f"{{python}} server.py --role {role} --port {{port}} --port-file {{port_file}}",
        "health_timeout": "15s",
        **extra,
    }


def _step(script: str, release: str) -> dict[str, str]:
    return {"command": f"bash {SCRIPTS / script} --env {{env}} --release {{{release}}} --service {{service}} --config {{config}}", "timeout": "60s"}


class StagingProject:
    """A project folder with a predeploy.yaml; the config is re-read after each ``write``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "predeploy.yaml"
        self.config: ProjectConfig | None = None

    def write(self, services: list[dict[str, Any]] | None = None, **sections: Any) -> ProjectConfig:
        data: dict[str, Any] = {
            "version": 1,
            "project": "staging-test",
            "previous_release": "v1",
            "environments": {"staging": {}, "production": {}},
            "approvals": {"upstream": [], "allow_none": True},
            "services": services or [service("api"), service("worker", "worker", strategy="blue_green")],
            "steps": {"deploy": _step("deploy_backend.sh", "release"), "rollback": _step("rollback_backend.sh", "previous_release")},
            "staging": {"progress_interval": "2s", "stop_timeout": "5s", "releases": {"kind": "folder", "folder": "releases/{service}/{release}"}},
        }
        for key, value in sections.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        self.path.write_text(yaml.safe_dump(data, sort_keys=False))
        for entry in data["services"]:
            if entry.get("source"):
                self._release_folders(entry["name"], Path(entry["source"]))
        self.config = load_config(self.path)
        return self.config

    def _release_folders(self, service: str, source: Path) -> None:
        """A release is different code per tag: each tag's folder is the service's source plus a
        RELEASE file naming the tag (the rollback rehearsal refuses two tags of the same code)."""
        for tag in TAGS:
            folder = self.root / "releases" / service / tag
            if not folder.exists():
                shutil.copytree(source, folder, ignore=shutil.ignore_patterns("__pycache__"))
                (folder / "RELEASE").write_text(f"{tag}\n")

    def target(self, name: str) -> ServiceTarget:
        assert self.config is not None
        return service_target(self.config, "staging", name)

    def context(self, release: str, previous: str | None = "v1", announcer: Any = None) -> RunContext:
        assert self.config is not None
        artifacts = self.root / "artifacts"
        artifacts.mkdir(exist_ok=True)
        ctx = RunContext(config=self.config, release=release, previous_release=previous, env="staging", artifacts=artifacts)
        ctx.announcer = announcer or (lambda line: None)
        return ctx

    def script(self, name: str, *args: str, pause: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``scripts/<name>`` against this project, as the protocol command line does."""
        return subprocess.run(
            ["bash", str(SCRIPTS / name), "--env", "staging", "--config", str(self.path), *args],
            env=script_env(pause),
            capture_output=True,
            text=True,
            timeout=120,
        )


def script_env(pause: str | None = None) -> dict[str, str]:
    env = dict(os.environ, PREDEPLOY_PYTHON=sys.executable)
    env.pop("PREDEPLOY_STAGING_PAUSE", None)
    if pause:
        env["PREDEPLOY_STAGING_PAUSE"] = pause
    return env


def processes_under(folder: Path) -> list[psutil.Process]:
    """Live processes whose working folder is inside ``folder`` (every service runs in its release)."""
    found = []
    for process in psutil.process_iter(["cwd", "status"]):
        cwd = process.info.get("cwd")
        if cwd and process.info.get("status") != psutil.STATUS_ZOMBIE and Path(cwd).is_relative_to(folder):
            found.append(process)
    return found


@pytest.fixture
def staging(tmp_path: Path) -> Iterator[StagingProject]:
    project = StagingProject(tmp_path)
    yield project
    if project.config is not None:
        stop_all(project.config, "staging")
    leftovers = processes_under(tmp_path)
    for process in leftovers:
        process.kill()
    assert not leftovers, f"processes left running: {[p.cmdline() for p in leftovers]}"


def copy_demo(root: Path) -> Path:
    """A working copy of this repository's demo project (config, conftest, demo/, gates/, scripts/) at ``root``."""
    repo = Path(__file__).resolve().parents[1]
    root.mkdir()
    for name in ("predeploy.yaml", "conftest.py"):
        shutil.copy(repo / name, root / name)
    for name in ("demo", "gates", "scripts"):
        shutil.copytree(repo / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def deploy_demo_release(root: Path, release: str) -> None:
    """Deploy ``release`` of every service of the demo copy at ``root`` with its own deploy script
    (staging then runs it, as before a rehearsal)."""
    done = subprocess.run(
        ["bash", "scripts/deploy_backend.sh", "--env", "staging", "--release", release],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PREDEPLOY_PYTHON": sys.executable},
    )
    assert done.returncode == 0, done.stdout + done.stderr
