"""The local staging target: Capistrano-style releases of each service on this machine.

Layout, per environment and service (``<root>`` is ``staging.root``, default ``.staging/``)::

    <root>/<env>/<service>/
      releases/<tag>/            a complete release: the service's source + release-manifest.json
      releases/.build-<tag>-*    a build in progress (renamed into place only once complete)
      current -> releases/<tag>  restart strategy; blue_green: current -> slots/<blue|green>
      slots/<blue|green> -> ../releases/<tag>
      run/<slot>.json            process record (pid file): pid, start time, release, port
      run/<slot>.port            the port the service bound, written by the service
      logs/<slot>.log            the service's output
      .lock                      one deploy/rollback of a service at a time

Invariants: a release folder exists under its tag only once complete (built in a
temporary folder, manifest written last, then renamed); ``current`` and the slot links are only
ever replaced with ``os.replace`` of a fresh temporary symlink, so a reader never finds them
missing and a SIGKILL at any point leaves them on a complete release. The next run removes what a
killed run left behind and carries on from the state it finds.

Fault-injection seam for tests: ``PREDEPLOY_STAGING_PAUSE=<checkpoint>`` makes the command print
``[staging] paused at <checkpoint>`` and wait there (to be killed); see ``CHECKPOINTS``.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import Field, ValidationError

from pytest_predeploy.core import template
from pytest_predeploy.core.artifacts import write_text_atomic
from pytest_predeploy.core.fields import StrictModel, UtcDatetime, utcnow
from pytest_predeploy.core.template import TemplateError
from pytest_predeploy.targets import processes
from pytest_predeploy.targets.base import EXIT_FAILED, EXIT_USAGE, Say, TargetError, check_environment, check_rollback, check_tag, free_port, print_line
from pytest_predeploy.targets.listeners import listener_is_in_group
from pytest_predeploy.targets.probe import local_get_json, other_service
from pytest_predeploy.targets.releases import ReleaseIdentity, ReleaseSourceError, changed_inputs, materialise, resolve
from pytest_predeploy.targets.runlock import exclusive
from pytest_predeploy.targets.settings import LocalStagingConfig, ServiceConfig

MANIFEST = "release-manifest.json"
MAIN_SLOT = "main"
BLUE_GREEN = ("blue", "green")
PAUSE_VARIABLE = "PREDEPLOY_STAGING_PAUSE"
#: Where a deploy or rollback can be paused (and killed) by tests, in the order they happen.
CHECKPOINTS = ("locked", "built", "stopped", "linking", "switched", "started", "healthy")
_LOCK_TIMEOUT = 120.0


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
    _fsync_dir(link.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ServiceTarget:
    """One service in one environment of the local staging target."""

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
            record.port = self._read_port(slot)
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
        return record.release if record is not None and self._foreign_listener(record) is None else None

    def _read_port(self, slot: str) -> int | None:
        try:
            return int((self.run / f"{slot}.port").read_text().strip())
        except (OSError, ValueError):
            return self._fixed_port(slot) or None

    def _fixed_port(self, slot: str) -> int:
        if self.service.port and slot == "green":
            return self.service.port + 1
        return self.service.port

    def _healthy_now(self, record: ProcessRecord) -> bool:
        if record.port is None:
            return False
        answer = local_get_json(record.port, self.service.health_path)
        return answer.status == 200 and other_service(answer, self.service.name) is None

    # --- changing the state ------------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        lock = self.dir / ".lock"
        busy = f"{self.service.name}: another deploy or rollback has held {lock} for {_LOCK_TIMEOUT:.0f}s; try again when it ends"
        with exclusive(lock, _LOCK_TIMEOUT, lambda: TargetError(EXIT_FAILED, busy)):
            checkpoint("locked")
            self._clean_leftovers()
            yield

    def _clean_leftovers(self) -> None:
        """Remove what a killed run left: half-built releases and temporary symlinks."""
        for folder in (self.dir, self.dir / "slots", self.releases):
            if not folder.is_dir():
                continue
            for entry in folder.iterdir():
                if entry.name.startswith(".build-") or entry.name.startswith(".trash-"):
                    shutil.rmtree(entry, ignore_errors=True)
                elif ".tmp-" in entry.name and entry.is_symlink():
                    entry.unlink(missing_ok=True)

    def build(self, tag: str) -> ReleaseManifest:
        """Build the release folder of ``tag`` from its release source (reused when it holds the
        same code). The folder is named after what it is: the tag, or ``<tag>+dirty.<digest>``."""
        try:
            resolved = resolve(self.settings.releases, self.base_dir, self.service.name, self.service.source, tag)
        except ReleaseSourceError as exc:
            raise TargetError(EXIT_USAGE, f"{exc}; nothing was changed") from None
        fault = self.service.inject.get(tag)
        name = str(resolved.identity_without_digest["deployed_as"])
        existing = self.manifest(name)
        if existing is not None and resolved.built_as(existing.identity) and existing.fault == fault:
            self.say(f"release {name} already built on {existing.built_at:%Y-%m-%dT%H:%M:%SZ} ({existing.identity.describe()}); reusing it")
            return existing
        started = time.monotonic()
        self.releases.mkdir(parents=True, exist_ok=True)
        tmp = self.releases / f".build-{name}-{uuid.uuid4().hex[:8]}"
        try:
            identity, files = materialise(resolved, self.settings.releases, tmp)
        except ReleaseSourceError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise TargetError(EXIT_USAGE, f"{self.service.name}: {exc}; nothing was changed") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        name = identity.deployed_as
        existing = self.manifest(name)
        if existing is not None and existing.identity.digest == identity.digest and not changed_inputs(existing.identity, identity) and existing.fault == fault:
            shutil.rmtree(tmp, ignore_errors=True)
            self.say(f"release {name} already built on {existing.built_at:%Y-%m-%dT%H:%M:%SZ} ({existing.identity.describe()}); reusing it")
            return existing
        replaced = os.path.lexists(self.releases / name)  # also a folder without a readable manifest (an older format)
        if replaced:
            self._check_rebuild(name, existing, identity, fault, tmp)
        manifest = ReleaseManifest(service=self.service.name, release=name, built_at=utcnow(), identity=identity, files=files, fault=fault)
        # The manifest is written last: a release folder without one is incomplete.
        write_text_atomic(tmp / MANIFEST, manifest.model_dump_json(indent=2) + "\n")
        checkpoint("built")
        if replaced:
            os.replace(self.releases / name, self.releases / f".trash-{name}-{uuid.uuid4().hex[:8]}")
        os.replace(tmp, self.releases / name)
        _fsync_dir(self.releases)
        self._clean_leftovers()
        how = "rebuilt" if replaced else "built"
        changed = ""
        if existing is not None and existing.identity.digest != identity.digest:
            changed = f" (its code changed since {existing.built_at:%Y-%m-%dT%H:%M:%SZ}: digest {existing.identity.digest[:12]} -> {identity.digest[:12]})"
        elif existing is not None and (inputs := changed_inputs(existing.identity, identity)):
            changed = f" (its dependencies' inputs changed ({', '.join(inputs)}) since {existing.built_at:%Y-%m-%dT%H:%M:%SZ})"
        self.say(
            f"{how} release {identity.describe()}{changed}, {len(files)} files, in {time.monotonic() - started:.2f}s"
            + (f" [injected fault: {fault}]" if fault else "")
        )
        if identity.deployed_as != identity.release:
            self.say(f"WARNING: the working tree differs from {identity.release}: deployed as {identity.deployed_as}, NOT as {identity.release}")
        return manifest

    def _check_rebuild(self, name: str, existing: ReleaseManifest | None, identity: ReleaseIdentity, fault: str | None, tmp: Path) -> None:
        """A release folder is replaced only while no live process runs it: a running service
        keeps its files, and the evidence must not name code it does not run."""
        live = [record for record in self.records() if record.release == name and processes.is_running(record.pid, record.start_ticks)]
        if not live:
            return
        shutil.rmtree(tmp, ignore_errors=True)
        runs = ", ".join(f"{record.slot} slot, pid {record.pid}" for record in live)
        if existing is None:
            what = "its folder has no readable release manifest (built by an older version, or damaged)"
        elif existing.identity.digest != identity.digest:
            what = f"its code changed (digest {existing.identity.digest[:12]} built {existing.built_at:%Y-%m-%dT%H:%M:%SZ}, now {identity.digest[:12]})"
        elif inputs := changed_inputs(existing.identity, identity):
            what = f"its dependencies' inputs changed ({', '.join(inputs)}) since it was built {existing.built_at:%Y-%m-%dT%H:%M:%SZ}"
        else:
            what = f"its injected fault changed ({existing.fault or 'none'} -> {fault or 'none'})"
        raise TargetError(
            EXIT_FAILED,
            f"{self.service.name}: release {name} is running ({runs}) and {what}; nothing was changed. "
            f"A release names one code: deploy the new code under a new release tag, or stop what runs "
            f"(python -m pytest_predeploy.targets.local stop --env {self.env} --service {self.service.name}) and deploy {name} again to rebuild it",
        )

    def _releases_in_use(self) -> set[str]:
        used = {record.release for record in self.records()}
        current = self.current_release()
        return used | ({current} if current else set())

    def stop_slot(self, slot: str) -> None:
        record = self.record(slot)
        if record is not None:
            started = time.monotonic()
            how = processes.stop(record.pid, record.start_ticks, self.settings.stop_timeout.total_seconds())
            if how != "not running":
                self.say(f"{how} {record.release} ({slot}, pid {record.pid}) in {time.monotonic() - started:.2f}s")
        for suffix in (".json", ".port"):
            (self.run / f"{slot}{suffix}").unlink(missing_ok=True)

    def start(self, slot: str, tag: str) -> ProcessRecord:
        """Start the release in ``slot`` and wait for its health check; TargetError when it fails."""
        self.run.mkdir(parents=True, exist_ok=True)
        port_file = self.run / f"{slot}.port"
        port_file.unlink(missing_ok=True)
        manifest = self.manifest(tag)
        python = str(self.releases / tag / manifest.identity.python) if manifest is not None and manifest.identity.python else sys.executable
        port = self._fixed_port(slot)
        if port == 0 and "{port_file}" not in self.service.command:
            # The service takes its port as {port} and says nothing back: choose a free one for
            # it and record it where a service writing its own port would have.
            port = free_port()
            write_text_atomic(port_file, str(port))
        fields = {"python": python, "service": self.service.name, "release": tag, "port": str(port), "port_file": str(port_file)}
        try:
            argv = template.fill_command(self.service.command, fields, f"services[{self.service.name}].command")
        except TemplateError as exc:
            raise TargetError(EXIT_USAGE, f"{exc}; nothing was started") from None
        env = {name: template.fill_known(value, fields) for name, value in self.service.env.items()}
        log = self.dir / "logs" / f"{slot}.log"
        offset = log.stat().st_size if log.exists() else 0
        cwd = self.releases / tag
        started = time.monotonic()
        pid = processes.spawn(argv, cwd=cwd, log=log, env=processes.service_environment(env))
        record = ProcessRecord(pid=pid, start_ticks=processes.start_ticks(pid), release=tag, slot=slot, started_at=utcnow(), log=str(log))
        write_text_atomic(self.run / f"{slot}.json", record.model_dump_json(indent=2))
        self.say(f"started {tag} ({slot}, pid {pid}), log {log}")
        checkpoint("started")
        problem = self._wait_healthy(record, slot)
        if problem is not None:
            self.stop_slot(slot)  # first: its log writer has then written the service's last words
            tail = _log_tail(log, offset)
            raise TargetError(EXIT_FAILED, f"{self.service.name}: release {tag} {problem}" + (f"; last lines of {log}:\n{tail}" if tail else ""))
        write_text_atomic(self.run / f"{slot}.json", record.model_dump_json(indent=2))
        self.say(f"healthy on port {record.port} after {time.monotonic() - started:.2f}s")
        checkpoint("healthy")
        return record

    def _wait_healthy(self, record: ProcessRecord, slot: str) -> str | None:
        """Fills in ``record.port``; returns why the process is not healthy by its deadline, or None."""
        timeout = self.service.health_timeout.total_seconds()
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        # Poll often at first (most services are up in a fraction of a second), then every 0.1s:
        # a probe costs well under a millisecond of CPU on either side (a plain socket, not
        # urllib), so ten services warming up at once spend ~2% of a core on it, and a service
        # is seen healthy at most 0.1s after it is.
        pause = 0.02
        while True:
            if not processes.is_running(record.pid, record.start_ticks):
                status = processes.exit_status(record.pid)
                return "crashed at start" + (f" (exit status {status})" if status is not None else "")
            if record.port is None:
                record.port = self._read_port(slot)
            if record.port is not None:
                answer = local_get_json(record.port, self.service.health_path, timeout=1.0)
                answering = other_service(answer, self.service.name)
                if answering is not None:
                    # Our process cannot have bound the port: someone else answers on it.
                    return f"is not what answers on port {record.port}: service {answering!r} does (do two services share a port?)"
                if answer.status == 200:
                    return self._foreign_listener(record)
                last = answer.describe()
            if time.monotonic() >= deadline:
                return f"missed its health deadline of {timeout:g}s (last answer: {last})"
            time.sleep(pause)
            pause = min(pause * 1.5, 0.1)

    def _foreign_listener(self, record: ProcessRecord) -> str | None:
        """Why what answers on the record's port is not the process started (None: it is, or
        this system cannot tell): another program holds the port while ours keeps running."""
        assert record.port is not None
        if listener_is_in_group(record.port, record.pid) is not False:
            return None
        return (
            f"is not what answers on port {record.port}: another program listens there, not the process the target started "
            f"(pid {record.pid}); free the port, or give the service another one (port: 0 picks a free one)"
        )

    def switch(self, target: str) -> None:
        """Point ``current`` at ``target`` (relative to the service folder), atomically."""
        point(self.current, target, pause=True)
        checkpoint("switched")

    def prune(self) -> None:
        """Delete the oldest releases beyond ``keep_releases``; never one that is current or in a slot."""
        tags = self.release_tags()
        in_use = self._releases_in_use() | {self._slot_release(slot) for slot in BLUE_GREEN}
        removable = [tag for tag in tags if tag not in in_use]
        for tag in removable[: max(0, len(tags) - self.settings.keep_releases)]:
            trash = self.releases / f".trash-{tag}-{uuid.uuid4().hex[:8]}"
            os.replace(self.releases / tag, trash)
            shutil.rmtree(trash, ignore_errors=True)
            self.say(f"removed old release {tag} (keeping {self.settings.keep_releases})")

    def _slot_release(self, slot: str) -> str | None:
        link = self.dir / "slots" / slot
        return Path(os.path.realpath(link)).name if os.path.lexists(link) else None

    # --- the two commands --------------------------------------------------------------------

    def deploy(self, tag: str) -> None:
        """Build and start ``tag``; raises TargetError when it fails."""
        check_tag(tag)
        started = time.monotonic()
        with self.locked():
            name = self.build(tag).release
            serving = self._serving(name)
            if serving is not None:
                self.say(f"release {name} already runs and is healthy ({serving}); nothing to do")
                return
            if self.service.strategy == "blue_green":
                self._activate_blue_green(name)
            else:
                self._activate_restart(name)
            self.prune()
        self.say(f"deployed {name} in {time.monotonic() - started:.2f}s")

    def rollback(self, tag: str) -> None:
        """Return to the earlier release ``tag``; raises TargetError (with its exit status) when it
        is refused (unknown, single release, already current) or fails."""
        check_tag(tag)
        started = time.monotonic()
        with self.locked():
            tags = self.release_tags()
            tag = self.folder_for(tag) or tag  # a dirty build of the tag, when that is what was deployed
            check_rollback(self.service.name, self.env, tag, tags, self._serving(tag) if tag in tags else None)
            self.say(f"rolling back from {self.current_release() or 'nothing'} to {tag}")
            if self.service.strategy == "blue_green":
                self._activate_blue_green(tag)
            else:
                self._activate_restart(tag)
        self.say(f"rolled back to {tag} in {time.monotonic() - started:.2f}s")

    def _serving(self, tag: str) -> str | None:
        """Where ``tag`` serves as the current release, healthy, or None."""
        slot = self.active_slot()
        record = self.running(slot) if slot and self.current_release() == tag else None
        if record is None or record.release != tag or not self._healthy_now(record):
            return None
        return f"{slot} slot, pid {record.pid}, port {record.port}"

    def _activate_restart(self, tag: str) -> None:
        """Restart strategy: stop the old process, switch current, start the new one."""
        self.stop_slot(MAIN_SLOT)
        checkpoint("stopped")
        self.switch(f"releases/{tag}")
        self.say(f"current -> releases/{tag}")
        self.start(MAIN_SLOT, tag)
        for slot in BLUE_GREEN:  # left over from a change of strategy
            self.stop_slot(slot)

    def _activate_blue_green(self, tag: str) -> None:
        """Blue/green: make the idle slot run ``tag`` (reusing it when it already does), then switch."""
        active = self.active_slot()
        idle = "green" if active == "blue" else "blue"
        record = self.running(idle)
        if record is not None and record.release == tag and self._healthy_now(record):
            self.say(f"{idle} slot already runs {tag}, healthy; switching without a restart")
        else:
            self.stop_slot(idle)
            checkpoint("stopped")
            (self.dir / "slots").mkdir(exist_ok=True)
            point(self.dir / "slots" / idle, f"../releases/{tag}")
            self.start(idle, tag)
        self.switch(f"slots/{idle}")
        self.say(f"current -> slots/{idle} ({tag}); {active or 'no'} slot kept for switchback")
        self.stop_slot(MAIN_SLOT)  # left over from a change of strategy

    def stop_all(self) -> list[str]:
        stopped = []
        for record in self.records():
            if processes.is_running(record.pid, record.start_ticks):
                stopped.append(f"{self.service.name} {record.release} ({record.slot}, pid {record.pid})")
            self.stop_slot(record.slot)
        return stopped


def _log_tail(log: Path, offset: int, lines: int = 15) -> str:
    """The last ``lines`` lines the service wrote since ``offset``, each indented so that the
    caller's reader sees them as the continuation of one message (read from the end: a crash
    loop can leave a large log)."""
    try:
        with open(log, "rb") as handle:
            end = handle.seek(0, 2)
            handle.seek(max(offset if offset <= end else 0, end - 64 * 1024))  # past the end: the log was rotated
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:] if line.strip())
