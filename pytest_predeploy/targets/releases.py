"""Release sources: where the code of a release tag comes from, and what it is.

A release is an immutable, identified artifact. The local staging target resolves each tag to
its code through one of these sources and records the answer (:class:`ReleaseIdentity`) in the
release's manifest, so "rolled back to v1.1" means v1.1's code ran, and the evidence says which:

- ``git``: the tag (or commit) of a git repository, exported with ``git archive`` (the
  service's ``source`` folder as it is in that commit, nothing from the working tree);
- ``folder``: a folder per release, from a path template such as ``dist/{service}/{release}``;
- ``dist``: a built Python distribution (wheel or sdist) from a file template, installed into
  the release's own virtual environment with ``pip_args`` (which may name a lock or constraints
  file per release with ``{release}``); the files they name and what was installed are part of
  the release's identity, and a change to either rebuilds it;
- ``working_tree``: the service's ``source`` folder as it is now. In a git repository it is
  deployed under the tag's name only when it does not differ from the tag (or from HEAD when
  no such tag exists); otherwise the build is refused, or, with ``allow_dirty``, deployed as
  ``<tag>+dirty.<short digest>`` so nobody mistakes it for the tag.

``auto`` (the default) is ``git`` when the project is a git repository and the tag exists
there, else ``working_tree``.

The content digest is sha256 over the relative paths and sha256 of every file, so the same
code has the same digest whether it came from a tag or a folder; a distribution's digest is
the sha256 of its file. Everything here runs real commands (git, pip) in their own process
group with a deadline, and nothing is left running when one fails or hangs.
"""

from __future__ import annotations

import glob
import hashlib
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from pydantic import Field, field_validator

from pytest_predeploy.core import commands, template
from pytest_predeploy.core.errors import StepError
from pytest_predeploy.core.fields import StrictModel
from pytest_predeploy.core.git import GIT_TIMEOUT, GitResult, git_argv, git_environment, run_git
from pytest_predeploy.core.nesting import json_loads
from pytest_predeploy.core.template import TemplateError

SourceKind = Literal["git", "folder", "dist", "working_tree"]
#: Placeholders of the folder and dist templates.
TEMPLATE_PLACEHOLDERS = frozenset({"service", "release", "version"})
#: Build leftovers that are neither copied into a release nor part of its digest.
IGNORED_PARTS = frozenset({"__pycache__", ".git"})
#: Where a ``dist`` release's virtual environment lives inside the release folder.
VENV = "venv"
#: A dirty release is named ``<tag>+dirty.<this many hex digits of its digest>``.
SHORT_DIGEST = 12
#: How many changed files a message names before saying "and N more".
_NAMED_FILES = 5
#: pip options whose value is a file or folder the install reads: their contents are inputs of a release.
PIP_FILE_OPTIONS = frozenset({"-r", "--requirement", "-c", "--constraint", "-f", "--find-links"})
_PIP_TIMEOUT = 300.0


class ReleaseSourceError(StepError):
    """A release could not be resolved or built; the message says which release, why and what to do."""


