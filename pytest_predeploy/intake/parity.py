"""Staging parity (Protocol 10, step 1.2): compare staging's infrastructure, configuration,
feature flags and secrets with the production baseline and classify every difference.

Each environment declares its state as files (YAML, JSON, TOML, ``.env``; several per section,
merged in order) and optionally a ``capture`` command whose stdout is the live state, so parity
compares what runs and not only what is declared. The three sections become the top of one tree
(``infrastructure.*``, ``configuration.*``, ``flags.*``); rules, ignores and waivers address it by
path glob. Secrets are compared by HMAC-SHA256 under a random key that lives only in this process:
no value, hash or length of a secret is ever written.

Speed matters because baselines can be large (tens of MB of manifests): parsing is the floor, so YAML is
read with libyaml through a lean resolver/constructor, and the comparison walks both trees once.
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import json
import math
import re
import secrets as _secrets
import shlex
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from difflib import SequenceMatcher
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import yaml
from pydantic import AfterValidator, Field, field_validator, model_validator
from yaml.nodes import MappingNode, ScalarNode

from pytest_predeploy.core.artifacts import ArtifactModel
from pytest_predeploy.core.errors import ConfigError, StepError
from pytest_predeploy.core.fields import ByteSize, ConfigPath, Duration, ExistingFile, Severity, StrictModel, UtcDatetime, utcnow
from pytest_predeploy.core.redact import Redactor
from pytest_predeploy.core.runner import run_command
from pytest_predeploy.core.yamlfile import read_text_file, yaml_error
from pytest_predeploy.intake.secrets import (
    DEFAULT_SECRET_MAPPINGS,
    DEFAULT_SECRET_NAMES,
    SecretNames,
    SecretSource,
    assignment_secret,
    load_secrets,
    parse_env_text,
)

STEP = "parity"
SECTIONS = ("infrastructure", "configuration", "flags")
Section = Literal["infrastructure", "configuration", "flags"]
#: Parity inputs are configuration; a scalar this long is a mistake (or an attack), not a setting.
MAX_VALUE_CHARS = 1024 * 1024
#: How much of a value a report item shows.
_SHOW_CHARS = 300
_SHOW_ITEMS = 20

Kind = Literal["added", "removed", "changed", "type-changed", "secret", "required-flag"]
ConfigKind = Literal["added", "removed", "changed", "type-changed"]
ItemStatus = Literal["drift", "waiver-expired", "waived", "ignored"]


# -- paths and globs -------------------------------------------------------------------------
#
# A path is a tuple of mapping keys and list positions. Written out, keys join with dots, keys
# that could be misread (dots, brackets, quotes, wildcards) are quoted as ["k.e.y"], and list
# items read [name=api] (lists of mappings compared by key) or [3] (by index). Globs use the
# same syntax with * (within one segment), ? and ** (any number of segments).


@dataclass(frozen=True, slots=True)
class ListPos:
    """A list element inside a path: ``[3]`` (``key`` None) or ``[name=api]``. Rendered only
    when a difference is reported, so walking equal lists stays cheap."""

    key: str | None
    ident: Any

    @property
    def text(self) -> str:
        return f"[{self.ident}]" if self.key is None else f"[{self.key}={_ident_text(self.ident)}]"


_SEP = "\x1f"  # joins segments for glob matching; never meaningful in a configuration key
_PLAIN_KEY = re.compile(r'[^.\[\]"*?\x1f\s][^.\[\]"*?\x1f]*')


def _segment_text(segment: object) -> str:
    if isinstance(segment, ListPos):
        return segment.text
    if isinstance(segment, str):
        return segment
    return f"<{type(segment).__name__}:{segment}>"


def render_path(path: tuple[Any, ...]) -> str:
    """``("configuration", "log.level")`` -> ``configuration["log.level"]``."""
    out: list[str] = []
    for segment in path:
        text = _segment_text(segment)
        if isinstance(segment, ListPos):
            out.append(text)
        elif _PLAIN_KEY.fullmatch(text) and not text.endswith(" "):
            out.append(("." if out else "") + text)
        else:
            out.append("[" + json.dumps(text, ensure_ascii=False) + "]")
    return "".join(out)


def _match_text(path: tuple[Any, ...]) -> str:
    return _SEP.join(_segment_text(segment) for segment in path)


def _tokens(pattern: str) -> list[tuple[str, str]]:
    """Split a path or glob into ("glob"|"literal", text) segments; ValueError names the problem."""
    tokens: list[tuple[str, str]] = []
    buf = ""
    i = 0
    after_bracket = False
    while i < len(pattern):
        char = pattern[i]
        if char == ".":
            if buf:
                tokens.append(("glob", buf))
                buf = ""
            elif not after_bracket:
                raise ValueError(f"empty segment at character {i + 1} of {pattern!r}")
            after_bracket = False
            i += 1
        elif char == "[":
            if buf:
                tokens.append(("glob", buf))
                buf = ""
            if pattern.startswith('["', i):
                try:
                    key, end = json.JSONDecoder().raw_decode(pattern, i + 1)
                except json.JSONDecodeError:
                    raise ValueError(f"unterminated quoted key at character {i + 1} of {pattern!r}") from None
                if pattern[end : end + 1] != "]":
                    raise ValueError(f"expected ] after the quoted key at character {end + 1} of {pattern!r}")
                tokens.append(("literal", key))
                i = end + 1
            else:
                end = pattern.find("]", i)
                if end < 0:
                    raise ValueError(f"unclosed [ at character {i + 1} of {pattern!r}")
                tokens.append(("glob", pattern[i : end + 1]))
                i = end + 1
            after_bracket = True
        else:
            buf += char
            i += 1
    if buf:
        tokens.append(("glob", buf))
    elif pattern.endswith(".") or not tokens:
        raise ValueError(f"empty segment at the end of {pattern!r}")
    return tokens


def _segment_regex(kind: str, text: str) -> str:
    if kind == "literal":
        return re.escape(text)
    return "".join(f"[^{_SEP}]*" if c == "*" else f"[^{_SEP}]" if c == "?" else re.escape(c) for c in text)


@lru_cache(maxsize=1024)
def compile_glob(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """A path glob as a regex over ``_match_text(path)``; ``**`` matches zero or more segments."""
    parts: list[str] = []
    need_sep = False
    for kind, text in _tokens(pattern):
        if kind == "glob" and text == "**":
            parts.append(f"(?:{_SEP}[^{_SEP}]*)*" if need_sep else f"(?:[^{_SEP}]*{_SEP})*")
            # After a leading ** the next segment follows directly (the group ate the separator).
            continue
        parts.append((_SEP if need_sep else "") + _segment_regex(kind, text))
        need_sep = True
    regex = "".join(parts)
    if regex == f"(?:[^{_SEP}]*{_SEP})*":  # a lone "**" matches everything
        regex = ".*"
    return re.compile(regex, re.IGNORECASE if ignore_case else 0)


def parse_exact_path(path: str) -> tuple[str, ...]:
    """A path without wildcards or list positions (required flags name one key each)."""
    segments = []
    for kind, text in _tokens(path):
        if kind == "glob" and (any(c in text for c in "*?") or text.startswith("[")):
            raise ValueError(f"{path!r} must name one key: no wildcards or list positions")
        segments.append(text)
    return tuple(segments)


def _valid_glob(value: str) -> str:
    compile_glob(value)
    return value


PathGlob = Annotated[str, AfterValidator(_valid_glob)]


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


class IgnoreRule(StrictModel):
    """An expected difference (hostnames, replica counts): listed as ignored, never counted as drift."""

    path: PathGlob = Field(description="Path glob of the expected difference.")
    reason: str = Field(min_length=1, description="Why this difference is expected (shown in the report).")
    kinds: list[ConfigKind] = Field(
        default_factory=lambda: ["changed"],
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
        description="Lists of mappings are compared element by element using the first rule whose path matches and whose key every element has (paths read [name=api]). Other lists of mappings are aligned by content (longest common subsequence), so one inserted element is one added item; their paths read [3], staging's position, or production's for a removed element.",
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


# -- reading inputs --------------------------------------------------------------------------


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


@contextmanager
def _no_gc() -> Iterator[None]:
    """Parsed trees are acyclic, so the cycle collector only burns time on their millions of
    fresh containers while they are built (it doubled parse time on large baselines)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_MERGE = "tag:yaml.org,2002:merge"
