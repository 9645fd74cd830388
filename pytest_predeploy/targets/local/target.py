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
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from pytest_predeploy.targets.base import EXIT_FAILED, TargetError, check_rollback, check_tag
from pytest_predeploy.targets.local.build import build_release
from pytest_predeploy.targets.local.layout import (
    BLUE_GREEN,
    CHECKPOINTS,
    MAIN_SLOT,
    MANIFEST,
    ProcessRecord,
    ReleaseManifest,
    ServiceLayout,
    checkpoint,
    point,
)
from pytest_predeploy.targets.local.slots import start_slot, stop_slot
from pytest_predeploy.targets.runlock import exclusive

__all__ = ["BLUE_GREEN", "CHECKPOINTS", "MAIN_SLOT", "MANIFEST", "ProcessRecord", "ReleaseManifest", "ServiceTarget", "point"]

_LOCK_TIMEOUT = 120.0


class ServiceTarget(ServiceLayout):
    """One service in one environment of the local staging target: the commands that change it
    (building is in :mod:`.build`, a slot's process in :mod:`.slots`, reading the state in
    :mod:`.layout`)."""

    # --- changing the state ------------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        lock = self.dir / ".lock"
        busy = f"{self.service.name}: another deploy or rollback has held {lock} for {_LOCK_TIMEOUT:.0f}s; try again when it ends"
        with exclusive(lock, _LOCK_TIMEOUT, lambda: TargetError(EXIT_FAILED, busy)):
            checkpoint("locked")
            self.clean_leftovers()
            yield

    def build(self, tag: str) -> ReleaseManifest:
        """Build the release folder of ``tag`` (see :func:`.build.build_release`)."""
        return build_release(self, tag)

    def stop_slot(self, slot: str) -> str | None:
        return stop_slot(self, slot)

    def start(self, slot: str, tag: str) -> ProcessRecord:
        """Start the release in ``slot`` and wait for its health check; TargetError when it fails."""
        return start_slot(self, slot, tag)

    def switch(self, target: str) -> None:
        """Point ``current`` at ``target`` (relative to the service folder), atomically."""
        point(self.current, target, pause=True)
        checkpoint("switched")

    def prune(self) -> None:
        """Delete the oldest releases beyond ``keep_releases``; never one that is current or in a slot."""
        tags = self.release_tags()
        in_use = self.releases_in_use() | {self.slot_release(slot) for slot in BLUE_GREEN}
        removable = [tag for tag in tags if tag not in in_use]
        for tag in removable[: max(0, len(tags) - self.settings.keep_releases)]:
            trash = self.releases / f".trash-{tag}-{uuid.uuid4().hex[:8]}"
            os.replace(self.releases / tag, trash)
            shutil.rmtree(trash, ignore_errors=True)
            self.say(f"removed old release {tag} (keeping {self.settings.keep_releases})")

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
        if record is None or record.release != tag or not self.healthy_now(record):
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
        if record is not None and record.release == tag and self.healthy_now(record):
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
        """Stop every slot's process; one line for each that ran ('<service> <release> (<slot>, pid N)'). After trying every slot,
        TargetError naming what is still running, if anything is."""
        stopped, problems = [], []
        for record in self.records():
            try:
                line = self.stop_slot(record.slot)
            except TargetError as exc:
                problems.append(str(exc))
                continue
            if line is not None:
                stopped.append(f"{self.service.name} {line}")
        if problems:
            raise TargetError(EXIT_FAILED, "; ".join(problems))
        return stopped
