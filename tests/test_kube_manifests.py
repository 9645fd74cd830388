"""Rendering a service's Kubernetes manifests for one release (no container engine needed): the
placeholders, the labels the kube target reads back, podman's host network, and the one-line
messages for manifests it cannot use."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_predeploy.targets.kube.manifests import ManifestError, label_value, render

REPO = Path(__file__).resolve().parents[1]
IMAGE = "localhost/shop-api:v1.2@sha256:" + "ab" * 32
FIELDS = {"service": "api", "release": "v1.2", "image": IMAGE, "port": "8080", "env": "staging", "namespace": "shop-staging"}
LABELS = {"io.predeploy.release": "v1.2", "io.predeploy.podset": "staging-api-main-v1-2"}


def test_the_demo_manifest_gets_the_release_image_labels_and_the_host_network_on_podman() -> None:
    [deployment] = render(REPO / "demo" / "kube" / "api.yaml", FIELDS, "staging-api-main-v1-2", LABELS, IMAGE, single_replica=True)
    assert deployment["metadata"]["name"] == "staging-api-main-v1-2"
    assert deployment["metadata"]["labels"]["io.predeploy.release"] == "v1.2"
    assert deployment["spec"]["selector"]["matchLabels"]["io.predeploy.podset"] == "staging-api-main-v1-2"
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"] == {"app.kubernetes.io/name": "api", **LABELS}
    assert pod["spec"]["hostNetwork"] is True
    [container] = pod["spec"]["containers"]
    assert container["image"] == IMAGE
    assert container["command"] == ["python3", "server.py", "--role", "api", "--port", "8080"]
    assert "ports" not in container  # podman refuses port mappings on the host network


def test_a_cluster_keeps_the_manifests_ports_and_replicas(tmp_path: Path) -> None:
    manifest = tmp_path / "api.yaml"
    text = (REPO / "demo" / "kube" / "api.yaml").read_text().replace("replicas: 1", "replicas: 3")
    manifest.write_text(text + "---\napiVersion: v1\nkind: Service\nmetadata: {name: api}\nspec: {ports: [{port: 80, targetPort: {port}}]}\n")
    deployment, service = render(manifest, FIELDS, "api", LABELS, IMAGE, single_replica=False)
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 8080}]
    assert "hostNetwork" not in deployment["spec"]["template"]["spec"]
    assert service["spec"]["ports"] == [{"port": 80, "targetPort": 8080}]  # other objects get the placeholders only


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: Deployment\nspec: [unclosed\n", "line 3: not valid YAML once the placeholders are filled in"),
        ("apiVersion: v1\nkind: ConfigMap\n", "holds 0 Deployments/Pods"),
        ("- just a list\n", "document 1 is not a Kubernetes object"),
        ("kind: Pod\nspec: {containers: []}\n", "document 1 (Pod) has no containers"),
        (
            "kind: Pod\nspec: {containers: [{name: api, image: 'python:3'}]}\n",
            "document 1, container 'api' runs image 'python:3', not the release's; write 'image: {image}' there",
        ),
    ],
)
def test_unusable_manifests_are_one_line_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    manifest = tmp_path / "api.yaml"
    manifest.write_text(text)
    with pytest.raises(ManifestError) as caught:
        render(manifest, FIELDS, "api", LABELS, IMAGE, single_replica=True)
    assert str(caught.value).startswith(f"{manifest}")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_manifest_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(
        ManifestError, match=r"cannot read the service's manifests \(No such file or directory\); write them there or fix staging.kube.manifests"
    ):
        render(tmp_path / "nope.yaml", FIELDS, "api", LABELS, IMAGE, single_replica=True)


def test_a_dirty_release_name_becomes_a_valid_label_value() -> None:
    assert label_value("v1.2+dirty.0f1e2d3c4b5a") == "v1.2_dirty.0f1e2d3c4b5a"
