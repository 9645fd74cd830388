"""The kube staging target on a real container engine: the demo's two releases built as images
here, run from the demo's Kubernetes manifests with ``podman kube play``, rolled back and forward.

Needs podman and runc (``.ci/run`` installs them when it runs as root); skips without them. Each
test's project has its own name, staging folder and image names, and removes what it made.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pytest_predeploy.targets.kube.state import root_label
from tests.kube_support import container_engine  # noqa: F401 - the fixture that skips without a working podman

REPO = Path(__file__).resolve().parents[1]
KUBE = [sys.executable, "-m", "pytest_predeploy.targets.kube"]

pytestmark = pytest.mark.usefixtures("container_engine")


def podman(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A copy of the demo's releases and manifests with a kube config of its own name."""
    root = tmp_path / "shop"
    root.mkdir()
    shutil.copytree(REPO / "demo" / "releases", root / "releases")
    shutil.copytree(REPO / "demo" / "kube", root / "kube")
    name = f"kt{uuid.uuid4().hex[:8]}"
    base = yaml.safe_load((REPO / "predeploy.yaml").read_text())
    config = {
        "project": name,
        "services": base["services"],
        "staging": {
            "target": "kube",
            "root": ".staging",
            "releases": {"kind": "folder", "folder": "releases/{release}"},
            "kube": {"manifests": "kube/{service}.yaml", "image": "{project}-{service}", "distributions": ["prometheus-client"]},
        },
    }
    (root / "predeploy.yaml").write_text(yaml.safe_dump(config))
    yield root
    kube(root, "stop", check=False)
    left = [str(pod["Id"]) for pod in our_pods(root)]  # other environments a test used
    if left:
        podman("pod", "rm", "--force", *left)
    for line in podman("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split():
        if line.startswith(f"localhost/{name}-"):
            podman("rmi", "--force", line)


def kube(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [*KUBE, args[0], "--env", "staging", "--config", str(root / "predeploy.yaml"), *args[1:]]
    done = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(REPO)))
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def project_name(root: Path) -> str:
    return str(yaml.safe_load((root / "predeploy.yaml").read_text())["project"])


def our_pods(root: Path) -> list[dict[str, object]]:
    """The pods of this project's staging folder, by the label the target puts on each."""
    return list(json.loads(podman("pod", "ps", "--format", "json", "--filter", f"label=io.predeploy.root={_root_label(root)}").stdout or "[]"))


def _root_label(root: Path) -> str:
    return root_label((root / ".staging").resolve())


def version_inside(root: Path, service: str, env: str = "staging") -> dict[str, object]:
    """``/version`` of the service as its own container answers it (podman exec)."""
    active = json.loads((root / ".staging" / env / service / "kube" / "active.json").read_text())
    listed = json.loads(podman("ps", "--format", "json", "--filter", f"label=io.predeploy.podset={active['podset']}").stdout or "[]")
    containers = [c["Names"][0] for c in listed if not c.get("IsInfra")]
    assert len(containers) == 1, listed
    probe = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{active['port']}/version').read().decode())"
    done = podman("exec", containers[0], "python3", "-c", probe)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert isinstance(answer, dict)
    return answer


def recorded_images(root: Path) -> set[str]:
    return {json.loads(p.read_text())["image"] for p in (root / ".staging" / "staging").glob("*/kube/releases/*.json")}


