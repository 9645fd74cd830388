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

import json
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pytest_predeploy.core.artifacts import write_text_atomic
from pytest_predeploy.core.fields import utcnow
from pytest_predeploy.targets.base import EXIT_FAILED, EXIT_USAGE, Say, TargetError, check_environment, check_rollback, check_tag, free_port, quiet
from pytest_predeploy.targets.kube.engine import EngineError, held_too_long
from pytest_predeploy.targets.kube.image import LABEL_RELEASE, LABEL_SERVICE, ImageBuilder, ImageError, ImageSettingError
from pytest_predeploy.targets.kube.manifests import LABEL_PREFIX, ManifestError, dump, label_value, render
from pytest_predeploy.targets.kube.state import ActivePodSet, KubeRelease, Pods, pod_label, podman_engine
from pytest_predeploy.targets.kube_settings import KubeConfig
from pytest_predeploy.targets.probe import local_get_json, other_service
from pytest_predeploy.targets.releases import ReleaseIdentity, ReleaseSourceConfig, ReleaseSourceError, materialise, resolve
from pytest_predeploy.targets.runlock import exclusive
from pytest_predeploy.targets.settings import ServiceConfig

MAIN_SLOT = "main"
_LOCK_TIMEOUT = 300.0
#: How often the health wait also asks the engine whether the container crashed (a podman
#: call costs ~0.1s of CPU; the HTTP probe in between costs almost nothing).
_ENGINE_POLL = 1.0
_LOG_LINES = 15


