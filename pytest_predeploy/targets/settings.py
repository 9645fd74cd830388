"""Configuration of the services, the staging target and the rollback rehearsal.

These are the ``services:``, ``staging:`` and ``rollback:`` sections of ``predeploy.yaml``.
"""

from __future__ import annotations

import re
import urllib.parse
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from pytest_predeploy.core import template
from pytest_predeploy.core.errors import ConfigError
from pytest_predeploy.core.fields import ConfigPath, Duration, ExistingDir, ExistingFile, StrictModel, check_environment
from pytest_predeploy.core.yamlfile import format_validation_errors, load_yaml_file
from pytest_predeploy.targets.kube_settings import KubeConfig
from pytest_predeploy.targets.releases import ReleaseSourceConfig

#: Placeholders a service's start command may use.
COMMAND_PLACEHOLDERS = frozenset({"python", "service", "release", "port", "port_file"})
#: Faults the demo service can be told to show for a release (see ``ServiceConfig.inject``).
Fault = Literal["crash", "unhealthy"]
#: A release tag names a folder, so it may not contain a path separator or start with a dot.
RELEASE_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
#: ``\Z``, not ``$``: "$" also matches before a trailing newline ("api\n" would pass).
SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")


#: A declared endpoint in ``services[].endpoints.routes``: "METHOD /path".
ROUTE = re.compile(r"^(GET|PUT|POST|DELETE|OPTIONS|HEAD|PATCH|TRACE)\s+(/\S*)$")


class EndpointsConfig(StrictModel):
    """Where one service's declared endpoints come from and how requests to them are counted."""

    openapi: str | None = Field(
        None,
        description="OpenAPI 3 / Swagger 2 document (JSON or YAML): a path the service serves, starting with '/' (e.g. /openapi.json), or a file relative to the config file (e.g. openapi.yaml). Used first when set.",
    )
    routes_path: str | None = Field(
        None,
        description='Path at which the service lists its endpoints as JSON {"routes": [{"method": ..., "path": ...}]}; asked when no OpenAPI document is set, a 404 falls through to `routes`. Empty: smoke.routes_path (default /routes).',
    )
    routes: list[str] = Field(
        default_factory=list,
        description="Declared endpoints as 'METHOD /path/{param}', used when neither an OpenAPI document nor a route-list endpoint gives them.",
    )
    requests: Literal["auto", "counter", "client"] = Field(
        "auto",
        description="How requests are counted: 'counter' from the service's request counter (observability.request_counter), 'client' from the smoke suites' calls through the predeploy_http fixture, 'auto' the counter when the metrics have it, else the client.",
    )

    @field_validator("routes")
    @classmethod
    def _route_lines(cls, routes: list[str]) -> list[str]:
        for route in routes:
            if not ROUTE.match(route.strip()):
                raise ValueError(f"{route[:80]!r} is not 'METHOD /path' (e.g. 'GET /items/{{id}}')")
        return routes

    @field_validator("openapi", "routes_path")
    @classmethod
    def _not_empty(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("empty; leave the field out or set it to null")
        return value

    @field_validator("routes_path")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"must start with '/', got {value[:80]!r}")
        return value


class Service(StrictModel):
    """One deployable service: what every staging target knows of it."""

    name: str = Field(description="Service name, used as {service} in commands and as its folder under the staging root.")
    source: ExistingDir | None = Field(
        None,
        description="The service's source folder: the local staging target builds each release from this folder as it is in the release's git tag (or, see staging.releases, from the working tree). Not needed for the folder and dist release sources, nor when your own deploy script deploys this service elsewhere.",
    )
    port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port on 127.0.0.1; 0 lets the service pick a free one, recorded in the staging state. With blue_green the green slot uses port + 1. Two services may not share a fixed port (refused at load).",
    )
    strategy: Literal["restart", "blue_green"] = Field(
        "restart",
        description="'restart': stop the old process, switch current, start the new one. 'blue_green': start the new release in the idle slot, switch the active slot once healthy, keep the old slot running (rollback is the switchback).",
    )
    health_path: str = Field("/healthz", description="Path answering 200 once the service is healthy.")
    health_timeout: Duration = Field(timedelta(seconds=30), description="Deadline for the service to become healthy after start (e.g. '30s').")
    version_path: str | None = Field(
        None,
        description="Path answering JSON {\"release\": TAG}: an extra check, after every deploy and rollback, that the service itself reports the release. Empty (the default): the staging target's own record of what it started is the identity check (the process it launched from the release's folder; on kube, the pod set of the release's image), so a service needs no version endpoint. A service with url, which no target runs, is asked on /version unless this names another path.",
    )
    endpoints: EndpointsConfig = Field(
        default_factory=EndpointsConfig, description="Where the service's declared endpoints come from (smoke coverage) and how requests to them are counted."
    )
    url: str | None = Field(
        None,
        description="Base URL of the service when it does not run on the local staging target (verification and smoke tests use it); empty: the local target's recorded port.",
    )

    @field_validator("name")
    @classmethod
    def _folder_name(cls, name: str) -> str:
        if not SERVICE_NAME.match(name):
            raise ValueError(f"service name {name!r} must be letters, digits, '.', '_' or '-' (it names a folder)")
        return name

    @field_validator("health_timeout")
    @classmethod
    def _positive_timeout(cls, timeout: timedelta) -> timedelta:
        if timeout <= timedelta(0):
            raise ValueError("health_timeout must be longer than zero (a service is never healthy at once), e.g. '30s'")
        return timeout

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None:
            return url
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an http:// or https:// address with a host, e.g. 'https://api.staging.example.com'")
        return url

    @field_validator("health_path", "version_path")
    @classmethod
    def _absolute_path(cls, path: str | None, info: ValidationInfo) -> str | None:
        if path is not None and not path.startswith("/"):
            raise ValueError(f"{info.field_name} must start with '/', got {path!r}")
        return path

    def identity_path(self) -> str | None:
        """Where the service reports its release, when that is checked: ``version_path``, else
        /version for a service no target runs (``url``: nothing else tells which release answers)."""
        return self.version_path or ("/version" if self.url else None)

    @model_validator(mode="after")
    def _two_slots(self) -> Service:
        if self.strategy == "blue_green" and self.port == 65535:
            raise ValueError("blue_green needs two ports (port and port + 1); port 65535 leaves no room")
        return self