def test_demo_releases_deploy_roll_back_and_forward_as_containers(project: Path) -> None:
    name = project_name(project)
    kube(project, "deploy", "--release", "v1.1")
    for service in ("api", "worker"):
        assert version_inside(project, service) == {"service": service, "release": "v1.1"}
    kube(project, "deploy", "--release", "v1.2")
    for service in ("api", "worker"):
        assert version_inside(project, service) == {"service": service, "release": "v1.2"}

    rolled = kube(project, "rollback", "--release", "v1.1")
    assert "rolled back to v1.1" in rolled.stdout
    for service in ("api", "worker"):
        assert version_inside(project, service) == {"service": service, "release": "v1.1"}
    again = kube(project, "rollback", "--release", "v1.1", check=False)
    assert again.returncode == 5, again.stderr
    kube(project, "deploy", "--release", "v1.2")
    for service in ("api", "worker"):
        assert version_inside(project, service) == {"service": service, "release": "v1.2"}
    assert len(our_pods(project)) == 2  # one pod set per service: the old ones were taken down

    images = recorded_images(project)
    assert len(images) == 4  # two services x two releases, each pinned by digest
    assert len({image.split("@")[1] for image in images}) == 4  # different code, different images

    kube(project, "stop")
    assert our_pods(project) == []
    left = json.loads(podman("ps", "--all", "--format", "json", "--filter", f"label=io.predeploy.root={_root_label(project)}").stdout or "[]")
    assert left == []
    tags = {line for line in podman("images", "--format", "{{.Repository}}:{{.Tag}}@{{.Digest}}").stdout.split() if line.startswith(f"localhost/{name}-")}
    assert tags == images


def test_a_crashing_release_fails_with_its_log_and_leaves_no_pod(project: Path) -> None:
    config = yaml.safe_load((project / "predeploy.yaml").read_text())
    config["services"][0]["inject"] = {"v1.2": "crash"}
    (project / "predeploy.yaml").write_text(yaml.safe_dump(config))
    kube(project, "deploy", "--release", "v1.1", "--service", "api")
    failed = kube(project, "deploy", "--release", "v1.2", "--service", "api", check=False)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "api: release v1.2 crashed at start" in failed.stderr
    assert "injected fault: crash at start" in failed.stderr  # the container's own log line
    assert "Traceback" not in failed.stderr.split("last lines of its log")[0]
    assert our_pods(project) == []  # the restart strategy took v1.1 down first; the failed pod is gone
    status = kube(project, "status", "--service", "api")
    assert "current (none)" in status.stdout
    back = kube(project, "rollback", "--release", "v1.1", "--service", "api")
    assert "rolled back to v1.1" in back.stdout
    assert version_inside(project, "api") == {"service": "api", "release": "v1.1"}


def test_a_manifest_error_is_refused_before_the_running_release_is_taken_down(project: Path) -> None:
    kube(project, "deploy", "--release", "v1.1", "--service", "api")
    manifest = project / "kube" / "api.yaml"
    manifest.write_text(manifest.read_text().replace('image: "{image}"', 'image: "docker.io/library/python:3"'))
    failed = kube(project, "deploy", "--release", "v1.2", "--service", "api", check=False)
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert f"{manifest}: document 1, container 'api' runs image 'docker.io/library/python:3', not the release's" in failed.stderr
    assert "nothing was changed" in failed.stderr
    assert version_inside(project, "api") == {"service": "api", "release": "v1.1"}  # the restart strategy's old pod still serves


def test_blue_green_keeps_the_old_release_serving_when_the_new_one_misses_its_deadline(project: Path) -> None:
    config = yaml.safe_load((project / "predeploy.yaml").read_text())
    worker = config["services"][1]
    assert worker["strategy"] == "blue_green"
    worker.update(inject={"v1.2": "unhealthy"}, health_timeout="2s")
    (project / "predeploy.yaml").write_text(yaml.safe_dump(config))
    kube(project, "deploy", "--release", "v1.1", "--service", "worker")
    failed = kube(project, "deploy", "--release", "v1.2", "--service", "worker", check=False)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "worker: release v1.2 missed its health deadline of 2s (last answer: HTTP 503" in failed.stderr
    assert version_inside(project, "worker") == {"service": "worker", "release": "v1.1"}
    assert len(our_pods(project)) == 1  # the green pod set was removed


def test_what_serves_comes_from_the_engine_not_the_state_file(project: Path) -> None:
    kube(project, "deploy", "--release", "v1.1", "--service", "api")
    [pod] = our_pods(project)
    assert podman("pod", "rm", "--force", str(pod["Id"])).returncode == 0  # removed behind the target's back
    assert (project / ".staging" / "staging" / "api" / "kube" / "active.json").exists()
    status = kube(project, "status", "--service", "api")
    assert "api: current (none)" in status.stdout
    again = kube(project, "deploy", "--release", "v1.1", "--service", "api")
    assert "nothing to do" not in again.stdout  # it is started again, not reported as running
    assert version_inside(project, "api") == {"service": "api", "release": "v1.1"}


