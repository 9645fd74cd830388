"""The kube target's kubectl mode, against a FAKE kubectl: no cluster exists here, so this test
only checks the command lines the target runs (apply, rollout status, get, delete, with the
context and the environment's namespace) and that the applied manifests carry the pushed image
by digest. The fake keeps the last applied Deployment and reports its rollout complete; the
image push goes to a fake too (a wrapper that runs the real podman for everything else).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.kube_support import container_engine  # noqa: F401 - the fixture that skips without a working podman

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("container_engine")

FAKE_KUBECTL = """#!{python}
import json, os, sys
log, state = os.environ["FAKE_KUBECTL_LOG"], os.environ["FAKE_KUBECTL_STATE"]
with open(log, "a") as out:
    out.write(json.dumps(sys.argv[1:]) + "\\n")
args = sys.argv[1:]
if "apply" in args:
    import yaml
    docs = list(yaml.safe_load_all(open(args[args.index("--filename") + 1])))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    deployment["metadata"]["generation"] = 1
    deployment["status"] = {{"observedGeneration": 1, "updatedReplicas": deployment["spec"]["replicas"], "availableReplicas": deployment["spec"]["replicas"]}}
    json.dump(deployment, open(state, "w"))
    print("deployment.apps/" + deployment["metadata"]["name"] + " configured")
elif "get" in args:
    print(open(state).read() if os.path.exists(state) else "")
elif "delete" in args:
    if os.path.exists(state):
        os.remove(state)
        print('deployment.apps "api" deleted')
elif "rollout" in args:
    print('deployment "api" successfully rolled out')
"""

FAKE_PODMAN = """#!/bin/sh
# 'podman push' recorded and answered with a made-up digest; everything else is the real podman.
if [ "$1" = push ]; then
    echo "$@" >> "$FAKE_PODMAN_LOG"
    printf 'sha256:%064d' "$(printf '%s' "$4" | cksum | cut -d' ' -f1)" > "$3"
    exit 0
fi
exec {podman} "$@"
"""


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "shop"
    root.mkdir()
    shutil.copytree(REPO / "demo" / "releases", root / "releases")
    shutil.copytree(REPO / "demo" / "kube", root / "kube")
    name = f"kc{uuid.uuid4().hex[:8]}"
    kubectl = executable(tmp_path / "kubectl", FAKE_KUBECTL.format(python=sys.executable))
    podman = executable(tmp_path / "podman", FAKE_PODMAN.format(podman=shutil.which("podman")))
    base = yaml.safe_load((REPO / "predeploy.yaml").read_text())
    api = dict(base["services"][0], port=8080, url="https://api.staging.example.com")
    config = {
        "project": name,
        "services": [api],
        "staging": {
            "target": "kube",
            "releases": {"kind": "folder", "folder": "releases/{release}"},
            "kube": {
                "engine": "kubectl",
                "kubectl": str(kubectl),
                "podman": str(podman),
                "context": "staging-cluster",
                "namespace": "{project}-{env}",
                "registry": "registry.example.com/shop",
                "manifests": "kube/{service}.yaml",
                "image": "{project}-{service}",
            },
        },
    }
    (root / "predeploy.yaml").write_text(yaml.safe_dump(config))
    yield root
    for line in subprocess.run(["podman", "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True).stdout.split():
        if line.startswith(f"localhost/{name}-"):
            subprocess.run(["podman", "rmi", "--force", line], capture_output=True)


def kube(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        FAKE_KUBECTL_LOG=str(root / "kubectl.log"),
        FAKE_KUBECTL_STATE=str(root / "deployment.json"),
        FAKE_PODMAN_LOG=str(root / "push.log"),
    )
    argv = [sys.executable, "-m", "pytest_predeploy.targets.kube", args[0], "--env", "staging", "--config", str(root / "predeploy.yaml"), *args[1:]]
    return subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=300, env=env)


def test_kubectl_mode_runs_apply_rollout_status_and_delete_in_the_environment_namespace(project: Path) -> None:
    name = yaml.safe_load((project / "predeploy.yaml").read_text())["project"]
    for args in (("deploy", "--release", "v1.1"), ("deploy", "--release", "v1.2"), ("rollback", "--release", "v1.1")):
        done = kube(project, *args)
        assert done.returncode == 0, done.stdout + done.stderr
    again = kube(project, "rollback", "--release", "v1.1")
    assert again.returncode == 5, again.stderr  # the cluster's Deployment already runs v1.1
    stopped = kube(project, "stop")
    assert stopped.returncode == 0, stopped.stderr

    calls = [json.loads(line) for line in (project / "kubectl.log").read_text().splitlines()]
    prefix = ["--context", "staging-cluster", "--namespace", f"{name}-staging"]
    assert all(call[:4] == prefix for call in calls), calls
    verbs = [call[4:6] for call in calls if call[4] in ("apply", "rollout", "delete")]
    assert verbs == [["apply", "--filename"], ["rollout", "status"]] * 3 + [["delete", "deployment,pod"]]
    rollout = next(call for call in calls if call[4] == "rollout")
    assert rollout[4:] == ["rollout", "status", "deployment/api", "--timeout", "120s"]
    delete = calls[-1]
    assert delete[6] == "--selector" and "io.predeploy.env=staging,io.predeploy.service=api" in delete[7]

    pushes = (project / "push.log").read_text().splitlines()
    assert [line.split()[-1] for line in pushes] == [
        f"docker://registry.example.com/shop/{name}-api:v1.1",
        f"docker://registry.example.com/shop/{name}-api:v1.2",
    ]
    record = json.loads((project / ".staging" / "staging" / "api" / "cluster" / "releases" / "v1.1.json").read_text())
    assert record["identity"]["image"].startswith(f"registry.example.com/shop/{name}-api:v1.1@sha256:")
    applied = list(yaml.safe_load_all((project / ".staging" / "staging" / "api" / "cluster" / "api.yaml").read_text()))
    container = applied[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == record["identity"]["image"]  # the rollback applied v1.1's pushed image, by digest
    assert container["ports"] == [{"containerPort": 8080}]  # a cluster keeps the manifests' ports
    assert applied[0]["metadata"]["namespace"] == f"{name}-staging"
