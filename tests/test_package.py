"""The go/no-go package: contents, determinism, refusals and the tamper matrix of verify."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.readiness.package import (
    FALLBACK_EPOCH,
    PackageConfig,
    PackageError,
    package_readiness,
    resolve_epoch,
    seal_package,
    verify_package,
)
from pytest_predeploy.readiness.signoff import ReadinessApproval, record_signoff

EPOCH = 1764115200  # 2025-11-26T00:00:00Z


def make_artifacts(root: Path) -> Path:
    """A realistic artifacts dir: every required artifact, transcripts, a multi-chunk log, an
    incompressible blob, an empty file, and things that must stay out of the package."""
    root.mkdir(parents=True, exist_ok=True)
    for name in (names.INTAKE_REPORT, names.PARITY_REPORT, names.TEST_RESULTS, names.API_CONTRACT_REPORT, names.ROLLBACK_REPORT, names.SECURITY_REPORT):
        (root / name).write_text(json.dumps({"release": "v1.2", "step": name.split("-")[0], "ok": True}, indent=2))
    (root / names.DEPLOYMENT_LOG).write_bytes(b"".join(b"12:00:%02d deploy api step %d ok\n" % (i % 60, i) for i in range(120_000)))
    (root / names.TRANSCRIPTS_DIR).mkdir()
    (root / names.TRANSCRIPTS_DIR / "deploy-api.log").write_text("deploying api\n" * 50)
    (root / names.TRANSCRIPTS_DIR / "security.log").write_text("bandit: 0 findings\n")
    (root / "evidence").mkdir()
    (root / "evidence" / "capture.bin").write_bytes(os.urandom(1_500_000))
    (root / "evidence" / "empty.txt").write_bytes(b"")
    # Left out: sign-offs, locks, dotfiles, history/, a previous package and manifest.
    (root / names.READINESS_APPROVAL).write_text(ReadinessApproval(release="v1.2").model_dump_json(by_alias=True))
    (root / ".predeploy.lock").write_text("")
    (root / "run.lock").write_text("")
    (root / ".scratch").write_text("temp")
    (root / "history").mkdir()
    (root / "history" / "old.json").write_text("{}")
    (root / names.PACKAGE).write_bytes(b"old package")
    (root / names.MANIFEST).write_text("{}")
    return root


INCLUDED = sorted(
    [
        names.INTAKE_REPORT,
        names.PARITY_REPORT,
        names.TEST_RESULTS,
        names.API_CONTRACT_REPORT,
        names.ROLLBACK_REPORT,
        names.SECURITY_REPORT,
        names.DEPLOYMENT_LOG,
        "transcripts/deploy-api.log",
        "transcripts/security.log",
        "evidence/capture.bin",
        "evidence/empty.txt",
    ]
)


def seal(artifacts: Path, release: str = "v1.2") -> object:
    return seal_package(
        artifacts,
        release=release,
        previous_release="v1.1",
        git_commit="abc123",
        config_digest="f" * 64,
        gate_outcomes={"gate2": "passed", "gate1": "passed", "gate3": "passed"},
        source_date_epoch=EPOCH,
    )


@pytest.fixture
def sealed(tmp_path: Path) -> Path:
    artifacts = make_artifacts(tmp_path / "artifacts")
    seal(artifacts)
    return artifacts


def test_package_holds_every_artifact_and_the_manifest_inside_and_beside(sealed: Path) -> None:
    with zipfile.ZipFile(sealed / names.PACKAGE) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == [*INCLUDED, names.MANIFEST]
        for name in INCLUDED:
            assert archive.read(name) == (sealed / name).read_bytes(), name
        inner = archive.read(names.MANIFEST)
        infos = archive.infolist()
    assert inner == (sealed / names.MANIFEST).read_bytes()
    assert {info.external_attr >> 16 for info in infos} == {0o100644}
    assert {info.date_time for info in infos} == {(2025, 11, 26, 0, 0, 0)}
    # The incompressible blob is stored, the log deflated.
    methods = {info.filename: info.compress_type for info in infos}
    assert methods["evidence/capture.bin"] == zipfile.ZIP_STORED
    assert methods[names.DEPLOYMENT_LOG] == zipfile.ZIP_DEFLATED


def test_manifest_indexes_every_entry_with_sha256_media_type_and_step(sealed: Path) -> None:
    manifest = json.loads((sealed / names.MANIFEST).read_text())
    assert manifest["release"] == "v1.2" and manifest["previous_release"] == "v1.1"
    assert manifest["git_commit"] == "abc123" and manifest["config_digest"] == "f" * 64
    assert list(manifest["gate_outcomes"]) == ["gate1", "gate2", "gate3"]
    assert manifest["generated_at"].startswith("2025-11-26T00:00:00")
    entries = {entry["path"]: entry for entry in manifest["entries"]}
    assert list(entries) == INCLUDED
    for name, entry in entries.items():
        data = (sealed / name).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["size"] == len(data)
    assert entries[names.INTAKE_REPORT]["step"] == "intake"
    assert entries[names.DEPLOYMENT_LOG]["media_type"] == "text/plain"
    assert entries["transcripts/deploy-api.log"]["step"] == "deploy"
    assert entries["transcripts/security.log"]["step"] == "security"
    assert entries[names.SECURITY_REPORT]["media_type"] == "application/json"
    protocols = {item["protocol"]: item["artifacts"] for item in manifest["handoff"]}
    assert names.ROLLBACK_REPORT in protocols["Protocol 13 (incident preparedness)"]


def test_verify_accepts_an_untouched_package(sealed: Path) -> None:
    result = verify_package(sealed / names.PACKAGE)
    assert result.problems == []
    assert result.sha256 == hashlib.sha256((sealed / names.PACKAGE).read_bytes()).hexdigest()


def test_unzip_reads_the_package(sealed: Path) -> None:
    if shutil.which("unzip") is None:
        pytest.skip("unzip is not installed")
    done = subprocess.run(["unzip", "-t", str(sealed / names.PACKAGE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


_BUILD = """
import sys
from pathlib import Path
from pytest_predeploy.readiness.package import seal_package
print(seal_package(Path(sys.argv[1]), release="v1.2", config_digest="0" * 64, project_dir=Path(sys.argv[1])).sha256)
"""


def test_builds_under_different_time_zones_and_umasks_are_byte_identical(tmp_path: Path) -> None:
    digests = []
    for index, (tz, umask) in enumerate((("UTC", "022"), ("Pacific/Chatham", "077"), ("America/St_Johns", "002"))):
        # Each build copies the artifacts under its own umask, with fresh mtimes and owners' modes.
        script = f'umask {umask} && cp -r "$0" "$1" && exec "$2" -c "$3" "$1"'
        env = {**os.environ, "TZ": tz, "SOURCE_DATE_EPOCH": str(EPOCH)}
        source = make_artifacts(tmp_path / f"source{index}") if index == 0 else tmp_path / "source0"
        done = subprocess.run(
            ["sh", "-c", script, str(source), str(tmp_path / f"build{index}"), sys.executable, _BUILD],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        digests.append(done.stdout.strip())
    assert len(digests[0]) == 64
    assert digests[0] == digests[1] == digests[2]


def test_fixed_time_comes_from_the_release_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_DATE": "@1700000000 +0000",
        "GIT_AUTHOR_DATE": "@1700000000 +0000",
    }
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, env=env)
    subprocess.run(["git", "-C", str(tmp_path), "commit", "-q", "--allow-empty", "-m", "release"], check=True, env=env)
    assert resolve_epoch(None, tmp_path) == 1700000000
    assert resolve_epoch(None, Path("/")) == FALLBACK_EPOCH


@pytest.mark.parametrize("value", ["yesterday", "-5", "1.5", "17e8"])
def test_malformed_source_date_epoch_is_a_clear_error(value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    artifacts = make_artifacts(tmp_path / "artifacts")
    with pytest.raises(PackageError, match="SOURCE_DATE_EPOCH=.*not a whole number of seconds"):
        seal_package(artifacts, release="v1.2")


def test_source_date_epoch_from_the_environment_sets_the_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    result = seal_package(make_artifacts(tmp_path / "artifacts"), release="v1.2")
    assert result.manifest.source_date_epoch == 1700000000


@pytest.mark.parametrize("target", ["/etc/hostname", "evidence/capture.bin"])
def test_a_symlink_in_the_artifacts_dir_is_refused_naming_it(tmp_path: Path, target: str) -> None:
    artifacts = make_artifacts(tmp_path / "artifacts")
    seal(artifacts)
    before = (artifacts / names.PACKAGE).read_bytes()
    (artifacts / "transcripts" / "linked.log").symlink_to(target)
    with pytest.raises(PackageError, match=r"transcripts/linked\.log: is a symbolic link"):
        seal(artifacts)
    # Atomic: the previous package is untouched and no temporary file is left behind.
    assert (artifacts / names.PACKAGE).read_bytes() == before
    assert not [p for p in artifacts.iterdir() if p.name.endswith(".tmp")]


def test_a_fifo_in_the_artifacts_dir_is_refused(tmp_path: Path) -> None:
    artifacts = make_artifacts(tmp_path / "artifacts")
    os.mkfifo(artifacts / "evidence" / "pipe")
    with pytest.raises(PackageError, match=r"evidence/pipe: is a FIFO"):
        seal(artifacts)
    assert not (artifacts / names.PACKAGE).read_bytes().startswith(b"PK")


def test_configured_exclusions_are_left_out(tmp_path: Path) -> None:
    artifacts = make_artifacts(tmp_path / "artifacts")
    result = seal_package(artifacts, release="v1.2", source_date_epoch=EPOCH, config=PackageConfig(exclude=["evidence/*"]))
    assert [entry.path for entry in result.entries] == [name for name in INCLUDED if not name.startswith("evidence/")]


# --- tamper matrix ------------------------------------------------------------------------------


def _rewrite(package: Path, out: Path, change: Callable[[list[tuple[str, bytes]]], list[tuple[str, bytes]]]) -> Path:
    """A well-formed zip (valid CRCs) holding ``change`` applied to the package's entries."""
    with zipfile.ZipFile(package) as archive:
        entries = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in change(entries):
            archive.writestr(zipfile.ZipInfo(name, (2025, 11, 26, 0, 0, 0)), data)
    return out