class KubeService:
    """One service in one environment of the kube target (engine podman)."""

    #: The service's state folder under ``<root>/<env>/<service>/``.
    STATE = "kube"

    def __init__(
        self,
        staging_root: Path,
        releases: ReleaseSourceConfig,
        kube: KubeConfig,
        stop_timeout: float,
        keep: int,
        env: str,
        service: ServiceConfig,
        base_dir: Path,
        project: str,
        say: Say = quiet,
    ) -> None:
        check_environment(env)
        self.releases_config, self.kube, self.stop_timeout, self.keep = releases, kube, stop_timeout, keep
        self.env, self.service, self.base_dir, self.project = env, service, base_dir.absolute(), project
        self.dir = staging_root.absolute() / env / service.name / self.STATE
        self.records_dir = self.dir / "releases"
        self.podman = podman_engine(kube)
        self.pods = Pods(self.podman, staging_root, env)
        self.images = ImageBuilder(self.podman, kube.distributions, self.say, staging_root.absolute() / ".kube-build")
        self._say = say

    def say(self, line: str) -> None:
        self._say(f"{self.service.name}: {line}")

    # --- reading the state -------------------------------------------------------------------

    def record(self, name: str) -> KubeRelease | None:
        try:
            return KubeRelease.model_validate_json((self.records_dir / f"{name}.json").read_bytes())
        except (OSError, ValidationError):
            return None

    def release_names(self) -> list[str]:
        """Recorded releases, oldest first."""
        found = []
        if self.records_dir.is_dir():
            for path in self.records_dir.glob("*.json"):
                record = self.record(path.stem)
                if record is not None:
                    found.append((record.built_at, record.release))
        return [name for _, name in sorted(found)]

    def folder_for(self, tag: str) -> str | None:
        """The release recorded for ``tag``: the tag itself, else its newest dirty build."""
        if self.record(tag) is not None:
            return tag
        dirty = [(r.built_at, name) for name in self.release_names() if name.startswith(f"{tag}+dirty.") and (r := self.record(name)) is not None]
        return max(dirty)[1] if dirty else None

    def identity(self, tag: str) -> ReleaseIdentity | None:
        name = self.folder_for(tag)
        record = self.record(name) if name else None
        return record.identity if record is not None else None

    def active(self) -> ActivePodSet | None:
        try:
            return ActivePodSet.model_validate_json((self.dir / "active.json").read_bytes())
        except (OSError, ValidationError):
            return None

    def serving(self) -> tuple[ActivePodSet, dict[str, Any]] | None:
        """The active pod set and its pod, when the engine shows it running with the labels
        active.json expects; None otherwise (nothing runs, or the state and the engine disagree)."""
        active = self.active()
        if active is None:
            return None
        for pod in self.pods.find(self.service.name):
            if (
                pod_label(pod, "podset") == active.podset
                and pod_label(pod, "release") == label_value(active.release)
                and pod_label(pod, "port") == str(active.port)
                and str(pod.get("Status", "")).lower() == "running"
            ):
                return active, pod
        return None

    def current_release(self) -> str | None:
        found = self.serving()
        return found[0].release if found else None

    def base_url(self) -> str | None:
        found = self.serving()
        return f"http://127.0.0.1:{found[0].port}" if found else None

    def _healthy_now(self, port: int) -> bool:
        answer = local_get_json(port, self.service.health_path)
        return answer.status == 200 and other_service(answer, self.service.name) is None

    # --- building -----------------------------------------------------------------------------

    def image_ref(self, name: str) -> str:
        repository = self.kube.image.format(service=self.service.name, env=self.env, project=self.project)
        return f"localhost/{repository}:{label_value(name)}"

    def build(self, tag: str) -> KubeRelease:
        """The release's image, built from its release source (reused when the recorded image
        holds the same code); recorded in releases/<name>.json."""
        try:
            resolved = resolve(self.releases_config, self.base_dir, self.service.name, self.service.source, tag)
        except ReleaseSourceError as exc:
            raise TargetError(EXIT_USAGE, f"{exc}; nothing was changed") from None
        fault = self.service.inject.get(tag)
        name = str(resolved.identity_without_digest["deployed_as"])
        existing = self.record(name)
        if existing is not None and resolved.built_as(existing.identity) and existing.fault == fault:
            found = self.images.inspect(existing.image.split("@")[0])
            if found is not None and existing.image.endswith(f"@{found[0]}"):
                self.say(f"release {name} already built ({existing.image}); reusing it")
                return existing
        self.dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.dir, prefix=".build-") as tmp:
            folder = Path(tmp) / "release"
            try:
                identity, _files = materialise(resolved, self.releases_config, folder)
            except ReleaseSourceError as exc:
                raise TargetError(EXIT_USAGE, f"{self.service.name}: {exc}; nothing was changed") from None
            name = identity.deployed_as
            # What the service reads at start (the demo service: its name, release and fault) and
            # the code's digest; no build time nor git commit (a later commit elsewhere in the
            # repository), so the same code always makes the same image.
            manifest = {"service": self.service.name, "release": name, "fault": fault, "digest": identity.digest}
            write_text_atomic(folder / "release-manifest.json", _json(manifest))
            labels = {LABEL_SERVICE: self.service.name, LABEL_RELEASE: label_value(name)}
            try:
                image = self.images.release_image(self.image_ref(name), folder, identity.digest + (f"+{fault}" if fault else ""), labels)
            except ImageSettingError as exc:
                raise TargetError(EXIT_USAGE, f"{self.service.name}: {exc}; nothing was changed") from None
            except (ImageError, EngineError) as exc:
                raise TargetError(EXIT_FAILED, f"{self.service.name}: {exc}") from None
        identity = identity.model_copy(update={"image": image.pinned})
        record = KubeRelease(service=self.service.name, release=name, built_at=utcnow(), identity=identity, image=image.pinned, fault=fault)
        previous = self.record(name)
        if previous is not None and previous.image == record.image:
            record = previous
        else:
            self.records_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.records_dir / f"{name}.json", record.model_dump_json(indent=2) + "\n")
        self.say(f"release {identity.describe()}" + (" (image reused)" if image.reused else ""))
        return record

    # --- running ------------------------------------------------------------------------------

    def manifests_path(self) -> Path:
        return self.base_dir / self.kube.manifests.format(service=self.service.name, env=self.env, project=self.project)

    def _port(self, slot: str) -> int:
        if self.service.port == 0:
            return free_port()
        return self.service.port + 1 if slot == "green" else self.service.port

    def prepare(self, record: KubeRelease, slot: str) -> tuple[str, int, Path]:
        """Render ``record``'s manifests for ``slot``: its pod set's name, its port and the file.
        Done before anything is taken down, so a manifest error changes nothing."""
        port = self._port(slot)
        # Pod names are global to the engine: the staging folder's label keeps two projects (or
        # two copies of one) that deploy the same env, service and release apart.
        readable = re.sub(r"[^a-z0-9-]+", "-", f"{self.env}-{self.service.name}-{slot}-{record.release}".lower())[:40].strip("-")
        podset = f"{readable}-{self.pods.root_label[:8]}"
        labels = {**self.pods.labels(self.service.name), f"{LABEL_PREFIX}release": label_value(record.release)}
        labels |= {f"{LABEL_PREFIX}slot": slot, f"{LABEL_PREFIX}port": str(port), f"{LABEL_PREFIX}podset": podset}
        fields = {"service": self.service.name, "release": record.release, "image": record.image, "port": str(port), "env": self.env, "namespace": self.env}
        try:
            documents = render(self.manifests_path(), fields, podset, labels, record.image, single_replica=True)
        except ManifestError as exc:
            raise TargetError(EXIT_USAGE, f"{self.service.name}: {exc}; nothing was changed") from None
        self.dir.mkdir(parents=True, exist_ok=True)
        rendered = self.dir / f"{podset}.yaml"
        write_text_atomic(rendered, dump(documents))
        return podset, port, rendered

    def play(self, record: KubeRelease, slot: str, podset: str, port: int, rendered: Path) -> ActivePodSet:
        """Play the rendered manifests; wait for health (and ``version_path``). TargetError (after
        removing the pod set) when it fails."""
        started = time.monotonic()
        try:
            self.podman.run("kube", "play", "--network", "host", "--quiet", str(rendered))
        except EngineError as exc:
            left = self._remove_failed(podset)
            raise TargetError(EXIT_FAILED, f"{self.service.name}: release {record.release}: {exc}{left}") from None
        self.say(f"playing {record.release} ({slot} slot, port {port}) from {self.manifests_path().name}")
        problem = self._wait_ready(podset, port, record.release)
        if problem is not None:
            tail = self._log_tail(podset)
            left = self._remove_failed(podset)
            raise TargetError(
                EXIT_FAILED, f"{self.service.name}: release {record.release} {problem}{left}" + (f"; last lines of its log:\n{tail}" if tail else "")
            )
        self.say(f"healthy on port {port} after {time.monotonic() - started:.2f}s")
        return ActivePodSet(podset=podset, release=record.release, slot=slot, port=port)

    def _remove_failed(self, podset: str) -> str:
        """Remove a pod set that failed; '' when it is gone, else what is left and why (the
        failure itself stays the message: a cleanup error must not hide why the release failed)."""
        try:
            self._remove(lambda pod: pod_label(pod, "podset") == podset)
        except EngineError as exc:
            return f" (and its pod set {podset} could not be removed: {exc}; remove it with: python -m pytest_predeploy.targets stop --env {self.env} --service {self.service.name})"
        return ""

    def _containers(self, podset: str) -> list[dict[str, Any]]:
        found = self.podman.listing(
            "ps",
            "--all",
            "--format",
            "json",
            "--filter",
            f"label={LABEL_PREFIX}podset={podset}",
            "--filter",
            f"label={LABEL_PREFIX}root={self.pods.root_label}",
        )
        return [c for c in found or [] if isinstance(c, dict) and not c.get("IsInfra")]

    def _crashed(self, podset: str) -> str | None:
        containers = self._containers(podset)
        if not containers:
            return "has no container (the engine removed it)"
        for container in containers:
            name = (container.get("Names") or ["?"])[0]
            counts = self.podman.run("inspect", "--format", "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}", name, check=False).stdout.split()
            if len(counts) == 3 and (counts[0] != "0" or counts[1] in ("exited", "stopped", "dead")):
                return f"crashed at start (container {name}: {counts[1]}, restarted {counts[0]} times, exit status {counts[2]})"
        return None

    def _wait_ready(self, podset: str, port: int, release: str) -> str | None:
        timeout = self.service.health_timeout.total_seconds()
        deadline = time.monotonic() + timeout
        next_engine_check = 0.0
        last = "no answer yet"
        while True:
            if time.monotonic() >= next_engine_check:
                crashed = self._crashed(podset)
                if crashed is not None:
                    return crashed
                next_engine_check = time.monotonic() + _ENGINE_POLL
            answer = local_get_json(port, self.service.health_path, timeout=1.0)
            answering = other_service(answer, self.service.name)
            if answering is not None:
                return f"is not what answers on port {port}: service {answering!r} does (do two services share a port?)"
            version_path = self.service.version_path
            if answer.status == 200 and version_path is None:
                return None  # the pod set carries the release's labels and image: the engine said so
            if answer.status == 200 and version_path is not None:
                version = local_get_json(port, version_path, timeout=1.0)
                reported = version.body.get("release") if isinstance(version.body, dict) else None
                if reported == release:
                    return None
                last = f"healthy, but {version_path} reports {reported!r} ({version.describe()})"
            else:
                last = answer.describe()
            if time.monotonic() >= deadline:
                return f"missed its health deadline of {timeout:g}s (last answer: {last})"
            time.sleep(0.1)

    def _log_tail(self, podset: str) -> str:
        lines: list[str] = []
        for container in self._containers(podset):
            name = (container.get("Names") or ["?"])[0]
            logs = self.podman.run("logs", "--tail", str(_LOG_LINES), name, check=False)
            lines += [f"    {line}" for line in (logs.stdout + logs.stderr).splitlines() if line.strip()]
        return "\n".join(lines[-_LOG_LINES:])

    def _remove(self, which: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        pods = [pod for pod in self.pods.find(self.service.name) if which(pod)]
        self.pods.remove(pods, self.stop_timeout)
        return pods

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
            self._remove(lambda pod: pod_label(pod, "slot") == slot)  # a leftover in the idle slot
        else:
            slot = MAIN_SLOT
            podset, port, rendered = self.prepare(record, slot)
            removed = self._remove(lambda pod: True)
            if removed:
                self.say(f"took down {', '.join(str(pod.get('Name')) for pod in removed)}")
            (self.dir / "active.json").unlink(missing_ok=True)
        active = self.play(record, slot, podset, port, rendered)
        write_text_atomic(self.dir / "active.json", active.model_dump_json(indent=2) + "\n")
        removed = self._remove(lambda pod: pod_label(pod, "podset") != active.podset)
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
        removed = self._remove(lambda pod: True)
        (self.dir / "active.json").unlink(missing_ok=True)
        return [f"{self.service.name} {pod_label(pod, 'release')} (pod {pod.get('Name')})" for pod in removed]


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
