"""Whether this machine can run the kube target's tests on a real container engine: podman and
runc installed, and podman able to start a container (a sandboxed host refuses the default
rlimits and cgroups until it gets the containers.conf that .ci/run writes; docs/kube.md)."""

from __future__ import annotations

import functools
import shutil
import subprocess
import uuid

import pytest

INSTALL = "needs a container engine: apt-get install podman runc (tests never install packages; .ci/run does when root)"


@functools.cache
def podman_unusable() -> str | None:
    """Why the kube tests cannot run here, or None. Starts and removes one empty pod (~0.4s)."""
    if shutil.which("podman") is None or shutil.which("runc") is None:
        return INSTALL
    name = f"predeploy-probe-{uuid.uuid4().hex[:8]}"
    try:
        created = subprocess.run(["podman", "pod", "create", "--name", name], capture_output=True, text=True, timeout=60)
        started = subprocess.run(["podman", "pod", "start", name], capture_output=True, text=True, timeout=60) if created.returncode == 0 else created
    finally:
        subprocess.run(["podman", "pod", "rm", "--force", name], capture_output=True, timeout=60)
    if started.returncode != 0:
        reason = (started.stderr.strip().splitlines() or ["no message"])[-1]
        return f"podman cannot start a container here ({reason}); give it the containers.conf that .ci/run writes (export CONTAINERS_CONF, docs/kube.md)"
    return None


@pytest.fixture
def container_engine() -> None:
    """Skip the test, saying why, when podman cannot run containers here."""
    reason = podman_unusable()
    if reason is not None:
        pytest.skip(reason)