def _problems_naming(path: Path, name: str) -> list[str]:
    result = verify_package(path)
    assert not result.ok
    return [problem for problem in result.problems if problem.startswith(name)]


def test_a_flipped_byte_in_each_entry_is_detected_naming_it(sealed: Path, tmp_path: Path) -> None:
    package = sealed / names.PACKAGE
    with zipfile.ZipFile(package) as archive:
        infos = archive.infolist()
    detected = 0
    for info in infos:
        for where in ("data", "header"):
            if where == "data" and info.compress_size == 0:
                continue
            data = bytearray(package.read_bytes())
            start = info.header_offset + 30 + len(info.filename.encode()) if where == "data" else info.header_offset + 10
            data[start + info.compress_size // 2 if where == "data" else start] ^= 0x01
            copy = tmp_path / f"flip-{where}-{info.filename.replace('/', '_')}.zip"
            copy.write_bytes(bytes(data))
            assert any(info.filename in problem for problem in verify_package(copy).problems), (where, info.filename)
            detected += 1
    assert detected == 2 * len(infos) - 1  # every entry's data (but the empty one's) and header


def test_changed_content_with_a_valid_crc_is_detected_naming_the_entry(sealed: Path, tmp_path: Path) -> None:
    for target in INCLUDED:

        def changed(entries: list[tuple[str, bytes]], target: str = target) -> list[tuple[str, bytes]]:
            return [(n, d + b"!" if n == target else d) for n, d in entries]

        out = _rewrite(sealed / names.PACKAGE, tmp_path / "changed.zip", changed)
        assert _problems_naming(out, target), target


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda entries: [*entries, ("transcripts/extra.log", b"planted")], ["transcripts/extra.log"]),
        (lambda entries: [e for e in entries if e[0] != names.ROLLBACK_REPORT], [names.ROLLBACK_REPORT]),
        (lambda entries: [("renamed.json" if n == names.PARITY_REPORT else n, d) for n, d in entries], ["renamed.json", names.PARITY_REPORT]),
        (lambda entries: [*entries, next(e for e in entries if e[0] == names.INTAKE_REPORT)], [names.INTAKE_REPORT]),
        (lambda entries: [*entries, ("../outside.sh", b"rm -rf /")], ["../outside.sh"]),
        (lambda entries: [*entries, ("/etc/cron.d/evil", b"* * * * * root sh")], ["/etc/cron.d/evil"]),
        (lambda entries: [("evidence/../" + n if n == names.SECURITY_REPORT else n, d) for n, d in entries], ["evidence/../" + names.SECURITY_REPORT]),
    ],
    ids=["added", "removed", "renamed", "duplicated", "dotdot", "absolute", "dotdot-inside"],
)
@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_tampered_package_is_rejected_naming_the_entry(
    sealed: Path, tmp_path: Path, change: Callable[[list[tuple[str, bytes]]], list[tuple[str, bytes]]], named: list[str]
) -> None:
    out = _rewrite(sealed / names.PACKAGE, tmp_path / "tampered.zip", change)
    for name in named:
        assert _problems_naming(out, name), (name, verify_package(out).problems)


