"""``predeploy.yaml`` -> pydantic models. Errors name the file, the line and the field.

The top-level model only assembles sections; each section's model lives in the package that
implements that part of the protocol, in a module of models only (``intake.parity.config``,
``targets.settings``, ``rehearsal.settings``, ``readiness.settings`` ...), so that loading the
configuration does not import the code of every step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from pytest_predeploy.core import template
from pytest_predeploy.core.errors import ConfigError
from pytest_predeploy.core.fields import ConfigPath, Duration, StrictModel, check_env_var_names, check_environment
from pytest_predeploy.core.yamlfile import format_validation_errors, load_yaml_file
from pytest_predeploy.intake.approvals import ApprovalsConfig
from pytest_predeploy.intake.parity.config import EnvironmentConfig, ParityConfig
from pytest_predeploy.intake.secrets import load_secrets
from pytest_predeploy.readiness.settings import PackageConfig, ReadinessConfig
from pytest_predeploy.rehearsal.settings import ContractConfig, ObservabilityConfig, SmokeConfig
from pytest_predeploy.rollback.settings import OperationalConfig
from pytest_predeploy.security.policy import SecurityConfig
from pytest_predeploy.targets.settings import LocalStagingConfig, RollbackConfig, ServiceConfig, ServiceLookup, check_distinct_ports

DEFAULT_CONFIG = "predeploy.yaml"

#: The environment every step script receives: the run it belongs to (scripts read it with
#: ``scriptkit.load_context``).
ENV_CONFIG = "PREDEPLOY_CONFIG"
ENV_RELEASE = "PREDEPLOY_RELEASE"
ENV_PREVIOUS = "PREDEPLOY_PREVIOUS_RELEASE"
ENV_ARTIFACTS = "PREDEPLOY_ARTIFACTS"
ENV_ENVIRONMENT = "PREDEPLOY_ENV"

#: Placeholders every step command may use.
COMMON_PLACEHOLDERS = frozenset({"release", "previous_release", "env", "target_env", "artifacts", "config", "python"})
#: Extra placeholders per step.
STEP_PLACEHOLDERS: dict[str, frozenset[str]] = {
    "parity": frozenset({"output"}),
    "deploy": frozenset({"service"}),
    "smoke": frozenset({"output"}),
    "rollback": frozenset({"service"}),
    "security": frozenset({"output"}),
}


class StepConfig(StrictModel):
    """How one protocol step runs its script."""

    command: str = Field(
        description="Command template, split like a shell line (no shell is involved). Placeholders: {release}, {previous_release}, {env}, {target_env}, {artifacts}, {config}, {python}, plus {output} or {service} where the step has them."
    )
    timeout: Duration = Field(timedelta(minutes=10), description="How long the script may run before its whole process group is stopped (e.g. '90s', '10m').")
    kill_grace: Duration = Field(
        timedelta(seconds=5), description="After a timeout or interrupt, how long the script's process group gets between SIGTERM and SIGKILL."
    )
    cwd: ConfigPath = Field(Path("."), description="Working folder of the script, relative to the config file.")
    env: dict[str, str] = Field(
        default_factory=dict, description="Extra environment variables for the script (values are not secret-checked; put secrets in a secrets source)."
    )

    @field_validator("env")
    @classmethod
    def _environment(cls, env: dict[str, str]) -> dict[str, str]:
        return check_environment(env)

    def placeholders(self) -> set[str]:
        return template.placeholders(self.command)


def _default_step(command: str, timeout: str = "10m") -> StepConfig:
    return StepConfig.model_validate({"command": command, "timeout": timeout}, context={"base_dir": "."})


class StepsConfig(StrictModel):
    """The command of every scripted protocol step (swap in Helm, kubectl, Ansible ...)."""

    parity: StepConfig = Field(
        default_factory=lambda: _default_step("{python} scripts/compare_environments.py --source {env} --target {target_env} --output {output}", "5m"),
        description="Step 1.2, staging parity: writes staging-parity-report.json to {output}.",
    )
    deploy: StepConfig = Field(
        default_factory=lambda: _default_step("bash scripts/deploy_backend.sh --env {env} --release {release} --service {service}"),
        description="Step 2.1, deployment rehearsal: run once per service.",
    )
    smoke: StepConfig = Field(
        default_factory=lambda: _default_step("{python} scripts/run_smoke_tests.py --env {env} --output {output}"),
        description="Step 2.2, smoke and acceptance tests: writes staging-test-results.json to {output}.",
    )
    rollback: StepConfig = Field(
        default_factory=lambda: _default_step("bash scripts/rollback_backend.sh --env {env} --release {previous_release} --service {service}"),
        description="Step 3.1, rollback rehearsal: run once per service.",
    )
    security: StepConfig = Field(
        default_factory=lambda: _default_step("{python} scripts/run_security_audit.py --env {env} --output {output}", "15m"),
        description="Step 3.2, security and compliance audit: writes security-compliance-report.json to {output}.",
    )

    @model_validator(mode="after")
    def _known_placeholders(self) -> StepsConfig:
        for name, allowed_extra in STEP_PLACEHOLDERS.items():
            step: StepConfig = getattr(self, name)
            template.check_command(step.command, COMMON_PLACEHOLDERS | allowed_extra, f"steps.{name}.command")
        return self

    def items(self) -> Iterator[tuple[str, StepConfig]]:
        for name in STEP_PLACEHOLDERS:
            yield name, getattr(self, name)


class GateOptions(StrictModel):
    """How gate outcomes are judged."""

    no_data: Literal["fail", "advisory"] = Field(
        "fail", description="What a metric that could not be read or a check that could not run means: 'fail' (default) or 'advisory'."
    )
    overlap: bool = Field(
        True,
        description="Start the steps that need nothing from staging (upstream approvals, security audit, operational readiness) "
        "when the protocol starts, beside the rehearsal; false runs every step in sequence when its gate needs it.",
    )


class RedactConfig(StrictModel):
    """Secret values to redact besides those of the environments' secret sources."""

    env_vars: list[str] = Field(default_factory=list, description="Names of environment variables whose values are redacted from everything written.")

    @field_validator("env_vars")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        return check_env_var_names(names)


