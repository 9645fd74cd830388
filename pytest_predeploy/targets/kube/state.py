"""What the kube target records and what the engine reports: the release records and the
active pod set (files under ``<root>/<env>/<service>/kube/``), and the pods podman lists by the
``io.predeploy.*`` labels the target puts on them."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path
from typing import Any

from pydantic import Field

from pytest_predeploy.core.fields import StrictModel, UtcDatetime
from pytest_predeploy.targets.kube.engine import Engine, EngineError, describe, quote_error
from pytest_predeploy.targets.kube.manifests import LABEL_PREFIX
from pytest_predeploy.targets.kube_settings import KubeConfig
from pytest_predeploy.targets.releases import ReleaseIdentity

#: How often removing a pod set is asked when its mounts are still busy.
_REMOVE_ATTEMPTS = 4
_BUSY = re.compile(r"device or resource busy")


class KubeRelease(StrictModel):
    """``releases/<name>.json``: a release built for the kube target."""

    service: str = Field(description="The service this release belongs to.")
    release: str = Field(description="The name it is deployed under: the tag, or '<tag>+dirty.<digest>'.")
    built_at: UtcDatetime = Field(description="When its image was built or first recorded (UTC).")
    identity: ReleaseIdentity = Field(description="What the release's code is (source, commit, content digest).")
    image: str = Field(description="The image it runs, pinned: '<image>:<release>@sha256:...'.")
    fault: str | None = Field(None, description="Fault injected into this release for rehearsal tests, if any.")
    pushed: str | None = Field(None, description="Engine kubectl: the image as pushed to staging.kube.registry, '<registry>/<image>:<release>@sha256:...'.")


class ActivePodSet(StrictModel):
    """``active.json``: the pod set that serves the service."""

    podset: str = Field(description="The pod set's name (its Deployment or Pod name).")
    release: str = Field(description="The release it runs.")
    slot: str = Field(description="'main' (restart) or 'blue'/'green'.")
    port: int = Field(description="The port it serves on, on 127.0.0.1.")


def root_label(root: Path) -> str:
    """Short digest of the staging folder, so two projects' pods on one machine stay apart."""
    return hashlib.sha256(str(root.absolute()).encode()).hexdigest()[:12]


def podman_engine(kube: KubeConfig) -> Engine:
    return Engine(kube.podman, kube.command_timeout.total_seconds(), install_hint=": install it (apt-get install podman runc) or set staging.kube.podman")


class Pods:
    """The pods of one staging folder and environment, as the engine reports them."""

    def __init__(self, podman: Engine, root: Path, env: str) -> None:
        self.podman, self.root_label, self.env = podman, root_label(root), env

    def labels(self, service: str | None = None) -> dict[str, str]:
        found = {f"{LABEL_PREFIX}root": self.root_label, f"{LABEL_PREFIX}env": self.env}
        if service is not None:
            found[f"{LABEL_PREFIX}service"] = service
        return found

    def find(self, service: str | None = None) -> list[dict[str, Any]]:
        """Pods (running or not) with their ``Name``, ``Status`` and ``Labels``."""
        args = ["pod", "ps", "--format", "json"]
        for key, value in self.labels(service).items():
            args += ["--filter", f"label={key}={value}"]
        pods = self.podman.listing(*args) or []
        return [pod for pod in pods if isinstance(pod, dict)]

    def remove(self, pods: list[dict[str, Any]], timeout: float) -> None:
        if pods:
            ids = [str(pod["Id"]) for pod in pods]
            # Stop, then remove: 'pod rm --force --time N' alone takes ~3.5s more per pod set here
            # (measured with podman 4.3) for the same SIGTERM-then-SIGKILL stop.
            self.podman.run("pod", "stop", "--time", str(max(1, round(timeout))), *ids, check=False)
            # A container in its restart loop (a release crashing at start) can hold its shm mount
            # for a moment after the stop: 'unmounting ... device or resource busy'. Asked again.
            for _ in range(_REMOVE_ATTEMPTS - 1):
                result = self.podman.run("pod", "rm", "--force", *ids, check=False)
                if result.returncode == 0 or not _BUSY.search(result.stderr):
                    break
                time.sleep(0.5)
            else:
                result = self.podman.run("pod", "rm", "--force", *ids, check=False)
            if result.returncode != 0:
                raise EngineError(f"'{describe(result.args)}' failed (exit {result.returncode}): {quote_error(result.stderr or result.stdout)}")


def pod_label(pod: dict[str, Any], name: str) -> str | None:
    labels = pod.get("Labels") or {}
    value = labels.get(f"{LABEL_PREFIX}{name}")
    return str(value) if value is not None else None
