"""Where one service's release folders, links, process records and logs are, and what state
they are in; the layout and its invariants are described in :mod:`.target`."""

from __future__ import annotations

import os
import shutil
import sys
import time
import uuid
from pathlib import Path

from pydantic import Field, ValidationError

from pytest_predeploy.core.fields import StrictModel, UtcDatetime
from pytest_predeploy.targets import processes
from pytest_predeploy.targets.base import Say, check_environment, print_line
from pytest_predeploy.targets.listeners import listener_is_in_group
from pytest_predeploy.targets.probe import local_get_json, other_service
from pytest_predeploy.targets.releases import ReleaseIdentity
from pytest_predeploy.targets.settings import LocalStagingConfig, ServiceConfig

MANIFEST = "release-manifest.json"
MAIN_SLOT = "main"
BLUE_GREEN = ("blue", "green")
PAUSE_VARIABLE = "PREDEPLOY_STAGING_PAUSE"
#: Where a deploy or rollback can be paused (and killed) by tests, in the order they happen.
CHECKPOINTS = ("locked", "built", "stopped", "linking", "switched", "started", "healthy")


class ReleaseManifest(StrictModel):
    """``release-manifest.json``: what a release folder holds and how it was built."""

    service: str = Field(description="The service this release belongs to.")
    release: str = Field(
        description="The name it is deployed under (its folder): the release tag, or '<tag>+dirty.<digest>' for changed code deployed with staging.releases.allow_dirty."
    )
    built_at: UtcDatetime = Field(description="When the release folder was built (UTC).")
    identity: ReleaseIdentity = Field(description="What the release is: source kind, ref, commit, content digest, dirty flag.")
    files: dict[str, str] = Field(description="sha256 of every file of the release, by relative path (for kind dist: of the distribution file).")
    fault: str | None = Field(None, description="Fault injected into this release for rehearsal tests ('crash', 'unhealthy'), if any.")


class ProcessRecord(StrictModel):
    """``run/<slot>.json``: the process running a release in one slot."""

    pid: int = Field(description="Process id, also its process group id.")
    start_ticks: int | None = Field(description="Start time from /proc, to tell the process from a later one reusing the pid.")
    token: str | None = Field(
        None, description="PREDEPLOY_SERVICE_TOKEN in its environment: finds what it started outside its process group (none in records of older versions)."
    )
    release: str = Field(description="The release tag it runs.")
    slot: str = Field(description="'main' (restart strategy), 'blue' or 'green'.")
    started_at: UtcDatetime = Field(description="When it was started (UTC).")
    port: int | None = Field(None, description="The port it listens on, once known.")
    log: str = Field(description="Its log file.")


def checkpoint(name: str) -> None:
    if os.environ.get(PAUSE_VARIABLE) == name:
        print(f"[staging] paused at {name}", file=sys.stderr, flush=True)
        while True:
            time.sleep(60)