class ProjectConfig(ServiceLookup, StrictModel):
    """The whole of predeploy.yaml."""

    version: Literal[1] = Field(description="Version of this file's format; must be 1.")
    project: str = Field(description="Name of the project being released (shown in reports).")
    previous_release: str | None = Field(
        None, description="Release that staging runs before the rehearsal and that rollback returns to; --predeploy-previous overrides it."
    )
    gates_dir: ConfigPath = Field(Path("gates"), description="Folder of the gate test modules (test_gateN_<name>.py).")
    target_environment: str = Field("production", description="The environment staging is compared against.")
    environments: dict[str, EnvironmentConfig] = Field(
        description="Environments by name; must include the rehearsal environment (default 'staging') and the target environment."
    )
    services: list[ServiceConfig] = Field(description="Services deployed and rolled back, in deployment order.", min_length=1)
    steps: StepsConfig = Field(default_factory=StepsConfig, description="The command of each scripted step.")
    approvals: ApprovalsConfig = Field(description="Upstream approvals checked by Gate 1.")
    gates: GateOptions = Field(default_factory=GateOptions, description="How gate outcomes are judged.")
    redact: RedactConfig = Field(default_factory=RedactConfig, description="Extra secret values to redact.")
    parity: ParityConfig = Field(default_factory=ParityConfig, description="Staging parity rules and waivers (Gate 1).")
    staging: LocalStagingConfig = Field(
        default_factory=LocalStagingConfig, description="The embedded local staging target used by the default deploy and rollback scripts."
    )
    smoke: SmokeConfig = Field(default_factory=SmokeConfig, description="Smoke and acceptance suites (Gate 2).")
    contract: ContractConfig = Field(
        default_factory=ContractConfig, description="The API contract check: breaking changes against the previous release (Gate 2)."
    )
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig, description="Observability baseline (Gate 2 guideline).")
    rollback: RollbackConfig = Field(default_factory=RollbackConfig, description="Rollback rehearsal targets (Gate 3).")
    security: SecurityConfig = Field(default_factory=SecurityConfig, description="Security and compliance audit policy (Gate 3).")
    operational: OperationalConfig = Field(default_factory=OperationalConfig, description="Runbooks, on-call and escalation (Gate 3 guideline).")
    package: PackageConfig = Field(default_factory=PackageConfig, description="The go/no-go package (Gate 4).")
    readiness: ReadinessConfig = Field(default_factory=ReadinessConfig, description="Readiness review sign-offs (Gate 4).")

    # Set by load_config, not part of the file.
    path: Path = Field(Path(DEFAULT_CONFIG), exclude=True, description="(set on load) The file this config came from.")
    digest: str = Field("", exclude=True, description="(set on load) sha256 of the config file's bytes.")

    @field_validator("services")
    @classmethod
    def _unique_services(cls, services: list[ServiceConfig]) -> list[ServiceConfig]:
        names = [service.name for service in services]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"service {duplicates[0]!r} is listed twice")
        return check_distinct_ports(services)

    @model_validator(mode="after")
    def _target_is_known(self) -> ProjectConfig:
        if self.target_environment not in self.environments:
            raise ValueError(f"target_environment {self.target_environment!r} is not one of environments: {', '.join(sorted(self.environments)) or '(none)'}")
        return self

    @model_validator(mode="after")
    def _prometheus_server_known(self) -> ProjectConfig:
        prometheus = self.observability.prometheus
        if prometheus is not None and prometheus.url is None and not self.staging.prometheus.enabled:
            raise ValueError(
                "observability.prometheus has no url: give the server's url, or set staging.prometheus.enabled: true to run one on the local staging target"
            )
        return self

    def environment(self, name: str) -> EnvironmentConfig:
        try:
            return self.environments[name]
        except KeyError:
            raise ConfigError(f"{self.path}: environment {name!r} is not defined; environments: {', '.join(sorted(self.environments))}") from None

    def secret_values(self) -> dict[str, str]:
        """Every secret value the run may meet, keyed ``<env>/<NAME>`` (for redaction only)."""
        import os

        # Here, not at the top: the files' readers are parity's, which loading the config does not need.
        from pytest_predeploy.intake.filesecrets import config_file_secrets

        values: dict[str, str] = {}
        for env_name, env in sorted(self.environments.items()):
            for name, value in load_secrets(env.secrets).items():
                values[f"{env_name}/{name}"] = value
            values.update(config_file_secrets(env_name, env, self.parity))
        for name in self.redact.env_vars:
            if os.environ.get(name):
                values[name] = os.environ[name]
        return values