class ReleaseSourceConfig(StrictModel):
    """Where the local staging target takes each release's code from."""

    kind: Literal["auto", "git", "folder", "dist", "working_tree"] = Field(
        "auto",
        description="'git': the tag of the git repository (git archive of the service's source folder at that tag). 'folder': a folder per release (see folder). 'dist': a wheel or sdist per release (see dist), installed into the release's own virtualenv. 'working_tree': the service's source folder as it is now. 'auto': git when the project is a git repository and the tag exists, else working_tree.",
    )
    repository: str = Field(
        ".", description="The git repository the git and working_tree kinds read (relative to the config file's folder); any folder inside it will do."
    )
    folder: str = Field(
        "dist/{service}/{release}",
        description="Kind folder: the release's folder, relative to the config file's folder. Placeholders: {service}, {release}, {version} (the release without a leading 'v').",
    )
    dist: str = Field(
        "dist/{service}-{version}*.whl",
        description="Kind dist: the distribution file (wheel or sdist), relative to the config file's folder; a glob that must match exactly one file. Placeholders as for folder.",
    )
    pip_args: list[str] = Field(
        ["--no-deps", "--no-index"],
        description="Kind dist: extra arguments of 'pip install' into the release's virtualenv, run in the config file's folder (relative paths start there). Placeholders as for folder, so each release can carry its own lock: e.g. [--no-index, --find-links, wheels, --constraint, 'locks/{release}.txt']. The files and folders named after -r, -c and --find-links are inputs of the release: a change to one rebuilds it.",
    )
    system_site_packages: bool = Field(False, description="Kind dist: give the release's virtualenv access to the packages of the interpreter running pytest.")
    allow_dirty: bool = Field(
        False,
        description="Kind working_tree in a git repository: when the source folder differs from the tag (uncommitted or untracked files), deploy it as '<tag>+dirty.<digest>' instead of refusing. Never deploys changed code under the tag's own name.",
    )

    @field_validator("pip_args")
    @classmethod
    def _pip_placeholders(cls, args: list[str]) -> list[str]:
        for arg in args:
            template.check(arg, TEMPLATE_PLACEHOLDERS, f"pip_args item {arg!r}")
        return args

    @field_validator("folder", "dist")
    @classmethod
    def _known_placeholders(cls, pattern: str) -> str:
        names = template.check(pattern, TEMPLATE_PLACEHOLDERS, f"template {pattern!r}")
        if not names & {"release", "version"}:
            raise ValueError(f"template {pattern!r} names the same file for every release; put {{release}} or {{version}} in it")
        return pattern


class ReleaseIdentity(StrictModel):
    """What a built release is: recorded in its manifest and in the evidence."""

    kind: SourceKind = Field(description="Where the code came from: git, folder, dist or working_tree.")
    release: str = Field(description="The release tag that was asked for.")
    deployed_as: str = Field(description="The name it is deployed under: the tag, or '<tag>+dirty.<digest>' for a working tree that differs from the tag.")
    ref: str | None = Field(description="The git ref (tag or commit), folder or distribution file it was built from, relative to the project where possible.")
    commit: str | None = Field(
        description="The git commit of that ref (kind git), or the HEAD commit of the repository holding the folder or working tree; None outside git."
    )
    digest: str = Field(description="sha256 over the relative paths and contents of the release's files; for kind dist, the sha256 of the distribution file.")
    dirty: bool | None = Field(
        description="Whether the project's working tree had changes (uncommitted or untracked files) under the release's source; None when that cannot be told (not a git repository)."
    )
    changed: list[str] = Field(default_factory=list, description="Up to a few of the changed files, relative to the repository.")
    python: str | None = Field(None, description="The interpreter of the release's own virtualenv, relative to the release folder (kind dist).")
    pip_args: list[str] = Field(default_factory=list, description="Kind dist: the pip_args it was installed with, placeholders filled in.")
    inputs: dict[str, str] = Field(
        default_factory=dict,
        description="Kind dist: sha256 of each file or folder pip_args name (requirements, constraints, --find-links), by the path as written.",
    )
    installed: list[str] = Field(
        default_factory=list,
        description="Kind dist: every distribution installed in the release's virtualenv as 'name==version', sorted (what pip freeze lists).",
    )
    image: str | None = Field(
        None, description="The container image the kube target built for the release, as '<name>:<tag>@sha256:<digest>'; none on the local target."
    )

    def describe(self) -> str:
        """One line a reviewer can read: 'v1.2 from git tag v1.2 (commit 1a2b3c4d5e6f, digest 0f1e2d3c4b5a)'."""
        what = {"git": "git", "folder": "folder", "dist": "distribution", "working_tree": "working tree"}[self.kind]
        parts = [f"commit {self.commit[:12]}"] if self.commit else []
        parts.append(f"digest {self.digest[:SHORT_DIGEST]}")
        if self.installed:
            parts.append(f"{len(self.installed)} distributions installed")
        if self.image:
            parts.append(f"image {self.image}")
        if self.dirty:
            parts.append("working tree DIRTY")
        name = self.deployed_as if self.deployed_as == self.release else f"{self.deployed_as} (NOT the tag {self.release}: built from uncommitted changes)"
        return f"{name} from {what} {self.ref or '(no ref)'} ({', '.join(parts)})"


