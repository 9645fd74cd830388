"""The go/no-go package (Protocol 10, step 4.1): ``PRE-DEPLOYMENT-PACKAGE.zip`` and
``pre-deployment-manifest.json``, and ``predeploy verify``.

Sign-offs are bound to the package's sha256, so the package must be reproducible byte for byte:
entries are sorted, every timestamp is one fixed time (``SOURCE_DATE_EPOCH``, else the release
commit's time, else 1980-01-01, the earliest a zip can hold), every permission is 0644, and the
zip is written by our own small writer so that nothing of the host (time zone, umask, file
owner) leaks into it (``readiness/zipwriter.py``, which also says how it is fast). The same
artifacts give the same bytes with the same zlib.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import re
import stat
import zipfile
import zlib
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

from pydantic import Field, ValidationError

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core.artifacts import ArtifactModel, describe_validation_error, write_bytes_atomic
from pytest_predeploy.core.errors import ArtifactError, PredeployError
from pytest_predeploy.core.fields import StrictModel
from pytest_predeploy.core.git import run_git
from pytest_predeploy.core.nesting import json_loads
from pytest_predeploy.readiness.settings import REQUIRED_ARTIFACTS as REQUIRED_ARTIFACTS
from pytest_predeploy.readiness.settings import PackageConfig as PackageConfig
from pytest_predeploy.readiness.signing import Signers
from pytest_predeploy.readiness.signoff import SignoffView, review_signoffs
from pytest_predeploy.readiness.zipwriter import (
    CHUNK,
    EARLIEST_TIME,
    Entry,
    SourceChanged,
    ZipWriter,
    central_header,
    dos_time,
    end_records,
    local_header,
    needs_zip64_local,
)
from pytest_predeploy.targets.releases import RehearsedReleases

STEP = "package"

#: When neither SOURCE_DATE_EPOCH nor a git commit gives a time: 1980-01-01T00:00:00Z, the
#: earliest time a zip entry can carry (documented in docs/config-reference.md, package section).
FALLBACK_EPOCH = EARLIEST_TIME

#: Producing step of each known artifact (transcripts are named after their step).
DEFAULT_PRODUCERS: dict[str, str] = names.PRODUCERS

_MEDIA_TYPES = {
    ".json": "application/json",
    ".md": "text/markdown",
    ".log": "text/plain",
    ".txt": "text/plain",
    ".html": "text/html",
    ".xml": "application/xml",
    ".svg": "image/svg+xml",
}

#: What the manifest says goes on to the protocols downstream (PROTOCOL-10, integration points).
_HANDOFF = {
    "Protocol 11 (production deployment)": (names.PACKAGE, names.MANIFEST, names.READINESS_APPROVAL, names.DEPLOYMENT_CHECKLIST),
    "Protocol 12 (monitoring)": (names.OBSERVABILITY_BASELINE, names.OBSERVABILITY_METRICS, names.SECURITY_REPORT),
    "Protocol 13 (incident preparedness)": (names.ROLLBACK_REPORT,),
}


class PackageError(PredeployError):
    """The package cannot be built or read: the message names the path and what to do."""


class ManifestEntry(StrictModel):
    """One file of the package."""

    path: str = Field(description="Path inside the package (and relative to the artifacts dir), '/'-separated.")
    size: int = Field(description="Size in bytes.")
    sha256: str = Field(description="sha256 of the file's bytes, hex.")
    media_type: str = Field(description="IANA media type (e.g. application/json).")
    step: str = Field(description="The protocol step that produced the file.")


class Handoff(StrictModel):
    """What one downstream protocol takes from this one."""

    protocol: str = Field(description="The downstream protocol.")
    artifacts: list[str] = Field(description="Artifacts it takes (the package, files beside it, or entries of it).")


class Manifest(ArtifactModel):
    """pre-deployment-manifest.json: the index of the go/no-go package (inside the zip and beside it)."""

    step: str = Field(STEP, description="The protocol step that produced the artifact.")
    previous_release: str | None = Field(description="The release staging rolls back to.")
    git_commit: str | None = Field(description="Commit of the project the package was built from.")
    config_digest: str = Field(description="sha256 of predeploy.yaml.")
    release_source_digest: str | None = Field(
        None,
        description="sha256 over each service's name and the code of the release as its release source resolves it (content digest, or the commit of a git tag) when sealed (None when no service is built by the local staging target); Gate 4 refuses the package once it changes.",
    )
    signers_sha256: str | None = Field(
        None,
        description="sha256 of the signers file (readiness.signers) when sealed (None: there was none). Gate 4 counts sign-offs only against a committed signers file with this digest: a signer added after sealing never counts for this package.",
    )
    advisory_database_sha256: str | None = Field(
        None,
        description="sha256 of the advisory data the security scan used (security.osv.database) when sealed; Gate 4 refuses the package once it changes.",
    )
    releases: list[RehearsedReleases] = Field(
        default_factory=list,
        description="Per service, what was rehearsed: the candidate and the previous release as built on staging (source kind, ref, commit, content digest, whether the working tree was dirty); empty before the rollback rehearsal ran.",
    )
    source_date_epoch: int = Field(description="The fixed time (seconds since 1970, UTC) of every zip entry, so the same files give the same bytes.")
    compression_level: int = Field(description="zlib level the compressed entries were written with.")
    gate_outcomes: dict[str, str] = Field(description="Outcome of each gate when the package was sealed.")
    entries: list[ManifestEntry] = Field(description="Every file of the package except this manifest, sorted by path.")
    handoff: list[Handoff] = Field(description="What goes on to production deployment, monitoring and incident preparedness.")

    def to_bytes(self) -> bytes:
        return (self.model_dump_json(indent=2) + "\n").encode("utf-8")


@dataclass(frozen=True)
class SealResult:
    path: Path
    sha256: str
    entries: list[ManifestEntry]
    manifest: Manifest


@dataclass
class VerifyResult:
    path: Path
    sha256: str
    manifest: Manifest | None
    problems: list[str] = field(default_factory=list)
    signoffs: list[SignoffView] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# --- what goes in -----------------------------------------------------------------------------


def _excluded(rel: str, patterns: list[str]) -> bool:
    parts = rel.split("/")
    if any(part.startswith(".") for part in parts) or rel.endswith(".lock"):
        return True  # temporary files of atomic writes, locks, editor and VCS droppings
    if parts[0] == "history" or rel in (names.PACKAGE, names.MANIFEST, names.READINESS_APPROVAL):
        return True  # the package itself, its index, and sign-offs made about it
    return any(fnmatch(rel, pattern) for pattern in patterns)


def _refuse(root: Path, path: Path, mode: int) -> PackageError:
    rel = path.relative_to(root).as_posix()
    if stat.S_ISLNK(mode):
        target = os.readlink(path)
        where = "outside the artifacts dir" if not (path.parent / target).resolve().is_relative_to(root) else "inside the artifacts dir"
        return PackageError(
            f"{root / rel}: is a symbolic link (to {target}, {where}); the package holds only regular files "
            "inside the artifacts dir: replace the link with a copy of the file, or remove it"
        )
    kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device or special file"
    return PackageError(f"{root / rel}: is {kind}, not a regular file; remove it from the artifacts dir")


def collect_files(artifacts: Path, exclude: list[str] | None = None) -> list[tuple[str, Path]]:
    """Every file that goes into the package, as sorted (path in package, path on disk) pairs.

    Symbolic links and special files are refused (not skipped), so nothing outside the
    artifacts dir can be packaged through a link and nothing silently goes missing.
    """
    root = Path(artifacts).resolve()
    if not root.is_dir():
        raise PackageError(f"{artifacts}: the artifacts dir does not exist")
    found: list[tuple[str, Path]] = []

    def walk(folder: Path) -> None:
        with os.scandir(folder) as listing:
            for item in listing:
                path = Path(item.path)
                rel = path.relative_to(root).as_posix()
                if _excluded(rel, exclude or []):
                    continue
                if "\\" in rel or rel != rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace"):
                    raise PackageError(f"{path}: file names in the package must be UTF-8 without backslashes; rename it")
                mode = item.stat(follow_symlinks=False).st_mode
                if stat.S_ISDIR(mode):
                    walk(path)
                elif stat.S_ISREG(mode):
                    found.append((rel, path))
                else:
                    raise _refuse(root, path, mode)

    walk(root)
    return sorted(found)


def producing_step(rel: str, producers: Mapping[str, str] | None = None) -> str:
    """The step that wrote ``rel``: the given mapping, the known artifact names, the transcript name."""
    for table in (producers or {}, DEFAULT_PRODUCERS):
        if rel in table:
            return table[rel]
    path = PurePosixPath(rel)
    if path.parts[0] == names.TRANSCRIPTS_DIR and len(path.parts) == 2:
        # transcripts/<step>[-<label>].log; a known step name may itself contain '-'.
        known = sorted(set(DEFAULT_PRODUCERS.values()) | set((producers or {}).values()), key=len, reverse=True)
        for step in known:
            if path.stem == step or path.stem.startswith(step + "-"):
                return step
        return path.stem.split("-", 1)[0]
    return "unknown"


def media_type(rel: str) -> str:
    if rel.endswith(".cdx.json"):
        return "application/vnd.cyclonedx+json"
    suffix = PurePosixPath(rel).suffix.lower()
    return _MEDIA_TYPES.get(suffix) or mimetypes.guess_type(rel, strict=False)[0] or "application/octet-stream"


# --- fixed time ---------------------------------------------------------------------------------


def resolve_epoch(source_date_epoch: int | None = None, project_dir: Path | None = None, commit: str | None = None) -> int:
    """The package's fixed time: the argument, else ``$SOURCE_DATE_EPOCH``, else the commit's time
    (``git log -1 --format=%ct``), else :data:`FALLBACK_EPOCH`."""
    if source_date_epoch is not None:
        value: object = source_date_epoch
    else:
        raw = os.environ.get("SOURCE_DATE_EPOCH", "")
        if raw.strip() == "":
            return _commit_time(project_dir or Path.cwd(), commit)
        value = raw
    if isinstance(value, bool) or not re.fullmatch(r"\d{1,11}", str(value).strip()):
        raise PackageError(
            f"SOURCE_DATE_EPOCH={value!r} is not a whole number of seconds since 1970-01-01 UTC; unset it, or set it to e.g. $(git log -1 --format=%ct)"
        )
    return int(str(value).strip())


def _commit_time(project_dir: Path, commit: str | None) -> int:
    done = run_git(project_dir, "log", "-1", "--format=%ct", commit or "HEAD", "--", timeout=10)
    text = done.stdout.strip()
    return int(text) if done.ok and text.isdigit() else FALLBACK_EPOCH


# --- manifest and sealing -----------------------------------------------------------------------


def _manifest(
    release: str,
    previous_release: str | None,
    git_commit: str | None,
    config_digest: str,
    gate_outcomes: Mapping[str, str] | None,
    entries: list[ManifestEntry],
    epoch: int,
    level: int,
    generated_at: datetime | None = None,
    release_source_digest: str | None = None,
    releases: list[RehearsedReleases] | None = None,
    signers_sha256: str | None = None,
    advisory_database_sha256: str | None = None,
) -> Manifest:
    present = {entry.path for entry in entries}
    handoff = [
        Handoff(protocol=protocol, artifacts=[name for name in wanted if name in present or name in (names.PACKAGE, names.MANIFEST, names.READINESS_APPROVAL)])
        for protocol, wanted in _HANDOFF.items()
    ]
    return Manifest(
        release=release,
        # When the run that produced the evidence happened; the entries keep the fixed time. A
        # caller outside a run gives none and gets the fixed time, so its bytes stay reproducible.
        generated_at=generated_at or datetime.fromtimestamp(epoch, UTC),
        previous_release=previous_release,
        git_commit=git_commit,
        config_digest=config_digest,
        release_source_digest=release_source_digest,
        signers_sha256=signers_sha256,
        advisory_database_sha256=advisory_database_sha256,
        releases=releases or [],
        source_date_epoch=epoch,
        compression_level=level,
        gate_outcomes=dict(sorted((gate_outcomes or {}).items())),
        entries=entries,
        handoff=handoff,
    )


def _entry(rel: str, size: int, sha256: str, producers: Mapping[str, str] | None) -> ManifestEntry:
    return ManifestEntry(path=rel, size=size, sha256=sha256, media_type=media_type(rel), step=producing_step(rel, producers))


def build_manifest(
    artifacts: Path,
    *,
    release: str,
    previous_release: str | None,
    git_commit: str | None,
    config_digest: str,
    gate_outcomes: Mapping[str, str],
    producers: Mapping[str, str] | None = None,
    source_date_epoch: int | None = None,
    config: PackageConfig | None = None,
    generated_at: datetime | None = None,
    release_source_digest: str | None = None,
    releases: list[RehearsedReleases] | None = None,
    signers_sha256: str | None = None,
    advisory_database_sha256: str | None = None,
) -> Manifest:
    """The manifest the package of ``artifacts`` would carry (hashes every file; writes nothing)."""
    config = config or PackageConfig()
    epoch = resolve_epoch(source_date_epoch, Path(artifacts), git_commit)
    entries = []
    for rel, path in collect_files(artifacts, config.exclude):
        digest, size = _hash_file(path)
        entries.append(_entry(rel, size, digest, producers))
    return _manifest(
        release,
        previous_release,
        git_commit,
        config_digest,
        gate_outcomes,
        entries,
        epoch,
        config.compression_level,
        generated_at,
        release_source_digest,
        releases,
        signers_sha256,
        advisory_database_sha256,
    )


def _hash_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb", buffering=0) as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _workers() -> int:
    try:
        return max(1, min(len(os.sched_getaffinity(0)), 8))
    except AttributeError:  # not Linux
        return max(1, min(os.cpu_count() or 1, 8))


def seal_package(
    artifacts: Path,
    *,
    release: str,
    previous_release: str | None = None,
    git_commit: str | None = None,
    config_digest: str = "",
    gate_outcomes: Mapping[str, str] | None = None,
    producers: Mapping[str, str] | None = None,
    source_date_epoch: int | None = None,
    project_dir: Path | None = None,
    config: PackageConfig | None = None,
    generated_at: datetime | None = None,
    release_source_digest: str | None = None,
    releases: list[RehearsedReleases] | None = None,
    signers_sha256: str | None = None,
    advisory_database_sha256: str | None = None,
) -> SealResult:
    """Write ``PRE-DEPLOYMENT-PACKAGE.zip`` and ``pre-deployment-manifest.json`` (inside and beside it).

    Both are written atomically (temporary file, then rename); on any error neither changes.
    The commit's time is looked up in ``project_dir`` (default: the current folder).
    """
    config = config or PackageConfig()
    artifacts = Path(artifacts)
    epoch = resolve_epoch(source_date_epoch, project_dir, git_commit)
    files = collect_files(artifacts, config.exclude)
    target = artifacts / names.PACKAGE
    tmp = artifacts / f".{names.PACKAGE}.tmp"
    workers = _workers()
    try:
        with open(tmp, "wb") as out, ThreadPoolExecutor(workers, thread_name_prefix="predeploy-deflate") as pool:
            writer = ZipWriter(out, epoch, config.compression_level, pool, inflight=2 * workers + 2)
            try:
                entries = [writer.add_file(rel, path) for rel, path in files]
            except SourceChanged as exc:
                raise PackageError(str(exc)) from None
            manifest_entries = [_entry(e.name, e.size, e.sha256, producers) for e in entries]
            manifest = _manifest(
                release,
                previous_release,
                git_commit,
                config_digest,
                gate_outcomes,
                manifest_entries,
                epoch,
                config.compression_level,
                generated_at,
                release_source_digest,
                releases,
                signers_sha256,
                advisory_database_sha256,
            )
            manifest_bytes = manifest.to_bytes()
            writer.add_bytes(names.MANIFEST, manifest_bytes)
            writer.finish()
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        write_bytes_atomic(artifacts / names.MANIFEST, manifest_bytes)
    except BaseException:
        target.unlink(missing_ok=True)  # without its manifest beside it, the package is not sealed
        raise
    digest, _ = _hash_file(target)
    return SealResult(path=target, sha256=digest, entries=manifest_entries, manifest=manifest)


# --- before sealing -----------------------------------------------------------------------------


def package_readiness(artifacts: Path, config: PackageConfig | None = None) -> list[str]:
    """What stands between the artifacts and a package (Gate 4's "package can be compiled")."""
    config = config or PackageConfig()
    artifacts = Path(artifacts)
    problems = []
    for name in config.required:
        path = artifacts / name
        if path.is_symlink():
            problems.append(f"{path}: is a symbolic link; the package holds only regular files")
        elif not path.exists():
            problems.append(f"{path}: missing: the step that writes it did not produce it")
        elif not path.is_file():
            problems.append(f"{path}: is not a regular file")
    try:
        files = collect_files(artifacts, config.exclude)
    except PackageError as exc:
        problems.append(str(exc))
        files = [(name, artifacts / name) for name in config.required if (artifacts / name).is_file() and not (artifacts / name).is_symlink()]
    for rel, path in files:
        if rel.endswith(".json"):
            try:
                json_loads(path.read_bytes())
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                problems.append(f"{path}: not valid JSON ({exc})")
    return problems


# --- verification -----------------------------------------------------------------------------


def _unsafe(name: str) -> str | None:
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if "\\" in name:
        return "backslash in path"
    parts = name.split("/")
    if ".." in parts:
        return "'..' in path"
    if "" in parts or "." in parts:
        return "empty or '.' path component"
    return None


def _hash_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with archive.open(info) as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _read_manifest(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], problems: list[str]) -> tuple[Manifest | None, bytes]:
    found = [info for info in infos if info.filename == names.MANIFEST]
    if not found:
        problems.append(f"{names.MANIFEST}: missing from the package; it cannot be verified")
        return None, b""
    try:
        raw = archive.read(found[0])
        return Manifest.model_validate(json_loads(raw)), raw
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        problems.append(f"{names.MANIFEST}: cannot be read from the package ({exc})")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(f"{names.MANIFEST}: not valid JSON ({exc})")
    except ValidationError as exc:
        problems.append(f"{names.MANIFEST}: does not match Manifest: {describe_validation_error(exc)}")
    return None, b""


