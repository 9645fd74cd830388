"""Configuration of the kube staging target: the ``staging.kube:`` section of ``predeploy.yaml``.

It lives beside the staging model that holds it, not in the kube package: the contract package
(``targets``) never imports a target's package, so the targets depend on it one way.

The same manifests run locally on podman (``podman kube play``) or on a real cluster
(``kubectl apply``); see docs/kube.md.
"""

from __future__ import annotations

import re
import string
from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator, model_validator

from pytest_predeploy.core.fields import Duration, StrictModel

#: Placeholders a service's manifest may use (filled in per release and slot).
MANIFEST_PLACEHOLDERS = frozenset({"service", "release", "image", "port", "env", "namespace"})
#: Placeholders of the manifests path, the image name and the namespace.
NAME_PLACEHOLDERS = frozenset({"service", "project", "env"})
#: A pure-Python distribution name as pip spells it.
_DISTRIBUTION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _placeholders(template: str, allowed: frozenset[str]) -> str:
    try:
        names = {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
    except ValueError as exc:
        raise ValueError(f"template {template!r} is not a valid format string ({exc})") from None
    unknown = names - allowed
    if unknown:
        raise ValueError(
            f"template {template!r} uses unknown placeholder {{{sorted(unknown)[0]}}}; allowed: {', '.join('{' + p + '}' for p in sorted(allowed))}"
        )
    return template


class KubeConfig(StrictModel):
    """The kube staging target (``staging.target: kube``): each release of a service is an image
    built here and run from the service's Kubernetes manifests."""

    engine: Literal["podman", "kubectl"] = Field(
        "podman",
        description="'podman': run the manifests on this machine with 'podman kube play' (one pod set per release, host network, 127.0.0.1). 'kubectl': apply them to the cluster of 'context' with kubectl (images pushed to 'registry').",
    )
    manifests: str = Field(
        "deploy/kube/{service}.yaml",
        description="The service's manifests (multi-document YAML with a Deployment or Pod), relative to the config file's folder. Placeholders in the path: {service}, {project}, {env}. In the file: {service}, {release}, {image}, {port}, {env}, {namespace}.",
    )
    image: str = Field(
        "{project}-{service}",
        description="Image name of a service's releases, tagged with the release: '<image>:<release>'. Placeholders: {service}, {project}, {env}.",
    )
    distributions: list[str] = Field(
        default_factory=list,
        description="Pure-Python distributions installed where pytest runs that the services import (e.g. prometheus-client); copied into the base image with the interpreter.",
    )
    podman: str = Field("podman", description="Engine podman: the podman executable, by name on PATH or as a path.")
    kubectl: str = Field("kubectl", description="Engine kubectl: the kubectl executable, by name on PATH or as a path.")
    context: str | None = Field(None, description="Engine kubectl: the kubeconfig context to use (--context); empty: kubectl's current context.")
    namespace: str = Field(
        "{project}-{env}", description="Engine kubectl: the namespace of an environment (one per environment). Placeholders: {project}, {env}."
    )
    registry: str | None = Field(
        None,
        description="Engine kubectl: the registry the cluster pulls from (e.g. registry.example.com/shop); each release image is pushed there as '<registry>/<image>:<release>'. Required with engine kubectl.",
    )
    rollout_timeout: Duration = Field(
        timedelta(minutes=2), description="Engine kubectl: how long 'kubectl rollout status' may wait for a rollout (its --timeout)."
    )
    command_timeout: Duration = Field(
        timedelta(minutes=2), description="How long one podman or kubectl command (build, play, down, apply) may take before it is killed."
    )

    @field_validator("manifests", "image", "namespace")
    @classmethod
    def _names(cls, template: str) -> str:
        return _placeholders(template, NAME_PLACEHOLDERS)

    @field_validator("distributions")
    @classmethod
    def _distribution_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not _DISTRIBUTION.match(name):
                raise ValueError(f"{name!r} is not a distribution name (letters, digits, '.', '_', '-')")
        return names

    @model_validator(mode="after")
    def _registry_for_kubectl(self) -> KubeConfig:
        if self.engine == "kubectl" and not self.registry:
            raise ValueError("engine kubectl needs registry: the cluster pulls each release's image from it (e.g. registry.example.com/shop)")
        return self