@dataclass(frozen=True)
class ResolvedRelease:
    """A release tag resolved to its source, before it is built."""

    identity_without_digest: dict[str, object]
    kind: SourceKind
    path: Path  # the folder, the distribution file, or the git repository's top level
    tree: str | None = None  # kind git: '<commit>:<path>' to archive
    digest: str | None = None  # known before the build for folder, dist and working_tree
    pip_args: list[str] = field(default_factory=list)  # kind dist, filled in
    inputs: dict[str, str] = field(default_factory=dict)  # kind dist: what pip_args name, by sha256
    cwd: Path | None = None  # kind dist: where pip runs (the config's folder)

    def built_as(self, identity: ReleaseIdentity) -> bool:
        """Whether ``identity`` was built from exactly this: the same code and, for kind dist,
        the same pip_args naming files of the same content."""
        return self.digest is not None and identity.digest == self.digest and identity.pip_args == self.pip_args and identity.inputs == self.inputs


def changed_inputs(old: ReleaseIdentity, new: ReleaseIdentity) -> list[str]:
    """What differs between two builds of one release besides its code: 'pip_args', the inputs
    whose content changed, and 'installed' when the same inputs installed something else."""
    changed = ["pip_args"] if old.pip_args != new.pip_args else []
    changed += sorted(name for name in old.inputs.keys() | new.inputs.keys() if old.inputs.get(name) != new.inputs.get(name))
    return changed or (["installed"] if old.installed != new.installed else [])


# --- digests -----------------------------------------------------------------------------------


def _ignored(rel: Path) -> bool:
    return bool(IGNORED_PARTS.intersection(rel.parts)) or rel.suffix == ".pyc"


def tree_digest(folder: Path) -> tuple[str, dict[str, str]]:
    """sha256 of a folder (relative paths and contents) and of each file, skipping build leftovers."""
    files: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not _ignored(rel):
            files[rel.as_posix()] = file_digest(path)
    whole = hashlib.sha256("".join(f"{name}\0{digest}\n" for name, digest in files.items()).encode()).hexdigest()
    return whole, files


def file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            sha.update(block)
    return sha.hexdigest()


def dirty_name(release: str, digest: str) -> str:
    return f"{release}+dirty.{digest[:SHORT_DIGEST]}"


# --- running git and pip -------------------------------------------------------------------------


def _run(argv: list[str], cwd: Path, timeout: float, what: str) -> commands.Finished:
    """Run a command in its own process group; on its deadline the whole group is stopped (TimedOut)."""
    try:
        return commands.run(argv, cwd=cwd, timeout=timeout, env=git_environment())
    except OSError as exc:
        raise ReleaseSourceError(f"{what}: cannot run {argv[0]} ({exc.strerror})") from None


def _git(repo: Path, *args: str) -> GitResult:
    result = run_git(repo, *args)
    if result.returncode is None:
        raise ReleaseSourceError(result.problem)
    return result


def git_toplevel(folder: Path) -> Path | None:
    """The top level of the git repository holding ``folder``, or None (no repository, no git)."""
    if not folder.is_dir() or shutil.which("git") is None:
        return None
    result = _git(folder, "rev-parse", "--show-toplevel")
    return Path(result.stdout.strip()).resolve() if result.returncode == 0 else None


def git_commit(repo: Path, ref: str) -> str | None:
    """The commit ``ref`` names (a tag, a branch, a sha), or None when there is none."""
    if ref.startswith("-"):
        return None
    result = _git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    return result.stdout.strip() if result.returncode == 0 else None


