"""The kube target as the protocol's steps see it: :class:`KubeTarget`, one object for every
environment, over the services' :class:`~.target.KubeService` (podman) or
:class:`~.cluster.ClusterService` (kubectl)."""

from __future__ import annotations

from pytest_predeploy.targets.base import Say, configured_url, quiet
from pytest_predeploy.targets.kube.cluster import ClusterService
from pytest_predeploy.targets.kube.state import Pods, podman_engine
from pytest_predeploy.targets.kube.target import KubeService
from pytest_predeploy.targets.kube_settings import KubeConfig
from pytest_predeploy.targets.prometheus import PrometheusServer
from pytest_predeploy.targets.releases import ReleaseIdentity
from pytest_predeploy.targets.runlock import StagingLock
from pytest_predeploy.targets.settings import TargetSettings

__all__ = ["KubeTarget"]


class KubeTarget:
    """Staging on the kube target, engine podman: the :class:`~pytest_predeploy.targets.base.Target`."""

    kind = "kube"

    def __init__(self, settings: TargetSettings, say: Say = quiet) -> None:
        self.settings = settings
        self.kube: KubeConfig = settings.staging.kube
        self.root = settings.base_dir / settings.staging.root
        self.project = str(getattr(settings, "project", None) or settings.base_dir.name)
        self._say = say

    def service(self, env: str, name: str) -> KubeService:
        """The service's target: on podman, or on the cluster with engine kubectl."""
        staging = self.settings.staging
        kind = ClusterService if self.kube.engine == "kubectl" else KubeService
        return kind(
            self.root,
            staging.releases,
            self.kube,
            staging.stop_timeout.total_seconds(),
            staging.keep_releases,
            env,
            self.settings.service(name),
            self.settings.base_dir,
            self.project,
            say=self._say,
        )

    def service_url(self, env: str, service: str) -> str | None:
        return configured_url(self.settings, service) or self.service(env, service).base_url()

    def current_release(self, env: str, service: str) -> str | None:
        return self.service(env, service).current_release()

    def running_release(self, env: str, service: str) -> str | None:
        if self.settings.service(service).url:
            return None
        return self.service(env, service).current_release()

    def release_identity(self, env: str, service: str, tag: str) -> ReleaseIdentity | None:
        if self.settings.service(service).url:
            return None
        return self.service(env, service).identity(tag)

    def deployed_name(self, env: str, service: str, tag: str) -> str:
        if self.settings.service(service).url:
            return tag
        return self.service(env, service).folder_for(tag) or tag

    def lock(self, env: str, holder: str) -> StagingLock:
        lock = StagingLock(self.root / env)
        lock.acquire(holder)
        return lock

    def stop_all(self, env: str) -> list[str]:
        """Remove every pod of ``env`` this staging folder started (by the engine's labels,
        including services no longer in the config); with engine kubectl, delete what the
        target applied for each configured service."""
        if self.kube.engine == "kubectl":
            return [line for service in self.settings.services for line in self.service(env, service.name).stop_all()]
        pods = Pods(podman_engine(self.kube), self.root, env)
        found = pods.find()
        pods.remove(found, self.settings.staging.stop_timeout.total_seconds())
        for service in self.settings.services:
            (self.root / env / service.name / "kube" / "active.json").unlink(missing_ok=True)
        return [f"{(pod.get('Labels') or {}).get('io.predeploy.service', '?')} pod {pod.get('Name')}" for pod in found]

    def prometheus(self, env: str) -> PrometheusServer | None:
        return None

    def log_tail(self, env: str, service: str, lines: int) -> tuple[str, list[str]] | None:
        # The containers' output is the engine's (podman logs, kubectl logs): not read here yet.
        return None
