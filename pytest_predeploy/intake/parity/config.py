"""The parity section of predeploy.yaml and each environment's inputs: what to read, how to align
lists, which differences matter (rules, ignores, waivers) and which keys hold secrets.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import Field, field_validator, model_validator

from pytest_predeploy.core.fields import ByteSize, ConfigPath, Duration, ExistingFile, Severity, StrictModel, UtcDatetime
from pytest_predeploy.intake.parity.paths import PathGlob, _valid_glob, parse_exact_path
from pytest_predeploy.intake.secrets import (
    DEFAULT_SECRET_MAPPINGS,
    DEFAULT_SECRET_NAMES,
    SecretSource,
)

STEP = "parity"
SECTIONS = ("infrastructure", "configuration", "flags")
Section = Literal["infrastructure", "configuration", "flags"]
#: Parity inputs are configuration; a scalar this long is a mistake (or an attack), not a setting.
MAX_VALUE_CHARS = 1024 * 1024
ConfigKind = Literal["added", "removed", "changed", "type-changed"]


# -- configuration ---------------------------------------------------------------------------


class DatasetConfig(StrictModel):
    """A dataset, flag set or service stub that the refresh brings up to date."""

    name: str = Field(description="What is refreshed (e.g. 'orders fixture', 'feature flags', 'payments stub').")
    owner: str = Field(min_length=1, description="Who owns this data (named in staging-data-refresh.md).")
    description: str = Field("", description="Free text shown in the record.")


class RefreshConfig(StrictModel):
    """How an environment's test data and feature flags are refreshed before the rehearsal."""

    command: str | None = Field(
        None,
        description="Command that syncs the datasets, flag states and stubs, split like a shell line (no shell). Placeholders: {python}, {env}, {release}, {config}. Without it nothing is refreshed (a GUIDELINE miss).",
    )
    timeout: Duration = Field(timedelta(minutes=10), description="How long the refresh may run before its process group is stopped.")
    cwd: ConfigPath = Field(Path("."), description="Working folder of the command, relative to the config file.")
    owner: str = Field(min_length=1, description="Who owns the refresh as a whole.")
    datasets: list[DatasetConfig] = Field(default_factory=list, description="What the command refreshes, each with its owner.")


class CaptureConfig(StrictModel):
    """A command whose stdout (JSON or YAML mapping) is the environment's live state."""

    command: str = Field(
        description="Command printing the live state as JSON or YAML, split like a shell line (no shell). Placeholders: {python}, {env}, {config}."
    )
    section: Section = Field(
        "configuration",
        description="Which section the captured mapping is merged over (last, after the declared files): infrastructure, configuration or flags.",
    )
    timeout: Duration = Field(timedelta(minutes=2), description="How long the capture may run before its process group is stopped.")


class EnvironmentConfig(StrictModel):
    """One environment (staging, production ...): what parity compares and where its secrets are."""

    description: str = Field("", description="Free text shown in reports.")
    secrets: SecretSource | None = Field(None, description="Where this environment's secret values come from.")
    infrastructure: list[ExistingFile] = Field(
        default_factory=list,
        description="Infrastructure baseline files (YAML, JSON, TOML or .env), merged in order into the 'infrastructure' section. A YAML file with several documents (Kubernetes manifests) becomes a mapping of its documents keyed apiVersion/kind/namespace/name, or by position for documents that are not Kubernetes objects.",
    )
    configuration: list[ExistingFile] = Field(
        default_factory=list, description="Application configuration files (YAML, JSON, TOML or .env), merged in order into the 'configuration' section."
    )
    flags: list[ExistingFile] = Field(
        default_factory=list, description="Feature flag files (YAML, JSON, TOML or .env), merged in order into the 'flags' section."
    )
    capture: CaptureConfig | None = Field(None, description="Optional command whose stdout is the live state, merged over the declared files.")
    refresh: RefreshConfig | None = Field(None, description="Test data and feature flag refresh for this environment (step 1.3, GUIDELINE).")

    def declares_state(self) -> bool:
        return bool(self.infrastructure or self.configuration or self.flags or self.capture or self.secrets)