class ServiceConfig(Service):
    """One deployable service (``services:`` entries): the generic fields of :class:`Service`, how the
    local staging target starts it, and the fault injection the rehearsal's tests use."""

    command: str = Field(
        "{python} server.py --port {port} --port-file {port_file}",
        description="How the local staging target starts the service, run in the release folder and split like a shell line. Placeholders: {python}, {service}, {release}, {port} (with port 0, a free port chosen for it), {port_file} (optional: a service that binds a port of its own choosing writes it there).",
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Extra environment variables of the service's process; {port}, {port_file}, {release}, {service} and {python} in a value are filled in (e.g. PORT: '{port}').",
    )
    inject: dict[str, Fault] = Field(
        default_factory=dict,
        description="Fault injection for rehearsal tests: release tag -> 'crash' (exits at start) or 'unhealthy' (never passes its health check). Written into that release's manifest; the demo service reads it from there.",
    )

    @field_validator("env")
    @classmethod
    def _environment(cls, env: dict[str, str]) -> dict[str, str]:
        return check_environment(env)

    @field_validator("inject")
    @classmethod
    def _tags(cls, inject: dict[str, str]) -> dict[str, str]:
        for tag in inject:
            check_release_tag(tag)
        return inject

    @model_validator(mode="after")
    def _known_placeholders(self) -> ServiceConfig:
        template.check_command(self.command, COMMAND_PLACEHOLDERS, "command")
        return self


class LocalPrometheusConfig(StrictModel):
    """A Prometheus server the local staging target runs beside the services (docs/prometheus.md)."""

    enabled: bool = Field(
        False,
        description="Start Prometheus with the rehearsal, on 127.0.0.1, scraping the deployed services (needs the prometheus binary: apt-get install prometheus).",
    )
    binary: str = Field("prometheus", description="The server executable, by name on PATH or as a path.")
    scrape_interval: Duration = Field(timedelta(seconds=1), description="How often each service is scraped (short: a rehearsal lasts minutes).")
    start_timeout: Duration = Field(timedelta(seconds=30), description="How long the server may take to answer /-/ready.")
    scrape_wait: Duration = Field(
        timedelta(seconds=20),
        description="At each point of the rehearsal, how long to wait for Prometheus to scrape every service after the event before asking it.",
    )
    rule_files: list[ExistingFile] = Field(
        default_factory=list,
        description="Prometheus alerting rule files the server loads (relative to the config file); their firing alerts are listed in the baseline.",
    )


class LocalStagingConfig(StrictModel):
    """The staging target: the embedded local one (Capistrano-style releases on this machine) by default."""

    target: Literal["local", "kube"] = Field(
        "local",
        description="Where the rehearsal runs the services: 'local', processes on this machine; 'kube', each release's Kubernetes manifests as containers (staging.kube, docs/kube.md).",
    )
    root: ConfigPath = Field(
        Path(".staging"),
        validate_default=True,
        description="Folder holding the staging state: <root>/<env>/<service>/{releases,current,run,logs}. Keep it git-ignored.",
    )
    keep_releases: int = Field(
        5, ge=2, description="How many releases to keep per service; older ones are deleted after a deploy, never the current one or one a slot runs."
    )
    max_parallel: int = Field(1, ge=1, description="How many services the rehearsal deploys at once; 1 deploys them one by one in configured order.")
    bootstrap: bool = Field(
        True,
        description="Before the rehearsal, deploy the previous release to every service that does not run it (e.g. an empty staging), and record that it did.",
    )
    stop_on_exit: bool = Field(True, description="Stop every local staging process when the pytest session ends, so nothing outlives a run.")
    stop_timeout: Duration = Field(timedelta(seconds=10), description="How long a stopping service may take to exit after SIGTERM before it is killed.")
    progress_interval: Duration = Field(timedelta(seconds=5), description="How often the rehearsal prints a progress line for each service still deploying.")
    releases: ReleaseSourceConfig = Field(
        default_factory=ReleaseSourceConfig,
        description="Where each release's code comes from: a git tag, a folder per release, or a built distribution (see docs/staging.md).",
    )
    prometheus: LocalPrometheusConfig = Field(
        default_factory=LocalPrometheusConfig, description="A Prometheus server beside the services, for observability.prometheus (off by default)."
    )
    kube: KubeConfig = Field(
        default_factory=KubeConfig, description="The kube staging target (staging.target: kube): manifests, images, podman or a cluster (docs/kube.md)."
    )