def _noncanonical(path: Path, infos: list[zipfile.ZipInfo], epoch: int, start_dir: int) -> list[str]:
    """Entries whose headers differ from what :class:`ZipWriter` writes for the same content.

    Together with the content hashes this covers every byte outside the compressed data, so an
    edited header (time, permissions, flags, an extra field, a hidden gap) is found too.
    """
    dos = dos_time(epoch)
    odd: list[str] = []
    expected_offset = 0
    central = b""
    with open(path, "rb") as handle:
        for info in infos:
            entry = Entry(info.filename, info.compress_type, info.file_size, info.compress_size, info.CRC, info.header_offset)
            local = local_header(entry, dos, needs_zip64_local(entry.size))
            handle.seek(info.header_offset)
            if info.header_offset != expected_offset or handle.read(len(local)) != local:
                odd.append(info.filename)
            expected_offset = info.header_offset + len(local) + info.compress_size
            central += central_header(entry, dos)
        handle.seek(start_dir)
        tail = handle.read()
    if start_dir != expected_offset or tail != central + end_records(len(infos), start_dir, len(central)):
        odd.append("(central directory)")
    return odd


def verify_package(path: Path, approvals: Path | None = None, signers: Signers | None = None) -> VerifyResult:
    """Re-hash every entry against the manifest and check the headers and sign-offs.

    Every problem is one line naming the entry. Sign-offs are read from ``approvals`` (default:
    ``readiness-approval.json`` beside the package) and matched against the package's sha256.
    """
    path = Path(path)
    if not path.is_file():
        raise PackageError(f"{path}: no such package file")
    digest, _ = _hash_file(path)
    result = VerifyResult(path=path, sha256=digest, manifest=None)
    problems = result.problems
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        problems.append(f"{path.name}: not a readable zip archive ({exc})")
        return result
    with archive:
        infos = archive.infolist()
        for name, count in sorted(Counter(info.filename for info in infos).items()):
            if count > 1:
                problems.append(f"{name}: duplicate entry (appears {count} times)")
        for info in infos:
            reason = _unsafe(info.filename)
            if reason:
                problems.append(f"{info.filename}: unsafe entry path ({reason})")
        manifest, manifest_bytes = _read_manifest(archive, infos, problems)
        result.manifest = manifest
        if manifest is None:
            return result
        listed = Counter(entry.path for entry in manifest.entries)
        problems.extend(f"{name}: listed {count} times in the manifest" for name, count in sorted(listed.items()) if count > 1)
        expected = {entry.path: entry for entry in manifest.entries}
        for info in infos:
            if info.filename == names.MANIFEST:
                continue
            wanted = expected.get(info.filename)
            if wanted is None:
                problems.append(f"{info.filename}: extra entry, not listed in the manifest")
                continue
            try:
                actual, size = _hash_entry(archive, info)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
                problems.append(f"{info.filename}: cannot be read ({exc})")
                continue
            if actual != wanted.sha256 or size != wanted.size:
                problems.append(
                    f"{info.filename}: content differs from the manifest (sha256 {actual[:16]}..., {size} bytes; manifest: {wanted.sha256[:16]}..., {wanted.size} bytes)"
                )
        present = {info.filename for info in infos}
        problems.extend(f"{name}: listed in the manifest but missing from the package" for name in expected if name not in present)
        if not problems:
            odd = _noncanonical(path, infos, manifest.source_date_epoch, archive.start_dir)
            if odd:
                problems.append(f"zip headers differ from the canonical form seal_package writes (edited or repacked): {', '.join(odd)}")
    beside = path.parent / names.MANIFEST
    if beside.is_file() and beside.read_bytes() != manifest_bytes:
        problems.append(f"{beside}: differs from the {names.MANIFEST} inside the package")
    approvals = approvals or path.parent / names.READINESS_APPROVAL
    try:
        result.signoffs = [view for view in review_signoffs(approvals, digest, signers=signers) if view.release == manifest.release]
    except ArtifactError as exc:
        problems.append(str(exc))
    if result.signoffs and all(view.verdict == "other-package" for view in result.signoffs):
        problems.append(
            f"{approvals.name}: the {len(result.signoffs)} sign-off(s) for release {manifest.release} are all for another package "
            f"(sha256 {result.signoffs[0].digest[:16]}...), not this one ({digest[:16]}...): it changed after sign-off, or was rebuilt"
        )
    return result
