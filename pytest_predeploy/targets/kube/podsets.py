"""Running one release of a kube service as a pod set: its manifests rendered for a slot, played
with ``podman kube play --network host``, and waited for until healthy (or removed, with the last
lines of its log, when it crashes or misses its deadline)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from pytest_predeploy.core.artifacts import write_text_atomic
from pytest_predeploy.targets.base import EXIT_FAILED, EXIT_USAGE, TargetError, free_port
from pytest_predeploy.targets.kube.engine import EngineError
from pytest_predeploy.targets.kube.manifests import LABEL_PREFIX, ManifestError, dump, label_value, render
from pytest_predeploy.targets.kube.state import ActivePodSet, KubeRelease, pod_label
from pytest_predeploy.targets.kube.status import KubeServiceStatus
from pytest_predeploy.targets.probe import local_get_json, other_service

#: How often the health wait also asks the engine whether the container crashed (a podman
#: call costs ~0.1s of CPU; the HTTP probe in between costs almost nothing).
_ENGINE_POLL = 1.0
_LOG_LINES = 15


def prepare(status: KubeServiceStatus, record: KubeRelease, slot: str) -> tuple[str, int, Path]:
    """Render ``record``'s manifests for ``slot``: its pod set's name, its port and the file.
    Done before anything is taken down, so a manifest error changes nothing."""
    port = _port(status, slot)
    # Pod names are global to the engine: the staging folder's label keeps two projects (or
    # two copies of one) that deploy the same env, service and release apart.
    readable = re.sub(r"[^a-z0-9-]+", "-", f"{status.env}-{status.service.name}-{slot}-{record.release}".lower())[:40].strip("-")
    podset = f"{readable}-{status.pods.root_label[:8]}"
    labels = {**status.pods.labels(status.service.name), f"{LABEL_PREFIX}release": label_value(record.release)}
    labels |= {f"{LABEL_PREFIX}slot": slot, f"{LABEL_PREFIX}port": str(port), f"{LABEL_PREFIX}podset": podset}
    fields = {"service": status.service.name, "release": record.release, "image": record.image, "port": str(port), "env": status.env, "namespace": status.env}
    try:
        documents = render(status.manifests_path(), fields, podset, labels, record.image, single_replica=True)
    except ManifestError as exc:
        raise TargetError(EXIT_USAGE, f"{status.service.name}: {exc}; nothing was changed") from None
    status.dir.mkdir(parents=True, exist_ok=True)
    rendered = status.dir / f"{podset}.yaml"
    write_text_atomic(rendered, dump(documents))
    return podset, port, rendered


def play(status: KubeServiceStatus, record: KubeRelease, slot: str, podset: str, port: int, rendered: Path) -> ActivePodSet:
    """Play the rendered manifests; wait for health (and ``version_path``). TargetError (after
    removing the pod set) when it fails."""
    started = time.monotonic()
    try:
        status.podman.run("kube", "play", "--network", "host", "--quiet", str(rendered))
    except EngineError as exc:
        left = _remove_failed(status, podset)
        raise TargetError(EXIT_FAILED, f"{status.service.name}: release {record.release}: {exc}{left}") from None
    status.say(f"playing {record.release} ({slot} slot, port {port}) from {status.manifests_path().name}")
    problem = _wait_ready(status, podset, port, record.release)
    if problem is not None:
        tail = _log_tail(status, podset)
        left = _remove_failed(status, podset)
        raise TargetError(
            EXIT_FAILED, f"{status.service.name}: release {record.release} {problem}{left}" + (f"; last lines of its log:\n{tail}" if tail else "")
        )
    status.say(f"healthy on port {port} after {time.monotonic() - started:.2f}s")
    return ActivePodSet(podset=podset, release=record.release, slot=slot, port=port)


def _port(status: KubeServiceStatus, slot: str) -> int:
    if status.service.port == 0:
        return free_port()
    return status.service.port + 1 if slot == "green" else status.service.port


def _remove_failed(status: KubeServiceStatus, podset: str) -> str:
    """Remove a pod set that failed; '' when it is gone, else what is left and why (the
    failure itself stays the message: a cleanup error must not hide why the release failed)."""
    try:
        status.remove_pods(lambda pod: pod_label(pod, "podset") == podset)
    except EngineError as exc:
        return f" (and its pod set {podset} could not be removed: {exc}; remove it with: python -m pytest_predeploy.targets stop --env {status.env} --service {status.service.name})"
    return ""


def _containers(status: KubeServiceStatus, podset: str) -> list[dict[str, Any]]:
    found = status.podman.listing(
        "ps",
        "--all",
        "--format",
        "json",
        "--filter",
        f"label={LABEL_PREFIX}podset={podset}",
        "--filter",
        f"label={LABEL_PREFIX}root={status.pods.root_label}",
    )
    return [c for c in found or [] if isinstance(c, dict) and not c.get("IsInfra")]


def _crashed(status: KubeServiceStatus, podset: str) -> str | None:
    containers = _containers(status, podset)
    if not containers:
        return "has no container (the engine removed it)"
    for container in containers:
        name = (container.get("Names") or ["?"])[0]
        counts = status.podman.run("inspect", "--format", "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}", name, check=False).stdout.split()
        if len(counts) == 3 and (counts[0] != "0" or counts[1] in ("exited", "stopped", "dead")):
            return f"crashed at start (container {name}: {counts[1]}, restarted {counts[0]} times, exit status {counts[2]})"
    return None


def _wait_ready(status: KubeServiceStatus, podset: str, port: int, release: str) -> str | None:
    timeout = status.service.health_timeout.total_seconds()
    deadline = time.monotonic() + timeout
    next_engine_check = 0.0
    last = "no answer yet"
    while True:
        if time.monotonic() >= next_engine_check:
            crashed = _crashed(status, podset)
            if crashed is not None:
                return crashed
            next_engine_check = time.monotonic() + _ENGINE_POLL
        answer = local_get_json(port, status.service.health_path, timeout=1.0)
        answering = other_service(answer, status.service.name)
        if answering is not None:
            return f"is not what answers on port {port}: service {answering!r} does (do two services share a port?)"
        version_path = status.service.version_path
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


def _log_tail(status: KubeServiceStatus, podset: str) -> str:
    lines: list[str] = []
    for container in _containers(status, podset):
        name = (container.get("Names") or ["?"])[0]
        logs = status.podman.run("logs", "--tail", str(_LOG_LINES), name, check=False)
        lines += [f"    {line}" for line in (logs.stdout + logs.stderr).splitlines() if line.strip()]
    return "\n".join(lines[-_LOG_LINES:])