def point(link: Path, target: str, pause: bool = False) -> None:
    """Make ``link`` a symlink to ``target`` atomically: a temporary symlink renamed over it."""
    tmp = link.with_name(f".{link.name}.tmp-{uuid.uuid4().hex[:12]}")
    os.symlink(target, tmp)
    if pause:
        checkpoint("linking")
    os.replace(tmp, link)
    fsync_dir(link.parent)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ServiceLayout:
    """One service's folder in one environment: its paths, and reading what they hold."""

    def __init__(self, settings: LocalStagingConfig, root: Path, env: str, service: ServiceConfig, say: Say = print_line, base_dir: Path | None = None) -> None:
        check_environment(env)
        self.settings, self.env, self.service = settings, env, service
        self.base_dir = (base_dir or Path.cwd()).absolute()  # release source templates are relative to it
        self.dir = root.absolute() / env / service.name
        self.releases = self.dir / "releases"
        self.current = self.dir / "current"
        self.run = self.dir / "run"
        self._say = say

    def say(self, line: str) -> None:
        self._say(f"{self.service.name}: {line}")

    # --- reading the state -------------------------------------------------------------------

    def release_tags(self) -> list[str]:
        """Complete releases, oldest build first."""
        built: list[tuple[float, str]] = []
        if self.releases.is_dir():
            for folder in self.releases.iterdir():
                manifest = self.manifest(folder.name) if not folder.name.startswith(".") else None
                if manifest is not None:
                    built.append((manifest.built_at.timestamp(), folder.name))
        return [tag for _, tag in sorted(built)]

    def manifest(self, tag: str) -> ReleaseManifest | None:
        try:
            return ReleaseManifest.model_validate_json((self.releases / tag / MANIFEST).read_bytes())
        except (OSError, ValidationError):
            return None

    def folder_for(self, tag: str) -> str | None:
        """The release folder deployed for ``tag``: the tag itself, else its newest dirty build."""
        if self.manifest(tag) is not None:
            return tag
        dirty = [(m.built_at, name) for name in self.release_tags() if name.startswith(f"{tag}+dirty.") and (m := self.manifest(name)) is not None]
        return max(dirty)[1] if dirty else None

    def identity(self, tag: str) -> ReleaseIdentity | None:
        """What was built and deployed for ``tag`` here (None: never built)."""
        folder = self.folder_for(tag)
        manifest = self.manifest(folder) if folder else None
        return manifest.identity if manifest is not None else None

    def current_release(self) -> str | None:
        """The tag ``current`` resolves to, or None when nothing was deployed yet."""
        if not os.path.lexists(self.current):
            return None
        resolved = Path(os.path.realpath(self.current))
        return resolved.name if resolved.parent == Path(os.path.realpath(self.releases)) else None

    def active_slot(self) -> str | None:
        if not os.path.lexists(self.current):
            return None
        link = os.readlink(self.current)
        return link.split("/", 1)[1] if link.startswith("slots/") else MAIN_SLOT

    def record(self, slot: str) -> ProcessRecord | None:
        try:
            return ProcessRecord.model_validate_json((self.run / f"{slot}.json").read_bytes())
        except (OSError, ValidationError):
            return None

    def records(self) -> list[ProcessRecord]:
        return [record for slot in (MAIN_SLOT, *BLUE_GREEN) if (record := self.record(slot)) is not None]

    def running(self, slot: str) -> ProcessRecord | None:
        """The record of the live process in ``slot``, with its port filled in when known."""
        record = self.record(slot)
        if record is None or not processes.is_running(record.pid, record.start_ticks):
            return None
        if record.port is None:
            record.port = self.read_port(slot)
        return record

    def serving_record(self) -> ProcessRecord | None:
        """The record of the live process this target started for ``current``, in the active slot
        (checked by pid and start time, so a later process reusing the pid is not taken for it)."""
        slot = self.active_slot()
        record = self.running(slot) if slot else None
        if record is None or record.port is None or record.release != self.current_release():
            return None
        return record

    def base_url(self) -> str | None:
        """URL of the process serving ``current``, or None when it is not running."""
        record = self.serving_record()
        return f"http://127.0.0.1:{record.port}" if record is not None else None

    def running_release(self) -> str | None:
        """The release the live process serving ``current`` was started from (its release folder),
        when that process (its group) is what listens on its port."""
        record = self.serving_record()
        return record.release if record is not None and self.foreign_listener(record) is None else None

    def read_port(self, slot: str) -> int | None:
        try:
            return int((self.run / f"{slot}.port").read_text().strip())
        except (OSError, ValueError):
            return self.fixed_port(slot) or None

    def fixed_port(self, slot: str) -> int:
        if self.service.port and slot == "green":
            return self.service.port + 1
        return self.service.port

    def healthy_now(self, record: ProcessRecord) -> bool:
        if record.port is None:
            return False
        answer = local_get_json(record.port, self.service.health_path)
        return answer.status == 200 and other_service(answer, self.service.name) is None

    # --- changing the state ------------------------------------------------------------------
    def foreign_listener(self, record: ProcessRecord) -> str | None:
        """Why what answers on the record's port is not the process started (None: it is, or
        this system cannot tell): another program holds the port while ours keeps running."""
        assert record.port is not None
        if listener_is_in_group(record.port, record.pid) is not False:
            return None
        return (
            f"is not what answers on port {record.port}: another program listens there, not the process the target started "
            f"(pid {record.pid}); free the port, or give the service another one (port: 0 picks a free one)"
        )

    def slot_release(self, slot: str) -> str | None:
        link = self.dir / "slots" / slot
        return Path(os.path.realpath(link)).name if os.path.lexists(link) else None

    def releases_in_use(self) -> set[str]:
        used = {record.release for record in self.records()}
        current = self.current_release()
        return used | ({current} if current else set())

    def clean_leftovers(self) -> None:
        """Remove what a killed run left: half-built releases and temporary symlinks."""
        for folder in (self.dir, self.dir / "slots", self.releases):
            if not folder.is_dir():
                continue
            for entry in folder.iterdir():
                if entry.name.startswith(".build-") or entry.name.startswith(".trash-"):
                    shutil.rmtree(entry, ignore_errors=True)
                elif ".tmp-" in entry.name and entry.is_symlink():
                    entry.unlink(missing_ok=True)