def test_a_manifest_beside_the_package_that_differs_is_reported(sealed: Path) -> None:
    manifest = sealed / names.MANIFEST
    manifest.write_text(manifest.read_text().replace('"v1.1"', '"v1.0"'))
    assert _problems_naming(sealed / names.PACKAGE, str(manifest))


def test_a_package_edited_after_sign_off_fails_verify(sealed: Path, tmp_path: Path) -> None:
    package = sealed / names.PACKAGE
    signed = verify_package(package)
    record_signoff(sealed / names.READINESS_APPROVAL, package_sha256=signed.sha256, release="v1.2", role="qa-lead", approver="bo", decision="go")
    assert verify_package(package).ok
    (sealed / names.TRANSCRIPTS_DIR / "deploy-api.log").write_text("rewritten\n")
    seal(sealed)  # a consistent rebuild: well-formed, but not what was signed
    problems = verify_package(package).problems
    assert any("all for another package" in problem for problem in problems), problems


# --- before and after sealing -------------------------------------------------------------------


def test_package_readiness_names_what_is_missing_or_malformed(tmp_path: Path) -> None:
    artifacts = make_artifacts(tmp_path / "artifacts")
    assert package_readiness(artifacts) == []
    (artifacts / names.ROLLBACK_REPORT).unlink()
    (artifacts / names.SECURITY_REPORT).write_text("{not json")
    (artifacts / names.TEST_RESULTS).unlink()
    (artifacts / names.TEST_RESULTS).symlink_to(artifacts / names.INTAKE_REPORT)
    problems = package_readiness(artifacts)
    assert any(names.ROLLBACK_REPORT in p and "missing" in p for p in problems)
    assert any(names.SECURITY_REPORT in p and "not valid JSON" in p for p in problems)
    assert any(names.TEST_RESULTS in p and "symbolic link" in p for p in problems)


def test_no_package_when_nothing_was_sealed(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="no such package"):
        verify_package(tmp_path / names.PACKAGE)