def test_an_image_rebuilt_from_nothing_has_the_same_digest(project: Path) -> None:
    """The same code on the same interpreter makes the same image, even after the base image and
    the release image are deleted: the digest in the evidence can be reproduced."""
    config = yaml.safe_load((project / "predeploy.yaml").read_text())
    config["staging"]["kube"]["distributions"] = ["filelock"]  # a base image of its own, which this test deletes
    (project / "predeploy.yaml").write_text(yaml.safe_dump(config))
    kube(project, "deploy", "--release", "v1.1", "--service", "api")
    record = project / ".staging" / "staging" / "api" / "kube" / "releases" / "v1.1.json"
    first = json.loads(record.read_text())["image"]
    kube(project, "stop")
    base = podman("image", "inspect", "--format", '{{index .Labels "io.predeploy.base"}}', first.split("@")[0]).stdout.strip()
    assert base.startswith("localhost/predeploy-base:")
    assert podman("rmi", "--force", first.split("@")[0], base).returncode == 0
    rebuilt = kube(project, "deploy", "--release", "v1.1", "--service", "api")
    assert "base image localhost/predeploy-base:" in rebuilt.stdout and "built image" in rebuilt.stdout  # both made again
    assert json.loads(record.read_text())["image"] == first
    assert podman("image", "inspect", "--format", "{{.Digest}}", first.split("@")[0]).stdout.strip() == first.split("@")[1]


def test_two_copies_of_a_project_deploy_the_same_release_side_by_side(project: Path, tmp_path: Path) -> None:
    other = tmp_path / "copy"
    shutil.copytree(project, other, ignore=shutil.ignore_patterns(".staging"))
    kube(project, "deploy", "--release", "v1.1", "--service", "api")
    kube(other, "deploy", "--release", "v1.1", "--service", "api")  # same env, service and release: its own pods
    assert version_inside(project, "api") == version_inside(other, "api") == {"service": "api", "release": "v1.1"}
    kube(project, "stop")
    assert our_pods(project) == []
    assert version_inside(other, "api") == {"service": "api", "release": "v1.1"}  # the other copy's pods were not touched
    kube(other, "stop")
    assert our_pods(other) == []


def test_pruning_old_releases_leaves_another_environment_running_the_same_image(project: Path) -> None:
    config = yaml.safe_load((project / "predeploy.yaml").read_text())
    config["staging"]["keep_releases"] = 2
    (project / "predeploy.yaml").write_text(yaml.safe_dump(config))
    shutil.copytree(project / "releases" / "v1.2", project / "releases" / "v1.3")
    (project / "releases" / "v1.3" / "NOTES").write_text("v1.3: same server, one more file\n")
    kube(project, "deploy", "--release", "v1.1", "--service", "api", "--env", "qa")
    for tag in ("v1.1", "v1.2", "v1.3"):
        kube(project, "deploy", "--release", tag, "--service", "api")
    # staging forgot v1.1 (keep_releases 2); qa still runs v1.1's image
    assert not (project / ".staging" / "staging" / "api" / "kube" / "releases" / "v1.1.json").exists()
    assert version_inside(project, "api", env="qa") == {"service": "api", "release": "v1.1"}
    kube(project, "stop", "--env", "qa")


def test_the_same_code_makes_the_same_image_after_an_unrelated_commit(project: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=project, check=True, capture_output=True)

    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "one")
    kube(project, "deploy", "--release", "v1.1", "--service", "api")
    record = project / ".staging" / "staging" / "api" / "kube" / "releases" / "v1.1.json"
    first = json.loads(record.read_text())
    kube(project, "stop")
    assert podman("rmi", first["image"].split("@")[0]).returncode == 0
    (project / "README").write_text("an unrelated change\n")
    git("add", "README")
    git("commit", "-qm", "two")
    kube(project, "deploy", "--release", "v1.1", "--service", "api")
    again = json.loads(record.read_text())
    assert again["identity"]["digest"] == first["identity"]["digest"]
    assert again["image"] == first["image"]  # the new HEAD is not part of the image
