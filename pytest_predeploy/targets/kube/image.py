"""Release images built on this machine, without any registry.

The base image is assembled from the interpreter running the plugin: its binary, its standard
library, the shared libraries ``ldd`` names for them, and the pure-Python distributions the
services import (``staging.kube.distributions``, with their dependencies). It is written as a
tar with sorted entries, owner root and time 0, built once ``FROM scratch`` with ``podman build
--timestamp 0`` and tagged ``predeploy-base:<content hash>``: an unchanged interpreter is built
only once, and the same files always make the same image.

A release's image is that base plus the release folder at ``/release`` (its working directory),
built with ``podman build --pull=never --timestamp 0``: the same base and the same release folder
give the same image, and a tag already holding them (by the labels below) is reused without a
build. The image's digest (``<image>:<release>@sha256:...``) is the release's identity in the
reports.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import stat
import sys
import sysconfig
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pytest_predeploy.core.errors import StepError
from pytest_predeploy.targets.kube.engine import Engine, EngineError, held_too_long
from pytest_predeploy.targets.runlock import exclusive

BASE_REPOSITORY = "localhost/predeploy-base"
#: Where the base image keeps the services' distributions (on PYTHONPATH).
SITE = "/opt/predeploy/site-packages"
RELEASE_DIR = "/release"
LABEL_DIGEST = "io.predeploy.release-digest"
LABEL_BASE = "io.predeploy.base"
LABEL_SERVICE = "io.predeploy.service"
LABEL_RELEASE = "io.predeploy.release"
#: Parts of the standard library no service needs in a container (tests, GUI, installers).
_STDLIB_SKIPPED = frozenset({"site-packages", "dist-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "__phello__"})
#: The test suites of stdlib packages (unittest/test, ctypes/test, idlelib/idle_test ...).
_TEST_FOLDERS = frozenset({"test", "tests", "idle_test"})
_DYNLOAD_SKIPPED = re.compile(r"^(_test|_tkinter|_ctypes_test|_xx|xx)")
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*)(;.*)?$")
_LDD_TIMEOUT = 60.0

Say = Callable[[str], None]


class ImageError(StepError):
    """An image could not be built; the message says which and why."""


class ImageSettingError(ImageError):
    """``staging.kube.distributions`` names something the base image cannot hold."""


@dataclass(frozen=True)
class BuiltImage:
    """A release image as the engine holds it."""

    ref: str  # '<image>:<release>'
    digest: str  # 'sha256:...'
    reused: bool

    @property
    def pinned(self) -> str:
        """``<image>:<release>@sha256:...``: what runs, beyond doubt."""
        return f"{self.ref}@{self.digest}"


# --- the base image's files ------------------------------------------------------------------------


def _interpreter() -> Path:
    return Path(os.path.realpath(sys.executable))


def _stdlib() -> Path:
    return Path(sysconfig.get_paths()["stdlib"]).resolve()


def _stdlib_files(stdlib: Path) -> Iterable[Path]:
    for folder, dirs, files in os.walk(stdlib):
        rel = Path(folder).relative_to(stdlib)
        dirs[:] = sorted(
            d for d in dirs if not (rel == Path(".") and d in _STDLIB_SKIPPED) and d not in _TEST_FOLDERS and d != "__pycache__" and not d.startswith("config-")
        )
        if rel.parts and rel.parts[0] == "lib-dynload":
            files = [name for name in files if not _DYNLOAD_SKIPPED.match(name)]
        for name in sorted(files):
            if not name.endswith((".pyc", ".pyo")):
                yield Path(folder) / name


def _shared_libraries(binaries: list[Path]) -> list[Path]:
    """The shared libraries (and the dynamic loader) ``ldd`` names for ``binaries``."""
    result = Engine("ldd", _LDD_TIMEOUT, install_hint=" (the base image needs ldd: apt-get install libc-bin)").run(*map(str, binaries), check=False)
    found: set[Path] = set()
    for line in result.stdout.splitlines():
        parts = line.split()
        if "=>" in parts:
            at = parts.index("=>")
            if len(parts) > at + 1 and parts[at + 1].startswith("/"):
                found.add(Path(parts[at + 1]))
            elif len(parts) > at + 1 and parts[at + 1] == "not":
                raise ImageError(f"the interpreter's library {parts[0]} is not found on this machine (ldd: {line.strip()}); the base image cannot be assembled")
        elif parts and parts[0].startswith("/") and not parts[0].endswith(":"):
            found.add(Path(parts[0]))
    return sorted(found)


def _requirements(dist: importlib.metadata.Distribution) -> list[str]:
    """The distributions ``dist`` needs unconditionally (requirements without an extra)."""
    names = []
    for line in dist.requires or []:
        match = _REQUIREMENT.match(line)
        if match and not (match.group(4) and "extra" in match.group(4)):
            names.append(match.group(1))
    return names


def _distribution_files(names: list[str]) -> list[tuple[Path, str]]:
    """(host file, path under SITE) of each distribution in ``names`` and its dependencies."""
    seen: set[str] = set()
    files: list[tuple[Path, str]] = []
    queue = list(names)
    while queue:
        name = queue.pop(0)
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise ImageSettingError(
                f"staging.kube.distributions: {name} is not installed where pytest runs ({sys.executable}); install it there (pip install {name}) or remove it"
            ) from None
        for entry in dist.files or []:
            rel = Path(str(entry))
            if ".." in rel.parts or "__pycache__" in rel.parts or rel.suffix == ".pyc":
                continue  # scripts in bin/ and caches: not part of the importable package
            if rel.suffix in (".so", ".pyd"):
                raise ImageSettingError(
                    f"staging.kube.distributions: {name} is not pure Python ({rel}); the base image holds only pure-Python distributions: vendor a wheel into the release instead"
                )
            host = Path(str(dist.locate_file(entry)))
            if host.is_file():
                files.append((host, rel.as_posix()))
        queue.extend(_requirements(dist))
    return sorted(files, key=lambda item: item[1])


@dataclass(frozen=True)
class _Entry:
    name: str  # path inside the image, without the leading '/'
    kind: str  # 'dir', 'file', 'link'
    source: Path | None = None
    target: str = ""


class _Rootfs:
    """The base image's entries, each parent folder (and symlinked parent, as on the host) first."""

    def __init__(self) -> None:
        self.entries: dict[str, _Entry] = {}

    def add_host_path(self, path: Path, at: str | None = None) -> None:
        """Add ``path`` at the same place (or at ``at``). Each symlink on the way is added as a
        link and the walk goes on from its target, so no entry's name passes through a link
        (extracting ``lib/x`` after a link ``lib -> usr/lib`` would fail)."""
        if at is not None:
            name = at.lstrip("/")
            self.add_dir(name.rsplit("/", 1)[0])
            self.entries.setdefault(name, _Entry(name, "file", source=path))
            return
        current = Path("/")
        parts = path.parts[1:]
        for index, part in enumerate(parts):
            step = current / part
            last = index == len(parts) - 1
            name = str(step).lstrip("/")
            if step.is_symlink():
                self.entries.setdefault(name, _Entry(name, "link", target=os.readlink(step)))
                real = Path(os.path.realpath(step))
                if last:
                    self.add_host_path(real)
                else:
                    self.add_dir(str(real).lstrip("/"))
                current = real
            elif last and not step.is_dir():
                self.entries.setdefault(name, _Entry(name, "file", source=step))
            else:
                self.add_dir(name)
                current = step

    def add_dir(self, name: str) -> None:
        parts = name.split("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            self.entries.setdefault(prefix, _Entry(prefix, "dir"))

    def add_link(self, name: str, target: str) -> None:
        self.add_dir(name.rsplit("/", 1)[0])
        self.entries.setdefault(name, _Entry(name, "link", target=target))

    def ordered(self) -> list[_Entry]:
        return [self.entries[name] for name in sorted(self.entries)]


def _base_rootfs(distributions: list[str]) -> _Rootfs:
    interpreter, stdlib = _interpreter(), _stdlib()
    rootfs = _Rootfs()
    rootfs.add_host_path(interpreter)
    files = list(_stdlib_files(stdlib))
    for path in files:
        rootfs.add_host_path(path)
    binaries = [interpreter, *(path for path in files if path.suffix == ".so")]
    for library in _shared_libraries(binaries):
        rootfs.add_host_path(library)
    for host, rel in _distribution_files(distributions):
        rootfs.add_host_path(host, at=f"{SITE}/{rel}")
    for name in ("python3", "python"):
        if f"usr/local/bin/{name}" != str(interpreter).lstrip("/"):
            rootfs.add_link(f"usr/local/bin/{name}", str(interpreter))
    rootfs.add_dir("tmp")  # a service may write there
    return rootfs


def _content_hash(rootfs: _Rootfs) -> str:
    """sha256 over every entry's name, kind, mode and content (or link target): not the mtime,
    so reinstalling the same distribution does not make a new base."""
    sha = hashlib.sha256()
    for entry in rootfs.ordered():
        sha.update(f"{entry.name}\0{entry.kind}\0{entry.target}\0".encode())
        if entry.source is not None:
            info = entry.source.stat()
            sha.update(f"{stat.S_IMODE(info.st_mode):o}\0".encode())
            with open(entry.source, "rb") as handle:
                for block in iter(lambda: handle.read(1024 * 1024), b""):
                    sha.update(block)
    return sha.hexdigest()


def _write_tar(rootfs: _Rootfs, dest: Path) -> None:
    # Entries sorted, owner root, every entry at time 0 (no bytecode is shipped, so no cache
    # compares source times): the same files make the same tar.
    # the interpreter compares with its bytecode caches. Same files -> the same tar.
    with tarfile.open(dest, "w", format=tarfile.GNU_FORMAT) as archive:
        for entry in rootfs.ordered():
            if entry.kind == "file" and entry.source is not None:
                info = archive.gettarinfo(str(entry.source), arcname=entry.name)
                info.mtime = 0
            else:
                info = tarfile.TarInfo(entry.name)
                info.type = tarfile.DIRTYPE if entry.kind == "dir" else tarfile.SYMTYPE
                info.linkname = entry.target
                info.mode = 0o1777 if entry.name == "tmp" else 0o755
                info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if entry.kind == "file" and entry.source is not None:
                with open(entry.source, "rb") as handle:
                    archive.addfile(info, handle)
            else:
                archive.addfile(info)


# --- building -------------------------------------------------------------------------------------


class ImageBuilder:
    """Builds the base image and release images with one podman."""

    def __init__(self, podman: Engine, distributions: list[str], say: Say, scratch: Path) -> None:
        self.podman, self.distributions, self.say, self.scratch = podman, distributions, say, scratch

    def exists(self, ref: str) -> bool:
        return self.podman.run("image", "exists", ref, check=False).returncode == 0

    def inspect(self, ref: str) -> tuple[str, dict[str, str]] | None:
        """Digest and labels of a local image, or None when there is none."""
        found = self.podman.run("image", "inspect", "--format", "{{.Digest}} {{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}", ref, check=False)
        if found.returncode != 0 or not found.stdout.strip():
            return None
        digest, _, labels = found.stdout.strip().partition(" ")
        return digest, dict(item.split("=", 1) for item in labels.split(";") if "=" in item)

    def base_image(self) -> str:
        """The base image for the interpreter running now (imported when not there yet)."""
        started = time.monotonic()
        rootfs = _base_rootfs(self.distributions)
        ref = f"{BASE_REPOSITORY}:{_content_hash(rootfs)[:16]}"
        if self.exists(ref):
            return ref
        self.scratch.mkdir(parents=True, exist_ok=True)
        with (
            exclusive(self.scratch / ".base.lock", self.podman.timeout, held_too_long(self.scratch / ".base.lock", self.podman.timeout)),
            tempfile.TemporaryDirectory(dir=self.scratch, prefix=".base-") as tmp,
        ):
            if self.exists(ref):  # another deploy built it while this one waited for the lock
                return ref
            folder = Path(tmp)
            _write_tar(rootfs, folder / "rootfs.tar")
            # Built FROM scratch rather than 'podman import'-ed: an import records the time it
            # ran, so the same files imported again made another base, and every release image
            # on it another digest. 'podman build --timestamp 0' gives the same image each time.
            (folder / "Containerfile").write_text(
                "FROM scratch\nADD rootfs.tar /\n"
                f"ENV PATH=/usr/local/bin:/usr/bin:/bin:{_interpreter().parent} PYTHONPATH={SITE} PYTHONUNBUFFERED=1 LANG=C.UTF-8\n"
                f"WORKDIR {RELEASE_DIR}\n"
            )
            self.podman.run("build", "--quiet", "--pull=never", "--timestamp", "0", "--layers=false", "-t", ref, str(folder))
            size = (folder / "rootfs.tar").stat().st_size
        self.say(f"built base image {ref} ({len(rootfs.entries)} entries, {size / 1e6:.0f} MB) in {time.monotonic() - started:.2f}s")
        return ref

    def release_image(self, ref: str, folder: Path, digest: str, labels: dict[str, str]) -> BuiltImage:
        """``ref`` ('<image>:<release>') = the base image + ``folder`` at /release; reused when
        the tag already holds this base and release digest."""
        base = self.base_image()
        wanted = {LABEL_DIGEST: digest, LABEL_BASE: base, **labels}
        found = self.inspect(ref)
        if found is not None and all(found[1].get(key) == value for key, value in wanted.items()):
            return BuiltImage(ref, found[0], reused=True)
        started = time.monotonic()
        self.scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.scratch, prefix=".containerfile-") as tmp:
            containerfile = Path(tmp) / "Containerfile"
            label_lines = "".join(f'LABEL {key}="{value}"\n' for key, value in sorted(wanted.items()))
            containerfile.write_text(f"FROM {base}\n{label_lines}COPY . {RELEASE_DIR}/\nWORKDIR {RELEASE_DIR}\n")
            try:
                self.podman.run("build", "--quiet", "--pull=never", "--timestamp", "0", "--layers=false", "-f", str(containerfile), "-t", ref, str(folder))
            except EngineError as exc:
                raise ImageError(f"building image {ref} from {folder} failed: {exc}") from None
        if found is not None:
            # The tag moved to the new image; the one it named is left without a name. Remove
            # such images of ours (a pod still running one keeps it: prune skips images in use).
            self.podman.run("image", "prune", "--force", "--filter", f"label={LABEL_SERVICE}", check=False)
        found = self.inspect(ref)
        if found is None:
            raise ImageError(f"podman build reported success but image {ref} is not there")
        self.say(f"built image {ref}@{found[0]} in {time.monotonic() - started:.2f}s")
        return BuiltImage(ref, found[0], reused=False)
