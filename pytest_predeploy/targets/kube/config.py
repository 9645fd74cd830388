"""The kube target's view of ``predeploy.yaml`` for its command line: ``project``, ``services:``
and ``staging:`` alone, loaded without the whole config model (the rest of
the file is the plugin's to validate)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pytest_predeploy.core.errors import ConfigError
from pytest_predeploy.core.yamlfile import format_validation_errors, load_yaml_file
from pytest_predeploy.targets.settings import LocalStagingConfig, ServiceConfig, ServiceLookup, check_distinct_ports


class KubeTargetConfig(ServiceLookup, BaseModel):
    """``project``, ``services:`` and ``staging:`` alone: what the kube target's command line
    needs (the rest of the file is the plugin's to validate)."""

    model_config = ConfigDict(extra="ignore")

    project: str = Field("project", description="Project name ({project} in staging.kube.image).")
    services: list[ServiceConfig] = Field(min_length=1, description="Services, in deployment order.")
    staging: LocalStagingConfig = Field(default_factory=LocalStagingConfig, description="The staging target.")
    path: Path = Field(Path("predeploy.yaml"), exclude=True, description="(set on load) The file this config came from.")

    @field_validator("services")
    @classmethod
    def _distinct_ports(cls, services: list[ServiceConfig]) -> list[ServiceConfig]:
        return check_distinct_ports(services)


def load_kube_config(path: Path) -> KubeTargetConfig:
    data, lines = load_yaml_file(path, "configuration file")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level (see docs/config-reference.md)")
    try:
        config = KubeTargetConfig.model_validate(
            {key: data[key] for key in ("project", "services", "staging") if key in data}, context={"base_dir": path.resolve().parent}
        )
    except ValidationError as exc:
        raise ConfigError(format_validation_errors(path, exc, lines)) from None
    config.path = path.resolve()
    return config