def load_config(path: Path) -> ProjectConfig:
    """Load and validate ``path``; every problem becomes one :class:`ConfigError` listing them all."""
    path = Path(path)
    data, lines = load_yaml_file(path, "configuration file")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level (see docs/config-reference.md)")
    try:
        config = ProjectConfig.model_validate(data, context={"base_dir": path.resolve().parent})
    except ValidationError as exc:
        raise ConfigError(format_validation_errors(path, exc, lines)) from None
    config.path = path.resolve()
    config.digest = hashlib.sha256(path.read_bytes()).hexdigest()
    _anchor_defaults(config)
    return config


def check_gates_dir(config: ProjectConfig) -> Path:
    """The gates folder, when it holds gate modules; else a ConfigError naming it. A folder
    without them would run no test at all, which pytest reports only as "no tests ran"."""
    gates_dir = config.gates_dir
    if not gates_dir.is_dir():
        raise ConfigError(f"{config.path}: gates_dir {gates_dir} does not exist (run `predeploy init` to create the gate modules)")
    if not any(path.is_file() for path in gates_dir.glob("test_gate*.py")):
        raise ConfigError(
            f"{config.path}: gates_dir {gates_dir} holds no gate module (test_gate<N>_<name>.py); "
            "point gates_dir at the folder of the gate modules, or run `predeploy init` to create them"
        )
    return gates_dir


def _anchor_defaults(config: ProjectConfig) -> None:
    """Relative paths a user writes are resolved against the config's folder on validation;
    defaults are not validated, so the relative defaults are anchored here the same way."""

    def anchor(path: Path) -> Path:
        return path if path.is_absolute() else config.base_dir / path

    config.gates_dir = anchor(config.gates_dir)
    config.readiness.signers = anchor(config.readiness.signers)
    for _, step in config.steps.items():
        step.cwd = anchor(step.cwd)
    for env in config.environments.values():
        if env.refresh is not None:
            env.refresh.cwd = anchor(env.refresh.cwd)