class SeverityRule(StrictModel):
    """Severity of the differences under a path glob; the first matching rule wins."""

    path: PathGlob = Field(description="Path glob, e.g. 'infrastructure.services[*].runtime' or 'configuration.database.**'. * is one segment, ** any number.")
    severity: Severity = Field(description="critical (blocks Gate 1), major, minor or info.")
    remediation: str = Field("", description="What to do about such a difference (shown in the report instead of the generic advice).")


def _changed_only() -> list[ConfigKind]:
    return ["changed"]


class IgnoreRule(StrictModel):
    """An expected difference (hostnames, replica counts): listed as ignored, never counted as drift."""

    path: PathGlob = Field(description="Path glob of the expected difference.")
    reason: str = Field(min_length=1, description="Why this difference is expected (shown in the report).")
    kinds: list[ConfigKind] = Field(
        default_factory=_changed_only,
        description="Which differences are expected: changed (default), type-changed, added (only in staging) and removed (production has it, staging lacks it). A key missing in staging is never ignored unless 'removed' is listed.",
    )


class DriftWaiver(StrictModel):
    """An accepted drift with an owner and an expiry; once expired the drift counts again."""

    id: str = Field(description="Waiver identifier (e.g. a ticket).")
    path: PathGlob = Field(description="Path glob of the waived drift (secrets are 'secrets.NAME').")
    owner: str = Field(min_length=1, description="Who owns the accepted risk.")
    justification: str = Field(min_length=1, description="Why the drift is accepted.")
    expires_at: UtcDatetime = Field(description="When the waiver stops applying (with a time zone).")


class SecretSeverities(StrictModel):
    """Severity of each secret finding."""

    reused: Severity = Field(Severity.critical, description="Staging holds the same value as production (credential reuse).")
    missing_in_source: Severity = Field(Severity.major, description="Production has the secret, staging does not.")
    missing_in_target: Severity = Field(Severity.major, description="Staging has the secret, production does not (provision it before the release).")
    weak: Severity = Field(
        Severity.major,
        description="A secret whose value is short (under 8 characters), one word of letters, only digits or a known placeholder (changeme, password ...): a placeholder committed as a credential. Such a value is redacted only where it stands as a whole token, so an image name like getsentry/sentry:24 is not shredded by the secret 'sentry'.",
    )


class ListKey(StrictModel):
    """How a list of mappings is matched up: by the value of one key of each element."""

    path: PathGlob = Field(description="Path glob of the list (e.g. 'infrastructure.services').")
    key: str = Field(description="The key identifying an element (e.g. 'name').")


def _default_list_keys() -> list[ListKey]:
    return [ListKey(path="**", key="name"), ListKey(path="**", key="id")]


