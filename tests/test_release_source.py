"""Release sources resolve a tag to real code: a real git repository with two tags, real release
folders, a real wheel installed into a real virtualenv. Nothing is mocked."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from pytest_predeploy.targets.releases import (
    RehearsedReleases,
    ReleaseIdentity,
    ReleaseSourceConfig,
    ReleaseSourceError,
    materialise,
    resolve,
    tree_digest,
)
from tests import wheels

APP_V1 = 'GREETING = "hello from v1.1"\n'
APP_V2 = 'GREETING = "hello from v1.2"\n'


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=Test", "-c", "user.email=test@example.test", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A project in a git repository: svc/app.py differs between the tags v1.1 and v1.2."""
    root = tmp_path / "project"
    (root / "svc").mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / ".gitignore").write_text("*.log\n")
    (root / "svc" / "app.py").write_text(APP_V1)
    (root / "svc" / "README").write_text("the service\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "v1.1")
    git(root, "tag", "v1.1")
    (root / "svc" / "app.py").write_text(APP_V2)
    git(root, "commit", "-q", "-am", "v1.2")
    git(root, "tag", "v1.2")
    return root


def build(config: ReleaseSourceConfig, base: Path, release: str, dest: Path, source: Path | None = None) -> ReleaseIdentity:
    resolved = resolve(config, base, "svc", source if source is not None else base / "svc", release)
    identity, _ = materialise(resolved, config, dest)
    return identity


# --- git ------------------------------------------------------------------------------------------


def test_git_tags_build_their_own_code_with_commit_and_digest(repo: Path, tmp_path: Path) -> None:
    config = ReleaseSourceConfig()  # auto: a git repository where the tags exist
    old = build(config, repo, "v1.1", tmp_path / "r1")
    new = build(config, repo, "v1.2", tmp_path / "r2")
    assert (tmp_path / "r1" / "app.py").read_text() == APP_V1
    assert (tmp_path / "r2" / "app.py").read_text() == APP_V2
    assert (old.kind, old.ref, old.commit, old.dirty) == ("git", "v1.1", git(repo, "rev-parse", "v1.1^{commit}"), False)
    assert new.commit == git(repo, "rev-parse", "v1.2^{commit}")
    assert old.digest != new.digest
    assert old.digest == tree_digest(tmp_path / "r1")[0]


def test_git_release_ignores_the_working_tree_and_records_it_dirty(repo: Path, tmp_path: Path) -> None:
    (repo / "svc" / "app.py").write_text('GREETING = "uncommitted"\n')
    (repo / "svc" / "extra.py").write_text("X = 1\n")
    (repo / "svc" / "debug.log").write_text("ignored by .gitignore\n")
    identity = build(ReleaseSourceConfig(kind="git"), repo, "v1.2", tmp_path / "r")
    assert (tmp_path / "r" / "app.py").read_text() == APP_V2
    assert not (tmp_path / "r" / "extra.py").exists()
    assert identity.deployed_as == "v1.2"
    assert identity.dirty is True
    assert identity.changed == ["svc/app.py", "svc/extra.py"]
    assert "working tree DIRTY" in identity.describe()


def test_git_release_that_is_not_a_tag_is_refused_with_the_way_forward(repo: Path) -> None:
    with pytest.raises(ReleaseSourceError, match=r"release v9\.9 is not a tag or commit .*git tag v9\.9 COMMIT"):
        resolve(ReleaseSourceConfig(kind="git"), repo, "svc", repo / "svc", "v9.9")


def test_git_kind_outside_a_repository_says_so(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    with pytest.raises(ReleaseSourceError, match="is not in a git repository"):
        resolve(ReleaseSourceConfig(kind="git"), tmp_path, "svc", tmp_path / "svc", "v1.1")


def test_a_release_name_that_looks_like_an_option_is_no_ref(repo: Path) -> None:
    with pytest.raises(ReleaseSourceError, match="is not a tag or commit"):
        resolve(ReleaseSourceConfig(kind="git"), repo, "svc", repo / "svc", "--output=/tmp/x")


# --- working tree ---------------------------------------------------------------------------------


def test_dirty_working_tree_is_refused_under_the_tag_name(repo: Path) -> None:
    (repo / "svc" / "app.py").write_text('GREETING = "uncommitted"\n')
    with pytest.raises(ReleaseSourceError) as raised:
        resolve(ReleaseSourceConfig(), repo, "svc", repo / "svc", "v1.3")  # auto: no such tag
    message = str(raised.value)
    assert "svc/app.py" in message and "not release v1.3" in message
    assert "git tag v1.3" in message and "allow_dirty: true" in message and "v1.3+dirty." in message


def test_dirty_working_tree_deploys_only_under_a_dirty_name_when_asked(repo: Path, tmp_path: Path) -> None:
    (repo / "svc" / "app.py").write_text('GREETING = "uncommitted"\n')
    identity = build(ReleaseSourceConfig(allow_dirty=True), repo, "v1.3", tmp_path / "r")
    assert identity.deployed_as == f"v1.3+dirty.{identity.digest[:12]}"
    assert (identity.kind, identity.commit, identity.dirty) == ("working_tree", git(repo, "rev-parse", "HEAD"), True)
    assert (tmp_path / "r" / "app.py").read_text() == 'GREETING = "uncommitted"\n'
    assert "NOT the tag v1.3" in identity.describe()


def test_working_tree_that_differs_from_an_existing_tag_is_refused(repo: Path) -> None:
    # HEAD is v1.2; building v1.1 from the working tree would put v1.2's code under v1.1's name.
    with pytest.raises(ReleaseSourceError, match="differs from the tag v1.1"):
        resolve(ReleaseSourceConfig(kind="working_tree"), repo, "svc", repo / "svc", "v1.1")


def test_clean_working_tree_records_head(repo: Path, tmp_path: Path) -> None:
    identity = build(ReleaseSourceConfig(), repo, "v1.3", tmp_path / "r")
    assert (identity.kind, identity.ref, identity.deployed_as, identity.dirty) == ("working_tree", "HEAD", "v1.3", False)
    assert identity.commit == git(repo, "rev-parse", "HEAD")


def test_working_tree_outside_git_cannot_tell_dirty(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "app.py").write_text(APP_V1)
    identity = build(ReleaseSourceConfig(), tmp_path, "v1.1", tmp_path / "r")
    assert (identity.kind, identity.commit, identity.dirty, identity.deployed_as) == ("working_tree", None, None, "v1.1")


# --- folder ---------------------------------------------------------------------------------------


def test_folder_per_release_and_equal_code_has_equal_digest(repo: Path, tmp_path: Path) -> None:
    base = tmp_path / "plain"
    for release, text in (("v1.1", APP_V1), ("v1.2", APP_V2)):
        folder = base / "dist" / "svc" / release
        folder.mkdir(parents=True)
        (folder / "app.py").write_text(text)
        (folder / "README").write_text("the service\n")
        (folder / "__pycache__").mkdir()
        (folder / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0junk")
    config = ReleaseSourceConfig(kind="folder")
    old = build(config, base, "v1.1", tmp_path / "r1")
    new = build(config, base, "v1.2", tmp_path / "r2")
    assert (tmp_path / "r2" / "app.py").read_text() == APP_V2
    assert not (tmp_path / "r1" / "__pycache__").exists()
    assert (old.kind, old.ref, old.commit, old.dirty) == ("folder", "dist/svc/v1.1", None, None)
    assert old.digest != new.digest
    # The same code has the same digest from a folder as from a git tag.
    assert old.digest == build(ReleaseSourceConfig(kind="git"), repo, "v1.1", tmp_path / "g1").digest


def test_missing_release_folder_names_the_folder_and_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ReleaseSourceError, match=r"no folder for release v1\.2: .*dist/svc/v1\.2 does not exist \(staging\.releases\.folder"):
        resolve(ReleaseSourceConfig(kind="folder"), tmp_path, "svc", None, "v1.2")


def test_folder_in_a_git_repository_records_head_and_dirty(repo: Path, tmp_path: Path) -> None:
    (repo / "releases" / "v1.2").mkdir(parents=True)
    (repo / "releases" / "v1.2" / "app.py").write_text(APP_V2)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "release folders")
    config = ReleaseSourceConfig(kind="folder", folder="releases/{release}")
    assert build(config, repo, "v1.2", tmp_path / "r1").dirty is False
    (repo / "releases" / "v1.2" / "new.py").write_text("X = 1\n")
    identity = build(config, repo, "v1.2", tmp_path / "r2")
    assert (identity.commit, identity.dirty, identity.changed) == (git(repo, "rev-parse", "HEAD"), True, ["releases/v1.2/new.py"])


# --- dist -----------------------------------------------------------------------------------------


def make_wheel(folder: Path, version: str, greeting: str) -> Path:
    return wheels.make_wheel(folder, "shopsvc", version, {"shopsvc.py": f'GREETING = "{greeting}"\n'.encode()})


def test_wheel_is_installed_into_the_release_virtualenv(tmp_path: Path) -> None:
    make_wheel(tmp_path / "dist", "1.1", "hello from v1.1")
    wheel = make_wheel(tmp_path / "dist", "1.2", "hello from v1.2")
    config = ReleaseSourceConfig(kind="dist", dist="dist/shopsvc-{version}-*.whl")
    resolved = resolve(config, tmp_path, "svc", None, "v1.2")
    identity, files = materialise(resolved, config, tmp_path / "r")
    assert (identity.kind, identity.ref, identity.python) == ("dist", "dist/shopsvc-1.2-py3-none-any.whl", "venv/bin/python")
    assert identity.digest == hashlib.sha256(wheel.read_bytes()).hexdigest() == files[wheel.name]
    assert identity.python is not None
    python = tmp_path / "r" / identity.python
    answer = subprocess.run([str(python), "-c", "import shopsvc; print(shopsvc.GREETING)"], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert answer.stdout.strip() == "hello from v1.2"


def test_dist_template_must_match_exactly_one_file(tmp_path: Path) -> None:
    make_wheel(tmp_path / "dist", "1.2", "a")
    make_wheel(tmp_path / "dist", "1.2.1", "b")
    with pytest.raises(ReleaseSourceError, match=r"exactly one distribution .* found 2 files"):
        resolve(ReleaseSourceConfig(kind="dist", dist="dist/shopsvc-{version}*.whl"), tmp_path, "svc", None, "v1.2")
    with pytest.raises(ReleaseSourceError, match="found nothing"):
        resolve(ReleaseSourceConfig(kind="dist", dist="dist/shopsvc-{version}*.whl"), tmp_path, "svc", None, "v3")


def test_a_broken_wheel_fails_with_a_message_and_leaves_nothing_running(tmp_path: Path) -> None:
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "shopsvc-1.2-py3-none-any.whl").write_bytes(b"not a zip")
    config = ReleaseSourceConfig(kind="dist", dist="dist/shopsvc-{version}-*.whl")
    with pytest.raises(ReleaseSourceError, match=r"installing shopsvc-1\.2-py3-none-any\.whl into it failed"):
        materialise(resolve(config, tmp_path, "svc", None, "v1.2"), config, tmp_path / "r")


def locked_project(root: Path) -> ReleaseSourceConfig:
    """Two releases of shopsvc, the same wheel of a dependency greetlib in two versions, and a
    lock per release (locks/<release>.txt) choosing which: the config names it with {release},
    the wheel folder and the locks relative to the config's folder."""
    wheels.make_wheel(root / "wheels", "greetlib", "1.0", {"greetlib.py": b'HELLO = "greetlib 1.0"\n'})
    wheels.make_wheel(root / "wheels", "greetlib", "2.0", {"greetlib.py": b'HELLO = "greetlib 2.0"\n'})
    for version in ("1.1", "1.2"):
        wheels.make_wheel(root / "dist", "shopsvc", version, {"shopsvc.py": b"import greetlib\n"}, requires=("greetlib",))
    (root / "locks").mkdir()
    (root / "locks" / "v1.1.txt").write_text("greetlib==1.0\n")
    (root / "locks" / "v1.2.txt").write_text("greetlib==2.0\n")
    return ReleaseSourceConfig(
        kind="dist", dist="dist/shopsvc-{version}-*.whl", pip_args=["--no-index", "--find-links", "wheels", "--constraint", "locks/{release}.txt"]
    )


def installed_hello(release: Path) -> str:
    python = release / "venv" / "bin" / "python"
    return subprocess.run([str(python), "-c", "import greetlib; print(greetlib.HELLO)"], capture_output=True, text=True, check=True).stdout.strip()


def test_each_dist_release_installs_its_own_lock_named_relative_to_the_config(tmp_path: Path) -> None:
    config = locked_project(tmp_path)
    old, _ = materialise(resolve(config, tmp_path, "svc", None, "v1.1"), config, tmp_path / "r1")
    new, _ = materialise(resolve(config, tmp_path, "svc", None, "v1.2"), config, tmp_path / "r2")
    assert installed_hello(tmp_path / "r1") == "greetlib 1.0" and installed_hello(tmp_path / "r2") == "greetlib 2.0"
    # What was installed and what it was installed from are part of the release's identity.
    assert old.installed == ["greetlib==1.0", "shopsvc==1.1"] and new.installed == ["greetlib==2.0", "shopsvc==1.2"]
    assert old.pip_args == ["--no-index", "--find-links", "wheels", "--constraint", "locks/v1.1.txt"]
    assert set(old.inputs) == {"locks/v1.1.txt", "wheels"} and old.inputs["locks/v1.1.txt"] == hashlib.sha256(b"greetlib==1.0\n").hexdigest()
    assert "2 distributions installed" in new.describe()


def test_a_pip_args_file_that_does_not_exist_is_named_before_anything_is_built(tmp_path: Path) -> None:
    config = locked_project(tmp_path)
    (tmp_path / "locks" / "v1.2.txt").unlink()
    with pytest.raises(ReleaseSourceError, match=r"svc: release v1\.2: staging\.releases\.pip_args names .*locks/v1\.2\.txt, which does not exist"):
        resolve(config, tmp_path, "svc", None, "v1.2")


def test_pip_args_take_only_the_release_placeholders() -> None:
    with pytest.raises(ValidationError, match=r"unknown placeholder \{tag\}"):
        ReleaseSourceConfig(kind="dist", pip_args=["--constraint", "locks/{tag}.txt"])


# --- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "message"),
    [("dist/{service}/{tag}", "unknown placeholder {tag}"), ("dist/{service}", "same file for every release"), ("dist/{release", "not a valid format string")],
)
def test_bad_templates_are_refused_at_load(template: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ReleaseSourceConfig(folder=template)


def test_a_format_spec_a_release_cannot_take_is_refused_at_load_naming_the_field() -> None:
    # issue 30, item 11: only a small set of format specs, checked when the config is loaded.
    with pytest.raises(ValidationError, match=r"placeholder \{release:d\} has a format spec that is not allowed"):
        ReleaseSourceConfig(kind="folder", folder="releases/{service}/{release:d}")


# --- what a rollback between two releases proves --------------------------------------------------


def test_two_tags_of_the_same_code_are_refused_by_name_with_both_digests(tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "svc").mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / "svc" / "app.py").write_text(APP_V1)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "one")
    git(root, "tag", "v1.1")
    git(root, "tag", "v1.2")
    old = build(ReleaseSourceConfig(), root, "v1.1", tmp_path / "r1")
    new = build(ReleaseSourceConfig(), root, "v1.2", tmp_path / "r2")
    problem = RehearsedReleases(service="api", candidate=new, previous=old).problem()
    assert problem is not None
    assert "api: nothing would be rolled back: v1.1 and v1.2 are the same code" in problem
    assert f"digest {new.digest[:12]}" in problem


def test_different_code_is_no_same_code_problem_and_unrecorded_releases_are_left_to_the_caller(repo: Path, tmp_path: Path) -> None:
    old = build(ReleaseSourceConfig(), repo, "v1.1", tmp_path / "r1")
    new = build(ReleaseSourceConfig(), repo, "v1.2", tmp_path / "r2")
    assert RehearsedReleases(service="api", candidate=new, previous=old).problem() is None
    assert RehearsedReleases(service="api", candidate=new, previous=None).problem() is None
