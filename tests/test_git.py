"""Our git commands read the project's own repository, whatever an outer git left in the
environment: a run from a git hook or a CI checkout has GIT_DIR (and friends) set, which would
otherwise make every ``git`` we run answer for that other repository (issue 31)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psutil
import pytest

from pytest_predeploy.core.git import run_git
from pytest_predeploy.core.runstate import git_commit
from pytest_predeploy.readiness.package import resolve_epoch
from pytest_predeploy.readiness.record import append, committed_file, find_repository, read
from pytest_predeploy.rollback.operational import check_runbook
from pytest_predeploy.targets.releases import ReleaseSourceConfig, resolve

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(root: Path, *args: str, when: str = "2026-01-02T00:00:00Z") -> None:
    """git as the test's own tool: never redirected by the GIT_DIR the tests set."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(GIT_AUTHOR_DATE=when, GIT_COMMITTER_DATE=when)
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.test", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"]
    subprocess.run(["git", "-C", str(root), *identity, *args], check=True, capture_output=True, env=env)


def commit_repository(root: Path, when: str, tag: str) -> None:
    """A repository with one commit made at ``when`` and tagged ``tag``."""
    (root / "svc").mkdir(parents=True)
    (root / "svc" / "app.py").write_text(f"TAG = {tag!r}\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", tag, when=when)
    git(root, "tag", tag)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project's repository, with GIT_DIR and GIT_WORK_TREE pointing at another one."""
    project = tmp_path / "project"
    commit_repository(project, "2026-01-01T00:00:00Z", "v1.1")
    outer = tmp_path / "outer"
    commit_repository(outer, "2020-01-01T00:00:00Z", "v9.9")
    monkeypatch.setenv("GIT_DIR", str(outer / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(outer))
    return project


def own_head(project: Path) -> str:
    return (project / ".git" / "refs" / "heads" / "main").read_text().strip()


def test_the_run_records_the_projects_own_commit_under_an_outer_git_dir(project: Path) -> None:
    assert git_commit(project) == own_head(project)


def test_the_package_time_is_the_projects_own_commit_time_under_an_outer_git_dir(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert resolve_epoch(project_dir=project) == 1767225600  # 2026-01-01T00:00:00Z, not the outer 2020


def test_the_release_identity_is_the_projects_own_tag_under_an_outer_git_dir(project: Path) -> None:
    resolved = resolve(ReleaseSourceConfig(kind="git"), project, "svc", project / "svc", "v1.1")
    assert resolved.identity_without_digest["commit"] == own_head(project)


def test_runbook_history_is_read_from_the_projects_own_repository_under_an_outer_git_dir(project: Path) -> None:
    (project / "svc" / "app.py").write_text("TAG = 'v1.2'\n")
    git(project, "commit", "-q", "-am", "runbook for v1.2")
    check = check_runbook(project / "svc" / "app.py", project, "v1.2", "v1.1", tagged=True)
    assert check.status == "ok" and "1 commit(s)" in check.detail


def test_git_that_does_not_finish_is_stopped_with_what_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    # A git alias runs a shell command: it stands for a hook or a credential helper that hangs.
    result = run_git(tmp_path, "-c", f"alias.hang=!echo $$ > {pid_file}; exec sleep 60", "hang", timeout=1.0)
    assert result.returncode is None and not result.ok
    assert "did not finish within 1s" in result.problem
    child = int(pid_file.read_text())
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE


def test_the_sign_off_record_is_the_projects_own_under_an_outer_git_dir(project: Path) -> None:
    assert find_repository(project / "svc") == project
    assert committed_file(project, project / "svc" / "app.py") == b"TAG = 'v1.1'\n"
    digest = "a" * 64
    commit = append(project, digest, b'{"signed": true}', "Reviewer <r@example.test>", "go")
    reading = read(project)
    assert [entry.commit for entry in reading.entries] == [commit] and reading.problems == []
    outer_refs = project.parent / "outer" / ".git" / "refs" / "heads"
    assert not (outer_refs / "predeploy").exists()  # nothing was written to the outer repository
