"""Sign-offs the run cannot rewrite (issue 26): Gate 4 reads them from git's record, trusts the
committed signers file sealed with the package, and `predeploy approve` / `verify` say where
their trust comes from. Each test here is what an attacker with write access to the working
tree or the artifacts folder tried (docs/threat-model.md)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_predeploy.harness.gates import ExitStatus
from tests.signoff_project import approve, git, project
from tests.sshkeys import make_key

APPROVALS = ".artifacts/pre-deployment/readiness-approval.json"
REF = "refs/heads/predeploy/signoffs"


def gate4(pytester: pytest.Pytester) -> pytest.RunResult:
    return pytester.runpytest_inprocess("--predeploy-release=v1.0", "gates/test_gate4_readiness.py")


def approver_of(envelope: dict[str, object]) -> str:
    payload = json.loads(base64.b64decode(str(envelope["payload"])))
    return str(payload["predicate"]["approver"])


def predeploy(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_predeploy", *args], cwd=root, capture_output=True, text=True, timeout=120)


def test_a_recorded_no_go_cannot_be_removed_from_the_file_or_the_record(pytester: pytest.Pytester) -> None:
    # Case 1: Riley says no-go; Ana (same role) and Quinn say go. Dropping Riley's envelope from
    # readiness-approval.json, or moving it to the front, must not turn the verdict into a GO.
    root = project(pytester)
    assert pytester.runpytest_inprocess("--predeploy-release=v1.0").ret == ExitStatus.AWAITING_SIGNOFF
    assert approve(root, "release-manager", "riley", "no-go").returncode == 0
    assert approve(root, "release-manager", "ana").returncode == 0
    assert approve(root, "qa-lead", "quinn").returncode == 0
    path = root / APPROVALS
    exported = path.read_text()
    data = json.loads(exported)
    data["signoffs"] = [envelope for envelope in data["signoffs"] if approver_of(envelope) != "Riley Manager"]
    path.write_text(json.dumps(data))
    result = gate4(pytester)
    assert result.ret == ExitStatus.NO_GO, result.stdout.str()
    result.stdout.fnmatch_lines(["*rejected at readiness review*", "*release-manager: no-go by Riley Manager*"])

    # In the record itself: a commit deleting Riley's envelope is seen in the history and blocks.
    entries = [line.split("\t")[1] for line in git(root, "ls-tree", "-r", REF).splitlines()]
    (riley,) = [path for path in entries if approver_of(json.loads(git(root, "show", f"{REF}:{path}"))) == "Riley Manager"]
    index = {**os.environ, "GIT_INDEX_FILE": str(root / ".git" / "attacker-index")}
    subprocess.run(["git", "read-tree", REF], cwd=root, env=index, check=True)
    subprocess.run(["git", "rm", "-q", "--cached", riley], cwd=root, env=index, check=True)
    tree = subprocess.run(["git", "write-tree"], cwd=root, env=index, capture_output=True, text=True, check=True).stdout.strip()
    commit = git(root, "commit-tree", tree, "-p", REF, "-m", "tidy up").strip()
    git(root, "update-ref", REF, commit)
    result = gate4(pytester)
    assert result.ret == ExitStatus.NO_GO, result.stdout.str()
    result.stdout.fnmatch_lines(["*release-manager: no-go by Riley Manager*", "*removed from the sign-off record*"])

    # Resetting the ref to before Riley's no-go rewrites history: the ref's log says so, and it blocks.
    first = git(root, "rev-list", "--reverse", REF).split()[0]
    git(root, "update-ref", REF, first)
    result = gate4(pytester)
    assert result.ret == ExitStatus.NO_GO, result.stdout.str()
    result.stdout.fnmatch_lines(["*sign-off record was rewritten*"])

    # Deleting the branch (its log goes with it) and re-creating it with the two go's alone leaves
    # no trace in git here; the export written when Riley signed still holds the no-go.
    from pytest_predeploy.readiness.record import append

    path.write_text(exported)
    goes = [git(root, "show", f"{commit}:{path}").encode() for path in entries if path != riley]
    git(root, "update-ref", "-d", REF)
    for content in goes:
        append(root, riley.split("/")[0], content, "Mallory", "re-created")
    result = gate4(pytester)
    assert result.ret == ExitStatus.NO_GO, result.stdout.str()
    result.stdout.fnmatch_lines(["*readiness-approval.json holds release-manager no-go by Riley Manager*removed from the record*"])


def test_a_signer_added_after_sealing_never_counts(pytester: pytest.Pytester) -> None:
    # Case 2: two identities with fresh keys appended to the signers file after sealing.
    root = project(pytester)
    assert pytester.runpytest_inprocess("--predeploy-release=v1.0").ret == ExitStatus.AWAITING_SIGNOFF
    mallory, eve = make_key(root / "keys", "mallory"), make_key(root / "keys", "eve")
    with (root / "signers.yaml").open("a") as stream:
        stream.write(f"  - {{identity: mallory@evil.example, roles: [release-manager], keys: ['{mallory.public_line}']}}\n")
        stream.write(f"  - {{identity: eve@evil.example, roles: [qa-lead], keys: ['{eve.public_line}']}}\n")
    approve(root, "release-manager", "mallory")
    approve(root, "qa-lead", "eve")
    result = gate4(pytester)
    assert result.ret != ExitStatus.GO, result.stdout.str()
    result.stdout.fnmatch_lines(["*signers.yaml differs from the committed one*"])

    # Committed, the new list is still not the one sealed with the package: re-seal to use it.
    git(root, "commit", "-q", "-am", "add reviewers")
    result = gate4(pytester)
    assert result.ret != ExitStatus.GO, result.stdout.str()
    result.stdout.fnmatch_lines(["*signers.yaml changed after sealing*"])
    assert "mallory@evil.example" not in result.stdout.str().split("signed off")[-1]


def test_verify_with_the_package_alone_says_identities_are_unanchored(pytester: pytest.Pytester) -> None:
    # Case 3: the signers file sealed in the package is not an anchor: it comes from the object
    # being verified. Exit 3 says "intact, but who signed is not established".
    root = project(pytester)
    assert pytester.runpytest_inprocess("--predeploy-release=v1.0").ret == ExitStatus.AWAITING_SIGNOFF
    assert approve(root, "release-manager", "riley").returncode == 0
    assert approve(root, "qa-lead", "quinn").returncode == 0
    elsewhere = root.parent / f"reviewer-download-{root.name}"  # beside the project, one per test
    elsewhere.mkdir()
    for name in ("PRE-DEPLOYMENT-PACKAGE.zip", "readiness-approval.json"):
        shutil.copy(root / ".artifacts/pre-deployment" / name, elsewhere / name)
    alone = predeploy(elsewhere, "verify", "PRE-DEPLOYMENT-PACKAGE.zip")
    assert alone.returncode == 3, alone.stdout + alone.stderr
    assert "unanchored" in alone.stdout and "signature verified" not in alone.stdout

    # Pinned to the signers file's digest, or given the file, the same package verifies.
    digest = hashlib.sha256((root / "signers.yaml").read_bytes()).hexdigest()
    pinned = predeploy(elsewhere, "verify", "PRE-DEPLOYMENT-PACKAGE.zip", "--signers-sha256", digest)
    assert pinned.returncode == 0, pinned.stdout + pinned.stderr
    assert "release-manager: go by Riley Manager" in pinned.stdout
    given = predeploy(elsewhere, "verify", "PRE-DEPLOYMENT-PACKAGE.zip", "--signers", str(root / "signers.yaml"))
    assert given.returncode == 0, given.stdout + given.stderr
    wrong = predeploy(elsewhere, "verify", "PRE-DEPLOYMENT-PACKAGE.zip", "--signers-sha256", "0" * 64)
    assert wrong.returncode == 1 and "does not match --signers-sha256" in wrong.stdout, wrong.stdout


def test_approve_refuses_a_package_gate4_calls_stale(pytester: pytest.Pytester) -> None:
    # Case 5: predeploy.yaml changed after sealing; Gate 4 refuses the package, so approve must too.
    root = project(pytester)
    assert pytester.runpytest_inprocess("--predeploy-release=v1.0").ret == ExitStatus.AWAITING_SIGNOFF
    with (root / "predeploy.yaml").open("a") as stream:
        stream.write("# edited after sealing\n")
    refused = approve(root, "release-manager", "riley")
    assert refused.returncode == 1, refused.stdout
    assert "package is stale: predeploy.yaml changed after sealing" in refused.stdout
    assert git(root, "for-each-ref", REF) == ""


def test_the_ci_platform_names_the_operator_not_a_variable_the_job_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    # Case 4: in GitHub Actions the actor is the platform's word; PREDEPLOY_OPERATOR cannot replace it.
    from pytest_predeploy.core.runstate import current_user, identify_operator

    for name in ("GITHUB_ACTIONS", "GITHUB_ACTOR", "GITLAB_CI", "GITLAB_USER_LOGIN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_ACTOR", "ops-gh")
    monkeypatch.setenv("PREDEPLOY_OPERATOR", "somebody-else")
    assert current_user() == "ops-gh"
    assert "GitHub Actions" in identify_operator().source
    monkeypatch.delenv("GITHUB_ACTIONS")
    monkeypatch.setenv("GITLAB_CI", "true")
    monkeypatch.setenv("GITLAB_USER_LOGIN", "ops-gl")
    assert current_user() == "ops-gl"
    monkeypatch.delenv("GITLAB_CI")
    local = identify_operator()
    assert local.name == "somebody-else" and "self-declared" in local.source


# --- the record itself, with git alone (no protocol run) -----------------------------------------

PACKAGE_A = "a" * 64


def commit_envelope(repository: Path, text: str) -> str:
    from pytest_predeploy.readiness.record import append

    return append(repository, PACKAGE_A, text.encode(), "Riley Manager", "a sign-off")


@pytest.fixture
def bare_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # A machine where git knows nobody (no user.name / user.email): approve must still commit.
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    repository = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repository)], check=True)
    return repository


def test_the_record_keeps_commit_order_and_never_touches_branches_index_or_tree(bare_home: Path) -> None:
    from pytest_predeploy.readiness.record import read

    (bare_home / "work.txt").write_text("uncommitted work\n")
    first, second = commit_envelope(bare_home, '{"n": 2}'), commit_envelope(bare_home, '{"n": 1}')
    reading = read(bare_home)
    assert [entry.commit for entry in reading.entries] == [first, second] and reading.problems == []
    assert [json.loads(entry.content)["n"] for entry in reading.entries] == [2, 1]
    status = subprocess.run(["git", "status", "--porcelain"], cwd=bare_home, capture_output=True, text=True, check=True).stdout
    assert status == "?? work.txt\n"
    branches = subprocess.run(["git", "for-each-ref", "--format=%(refname)"], cwd=bare_home, capture_output=True, text=True, check=True).stdout
    assert branches.split() == [REF]
    author = subprocess.run(["git", "log", "-1", "--format=%an <%ae>", REF], cwd=bare_home, capture_output=True, text=True, check=True).stdout
    assert author.strip() == "Riley Manager <Riley-Manager@predeploy.invalid>"


def test_concurrent_sign_offs_each_land_on_the_record(bare_home: Path) -> None:
    script = "import sys; from pathlib import Path; from pytest_predeploy.readiness.record import append; append(Path(sys.argv[1]), 'a' * 64, sys.argv[2].encode(), 'x', 'm')"
    processes = [subprocess.Popen([sys.executable, "-c", script, str(bare_home), f'{{"n": {n}}}']) for n in range(6)]
    assert all(process.wait(timeout=120) == 0 for process in processes)
    from pytest_predeploy.readiness.record import read

    reading = read(bare_home)
    assert sorted(json.loads(entry.content)["n"] for entry in reading.entries) == list(range(6)) and reading.problems == []


def test_a_sign_off_made_after_fetching_builds_on_the_teams_record(bare_home: Path, tmp_path: Path) -> None:
    # Two reviewers sign on their own clones; the second fetched the first's push and signs on a
    # record that had diverged: the new commit merges both, so pushing it is a fast-forward.
    from pytest_predeploy.readiness.record import BRANCH, read

    origin = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(bare_home), str(origin)], check=True)
    subprocess.run(["git", "remote", "add", "origin", str(origin)], cwd=bare_home, check=True)
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(origin), str(other)], check=True)
    commit_envelope(other, '{"by": "quinn"}')
    subprocess.run(["git", "push", "-q", "origin", BRANCH], cwd=other, check=True)
    commit_envelope(bare_home, '{"by": "riley-local"}')  # local record, not yet pushed: diverged
    subprocess.run(["git", "fetch", "-q", "origin"], cwd=bare_home, check=True)
    commit_envelope(bare_home, '{"by": "riley"}')
    assert subprocess.run(["git", "push", "-q", "origin", BRANCH], cwd=bare_home).returncode == 0
    reading = read(bare_home)
    assert sorted(json.loads(entry.content)["by"] for entry in reading.entries) == ["quinn", "riley", "riley-local"] and reading.problems == []


def test_outside_a_git_repository_gate4_says_why_and_nothing_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_predeploy.readiness.signoff import ReadinessConfig, judge_signoffs

    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    status = judge_signoffs(tmp_path, PACKAGE_A, None, ReadinessConfig(), None, "v1.2")
    assert not status.complete
    assert "is not in a git repository: sign-offs are recorded in git" in status.summary()
