"""The kube target's settings as a user writes them in predeploy.yaml (no container engine
needed): one-line messages for what it cannot use."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pytest_predeploy.core.errors import ConfigError, StepError
from pytest_predeploy.targets.kube.environment import KubeTarget
from pytest_predeploy.targets.settings import load_target_config


def write(tmp_path: Path, kube: dict[str, object], service: dict[str, object] | None = None) -> Path:
    config = {"project": "shop", "services": [{"name": "api", **(service or {})}], "staging": {"target": "kube", "kube": kube}}
    path = tmp_path / "predeploy.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("kube", "message"),
    [
        ({"engine": "kubectl"}, "staging.kube: engine kubectl needs registry: the cluster pulls each release's image from it"),
        ({"image": "{project}-{svc}"}, "staging.kube.image: template '{project}-{svc}' uses unknown placeholder {svc}; allowed: {env}, {project}, {service}"),
        ({"distributions": ["prometheus client"]}, "'prometheus client' is not a distribution name"),
        ({"engine": "docker"}, "staging.kube.engine"),
    ],
)
def test_unusable_kube_settings_name_the_file_line_and_field(tmp_path: Path, kube: dict[str, object], message: str) -> None:
    path = write(tmp_path, kube)
    with pytest.raises(ConfigError) as caught:
        load_target_config(path)
    assert str(caught.value).startswith(f"{path}:")
    assert message in str(caught.value)


def test_a_cluster_service_without_its_url_is_not_reported_as_not_running(tmp_path: Path) -> None:
    config = load_target_config(write(tmp_path, {"engine": "kubectl", "registry": "registry.example.com/shop"}))
    with pytest.raises(
        StepError, match=r"services\[api\].url is not set: with staging.kube.engine kubectl the rehearsal reaches each service at its own address"
    ):
        KubeTarget(config).service_url("staging", "api")


def test_a_cluster_service_with_its_url_answers_there(tmp_path: Path) -> None:
    config = load_target_config(write(tmp_path, {"engine": "kubectl", "registry": "registry.example.com/shop"}, {"url": "https://api.staging.example.com/"}))
    assert KubeTarget(config).service_url("staging", "api") == "https://api.staging.example.com"
