"""The kube staging target on podman: each release is an image built here and run from the
service's Kubernetes manifests with ``podman kube play --network host``, one pod set per release.

What runs is read from the engine: every pod carries the labels ``io.predeploy.root`` (which
staging folder it belongs to), ``env``, ``service``, ``release``, ``slot``, ``port`` and
``podset``. A service serves from the pod set that ``active.json`` names, and only while the
engine shows that pod running with those labels. The folder keeps, per environment and service::

    <root>/<env>/<service>/kube/
      releases/<name>.json   what each release is: identity, image and digest (newest last)
      active.json            the pod set that serves
      .lock                  one deploy/rollback of a service at a time

Deploy: build (or reuse) the image, play the new pod set (restart: after taking the old one
down; blue_green: on the idle slot's port, port or port + 1), wait for its health check (and
``version_path`` when set), make it active, then take the other pod sets down. A pod set that crashes or misses
its deadline is removed, with the last lines of its log in the message. Rollback plays the
previous release's recorded image again; it never rebuilds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pytest_predeploy.core.artifacts import write_text_atomic
from pytest_predeploy.targets.base import EXIT_FAILED, TargetError, check_rollback, check_tag
from pytest_predeploy.targets.kube import podsets
from pytest_predeploy.targets.kube.build import build_release
from pytest_predeploy.targets.kube.engine import held_too_long
from pytest_predeploy.targets.kube.state import ActivePodSet, KubeRelease, pod_label
from pytest_predeploy.targets.kube.status import KubeServiceStatus
from pytest_predeploy.targets.runlock import exclusive

MAIN_SLOT = "main"
_LOCK_TIMEOUT = 300.0


class KubeService(KubeServiceStatus):
    """One service in one environment of the kube target (engine podman): deploy, rollback and
    stop (reading its state is :class:`.status.KubeServiceStatus`, building :mod:`.build`,
    running a pod set :mod:`.podsets`)."""

    def build(self, tag: str) -> KubeRelease:
        """The release's image, built from its release source; see :func:`.build.build_release`."""
        return build_release(self, tag)

    def prepare(self, record: KubeRelease, slot: str) -> tuple[str, int, Path]:
        """Render ``record``'s manifests for ``slot``; see :func:`.podsets.prepare`."""
        return podsets.prepare(self, record, slot)

    def play(self, record: KubeRelease, slot: str, podset: str, port: int, rendered: Path) -> ActivePodSet:
        """Play the rendered manifests and wait for health; see :func:`.podsets.play`."""
        return podsets.play(self, record, slot, podset, port, rendered)

    # --- changing the state ------------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with exclusive(self.dir / ".lock", _LOCK_TIMEOUT, held_too_long(self.dir / ".lock", _LOCK_TIMEOUT)):
            yield

    def _serving_release(self, name: str) -> str | None:
        found = self.serving()
        if found is None or found[0].release != name or not self._healthy_now(found[0].port):
            return None
        return f"{found[0].slot} slot, pod {found[1].get('Name')}, port {found[0].port}"

    def _activate(self, record: KubeRelease) -> None:
        found = self.serving()
        old = found[0] if found else None
        if self.service.strategy == "blue_green":
            slot = "green" if old is not None and old.slot == "blue" else "blue"
            podset, port, rendered = self.prepare(record, slot)
            self.remove_pods(lambda pod: pod_label(pod, "slot") == slot)  # a leftover in the idle slot
        else:
            slot = MAIN_SLOT
            podset, port, rendered = self.prepare(record, slot)
            removed = self.remove_pods(lambda pod: True)
            if removed:
                self.say(f"took down {', '.join(str(pod.get('Name')) for pod in removed)}")
            (self.dir / "active.json").unlink(missing_ok=True)
        active = self.play(record, slot, podset, port, rendered)
        write_text_atomic(self.dir / "active.json", active.model_dump_json(indent=2) + "\n")
        removed = self.remove_pods(lambda pod: pod_label(pod, "podset") != active.podset)
        if removed:
            self.say(f"took down {', '.join(str(pod.get('Name')) for pod in removed)}")

    def prune(self) -> None:
        """Forget the oldest releases beyond ``keep_releases`` and untag their images; never the one that serves."""
        names = self.release_names()
        serving = self.current_release()
        removable = [name for name in names if name != serving]
        for name in removable[: max(0, len(names) - self.keep)]:
            record = self.record(name)
            if record is not None:
                # Never forced: another environment of the project may run the same image, and it
                # keeps running (the tag stays until nothing uses it).
                self.podman.run("rmi", record.image.split("@")[0], check=False)
            (self.records_dir / f"{name}.json").unlink(missing_ok=True)
            self.say(f"removed old release {name} (keeping {self.keep})")

    def deploy(self, tag: str) -> None:
        check_tag(tag)
        started = time.monotonic()
        with self.locked():
            record = self.build(tag)
            serving = self._serving_release(record.release)
            if serving is not None:
                self.say(f"release {record.release} already runs and is healthy ({serving}); nothing to do")
                return
            self._activate(record)
            self.prune()
        self.say(f"deployed {record.release} in {time.monotonic() - started:.2f}s")

    def rollback(self, tag: str) -> None:
        check_tag(tag)
        started = time.monotonic()
        with self.locked():
            names = self.release_names()
            name = self.folder_for(tag) or tag
            check_rollback(self.service.name, self.env, name, names, self._serving_release(name) if name in names else None)
            record = self.record(name)
            assert record is not None
            missing = self._image_missing(record)
            if missing is not None:
                raise TargetError(EXIT_FAILED, f"{self.service.name}: {missing}; nothing was changed. Deploy {name} again to rebuild it")
            self.say(f"rolling back from {self.current_release() or 'nothing'} to {name} ({record.identity.image or record.image})")
            self._activate(record)
        self.say(f"rolled back to {name} in {time.monotonic() - started:.2f}s")

    def _image_missing(self, record: KubeRelease) -> str | None:
        """Why the recorded image of ``record`` cannot be run again, or None."""
        found = self.images.inspect(record.image.split("@")[0])
        if found is None or not record.image.endswith(f"@{found[0]}"):
            return f"the recorded image of {record.release} ({record.image}) is no longer in podman's store"
        return None

    def stop_all(self) -> list[str]:
        removed = self.remove_pods(lambda pod: True)
        (self.dir / "active.json").unlink(missing_ok=True)
        return [f"{self.service.name} {pod_label(pod, 'release')} (pod {pod.get('Name')})" for pod in removed]
