"""A service's Kubernetes manifests, rendered for one release.

The file is plain YAML (several documents allowed) with placeholders ``{service}``,
``{release}``, ``{image}``, ``{port}``, ``{env}`` and ``{namespace}``, filled in textually
(every other brace is kept). Each ``Deployment`` or ``Pod`` in it is then named after the pod
set and labelled with what the target reads back from the engine (service, release, slot,
port), so the engine, not a state file, says what runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from pytest_predeploy.core.errors import StepError
from pytest_predeploy.core.yamlfile import LimitedCLoader

WORKLOADS = ("Deployment", "Pod")
LABEL_PREFIX = "io.predeploy."
#: Where a label value may not hold a character (Kubernetes: alphanumerics, '-', '_', '.').
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class ManifestError(StepError):
    """The service's manifests cannot be used; the message names the file and what to change."""


def label_value(value: str) -> str:
    """``value`` as a Kubernetes label value (a dirty build's '+' becomes '_')."""
    return _LABEL_UNSAFE.sub("_", value)[:63]


def render(path: Path, fields: dict[str, str], name: str, labels: dict[str, str], image: str, single_replica: bool) -> list[dict[str, Any]]:
    """The documents of ``path`` with ``fields`` filled in, each workload named ``name`` and
    labelled with ``labels``. ManifestError when the file is missing, is not YAML, holds no
    Deployment or Pod, or a container runs another image than the release's."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the service's manifests ({exc.strerror}); write them there or fix staging.kube.manifests") from None
    for key, value in fields.items():
        text = text.replace("{" + key + "}", value)
    try:
        documents = [doc for doc in yaml.load_all(text, Loader=LimitedCLoader) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ManifestError(f"{path}{where}: not valid YAML once the placeholders are filled in ({getattr(exc, 'problem', exc)})") from None
    workloads = 0
    for index, doc in enumerate(documents, 1):
        if not isinstance(doc, dict) or not isinstance(doc.get("kind"), str):
            raise ManifestError(f"{path}: document {index} is not a Kubernetes object (a mapping with 'kind')")
        if doc["kind"] in WORKLOADS:
            workloads += 1
            _label(path, index, doc, name, labels, image, single_replica)
    if workloads != 1:
        raise ManifestError(
            f"{path}: holds {workloads} Deployments/Pods; the kube target runs one workload per service and release (put each service in its own file)"
        )
    return documents


def _mapping(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    if value is None:
        value = parent[key] = {}
    return value if isinstance(value, dict) else {}


def _label(path: Path, index: int, doc: dict[str, Any], name: str, labels: dict[str, str], image: str, single_replica: bool) -> None:
    metadata = _mapping(doc, "metadata")
    metadata["name"] = name
    _mapping(metadata, "labels").update(labels)
    if doc["kind"] == "Deployment":
        spec = _mapping(doc, "spec")
        if single_replica:
            spec["replicas"] = 1  # one pod per slot on this machine: they share the host's ports
        _mapping(_mapping(spec, "selector"), "matchLabels").update({f"{LABEL_PREFIX}podset": labels[f"{LABEL_PREFIX}podset"]})
        template = _mapping(spec, "template")
        _mapping(_mapping(template, "metadata"), "labels").update(labels)
        pod_spec = _mapping(template, "spec")
    else:
        pod_spec = _mapping(doc, "spec")
    containers = pod_spec.get("containers")
    if not isinstance(containers, list) or not containers:
        raise ManifestError(f"{path}: document {index} ({doc['kind']}) has no containers")
    for container in containers:
        found = container.get("image") if isinstance(container, dict) else None
        if found != image:
            what = container.get("name", "?") if isinstance(container, dict) else "?"
            raise ManifestError(f"{path}: document {index}, container {what!r} runs image {found!r}, not the release's; write 'image: {{image}}' there")
        if single_replica:
            # On this machine the pod shares the host's network: the container's port is the
            # host's, and podman refuses port mappings there.
            container.pop("ports", None)
    if single_replica:
        pod_spec["hostNetwork"] = True


def dump(documents: list[dict[str, Any]]) -> str:
    return str(yaml.safe_dump_all(documents, sort_keys=False))