def changed_files(repo: Path, path: str, ref: str) -> list[str]:
    """Files under ``path`` whose working-tree content differs from ``ref`` (modified, staged,
    deleted, or untracked and not ignored), relative to the repository."""
    spec = path or "."
    diff = _git(repo, "diff", "--name-only", "-z", "--no-renames", ref, "--", spec)
    untracked = _git(repo, "ls-files", "--others", "--exclude-standard", "-z", "--", spec)
    for result in (diff, untracked):
        if result.returncode != 0:
            raise ReleaseSourceError(f"cannot tell whether {repo / spec} differs from {ref}: git says {result.stderr.strip() or 'nothing'}")
    names = {name for name in (diff.stdout + untracked.stdout).split("\0") if name}
    return sorted(name for name in names if not _ignored(Path(name)))


def _relative(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _name_files(files: list[str]) -> str:
    shown = ", ".join(files[:_NAMED_FILES])
    return shown + (f" and {len(files) - _NAMED_FILES} more" if len(files) > _NAMED_FILES else "")


# --- resolving a tag ----------------------------------------------------------------------------


def expand(pattern: str, service: str, release: str, field: str) -> str:
    """A release source's path template filled in for ``release`` of ``service``."""
    version = release[1:] if release[:1] in ("v", "V") and release[1:2].isdigit() else release
    try:
        return template.fill(pattern, {"service": service, "release": release, "version": version}, field)
    except TemplateError as exc:
        raise ReleaseSourceError(f"{service}: {exc}") from None


def resolve(config: ReleaseSourceConfig, base_dir: Path, service: str, source: Path | None, release: str) -> ResolvedRelease:
    """Resolve ``release`` of ``service`` to its source; ReleaseSourceError when there is none.

    ``base_dir`` is the config file's folder; ``source`` the service's source folder (needed by
    the git and working_tree kinds)."""
    kind = config.kind
    repo = git_toplevel((base_dir / config.repository).resolve()) if kind in ("auto", "git", "working_tree") else None
    if kind == "auto":
        kind = "git" if repo is not None and source is not None and git_commit(repo, release) is not None else "working_tree"
    if kind == "folder":
        return _resolve_folder(config, base_dir, service, release)
    if kind == "dist":
        return _resolve_dist(config, base_dir, service, release)
    if source is None:
        raise ReleaseSourceError(
            f"{service}: services[{service}].source is not set: the {kind} release source builds each release from that folder; set it, or use staging.releases.kind: folder or dist"
        )
    if kind == "git":
        return _resolve_git(config, base_dir, repo, service, source, release)
    return _resolve_working_tree(config, repo, service, source, release)


def _resolve_git(config: ReleaseSourceConfig, base_dir: Path, repo: Path | None, service: str, source: Path, release: str) -> ResolvedRelease:
    if repo is None:
        raise ReleaseSourceError(
            f"{service}: staging.releases.kind is git but {base_dir / config.repository} is not in a git repository (or git is not installed); use kind folder, dist or working_tree"
        )
    commit = git_commit(repo, release)
    if commit is None:
        raise ReleaseSourceError(
            f"{service}: release {release} is not a tag or commit of the git repository {repo}; tag the release's commit (git tag {release} COMMIT) and run again"
        )
    path = _relative(source.resolve(), repo)
    if path.startswith("/"):
        raise ReleaseSourceError(f"{service}: its source {source} is outside the git repository {repo}; move it inside, or set staging.releases.repository")
    tree = f"{commit}:{'' if path == '.' else path}"
    if _git(repo, "cat-file", "-e", tree).returncode != 0:
        raise ReleaseSourceError(f"{service}: {path} does not exist in {release} (commit {commit[:12]}); that release has no code for this service")
    changed = changed_files(repo, "" if path == "." else path, "HEAD") if git_commit(repo, "HEAD") else []
    identity = {
        "kind": "git",
        "release": release,
        "deployed_as": release,
        "ref": release,
        "commit": commit,
        "dirty": bool(changed),
        "changed": changed[:_NAMED_FILES],
    }
    return ResolvedRelease(identity, "git", repo, tree=tree)


def _resolve_working_tree(config: ReleaseSourceConfig, repo: Path | None, service: str, source: Path, release: str) -> ResolvedRelease:
    if not source.is_dir():
        raise ReleaseSourceError(f"{service}: its source folder {source} does not exist")
    digest, _ = tree_digest(source)
    identity: dict[str, object] = {"kind": "working_tree", "release": release, "deployed_as": release, "ref": str(source), "commit": None, "dirty": None}
    path = _relative(source.resolve(), repo) if repo is not None else "/"
    if repo is None or path.startswith("/"):
        return ResolvedRelease(identity, "working_tree", source, digest=digest)
    ref = release if git_commit(repo, release) is not None else "HEAD"
    commit = git_commit(repo, ref)
    changed = changed_files(repo, "" if path == "." else path, ref) if commit else sorted(_relative(p, repo) for p in source.rglob("*") if p.is_file())
    identity.update(ref=ref, commit=commit, dirty=bool(changed), changed=changed[:_NAMED_FILES])
    if changed:
        against = f"the tag {release}" if ref == release else ("HEAD" if commit else "any commit (the repository has none)")
        if not config.allow_dirty:
            raise ReleaseSourceError(
                f"{service}: {path} differs from {against} ({len(changed)} file(s): {_name_files(changed)}), so it is not release {release}. "
                f"Commit the changes and tag that commit (git commit; git tag {release}) to build {release} from the tag, "
                f"or set staging.releases.allow_dirty: true to deploy them as {dirty_name(release, digest)}"
            )
        identity["deployed_as"] = dirty_name(release, digest)
    return ResolvedRelease(identity, "working_tree", source, digest=digest)


def _resolve_folder(config: ReleaseSourceConfig, base_dir: Path, service: str, release: str) -> ResolvedRelease:
    folder = (base_dir / expand(config.folder, service, release, "staging.releases.folder")).resolve()
    if not folder.is_dir():
        raise ReleaseSourceError(
            f"{service}: no folder for release {release}: {folder} does not exist (staging.releases.folder: {config.folder!r}); put the release's code there, or choose another staging.releases.kind"
        )
    digest, _ = tree_digest(folder)
    identity: dict[str, object] = {
        "kind": "folder",
        "release": release,
        "deployed_as": release,
        "ref": _relative(folder, base_dir.resolve()),
        "commit": None,
        "dirty": None,
    }
    repo = git_toplevel(folder)
    if repo is not None and (commit := git_commit(repo, "HEAD")) is not None:
        changed = changed_files(repo, _relative(folder, repo), "HEAD")
        identity.update(commit=commit, dirty=bool(changed), changed=changed[:_NAMED_FILES])
    return ResolvedRelease(identity, "folder", folder, digest=digest)


def _resolve_dist(config: ReleaseSourceConfig, base_dir: Path, service: str, release: str) -> ResolvedRelease:
    pattern = str(base_dir / expand(config.dist, service, release, "staging.releases.dist"))
    matches = sorted(glob.glob(pattern))
    if len(matches) != 1:
        found = "nothing" if not matches else f"{len(matches)} files ({', '.join(Path(m).name for m in matches[:_NAMED_FILES])})"
        raise ReleaseSourceError(
            f"{service}: release {release} needs exactly one distribution matching {pattern}, found {found}; build it (python -m build) or fix staging.releases.dist"
        )
    path = Path(matches[0]).resolve()
    if not (path.name.endswith(".whl") or path.name.endswith(".tar.gz") or path.name.endswith(".zip")):
        raise ReleaseSourceError(f"{service}: {path} is not a wheel or an sdist (.whl, .tar.gz or .zip); fix staging.releases.dist")
    identity: dict[str, object] = {
        "kind": "dist",
        "release": release,
        "deployed_as": release,
        "ref": _relative(path, base_dir.resolve()),
        "commit": None,
        "dirty": None,
        "python": f"{VENV}/bin/python",
    }
    pip_args = [expand(arg, service, release, "staging.releases.pip_args") for arg in config.pip_args]
    inputs = _pip_inputs(pip_args, base_dir, f"{service}: release {release}")
    identity.update(pip_args=pip_args, inputs=inputs)
    return ResolvedRelease(identity, "dist", path, digest=file_digest(path), pip_args=pip_args, inputs=inputs, cwd=base_dir)


def _pip_inputs(args: list[str], base_dir: Path, who: str) -> dict[str, str]:
    """sha256 of each file or folder (its wheels and sdists) named after -r, -c or --find-links;
    ReleaseSourceError when one does not exist. URLs are left to pip."""
    inputs: dict[str, str] = {}
    for index, arg in enumerate(args):
        option, equals, value = arg.partition("=")
        if not equals:
            option, value = arg, args[index + 1] if index + 1 < len(args) else ""
        if option not in PIP_FILE_OPTIONS or not value or "://" in value:
            continue
        path = base_dir / value
        if path.is_file():
            inputs[value] = file_digest(path)
        elif path.is_dir():
            inputs[value] = tree_digest(path)[0]
        else:
            raise ReleaseSourceError(
                f"{who}: staging.releases.pip_args names {path}, which does not exist (paths are relative to {base_dir}); create it or fix pip_args"
            )
    return inputs


# --- building a release folder --------------------------------------------------------------------


def materialise(resolved: ResolvedRelease, config: ReleaseSourceConfig, dest: Path) -> tuple[ReleaseIdentity, dict[str, str]]:
    """Put the release's code into ``dest`` (a new, empty folder the caller owns and removes on
    failure). Returns the release's identity and the sha256 of each file it holds."""
    dest.mkdir(parents=True, exist_ok=True)
    installed: list[str] = []
    if resolved.kind == "git":
        assert resolved.tree is not None
        _extract_git_tree(resolved.path, resolved.tree, dest)
    elif resolved.kind == "dist":
        installed = _install_dist(resolved, config, dest)
    else:
        shutil.copytree(resolved.path, dest, ignore=shutil.ignore_patterns(*IGNORED_PARTS, "*.pyc"), symlinks=True, dirs_exist_ok=True)
    if resolved.kind == "dist":
        assert resolved.digest is not None
        digest, files = resolved.digest, {resolved.path.name: resolved.digest}
    else:
        digest, files = tree_digest(dest)
        # A folder edited between resolving and copying would be recorded under a digest that
        # is not what was copied: the digest is taken from the copy, and the name follows it.
    identity = dict(resolved.identity_without_digest, digest=digest)
    if installed:
        identity["installed"] = installed
    if identity["deployed_as"] != identity["release"]:
        identity["deployed_as"] = dirty_name(str(identity["release"]), digest)
    return ReleaseIdentity.model_validate(identity), files


def _extract_git_tree(repo: Path, tree: str, dest: Path) -> None:
    argv = git_argv(repo, "archive", "--format=tar", tree)
    try:
        with commands.running(argv, cwd=repo, env=git_environment()) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            try:
                with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
                    # A commit is input like any other: absolute paths, '..', device files and links
                    # leaving the folder are refused (the 'data' filter; Python < 3.11.4 lacks it).
                    if hasattr(tarfile, "data_filter"):
                        archive.extractall(dest, filter="data")
                    else:
                        for member in archive:
                            _check_member(member)
                            archive.extract(member, dest)
            except (tarfile.TarError, OSError) as exc:
                raise ReleaseSourceError(f"git archive {tree} in {repo} gave an archive that cannot be extracted ({exc})") from None
            err = _read_all(proc.stderr)
            status = proc.wait(timeout=GIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ReleaseSourceError(f"git archive {tree} in {repo} did not finish within {GIT_TIMEOUT:g}s") from None
    if status != 0:
        raise ReleaseSourceError(f"git archive {tree} in {repo} failed (exit {status}): {err.strip() or 'no message'}")


def _check_member(member: tarfile.TarInfo) -> None:
    parts = Path(member.name).parts
    link = Path(member.linkname).parts if member.issym() or member.islnk() else ()
    if (
        member.name.startswith("/")
        or ".." in parts
        or not (member.isfile() or member.isdir() or link)
        or (link and (member.linkname.startswith("/") or ".." in link))
    ):
        raise tarfile.TarError(f"refusing {member.name!r}: outside the release folder, or not a file, folder or inner link")


def _read_all(stream: IO[bytes]) -> str:
    return stream.read().decode("utf-8", "replace")


def _install_dist(resolved: ResolvedRelease, config: ReleaseSourceConfig, dest: Path) -> list[str]:
    """Install the distribution into ``dest``'s own virtualenv with the release's pip_args (pip runs
    in the config's folder); returns what the virtualenv then holds, as 'name==version'."""
    dist, venv, cwd = resolved.path, dest / VENV, resolved.cwd or dest
    create = [sys.executable, "-m", "venv", "--without-pip", *(["--system-site-packages"] if config.system_site_packages else []), str(venv)]
    # pip of the interpreter running pytest installs into the new virtualenv (--python): no pip
    # is bootstrapped into each release, which would cost seconds per build.
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    install = [*pip, "install", "--no-input", "--disable-pip-version-check", "--quiet", *resolved.pip_args, str(dist)]
    # --local: with system_site_packages, only what was installed for the release.
    listing = [*pip, "list", "--local", "--format=json", "--disable-pip-version-check"]
    steps = (
        (create, "creating the release's virtualenv", dest),
        (install, f"installing {dist.name} into it", cwd),
        (listing, "listing what was installed", dest),
    )
    for argv, what, where in steps:
        try:
            result = _run(argv, where, _PIP_TIMEOUT, what)
        except commands.TimedOut:
            raise ReleaseSourceError(f"{what} did not finish within {_PIP_TIMEOUT:g}s") from None
        if result.returncode != 0:
            last = (result.err.strip().splitlines() or ["no message"])[-1]
            raise ReleaseSourceError(f"{what} failed (exit {result.returncode}): {last}; check the distribution and staging.releases.pip_args")
    try:
        return sorted(f"{entry['name']}=={entry['version']}" for entry in json_loads(result.out))
    except (ValueError, TypeError, KeyError):
        raise ReleaseSourceError(f"pip list gave an answer that is not its JSON listing: {result.out[:200]!r}") from None


# --- what a rehearsal rehearsed -------------------------------------------------------------------


class RehearsedReleases(StrictModel):
    """Per service: the candidate and the previous release that staging ran, as built."""

    service: str = Field(description="Service name.")
    candidate: ReleaseIdentity | None = Field(
        description="The candidate as built on staging; none when the target keeps no record of it (a service not on the local staging target)."
    )
    previous: ReleaseIdentity | None = Field(description="The previous release as built on staging; none as for candidate.")

    def problem(self) -> str | None:
        """Why a rollback between these two would prove nothing, or None."""
        return same_code_problem(self.service, self.previous, self.candidate)


def same_code_problem(service: str, previous: ReleaseIdentity | None, candidate: ReleaseIdentity | None) -> str | None:
    """The rollback rehearsal's refusal when previous and candidate are the same code: rolling
    back between them would only change the name /version reports."""
    if previous is None or candidate is None or previous.digest != candidate.digest:
        return None
    return (
        f"{service}: nothing would be rolled back: {previous.release} and {candidate.release} are the same code "
        f"(digest {candidate.digest[:SHORT_DIGEST]}: {previous.describe()}; {candidate.describe()}); "
        f"build {previous.release} from its own code (staging.releases: a git tag, a release folder or a distribution)"
    )
