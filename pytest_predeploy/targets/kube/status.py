"""What one service of the kube target (engine podman) is: its recorded releases, and the pod
set the engine shows serving; the state layout is described in :mod:`.target`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pytest_predeploy.targets.base import Say, check_environment, quiet
from pytest_predeploy.targets.kube.image import ImageBuilder
from pytest_predeploy.targets.kube.manifests import label_value
from pytest_predeploy.targets.kube.state import ActivePodSet, KubeRelease, Pods, pod_label, podman_engine
from pytest_predeploy.targets.kube_settings import KubeConfig
from pytest_predeploy.targets.probe import local_get_json, other_service
from pytest_predeploy.targets.releases import ReleaseIdentity, ReleaseSourceConfig
from pytest_predeploy.targets.settings import ServiceConfig


class KubeServiceStatus:
    """One service in one environment of the kube target (engine podman): where its state is,
    and reading it (the commands are :class:`.target.KubeService`)."""

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

    def image_ref(self, name: str) -> str:
        repository = self.kube.image.format(service=self.service.name, env=self.env, project=self.project)
        return f"localhost/{repository}:{label_value(name)}"

    def manifests_path(self) -> Path:
        return self.base_dir / self.kube.manifests.format(service=self.service.name, env=self.env, project=self.project)

    def remove_pods(self, which: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        pods = [pod for pod in self.pods.find(self.service.name) if which(pod)]
        self.pods.remove(pods, self.stop_timeout)
        return pods