class ParityConfig(StrictModel):
    """Parity rules and waivers (Gate 1 fails on any critical drift that is not waived)."""

    default_severity: Severity = Field(Severity.major, description="Severity of a difference no rule matches.")
    rules: list[SeverityRule] = Field(
        default_factory=list,
        description="Severity by path glob; the first matching rule wins. A node that is added, removed or changes type takes its children with it, so it gets the worst of: the first rule matching the node, every rule written under it ('infrastructure.database.*' covers 'infrastructure.database'), and the first rule matching each of its leaves on either side.",
    )
    ignore: list[IgnoreRule] = Field(default_factory=list, description="Expected differences, reported as ignored.")
    waivers: list[DriftWaiver] = Field(default_factory=list, description="Accepted drift with owner, justification and expiry.")
    list_keys: list[ListKey] = Field(
        default_factory=_default_list_keys,
        description="Lists of mappings are compared element by element using the first rule whose path matches and whose key every element has (paths read [name=api]). Other lists of mappings are aligned by content (a shortest edit script over element fingerprints, bounded: see docs/parity.md), so one inserted element is one added item and a modified one is paired with its counterpart; their paths read [3], staging's position, or production's for a removed element.",
    )
    secret_names: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SECRET_NAMES),
        description="Key names whose values are secret: never shown (at any depth, also inside an added, removed or retyped parent), and a value equal in both environments is reported as REUSED. A key is split into lower-case words whatever its case style (adminPassword, admin_password and ADMIN-PASSWORD all read 'admin password') and is secret when its words end with one of these names, so password_min_length, token_ttl and AWS_ACCESS_KEY_ID are not. Setting this list replaces the defaults: "
        + ", ".join(DEFAULT_SECRET_NAMES)
        + ".",
    )
    secret_mappings: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SECRET_MAPPINGS),
        description="Key names (matched as words, like secret_names) of mappings whose every value is secret, whatever the children are called. Setting this list replaces the defaults.",
    )
    secret_paths: list[str] = Field(
        default_factory=list,
        description="More secrets by path glob (case-insensitive), in addition to secret_names and secret_mappings, e.g. 'configuration.sentry.dsn'.",
    )
    not_secret_paths: list[str] = Field(
        default_factory=lambda: ["**.existingSecret", "**.existing_secret", "**.existing-secret"],
        description="Exceptions: path globs (case-insensitive) never treated as secret although their name says so, e.g. Helm's existingSecret, which holds the name of a Kubernetes Secret. An exception covers the path it matches; write 'path.**' for a whole subtree.",
    )
    secrets: SecretSeverities = Field(default_factory=SecretSeverities, description="Severity of secret findings.")
    required_flags: dict[str, bool | int | float | str] = Field(
        default_factory=dict,
        description="Feature flags this release requires in staging: flag path inside the flags section -> required state. A different or missing state is critical drift.",
    )
    max_input_size: ByteSize = Field(
        64 * 1024 * 1024,
        description="Largest baseline or environment file read for the comparison (e.g. '64MiB'); each is parsed in full, so a bigger one is refused before it is read.",
    )

    max_report_items: int = Field(
        5000,
        ge=1,
        description="Most items the report lists (blocking and most severe first); the rest are counted in the summary and in a '... N more' note, so a huge baseline cannot write a huge report. Each item's shown values are bounded too (300 characters a string, 20 entries a level, 4 levels, about 4,000 characters a value).",
    )

    max_report_bytes: ByteSize = Field(
        16 * 1024 * 1024,
        description="Most bytes the report's items may take (e.g. '16MiB'): items are listed, blocking and most severe first, until the next would pass it; the rest are counted in the summary and in a '... N more' note, like those past max_report_items. Each shown value is bounded, so this bites only when thousands of items show large values.",
    )

    @field_validator("secret_paths", "not_secret_paths")
    @classmethod
    def _globs(cls, value: list[str]) -> list[str]:
        for pattern in value:
            _valid_glob(pattern)
        return value

    @field_validator("required_flags")
    @classmethod
    def _flag_paths(cls, value: dict[str, Any]) -> dict[str, Any]:
        for path in value:
            parse_exact_path(path)
        return value

    @model_validator(mode="after")
    def _unique_waivers(self) -> ParityConfig:
        ids = [waiver.id for waiver in self.waivers]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"waiver id {twice[0]!r} is used twice")
        return self


# -- what parity needs from the project -------------------------------------------------------


class ParityProject(Protocol):
    """What reading environments and comparing them needs from the project's configuration
    (the root config satisfies it; the parity code never sees the rest of it)."""

    @property
    def path(self) -> Path: ...

    @property
    def base_dir(self) -> Path: ...

    @property
    def parity(self) -> ParityConfig: ...

    def environment(self, name: str) -> EnvironmentConfig: ...

    def secret_values(self) -> dict[str, str]: ...