_IMPLICIT = {first: tuple(resolvers) for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


class _Unreadable(Exception):
    """A YAML problem at a line; the message never contains a value."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


class _FastLoader(yaml.CSafeLoader):  # type: ignore[misc, name-defined]
    """libyaml's parser with a lean resolver and constructor. Same results as CSafeLoader for
    the safe schema; duplicate keys are an error; no path resolvers (SafeLoader has none)."""

    def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode:
            if implicit[0]:
                for tag, regexp in _IMPLICIT.get(value[:1], ()):
                    if regexp.match(value):
                        return tag
            return _STR
        return _MAP if kind is MappingNode else _SEQ

    def descend_resolver(self, current_node: object, current_index: object) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None

    def load_documents(self) -> list[tuple[int, Any]]:
        """Every document of the stream with the line it starts on; empty documents are left out."""
        documents = []
        while self.check_node():
            node = self.get_node()
            value = self._build(node)
            if value is not None:
                documents.append((node.start_mark.line + 1, value))
        return documents

    def _build(self, node: yaml.Node) -> Any:
        memo: dict[int, Any] = {}
        building: set[int] = set()
        construct = self.construct_object
        bools = self.bool_values

        def scalar(node: ScalarNode) -> Any:
            tag = node.tag
            if tag == _STR:
                value = node.value
                if len(value) > MAX_VALUE_CHARS:
                    raise _Unreadable(node.start_mark.line + 1, f"a value longer than {MAX_VALUE_CHARS} characters (parity inputs are configuration, not data)")
                return value
            if tag == _NULL:
                return None
            if tag == _BOOL:
                return bools[node.value.lower()]
            try:
                return construct(node, deep=True)
            except (ValueError, TypeError, OverflowError, yaml.YAMLError):
                raise _Unreadable(node.start_mark.line + 1, f"a value that cannot be read as {tag.rsplit(':', 1)[-1]}") from None

        def build(node: yaml.Node) -> Any:
            if node.__class__ is ScalarNode:
                return scalar(node)
            ident = id(node)
            if ident in memo:
                return memo[ident]
            if ident in building:
                raise _Unreadable(node.start_mark.line + 1, "an alias that contains itself")
            building.add(ident)
            if node.__class__ is MappingNode:
                if node.tag != _MAP:
                    raise _Unreadable(node.start_mark.line + 1, f"unsupported tag {node.tag} (only plain mappings, lists and scalars)")
                data = mapping(node)
            else:
                if node.tag != _SEQ:
                    raise _Unreadable(node.start_mark.line + 1, f"unsupported tag {node.tag} (only plain mappings, lists and scalars)")
                data = [build(item) for item in node.value]
            building.discard(ident)
            memo[ident] = data
            return data

        def mapping(node: MappingNode) -> dict[Any, Any]:
            pairs = node.value
            merged = 0
            if any(key.tag == _MERGE for key, _ in pairs):
                explicit = len(pairs) - sum(key.tag == _MERGE for key, _ in pairs)
                self.flatten_mapping(node)  # YAML merge keys (<<): merged pairs first, explicit win
                pairs = node.value
                merged = len(pairs) - explicit
            data: dict[Any, Any] = {}
            try:
                for key_node, value_node in pairs:
                    data[build(key_node)] = build(value_node)
            except TypeError:
                raise _Unreadable(node.start_mark.line + 1, "a mapping key that is a list or mapping") from None
            if len(data) != len(pairs):
                seen: dict[Any, int] = {}
                for key_node, _ in pairs[merged:]:
                    key = build(key_node)
                    line = key_node.start_mark.line + 1
                    if key in seen:
                        raise _Unreadable(line, f"duplicate key {_segment_text(key)!r} (first defined on line {seen[key]})")
                    seen[key] = line
            return data

        try:
            return build(node)
        except RecursionError:
            raise _Unreadable(node.start_mark.line + 1, "nesting too deep") from None


def parse_yaml_fast(text: str | bytes, origin: str) -> Any:
    """Parse YAML with libyaml; errors name ``origin`` and a line, never a value. A stream of
    several documents (``---``), or one Kubernetes object, becomes one mapping of its documents:
    see ``by_document``."""
    loader = _FastLoader(text)
    try:
        with _no_gc():
            documents = loader.load_documents()
    except _Unreadable as exc:
        raise ConfigError(f"{origin}:{exc.line}: {exc}") from None
    except yaml.YAMLError as exc:
        raise yaml_error(exc, origin) from None
    finally:
        loader.dispose()
    return by_document(documents, origin)


def kubernetes_identity(document: Any) -> str | None:
    """``apiVersion/kind/namespace/name`` of a Kubernetes object (namespace empty when the
    object has none: ``v1/Namespace//shop``); None for anything else."""
    if not isinstance(document, dict):
        return None
    api, kind, metadata = document.get("apiVersion"), document.get("kind"), document.get("metadata")
    if not (isinstance(api, str) and isinstance(kind, str) and isinstance(metadata, dict) and isinstance(metadata.get("name"), str)):
        return None
    namespace = metadata.get("namespace")
    return f"{api}/{kind}/{namespace if isinstance(namespace, str) else ''}/{metadata['name']}"


#: The fields of a Kubernetes Secret that hold its values, whatever their keys are called.
_SECRET_DATA = frozenset({"data", "stringData"})
#: A mapping that names a setting under one of these keys (a Kubernetes or ECS environment
#: variable: {name: DB_PASSWORD, value: ...}) holds a secret when the name says so: every other
#: entry is hidden, and an equal ``value`` is reuse.
_PAIR_NAMES = frozenset({"name", "key"})
_PAIR_VALUES = frozenset({"value"})


def secret_pair(mapping: Any, names: SecretNames, other: Any = None) -> bool:
    """``mapping`` (or ``other``, the same mapping on the other side) names a secret setting:
    ``{name: DB_PASSWORD, value: ...}``."""
    if mapping.__class__ is not dict:
        return False
    for key in _PAIR_NAMES:
        name = mapping.get(key)
        if name.__class__ is str and names.is_secret(name):
            return True
        if other.__class__ is dict:
            name_b = other.get(key)
            if name_b != name and name_b.__class__ is str and names.is_secret(name_b):
                return True
    return False


def is_secret_object(key: object) -> bool:
    """``key`` is the identity of a Kubernetes Secret (``v1/Secret/shop/db``)."""
    return isinstance(key, str) and "/Secret/" in key and key.split("/")[-3:-2] == ["Secret"] and key.count("/") >= 3


def by_document(documents: list[tuple[int, Any]], origin: str) -> Any:
    """One YAML file's documents as one tree. A single document that is not a Kubernetes object
    is itself; otherwise each document is keyed by its Kubernetes identity, or by its position
    among the file's non-empty documents ("0", "1" ...) when it is not a Kubernetes object, so
    reordering manifests changes nothing and an added object is one item."""
    if not documents:
        return None
    if len(documents) == 1 and kubernetes_identity(documents[0][1]) is None:
        return documents[0][1]
    tree: dict[str, Any] = {}
    first: dict[str, int] = {}
    for index, (line, document) in enumerate(documents):
        key = kubernetes_identity(document) or str(index)
        if key in tree:
            raise ConfigError(f"{origin}:{line}: a second document for {key} (the first starts on line {first[key]}); each object may appear once")
        tree[key], first[key] = document, line
    return tree


def _json_pairs(origin: str) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        data = dict(pairs)
        if len(data) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    raise ConfigError(f"{origin}: duplicate key {key!r}")
                seen.add(key)
        return data

    return hook


def parse_json(text: str, origin: str) -> Any:
    try:
        with _no_gc():
            return json.loads(text, object_pairs_hook=_json_pairs(origin))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{origin}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise ConfigError(f"{origin}: invalid JSON: nesting too deep") from None


def _check_sizes(data: Any, origin: str) -> None:
    """Refuse an oversized string anywhere in ``data`` (YAML checks this while parsing)."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if len(item) > MAX_VALUE_CHARS:
                raise ConfigError(f"{origin}: a value longer than {MAX_VALUE_CHARS} characters (parity inputs are configuration, not data)")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def input_format(path: Path) -> str:
    name = path.name.lower()
    if name == ".env" or name.startswith(".env.") or name.endswith(".env"):
        return "env"
    suffix = path.suffix.lower()
    formats = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".toml": "toml"}
    if suffix not in formats:
        raise ConfigError(f"{path}: unknown format; parity inputs are .yaml, .yml, .json, .toml or .env files")
    return formats[suffix]


def parse_document(text: str, fmt: str, origin: str) -> Any:
    if fmt == "yaml":
        return parse_yaml_fast(text, origin)
    if fmt == "json":
        data = parse_json(text, origin)
    elif fmt == "toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{origin}: invalid TOML: {exc}") from None
    else:
        data = parse_env_text(text, origin)
    if len(text) > MAX_VALUE_CHARS:
        _check_sizes(data, origin)
    return data


def load_input_file(path: Path, max_bytes: int | None = None) -> tuple[dict[Any, Any], str]:
    """One input file -> (mapping, sha256 of its bytes); bigger than ``max_bytes``: refused unread."""
    fmt = input_format(path)
    text = read_text_file(path, f"{fmt} file", max_bytes, "parity.max_input_size")
    data = parse_document(text, fmt, str(path))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, found a {_type_name(data)}")
    return data, hashlib.sha256(text.encode("utf-8")).hexdigest()


def merge(base: dict[Any, Any], over: Mapping[Any, Any]) -> dict[Any, Any]:
    """Deep-merge ``over`` into a copy of ``base``: mappings merge, anything else is replaced."""
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        out[key] = merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return out


class InputRecord(StrictModel):
    """One input of the comparison."""

    environment: str = Field(description="The environment it describes.")
    section: str = Field(description="infrastructure, configuration, flags or secrets.")
    source: str = Field(description="The file, or 'capture: <command>' for live state, or the secret source.")
    sha256: str | None = Field(description="sha256 of the input's bytes; null for secret sources, which are never hashed.")


@dataclass
class EnvironmentState:
    """What one environment looks like: the merged tree and its secrets (in memory only)."""

    name: str
    tree: dict[str, Any]
    inputs: list[InputRecord]
    secrets: dict[str, str] = field(repr=False)


Capture = Callable[[str, str], bytes]


def _capture_argv(config: ParityProject, env_name: str, command: str) -> list[str]:
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"{config.path}: environments.{env_name}.capture.command: {exc}") from None
    values = {"python": sys.executable, "env": env_name, "config": str(config.path)}
    try:
        return [word.format(**values) for word in words]
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"{config.path}: environments.{env_name}.capture.command: unknown placeholder {exc}; allowed: {{python}}, {{env}}, {{config}}"
        ) from None


def run_capture(config: ParityProject, env_name: str, transcripts: Path | None) -> bytes:
    """Run an environment's capture command in its own process group; stdout is the live state.
    Its redacted transcript is kept under ``transcripts`` when given."""
    capture = config.environment(env_name).capture
    assert capture is not None
    argv = _capture_argv(config, env_name, capture.command)
    with tempfile.TemporaryDirectory() as scratch:
        folder = transcripts or Path(scratch)
        result = run_command(
            argv,
            step=STEP,
            label=f"capture-{env_name}",
            transcript=folder / f"{STEP}-capture-{env_name}.log",
            timeout=capture.timeout.total_seconds(),
            cwd=config.base_dir,
            redactor=Redactor(config.secret_values()),
            capture=True,
        )
    if not result.ok:
        kept = f" (transcript: {result.transcript})" if transcripts else ""
        raise StepError(f"environment {env_name!r}: capture command {argv[0]} {result.describe()}{kept}")
    return result.stdout


def _load_capture(config: ParityProject, name: str, capture: Capture | None, transcripts: Path | None) -> tuple[dict[Any, Any], InputRecord]:
    env = config.environment(name)
    assert env.capture is not None
    origin = f"environments.{name}.capture stdout"
    raw = capture(name, env.capture.command) if capture is not None else run_capture(config, name, transcripts)
    if b"\0" in raw:
        raise StepError(f"{origin}: binary output, expected JSON or YAML")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StepError(f"{origin}: not UTF-8 (invalid byte at offset {exc.start})") from None
    data = parse_document(text, "json" if text.lstrip()[:1] in ("{", "[") else "yaml", origin)
    if not isinstance(data, dict):
        raise StepError(f"{origin}: expected a mapping, found a {_type_name(data)}")
    record = InputRecord(environment=name, section=env.capture.section, source=f"capture: {env.capture.command}", sha256=hashlib.sha256(raw).hexdigest())
    return data, record


def load_section(
    config: ParityProject, name: str, section: str, capture: Capture | None = None, transcripts: Path | None = None
) -> tuple[dict[Any, Any] | None, list[InputRecord]]:
    """One section of an environment: its files merged in order, then the live capture over them
    when the capture targets this section. None when the environment declares nothing for it."""
    env: EnvironmentConfig = config.environment(name)
    merged: dict[Any, Any] | None = None
    inputs: list[InputRecord] = []
    for path in getattr(env, section):
        data, digest = load_input_file(path, config.parity.max_input_size)
        merged = data if merged is None else merge(merged, data)
        inputs.append(InputRecord(environment=name, section=section, source=_display(path, config.base_dir), sha256=digest))
    if env.capture is not None and env.capture.section == section:
        data, record = _load_capture(config, name, capture, transcripts)
        merged = merge(merged or {}, data)
        inputs.append(record)
    return merged, inputs


def load_environment(config: ParityProject, name: str, capture: Capture | None = None, transcripts: Path | None = None) -> EnvironmentState:
    """Read every input of environment ``name`` and merge it into one tree."""
    env: EnvironmentConfig = config.environment(name)
    if not env.declares_state():
        raise ConfigError(
            f"{config.path}: environments.{name}: declares nothing to compare; add infrastructure, configuration or flags files, a capture command or secrets"
        )
    tree: dict[str, Any] = {}
    inputs: list[InputRecord] = []
    for section in SECTIONS:
        data, records = load_section(config, name, section, capture, transcripts)
        if data is not None:
            tree[section] = data
        inputs += records
    values = load_secrets(env.secrets)
    if env.secrets is not None:
        where = [_display(env.secrets.file, config.base_dir)] if env.secrets.file else []
        where += [f"${var}" for var in env.secrets.env_vars]
        inputs.append(InputRecord(environment=name, section="secrets", source=", ".join(where) or "(none)", sha256=None))
    return EnvironmentState(name=name, tree=tree, inputs=inputs, secrets=values)


def _display(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


# -- the comparison --------------------------------------------------------------------------

_MISSING = object()
ADDED, REMOVED, CHANGED, TYPE_CHANGED = "added", "removed", "changed", "type-changed"
RawDiff = tuple[str, tuple[Any, ...], Any, Any]


class Differ:
    """Walks two trees once; every leaf is compared with its type (1, 1.0 and true differ)."""

    def __init__(self, list_keys: list[ListKey], names: SecretNames | None = None, secret_glob_key: re.Pattern[str] | None = None) -> None:
        self._list_keys = [(compile_glob(rule.path), rule.key) for rule in list_keys]
        self.out: list[RawDiff] = []
        #: (path, value) of equal scalars (not null, booleans or empty strings) under a key whose
        #: name says secret, inside a mapping of secrets, or whose last segment a secret glob may
        #: match: the reuse candidates, confirmed by the policy.
        self.equal_secrets: list[tuple[tuple[Any, ...], Any]] = []
        self._names = names
        self._glob_key = secret_glob_key
        # Keys repeat across a baseline: each distinct key is classified once, and a mapping's
        # secret keys are found by one set intersection, so the hot loop below pays nothing for
        # secrets in the common case (a mapping without any).
        self._seen_keys: set[Any] = set()
        self._secret_keys: set[Any] = set()
        self._holding_keys: set[Any] = set()
        #: Paths of equal ``NAME=value`` list elements whose NAME says secret.
        self.assignments: set[tuple[Any, ...]] = set()
        #: Paths of mappings that name a secret (``{name: DB_PASSWORD, value: ...}``) on either side.
        self.secret_pairs: set[tuple[Any, ...]] = set()

    def diff(self, a: Any, b: Any, path: tuple[Any, ...] = ()) -> list[RawDiff]:
        self._value(a, b, path, False)
        return self.out

    def _classify_keys(self, keys: Any) -> None:
        names, glob_key = self._names, self._glob_key
        for key in keys:
            holds = names is not None and names.holds_secrets(key)
            if holds:
                self._holding_keys.add(key)
            if holds or (names is not None and names.is_secret(key)) or (glob_key is not None and glob_key.fullmatch(_segment_text(key))):
                self._secret_keys.add(key)
        self._seen_keys.update(keys)

    def _value(self, a: Any, b: Any, path: tuple[Any, ...], under: bool) -> None:
        cls = a.__class__
        if cls is not b.__class__:
            self.out.append((TYPE_CHANGED, path, a, b))
        elif cls is dict:
            self._dicts(a, b, path, under)
        elif cls is list:
            self._lists(a, b, path, under)
        elif a != b and not (cls is float and a != a and b != b):
            self.out.append((CHANGED, path, a, b))
        elif under and a is not None and cls is not bool and a != "":
            self.equal_secrets.append((path, a))

    def _dicts(self, a: dict[Any, Any], b: dict[Any, Any], path: tuple[Any, ...], under: bool = False) -> None:
        # The hot loop of the comparison: locals only, and the common case (equal scalars of one
        # type) leaves after three tests.
        out = self.out
        get = b.get
        keys = a.keys()
        if self._names is not None or self._glob_key is not None:
            if not self._seen_keys.issuperset(keys):
                self._classify_keys(keys - self._seen_keys)
            secret = keys & self._secret_keys if self._secret_keys else None
            holding = keys & self._holding_keys if secret else None
        else:
            secret = holding = None
        if path and is_secret_object(path[-1]):
            # A Kubernetes Secret's data and stringData hold secrets under any key names.
            holding = (holding or set()) | (keys & _SECRET_DATA)
            secret = (secret or set()) | holding
        if self._names is not None and not (keys.isdisjoint(_PAIR_NAMES) and b.keys().isdisjoint(_PAIR_NAMES)) and secret_pair(a, self._names, b):
            # {name: DB_PASSWORD, value: ...}: the name says what the value is.
            self.secret_pairs.add(path)
            secret = (secret or set()) | (keys & _PAIR_VALUES)
        shared = 0
        for key, va in a.items():
            vb = get(key, _MISSING)
            if vb is _MISSING:
                out.append((ADDED, (*path, key), va, _MISSING))
                continue
            shared += 1
            cls = va.__class__
            if cls is not vb.__class__:
                out.append((TYPE_CHANGED, (*path, key), va, vb))
            elif cls is dict:
                self._dicts(va, vb, (*path, key), under or bool(holding and key in holding))
            elif cls is list:
                # The elements of a list under a secret name are each secret.
                self._lists(va, vb, (*path, key), under or bool(secret and key in secret))
            elif va != vb:
                if not (cls is float and va != va and vb != vb):
                    out.append((CHANGED, (*path, key), va, vb))
            elif (under or (secret and key in secret)) and va is not None and cls is not bool and va != "":
                self.equal_secrets.append(((*path, key), va))
        if shared < len(b):
            out.extend((REMOVED, (*path, key), _MISSING, vb) for key, vb in b.items() if key not in a)

    def _lists(self, a: list[Any], b: list[Any], path: tuple[Any, ...], under: bool) -> None:
        types_a, types_b = list(map(type, a)), list(map(type, b))
        if _CONTAINERS.isdisjoint(types_a) and _CONTAINERS.isdisjoint(types_b):
            # Lists of scalars are one value: [a, b] vs [b, a] is a change of that value.
            changed = types_a != types_b or (a != b and not all(map(_same_scalar, a, b)))
            if changed:
                self.out.append((CHANGED, path, a, b))
            if under and a:
                if not changed:
                    self.equal_secrets.append((path, a))
            elif self._names is not None and str in types_a and (types_a.count(str) < len(a) or "=" in "\x00".join(a)):
                # NAME=value lines (a compose file's environment list) hold secrets by NAME; one
                # present in both lists is reused even when other lines differ.
                in_b = {text for text in b if text.__class__ is str} if changed else None
                for index, text in enumerate(a):
                    if text.__class__ is str and "=" in text and (in_b is None or text in in_b) and assignment_secret(text, self._names):
                        where = (*path, ListPos(None, index))
                        self.assignments.add(where)
                        self.equal_secrets.append((where, text))
            return
        key = self._key_for(path, a, b)
        if key is None:
            self._aligned(a, b, path, under)
            return
        by_a = {item[key]: item for item in a}
        by_b = {item[key]: item for item in b}
        for ident, va in by_a.items():
            pos = (*path, ListPos(key, ident))
            vb = by_b.get(ident, _MISSING)
            if vb is _MISSING:
                self.out.append((ADDED, pos, va, _MISSING))
            else:
                self._dicts(va, vb, pos, under)
        for ident, vb in by_b.items():
            if ident not in by_a:
                self.out.append((REMOVED, (*path, ListPos(key, ident)), _MISSING, vb))

    def _aligned(self, a: list[Any], b: list[Any], path: tuple[Any, ...], under: bool) -> None:
        """Lists without an identifying key, aligned by the longest common subsequence of their
        elements (difflib), so one step inserted into a workflow is one added item, not a change
        of every later step and a false removal at the end. Elements present on both sides (and
        paired elements of a replaced run) carry the source's index; removed ones the target's."""
        fa, fb = list(map(_fingerprint, a)), list(map(_fingerprint, b))
        opcodes = [("equal", 0, len(a), 0, len(b))] if fa == fb else SequenceMatcher(None, fa, fb, autojunk=False).get_opcodes()
        out = self.out
        for tag, i1, i2, j1, j2 in opcodes:
            paired = min(i2 - i1, j2 - j1) if tag in ("equal", "replace") else 0
            for offset in range(paired):
                # Equal pairs are walked too: their secrets may be reused.
                self._value(a[i1 + offset], b[j1 + offset], (*path, ListPos(None, i1 + offset)), under)
            out.extend((ADDED, (*path, ListPos(None, i)), a[i], _MISSING) for i in range(i1 + paired, i2))
            out.extend((REMOVED, (*path, ListPos(None, j)), _MISSING, b[j]) for j in range(j1 + paired, j2))

    def _key_for(self, path: tuple[Any, ...], a: list[Any], b: list[Any]) -> str | None:
        text: str | None = None
        for regex, key in self._list_keys:
            if regex.pattern != ".*":  # "**" matches every list: no need to spell the path
                text = _match_text(path) if text is None else text
                if not regex.fullmatch(text):
                    continue
            if _keyed(a, key) and _keyed(b, key):
                return key
        return None


_CONTAINERS = frozenset({dict, list})


def _fingerprint(value: Any) -> Any:
    """A hashable stand-in for ``value`` that is equal exactly when the differ finds no
    difference (types matter, key order does not, NaN equals NaN)."""
    cls = value.__class__
    if cls is dict:
        return (dict, frozenset((key, _fingerprint(item)) for key, item in value.items()))
    if cls is list:
        return (list, tuple(map(_fingerprint, value)))
    if cls is float and value != value:
        return (float, "nan")
    if cls is bytearray:
        return (cls, bytes(value))
    return (cls, value)


def _same_scalar(a: Any, b: Any) -> bool:
    return a == b or (a != a and b != b)  # NaN equals NaN here


def _keyed(items: list[Any], key: str) -> bool:
    """Every element is a mapping with a distinct, hashable scalar ``key``."""
    idents = []
    for item in items:
        if item.__class__ is not dict or key not in item or isinstance(item[key], (dict, list)):
            return False
        idents.append(item[key])
    return len(set(idents)) == len(idents)


def _ident_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if re.fullmatch(r"[^\]\x1f\"]+", text) else json.dumps(text, ensure_ascii=False)


# -- the report ------------------------------------------------------------------------------


class ParityValue(StrictModel):
    """A value as shown in the report: its type, and the value unless it is secret."""

    type: str = Field(description="null, bool, int, float, str, list, mapping, date, datetime, binary ...")
    value: Any = Field(None, description="The value (JSON), shortened when long; null when redacted.")
    redacted: bool = Field(False, description="True when the value is a secret and is not shown.")
    truncated: bool = Field(False, description="True when the value shown is shortened.")


class DriftItem(StrictModel):
    """One difference between the environments."""

    path: str = Field(
        description="Where: dotted path; keys with dots are quoted as [\"a.b\"], list elements read [name=api] or [3] (staging's position; production's for a removed element); documents of a multi-document YAML file read apps/v1/Deployment/shop/api or 0, 1 ...; secrets are secrets.NAME."
    )
    kind: Kind = Field(
        description="added (only in the source, e.g. staging), removed (only in the target: staging lacks it), changed, type-changed, secret (see detail), required-flag."
    )
    detail: str = Field(description="The difference in words (e.g. 'REUSED', 'int -> str').")
    source_value: ParityValue | None = Field(description="The source's (staging's) value; null when the key is absent.")
    target_value: ParityValue | None = Field(description="The target's (production's) value, or for required-flag the required state; null when absent.")
    severity: Severity = Field(description="critical, major, minor or info.")
    status: ItemStatus = Field(description="drift, waiver-expired (counts as drift), waived or ignored.")
    rule: str | None = Field(None, description="The rule that set the severity or ignored the item.")
    waiver: str | None = Field(None, description="Id of the waiver applied (or expired).")
    remediation: str = Field(description="What to do about it.")

    @property
    def active(self) -> bool:
        return self.status in ("drift", "waiver-expired")

    @property
    def blocking(self) -> bool:
        return self.active and self.severity == Severity.critical


class SecretCheck(StrictModel):
    """One secret name: where it is set and whether the value is reused. Never the value."""

    name: str = Field(description="The secret's name.")
    status: str = Field(
        description="present (both, values differ), missing-in-<source>, missing-in-<target>, missing-in-<source>-and-<target> (named on both sides, empty on both), or REUSED (same value in both). An empty value counts as missing."
    )


class ParitySummary(StrictModel):
    """Counts of the report's items."""

    critical: int = Field(description="Active drift (unwaived or waiver expired) of critical severity.")
    major: int = Field(description="Active drift of major severity.")
    minor: int = Field(description="Active drift of minor severity.")
    info: int = Field(description="Active drift of info severity.")
    waived: int = Field(description="Drift under an unexpired waiver.")
    expired_waivers: int = Field(description="Drift whose waiver has expired (counted in the severities too).")
    ignored: int = Field(description="Expected differences matched by an ignore rule.")
    blocking: int = Field(description="Items that fail Gate 1 (critical and active).")
    secrets_reused: int = Field(description="Secrets whose staging value equals production's.")


class ParityReport(ArtifactModel):
    """staging-parity-report.json: every difference between the environments, classified."""

    step: str = Field(STEP, description="The protocol step that produced the artifact.")
    source: str = Field(description="The environment under validation (staging).")
    target: str = Field(description="The baseline environment (production).")
    passed: bool = Field(description="True when no item blocks Gate 1.")
    summary: ParitySummary = Field(description="Counts by severity and status.")
    items: list[DriftItem] = Field(description="One item per difference, blocking first, then by severity and path.")
    secrets: list[SecretCheck] = Field(description="Every secret name of either environment with its status.")
    required_flags: dict[str, Any] = Field(default_factory=dict, description="The feature flags the release requires in the source, and their required states.")
    inputs: list[InputRecord] = Field(description="Everything read, with sha256 (secret sources are named but never hashed).")

    def summary_line(self) -> str:
        s = self.summary
        return (
            f"drift {self.source} vs {self.target}: {s.critical} critical, {s.major} major, {s.minor} minor; "
            f"{s.waived} waived, {s.ignored} ignored; secrets reused {s.secrets_reused}"
        )


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    if isinstance(value, (bytes, bytearray)):
        return "binary"
    return type(value).__name__


REDACTED = "[REDACTED]"


class _Shower:
    """Turns values into report views: JSON-safe, shortened, and redacted at every depth: a value
    under a secret key is replaced by ``[REDACTED]``, and a known secret value (from a secrets
    source or found under a secret key anywhere in either tree) by ``[REDACTED:<where>]``,
    also inside a longer string (a DSN) or as a number."""

    def __init__(self, redactor: Redactor, secret_step: Callable[[tuple[Any, ...]], bool], numbers: set[str], names: SecretNames) -> None:
        self._redactor = redactor
        self._names = names
        self._secret_step = secret_step
        self._numbers = numbers
        self.truncated = False

    def view(self, value: Any, secret: bool = False, path: tuple[Any, ...] = ()) -> ParityValue | None:
        if value is _MISSING:
            return None
        if secret:
            return ParityValue.model_construct(type=_type_name(value), redacted=True)
        self.truncated = False
        shown = self._json(value, 0, path)
        return ParityValue.model_construct(type=_type_name(value), value=shown, truncated=self.truncated)

    def _json(self, value: Any, depth: int, path: tuple[Any, ...]) -> Any:
        if isinstance(value, str):
            text = self._redactor.redact(value) if self._redactor else value
            if "=" in text and assignment_secret(text, self._names):
                text = text.split("=", 1)[0] + "=" + REDACTED
            if len(text) > _SHOW_CHARS:
                self.truncated = True
                return text[:_SHOW_CHARS] + "..."
            return text
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and self._numbers and str(value) in self._numbers:
            return REDACTED
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        if isinstance(value, (datetime, date)):
            return self._json(value.isoformat(), depth, path)
        if isinstance(value, (bytes, bytearray)):
            return f"<{len(value)} bytes>"
        if isinstance(value, (dict, list)):
            if depth >= 4:
                self.truncated = True
                return "..."
            pairs = list(value.items()) if isinstance(value, dict) else [(ListPos(None, i), v) for i, v in enumerate(value)]
            if len(pairs) > _SHOW_ITEMS:
                self.truncated = True
                pairs = pairs[:_SHOW_ITEMS]
            pair = isinstance(value, dict) and secret_pair(value, self._names)
            shown = [
                (k, REDACTED if (pair and k not in _PAIR_NAMES) or self._secret_step((*path, k)) else self._json(v, depth + 1, (*path, k))) for k, v in pairs
            ]
            if isinstance(value, dict):
                return {self._json(_segment_text(k), depth + 1, path): v for k, v in shown}
            return [v for _, v in shown]
        return self._json(str(value), depth, path)


_REMEDIATION = {
    ADDED: "staging has this and production does not: remove it from staging, or add it to the production baseline if the release introduces it",
    REMOVED: "production has this and staging lacks it: add it to staging",
    CHANGED: "make staging's value match production's, or record why it differs (ignore rule or waiver)",
    TYPE_CHANGED: "the type differs (quoted number, yes/no read as a boolean?): make staging's type match production's",
}


def _last_segments(patterns: list[str]) -> re.Pattern[str] | None:
    """A cheap first test on a key alone: could a path ending in it match one of ``patterns``?"""
    if not patterns:
        return None
    parts = []
    for pattern in patterns:
        kind, text = _tokens(pattern)[-1]
        parts.append(".*" if kind == "glob" and (text == "**" or text.startswith("[")) else _segment_regex(kind, text))
    return re.compile("|".join(f"(?:{part})" for part in parts), re.IGNORECASE)


def _prefix_regexes(pattern: str) -> dict[int, re.Pattern[str]]:
    """For a rule written under a node: the regexes its first k segments make, for each k the
    node's path may have, so that ``infrastructure.database.*`` covers ``infrastructure.database``
    and ``infrastructure`` themselves. Only segments before a ``**`` count: ``**.password`` is
    written under no node in particular (its leaves still count, see ``_Policy.severity_of``)."""
    tokens = _tokens(pattern)
    fixed = next((i for i, (kind, text) in enumerate(tokens) if kind == "glob" and text == "**"), len(tokens))
    out: dict[int, re.Pattern[str]] = {}
    for k in range(1, min(fixed, len(tokens) - 1) + 1):
        out[k] = re.compile(_SEP.join(_segment_regex(kind, text) for kind, text in tokens[:k]))
    return out


def _leaf_paths(value: Any, path: tuple[Any, ...], key_for: Callable[[tuple[Any, ...], list[Any]], str | None]) -> Iterator[tuple[Any, ...]]:
    """Every leaf (scalar or empty container) of ``value``, with its path as the differ writes it."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, dict) and item:
            stack.extend(((v, (*where, k)) for k, v in item.items()))
        elif isinstance(item, list) and item:
            key = key_for(where, item)
            stack.extend((v, (*where, ListPos(key, v[key] if key else i))) for i, v in enumerate(item))
        else:
            yield where


@dataclass
class _Policy:
    config: ParityConfig
    now: datetime
    rules: list[tuple[re.Pattern[str], SeverityRule]] = field(init=False)
    ignores: list[tuple[re.Pattern[str], IgnoreRule]] = field(init=False)
    waivers: list[tuple[re.Pattern[str], DriftWaiver]] = field(init=False)
    names: SecretNames = field(init=False)
    secret_paths: list[re.Pattern[str]] = field(init=False)
    not_secret: list[re.Pattern[str]] = field(init=False)
    secret_glob_key: re.Pattern[str] | None = field(init=False)

    def __post_init__(self) -> None:
        self.rules = [(compile_glob(r.path), r) for r in self.config.rules]
        self.ignores = [(compile_glob(r.path), r) for r in self.config.ignore]
        self.waivers = [(compile_glob(w.path), w) for w in self.config.waivers]
        self.names = SecretNames(self.config.secret_names, self.config.secret_mappings)
        self.secret_paths = [compile_glob(p, ignore_case=True) for p in self.config.secret_paths]
        self.not_secret = [compile_glob(p, ignore_case=True) for p in self.config.not_secret_paths]
        self.secret_glob_key = _last_segments(self.config.secret_paths)
        self._under = [(_prefix_regexes(r.path), r) for r in self.config.rules]

    def excepted(self, path: tuple[Any, ...]) -> bool:
        if not self.not_secret:
            return False
        text = _match_text(path)
        return any(regex.fullmatch(text) for regex in self.not_secret)

    def secret_step(self, path: tuple[Any, ...]) -> bool:
        """The node at ``path`` is secret by its own key (name, mapping of secrets, a Kubernetes
        Secret's data) or a glob."""
        hit = True in self.names.flags(path[-1]) or self._secret_data(path)
        if not hit and self.secret_paths:
            text = _match_text(path)
            hit = any(regex.fullmatch(text) for regex in self.secret_paths)
        return hit and not self.excepted(path)

    @staticmethod
    def _secret_data(path: tuple[Any, ...]) -> bool:
        return len(path) >= 2 and path[-1] in _SECRET_DATA and is_secret_object(path[-2])

    def is_secret(self, path: tuple[Any, ...]) -> bool:
        """Never shown: the node or one of its ancestors is secret."""
        flags = self.names.flags
        if not self.secret_paths and not any(True in flags(segment) or is_secret_object(segment) for segment in path):
            return False
        return any(self.secret_step(path[: i + 1]) for i in range(len(path)))

    def is_reuse_candidate(self, path: tuple[Any, ...]) -> bool:
        """An equal value here is credential reuse: the key's name says secret, it is inside a
        mapping of secrets, or a secret glob names it. A secret-named parent alone (smtp.auth
        with a user name beside the password) does not make every equal child a credential."""
        if self.excepted(path):
            return False
        if self.names.is_secret(path[-1]) or any(
            (self.names.holds_secrets(seg) or self._secret_data(path[: i + 1])) and not self.excepted(path[: i + 1]) for i, seg in enumerate(path)
        ):
            return True
        text = _match_text(path)
        return any(regex.fullmatch(text) for regex in self.secret_paths)

    def severity(self, text: str) -> tuple[Severity, str | None, str | None]:
        for regex, rule in self.rules:
            if regex.fullmatch(text):
                return rule.severity, f"severity {rule.path}", rule.remediation or None
        return self.config.default_severity, None, None

    def severity_of(
        self, kind: str, path: tuple[Any, ...], values: tuple[Any, Any], key_for: Callable[[tuple[Any, ...], list[Any]], str | None]
    ) -> tuple[Severity, str | None, str | None]:
        """The severity of a difference at ``path``. A node added, removed or retyped takes its
        children with it, so it is at least as severe as the rules written under it say
        (``infrastructure.database.*`` for ``infrastructure.database``) and as its worst leaf on
        either side: deleting a block cannot be milder than changing one of its values."""
        found = self.severity(_match_text(path))
        if kind == CHANGED:
            return found
        best = found
        depth = len(path)
        for prefixes, rule in self._under:
            regex = prefixes.get(depth)
            if regex is not None and rule.severity.rank > best[0].rank and regex.fullmatch(_match_text(path)):
                best = rule.severity, f"severity {rule.path} (written under this node)", rule.remediation or None
        for value in values:
            if isinstance(value, (dict, list)) and self.rules:
                for leaf in _leaf_paths(value, path, key_for):
                    severity, rule_name, remediation = self.severity(_match_text(leaf))
                    if severity.rank > best[0].rank:
                        best = severity, f"{rule_name} (at {render_path(leaf)})" if rule_name else None, remediation
        return best

    def ignored(self, text: str, kind: str) -> IgnoreRule | None:
        for regex, rule in self.ignores:
            if kind in rule.kinds and regex.fullmatch(text):
                return rule
        return None

    def finish(self, item: dict[str, Any], text: str) -> DriftItem:
        """Apply waivers: an unexpired one waives; an expired one is named and the drift stays."""
        matching = [w for regex, w in self.waivers if regex.fullmatch(text)]
        current = [w for w in matching if w.expires_at > self.now]
        if current:
            waiver = current[0]
            item.update(
                status="waived", waiver=waiver.id, remediation=f"waived until {waiver.expires_at.isoformat()} by {waiver.owner}: {waiver.justification}"
            )
        elif matching:
            waiver = matching[0]
            item.update(
                status="waiver-expired",
                waiver=waiver.id,
                remediation=f"waiver {waiver.id} ({waiver.owner}) expired at {waiver.expires_at.isoformat()}: renew it or fix the drift; "
                + item["remediation"],
            )
        return _item(item)


def _item(fields: dict[str, Any]) -> DriftItem:
    # Every field comes from our own code with its final type; a large drift has thousands of
    # items, and validating each again is a measurable share of the comparison (bench/parity.py).
    return DriftItem.model_construct(**fields)


def _classify(raw: RawDiff, secret: bool, policy: _Policy, shower: _Shower, key_for: Callable[[tuple[Any, ...], list[Any]], str | None]) -> DriftItem:
    kind, path, a, b = raw
    text = _match_text(path)
    severity, rule, remediation = policy.severity_of(kind, path, (a, b), key_for)
    if kind == TYPE_CHANGED:
        detail = f"{_type_name(a)} -> {_type_name(b)} (staging -> production)"
    elif kind == ADDED:
        detail = "only in the source"
    elif kind == REMOVED:
        detail = "missing in the source"
    else:
        detail = "values differ"
    item: dict[str, Any] = {
        "path": render_path(path),
        "kind": kind,
        "detail": detail,
        "source_value": shower.view(a, secret, path),
        "target_value": shower.view(b, secret, path),
        "severity": severity,
        "status": "drift",
        "rule": rule,
        "remediation": remediation or _REMEDIATION[kind],
    }
    ignore = policy.ignored(text, kind)
    if ignore is not None:
        # Expected, so informational whatever its rule says; the rule stays named.
        item.update(status="ignored", severity=Severity.info, rule=f"ignore {ignore.path}", remediation=f"expected: {ignore.reason}")
        return _item(item)
    return policy.finish(item, text)


def _fingerprints(values: Mapping[str, str], key: bytes) -> dict[str, bytes]:
    return {name: hmac.new(key, value.encode("utf-8"), hashlib.sha256).digest() for name, value in values.items() if value}


def _scalars(value: Any, names: SecretNames | None = None) -> Iterator[Any]:
    """The scalars of ``value`` that could be secret (not null, booleans or empty strings); with
    ``names``, only the values of ``NAME=value`` strings whose NAME is secret."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif names is not None:
            if isinstance(item, str) and "=" in item and (secret := assignment_secret(item, names)):
                yield secret
        elif item is not None and item is not _MISSING and not isinstance(item, bool) and item != "":
            yield item


def _nested_secrets(value: Any, path: tuple[Any, ...], policy: _Policy) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(path, scalar) of every value at or under a secret key inside ``value``."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if where and policy.secret_step(where):
            yield from ((where, scalar) for scalar in _scalars(item))
        elif isinstance(item, dict):
            if secret_pair(item, policy.names):
                yield from ((where, scalar) for k, v in item.items() if k not in _PAIR_NAMES for scalar in _scalars(v))
            else:
                stack.extend((v, (*where, k)) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, (*where, ListPos(None, i))) for i, v in enumerate(item))


def compare_secrets(source: EnvironmentState, target: EnvironmentState, policy: _Policy) -> tuple[list[SecretCheck], list[DriftItem]]:
    """Statuses by HMAC-SHA256 under a key that exists only for this call; an empty value counts
    as missing (an unset credential cannot be reused)."""
    key = _secrets.token_bytes(32)
    fa, fb = _fingerprints(source.secrets, key), _fingerprints(target.secrets, key)
    del key
    severities = policy.config.secrets
    checks: list[SecretCheck] = []
    items: list[DriftItem] = []
    # A name set empty on both sides is unset in both: still a secret to provision, not an absence.
    empty = {name for name in source.secrets.keys() & target.secrets.keys() if name not in fa and name not in fb}
    for name in sorted(fa.keys() | fb.keys() | empty):
        if name in empty:
            status = f"missing-in-{source.name}-and-{target.name}"
        elif name in fa and name in fb:
            status = "REUSED" if hmac.compare_digest(fa[name], fb[name]) else "present"
        else:
            status = f"missing-in-{target.name if name in fa else source.name}"
        checks.append(SecretCheck(name=name, status=status))
        if status == "present":
            continue
        if name in empty:
            severity = max(severities.missing_in_source, severities.missing_in_target, key=lambda s: s.rank)
            remediation = f"{name} is empty in both {source.name} and {target.name}: provision it in both before the release, or stop using it"
        elif status == "REUSED":
            severity, remediation = (
                severities.reused,
                f"rotate {name} in {source.name}: it holds the same value as {target.name} (a leak of one is a leak of both)",
            )
        elif name in fb:
            severity, remediation = severities.missing_in_source, f"provision {name} in {source.name}'s secret source"
        else:
            severity, remediation = severities.missing_in_target, f"provision {name} in {target.name} before the release, or stop using it in {source.name}"
        view = ParityValue(type="secret", redacted=True)
        item = {
            "path": render_path(("secrets", name)),
            "kind": "secret",
            "detail": status,
            "severity": severity,
            "source_value": view if name in fa else None,
            "target_value": view if name in fb else None,
            "status": "drift",
            "rule": "secrets",
            "remediation": remediation,
        }
        items.append(policy.finish(item, _match_text(("secrets", name))))
    return checks, items


def _by_value(named: Mapping[str, str]) -> dict[str, str]:
    """One name per distinct value (the first, in sorted order): the redaction tag names where a
    value was found without listing every place."""
    out: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in sorted(named.items()):
        if value in seen:
            continue
        seen.add(value)
        base = tag = name.split("#", 1)[0]
        number = 2
        while tag in out:
            tag, number = f"{base}~{number}", number + 1
        out[tag] = value
    return out


def _lookup(tree: Any, segments: tuple[str, ...]) -> Any:
    for segment in segments:
        if not isinstance(tree, dict) or segment not in tree:
            return _MISSING
        tree = tree[segment]
    return tree


def required_flag_states(config: ParityConfig, flags: Mapping[str, Any]) -> list[tuple[str, Any, Any, bool]]:
    """(flag, required state, actual state or _MISSING, ok) for every required flag."""
    out = []
    for flag, wanted in config.required_flags.items():
        actual = _lookup(flags, parse_exact_path(flag))
        out.append((flag, wanted, actual, actual is not _MISSING and actual.__class__ is wanted.__class__ and actual == wanted))
    return out


def is_missing(value: Any) -> bool:
    return value is _MISSING


def _sort_key(item: DriftItem) -> tuple[int, int, int, str]:
    order = {"waiver-expired": 0, "drift": 0, "waived": 1, "ignored": 2}
    return (0 if item.blocking else 1, order[item.status], -item.severity.rank, item.path)


def compare_trees(
    parity: ParityConfig,
    source_tree: dict[str, Any],
    target_tree: dict[str, Any],
    *,
    source: str = "staging",
    target: str = "production",
    secret_values: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> list[DriftItem]:
    """The comparison step proper: every difference of two parsed trees, classified by the rules
    (secret-valued keys, required flags and waivers included), unsorted. ``secret_values`` (the
    environments' secret sources) are redacted wherever they appear in a shown value."""
    policy = _Policy(parity, now or utcnow())
    differ = Differ(parity.list_keys, policy.names, policy.secret_glob_key)

    def key_for(where: tuple[Any, ...], items: list[Any]) -> str | None:
        return differ._key_for(where, items, items)

    try:
        with _no_gc():  # the walk and the items create no cycles; see _no_gc
            raw = differ.diff(source_tree, target_tree)
            reused = [
                (path, value)
                for path, value in differ.equal_secrets
                if policy.is_reuse_candidate(path) or ((path in differ.assignments or path[:-1] in differ.secret_pairs) and not policy.excepted(path))
            ]
            # Every value found under a secret key, in either tree, is redacted wherever it is
            # shown: the same password may sit in a DSN under an innocent key.
            found: list[tuple[tuple[Any, ...], Any]] = [
                (path, scalar) for path, value in reused for scalar in _scalars(value, policy.names if path in differ.assignments else None)
            ]
            pairs = differ.secret_pairs
            secret_paths = (
                [
                    policy.is_secret(path) or any(path[:i] in pairs and not (i == len(path) - 1 and path[-1] in _PAIR_NAMES) for i in range(len(path)))
                    for _, path, _, _ in raw
                ]
                if pairs
                else [policy.is_secret(path) for _, path, _, _ in raw]
            )
            for (_, path, a, b), secret in zip(raw, secret_paths, strict=False):
                for value in (a, b):
                    if secret:
                        found.extend((path, scalar) for scalar in _scalars(value))
                    else:
                        found.extend((path, scalar) for scalar in _scalars(value, policy.names))
                        if isinstance(value, (dict, list)):
                            found.extend(_nested_secrets(value, path, policy))
            known = dict(secret_values or {})
            for path, scalar in found:
                known.setdefault(f"{render_path(path)}#{len(known)}", str(scalar))
            numbers = {str(scalar) for _, scalar in found if not isinstance(scalar, str)}
            shower = _Shower(Redactor(_by_value(known)), policy.secret_step, numbers, policy.names)
            items = [_classify(entry, secret, policy, shower, key_for) for entry, secret in zip(raw, secret_paths, strict=False)]
    except RecursionError:
        raise ConfigError(f"environments {source} and {target}: inputs nested too deeply to compare") from None

    for path, value in reused:
        view = ParityValue(type=_type_name(value), redacted=True)
        items.append(
            policy.finish(
                {
                    "path": render_path(path),
                    "kind": "secret",
                    "detail": "REUSED",
                    "source_value": view,
                    "target_value": view,
                    "severity": parity.secrets.reused,
                    "status": "drift",
                    "rule": "secret keys (secret_names, secret_mappings, secret_paths)",
                    "remediation": f"rotate this credential in {source}: it holds the same value as {target}",
                },
                _match_text(path),
            )
        )

    flag_paths = {}
    for flag, wanted, actual, ok in required_flag_states(parity, source_tree.get("flags", {})):
        path = ("flags", *parse_exact_path(flag))
        flag_paths[render_path(path)] = ok
        if ok:
            continue
        items.append(
            policy.finish(
                {
                    "path": render_path(path),
                    "kind": "required-flag",
                    "detail": "missing in the source" if actual is _MISSING else f"is {_short(shower.view(actual))}, the release requires {json.dumps(wanted)}",
                    "source_value": shower.view(actual),
                    "target_value": shower.view(wanted),
                    "severity": Severity.critical,
                    "status": "drift",
                    "rule": "required_flags",
                    "remediation": f"set flag {flag} to {json.dumps(wanted)} in {source} (the release requires it), then re-run parity",
                },
                _match_text(path),
            )
        )
    for item in items:
        # A flag the release needs on in staging is expected to differ from production until the
        # release ships, so that difference is not drift.
        if item.kind == CHANGED and flag_paths.get(item.path) and item.status == "drift":
            item.status, item.severity, item.rule = "ignored", Severity.info, "required_flags"
            item.remediation = "expected: the release requires this state in staging"
    return items


def compare_environments(
    config: ParityProject,
    source: str,
    target: str,
    release: str,
    capture: Capture | None = None,
    *,
    transcripts: Path | None = None,
    now: datetime | None = None,
) -> ParityReport:
    """Compare ``source`` (staging) with ``target`` (production) and classify every difference.

    ``capture(env, command)`` returns a capture command's stdout; without it the command runs
    here (transcript under ``transcripts``).
    """
    if source == target:
        raise ConfigError(f"--source and --target are both {source!r}; compare two environments")
    parity: ParityConfig = config.parity
    left = load_environment(config, source, capture, transcripts)
    right = load_environment(config, target, capture, transcripts)
    now = now or utcnow()
    items = compare_trees(parity, left.tree, right.tree, source=source, target=target, secret_values=config.secret_values(), now=now)
    checks, secret_items = compare_secrets(left, right, _Policy(parity, now))
    items.extend(secret_items)
    items.sort(key=_sort_key)
    active = [i for i in items if i.active]
    summary = ParitySummary(
        critical=sum(i.severity == Severity.critical for i in active),
        major=sum(i.severity == Severity.major for i in active),
        minor=sum(i.severity == Severity.minor for i in active),
        info=sum(i.severity == Severity.info for i in active),
        waived=sum(i.status == "waived" for i in items),
        expired_waivers=sum(i.status == "waiver-expired" for i in items),
        ignored=sum(i.status == "ignored" for i in items),
        blocking=sum(i.blocking for i in items),
        secrets_reused=sum(i.kind == "secret" and i.detail == "REUSED" for i in items),
    )
    return ParityReport(
        release=release,
        source=source,
        target=target,
        passed=summary.blocking == 0,
        summary=summary,
        items=items,
        secrets=checks,
        required_flags=dict(parity.required_flags),
        inputs=left.inputs + right.inputs,
    )


def _short(view: ParityValue | None) -> str:
    if view is None:
        return "(absent)"
    if view.redacted:
        return "(secret)"
    text = json.dumps(view.value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def describe_item(item: DriftItem) -> str:
    """One line, values shown as the report shows them (secrets never)."""
    what = item.detail if item.kind in ("secret", "required-flag") else f"{item.kind}: {_short(item.source_value)} vs {_short(item.target_value)}"
    waiver = f" [waiver {item.waiver} expired]" if item.status == "waiver-expired" else ""
    return f"{item.severity.value.upper()} {item.path}: {what}{waiver} -> {item.remediation}"


def parity_problems(report: ParityReport) -> list[str]:
    """The items that block Gate 1 (critical, not waived), worst first, one line each."""
    return [describe_item(item) for item in sorted(report.items, key=_sort_key) if item.blocking]


def summary_text(report: ParityReport) -> str:
    """The short human summary the command prints."""
    lines = [report.summary_line()]
    lines += [f"  {describe_item(item)}" for item in report.items if item.active][:10]
    checks = report.secrets
    lines.append(f"secrets: {len(checks)} names, " + ", ".join(f"{sum(c.status == s for c in checks)} {s}" for s in sorted({c.status for c in checks})))
    lines.append("verdict: " + ("no blocking drift" if report.passed else f"{report.summary.blocking} blocking item(s): Gate 1 fails"))
    return "\n".join(lines)