class RollbackConfig(StrictModel):
    """Rollback rehearsal settings (Gate 3)."""

    recovery_target_seconds: float = Field(
        60.0,
        gt=0,
        allow_inf_nan=False,
        description="Recovery-time target per service: from the start of the rollback until healthy on the previous release with the smoke subset green.",
    )
    smoke: bool = Field(True, description="Run the smoke subset of each service after its rollback (and after the roll-forward).")
    smoke_select: str = Field(
        "{service}", description="pytest -k expression choosing a service's smoke subset; {service} is replaced by the service name. Empty: every smoke test."
    )
    roll_forward: bool = Field(
        True, description="After the rollback rehearsal, deploy the candidate again so staging ends on it; false leaves staging on the previous release."
    )

    @field_validator("smoke_select")
    @classmethod
    def _known_placeholder(cls, expression: str) -> str:
        template.check(expression, {"service"}, "the expression")
        return expression


def check_distinct_ports(services: list[ServiceConfig]) -> list[ServiceConfig]:
    """Refuse two services on one fixed port (blue_green's green slot counts as port + 1): the
    second could never listen there, and a health check on that port would be answered by the
    first, so its deploy would look healthy."""
    owners: dict[int, str] = {}
    for service in services:
        if not service.port or service.url:
            continue
        slots = [(service.port, service.name)]
        if service.strategy == "blue_green":
            slots.append((service.port + 1, f"{service.name} (green slot)"))
        for port, who in slots:
            if port in owners:
                raise ValueError(f"services {owners[port]} and {who} both use port {port} on 127.0.0.1; give each service its own port (or 0 for a free one)")
            owners[port] = who
    return services


def check_release_tag(tag: str) -> str:
    if not RELEASE_TAG.match(tag):
        raise ValueError(f"release tag {tag!r} must be letters, digits, '.', '_', '+' or '-' (it names a folder)")
    return tag


class TargetSettings(Protocol):
    """What the local staging target reads from the config: a ``ProjectConfig`` or, in the
    command line, the lighter :class:`TargetConfig`."""

    services: list[ServiceConfig]
    staging: LocalStagingConfig

    @property
    def base_dir(self) -> Path: ...

    def service(self, name: str) -> ServiceConfig: ...


class ServiceLookup:
    """``base_dir`` and ``service(name)`` for a model with ``path`` and ``services`` (shared by
    ProjectConfig and TargetConfig)."""

    if TYPE_CHECKING:  # fields of the models that use it; declared there, in their own order
        path: Path
        services: list[ServiceConfig]

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def service(self, name: str) -> ServiceConfig:
        for service in self.services:
            if service.name == name:
                return service
        raise ConfigError(f"{self.path}: no service named {name!r}; services: {', '.join(s.name for s in self.services)}")


class TargetConfig(ServiceLookup, BaseModel):
    """``project``, ``services:`` and ``staging:`` alone: what the targets' command lines load.
    They run once per service, often ten at once, and the whole config model imports every part
    of the plugin (the rest of the file is the plugin's to validate)."""

    model_config = ConfigDict(extra="ignore", defer_build=True)  # built on first use, as StrictModel (core.fields)

    project: str | None = Field(None, description="Project name ({project} in staging.kube.image; default: the config file's folder name).")
    services: list[ServiceConfig] = Field(min_length=1, description="Services, in deployment order.")
    staging: LocalStagingConfig = Field(default_factory=LocalStagingConfig, description="The staging target.")
    path: Path = Field(Path("predeploy.yaml"), exclude=True, description="(set on load) The file this config came from.")

    @field_validator("services")
    @classmethod
    def _distinct_ports(cls, services: list[ServiceConfig]) -> list[ServiceConfig]:
        return check_distinct_ports(services)


def load_target_config(path: Path) -> TargetConfig:
    data, lines = load_yaml_file(path, "configuration file")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level (see docs/config-reference.md)")
    base = path.resolve().parent
    try:
        config = TargetConfig.model_validate({key: data[key] for key in ("project", "services", "staging") if key in data}, context={"base_dir": base})
    except ValidationError as exc:
        raise ConfigError(format_validation_errors(path, exc, lines)) from None
    config.path = path.resolve()
    return config
