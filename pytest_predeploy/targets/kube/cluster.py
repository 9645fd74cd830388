"""The kube target on a real cluster (``staging.kube.engine: kubectl``).

Each release's image is built here as for podman (:mod:`.image`), then pushed::

    podman push --digestfile FILE localhost/<image>:<release> docker://<registry>/<image>:<release>

and the service's manifests, with ``{image}`` = ``<registry>/<image>:<release>@sha256:...`` and
the ``io.predeploy.*`` labels, are applied in the environment's namespace and waited for::

    kubectl [--context C] --namespace N apply -f <state>/<service>.yaml
    kubectl [--context C] --namespace N rollout status deployment/<service> --timeout <rollout_timeout>s

The Deployment keeps the service's name, so its rollout history holds every release. Rollback
applies the previous release's manifests with its recorded (pushed) image and waits the same
way; ``stop`` deletes what the target applied (``kubectl delete deployment,pod --selector
io.predeploy.root=...,io.predeploy.env=...``). What serves is read from the cluster: the
Deployment's ``io.predeploy.release`` label once its rollout is complete. The services answer
at ``services[].url`` (the cluster's ingress); docs/kube.md has the whole walk-through.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_predeploy.core.artifacts import write_text_atomic
from pytest_predeploy.core.errors import StepError
from pytest_predeploy.targets.base import EXIT_FAILED, EXIT_USAGE, TargetError
from pytest_predeploy.targets.kube.engine import Engine, EngineError
from pytest_predeploy.targets.kube.manifests import LABEL_PREFIX, ManifestError, dump, label_value, render
from pytest_predeploy.targets.kube.state import ActivePodSet, KubeRelease, root_label
from pytest_predeploy.targets.kube.target import KubeService

_LOG_LINES = 15


class ClusterService(KubeService):
    """One service in one environment, on the cluster of ``staging.kube.context``."""

    STATE = "cluster"

    def kubectl(self) -> Engine:
        context = ("--context", self.kube.context) if self.kube.context else ()
        return Engine(
            self.kube.kubectl,
            self.kube.command_timeout.total_seconds(),
            prefix=(*context, "--namespace", self.namespace()),
            install_hint=": install kubectl or set staging.kube.kubectl",
        )

    def namespace(self) -> str:
        return self.kube.namespace.format(env=self.env, project=self.project, service=self.service.name)

    def selector(self) -> str:
        return f"{LABEL_PREFIX}root={root_label(self.dir.parents[2])},{LABEL_PREFIX}env={self.env}"

    # --- images -------------------------------------------------------------------------------

    def build(self, tag: str) -> KubeRelease:
        record = super().build(tag)
        if record.pushed is not None and record.identity.image == record.pushed:
            return record
        repository = record.image.split("@")[0].removeprefix("localhost/")
        remote = f"{self.kube.registry}/{repository}"
        with tempfile.TemporaryDirectory(dir=self.dir, prefix=".push-") as tmp:
            digest_file = Path(tmp) / "digest"
            try:
                self.podman.run("push", "--digestfile", str(digest_file), record.image.split("@")[0], f"docker://{remote}")
                digest = digest_file.read_text().strip()
            except (EngineError, OSError) as exc:
                raise TargetError(EXIT_FAILED, f"{self.service.name}: pushing {remote} to staging.kube.registry failed: {exc}") from None
        pushed = f"{remote}@{digest}"
        record = record.model_copy(update={"pushed": pushed, "identity": record.identity.model_copy(update={"image": pushed})})
        write_text_atomic(self.records_dir / f"{record.release}.json", record.model_dump_json(indent=2) + "\n")
        self.say(f"pushed {pushed}")
        return record

    def _image_missing(self, record: KubeRelease) -> str | None:
        return None if record.pushed else f"{record.release} was never pushed to staging.kube.registry"

    # --- the cluster's state -------------------------------------------------------------------

    def deployment(self) -> dict[str, Any] | None:
        found = self.kubectl().json("get", f"deployment/{self.service.name}", "--ignore-not-found", "--output", "json")
        return found if isinstance(found, dict) else None

    def serving(self) -> tuple[ActivePodSet, dict[str, Any]] | None:
        deployment = self.deployment()
        if deployment is None:
            return None
        labels = (deployment.get("metadata") or {}).get("labels") or {}
        status = deployment.get("status") or {}
        wanted = (deployment.get("spec") or {}).get("replicas", 1)
        complete = (
            status.get("updatedReplicas") == wanted
            and status.get("availableReplicas") == wanted
            and status.get("observedGeneration", 0) >= (deployment.get("metadata") or {}).get("generation", 0)
        )
        record_name = self._release_of_label(str(labels.get(f"{LABEL_PREFIX}release", "")))
        if not complete or record_name is None:
            return None
        return ActivePodSet(podset=self.service.name, release=record_name, slot="main", port=self.service.port), deployment

    def _release_of_label(self, value: str) -> str | None:
        for name in self.release_names():
            if label_value(name) == value:
                return name
        return None

    def base_url(self) -> str | None:
        if not self.service.url:
            # Pods in a cluster are not on 127.0.0.1: without the service's own address the
            # rehearsal could only report it "not running", which would be untrue.
            raise StepError(
                f"services[{self.service.name}].url is not set: with staging.kube.engine kubectl the rehearsal reaches each service "
                "at its own address in the cluster (its ingress, e.g. https://api.staging.example.com); set it"
            )
        return self.service.url.rstrip("/") if self.serving() else None

    def _serving_release(self, name: str) -> str | None:
        found = self.serving()
        if found is None or found[0].release != name:
            return None
        return f"deployment/{self.service.name} in namespace {self.namespace()}, rollout complete"

    # --- changing it ---------------------------------------------------------------------------

    def _activate(self, record: KubeRelease) -> None:
        image = record.pushed or record.image
        labels = {f"{LABEL_PREFIX}root": root_label(self.dir.parents[2]), f"{LABEL_PREFIX}env": self.env, f"{LABEL_PREFIX}service": self.service.name}
        labels |= {f"{LABEL_PREFIX}release": label_value(record.release), f"{LABEL_PREFIX}podset": self.service.name}
        fields = {
            "service": self.service.name,
            "release": record.release,
            "image": image,
            "port": str(self.service.port),
            "env": self.env,
            "namespace": self.namespace(),
        }
        try:
            documents = render(self.manifests_path(), fields, self.service.name, labels, image, single_replica=False)
        except ManifestError as exc:
            raise TargetError(EXIT_USAGE, f"{self.service.name}: {exc}; nothing was changed") from None
        rendered = self.dir / f"{self.service.name}.yaml"
        write_text_atomic(rendered, dump(documents))
        kubectl = self.kubectl()
        started = time.monotonic()
        try:
            kubectl.run("apply", "--filename", str(rendered))
        except EngineError as exc:
            raise TargetError(EXIT_FAILED, f"{self.service.name}: release {record.release}: {exc}") from None
        timeout = self.kube.rollout_timeout.total_seconds()
        done = kubectl.run("rollout", "status", f"deployment/{self.service.name}", "--timeout", f"{timeout:g}s", check=False, timeout=timeout + 30)
        if done.returncode != 0:
            logs = kubectl.run("logs", f"deployment/{self.service.name}", "--tail", str(_LOG_LINES), "--all-containers", check=False)
            tail = "\n".join(f"    {line}" for line in (logs.stdout + logs.stderr).splitlines() if line.strip())
            raise TargetError(
                EXIT_FAILED,
                f"{self.service.name}: release {record.release}: the rollout did not complete within {timeout:g}s ({(done.stderr or done.stdout).strip() or 'no message'}); "
                f"roll back with: python -m pytest_predeploy.targets rollback --env {self.env} --release PREVIOUS --service {self.service.name}"
                + (f"; last lines of its log:\n{tail}" if tail else ""),
            )
        self.say(f"rolled out {record.release} ({image}) in namespace {self.namespace()} in {time.monotonic() - started:.2f}s")

    def stop_all(self) -> list[str]:
        deleted = self.kubectl().run(
            "delete", "deployment,pod", "--selector", f"{self.selector()},{LABEL_PREFIX}service={self.service.name}", "--ignore-not-found"
        )
        return [f"{self.service.name}: {line.strip()}" for line in deleted.stdout.splitlines() if line.strip()]
