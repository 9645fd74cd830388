"""Reading an environment's state: files (YAML, JSON, TOML, ``.env``; several per section,
merged in order), multi-document YAML keyed by Kubernetes identity, and the optional ``capture``
command whose stdout is the live state.

Speed matters because baselines can be large (tens of MB of manifests): parsing is the floor, so YAML is
read with libyaml, its events built straight into values (``yamlread``).
"""

from __future__ import annotations

import gc
import hashlib
import json
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from pytest_predeploy.core import template
from pytest_predeploy.core.errors import ConfigError, StepError
from pytest_predeploy.core.fields import StrictModel
from pytest_predeploy.core.nesting import check_nesting
from pytest_predeploy.core.redact import Redactor
from pytest_predeploy.core.runner import run_command
from pytest_predeploy.core.template import TemplateError
from pytest_predeploy.core.yamlfile import YamlLimitError, parse_toml, read_text_file, unreadable_number, yaml_error
from pytest_predeploy.intake.parity.config import MAX_VALUE_CHARS, SECTIONS, STEP, EnvironmentConfig, ParityProject
from pytest_predeploy.intake.parity.yamlread import Unreadable, load_documents, too_dense, value_limit
from pytest_predeploy.intake.secrets import (
    load_secrets,
    parse_env_text,
)


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


def parse_yaml_fast(text: str | bytes, origin: str) -> Any:
    """Parse YAML with libyaml; errors name ``origin`` and a line, never a value. A stream of
    several documents (``---``), or one Kubernetes object, becomes one mapping of its documents:
    see ``by_document``."""
    try:
        with _no_gc():
            documents = load_documents(text)
    except Unreadable as exc:
        raise ConfigError(f"{origin}:{exc.line}: {exc}") from None
    except YamlLimitError as exc:
        raise exc.at(origin) from None
    except yaml.YAMLError as exc:
        raise yaml_error(exc, origin) from None
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


#: What marks a value in each format, counted before it is parsed: in JSON every value but the first
#: follows a comma or opens a container and every key a colon; in TOML a key is set with '=' and an
#: array's values are separated by commas; in a .env file each line sets a name to a value.
_VALUE_MARKS = {"json": (",", ":", "[", "{"), "toml": ("=", ",", "[", "{"), "env": ("=", "\n")}


def _check_density(text: str, fmt: str, origin: str) -> None:
    """Refuse an input denser in values than configuration (yamlread.value_limit) before it is
    built: a count from above (marks inside strings count too), in one pass per mark."""
    values = 1 + sum(map(text.count, _VALUE_MARKS[fmt]))
    if values > value_limit(len(text)):
        raise ConfigError(f"{origin}: {too_dense(values, len(text))}")


def parse_json(text: str, origin: str) -> Any:
    check_nesting(text, "json", origin)
    _check_density(text, "json", origin)
    try:
        with _no_gc():
            return json.loads(text, object_pairs_hook=_json_pairs(origin))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{origin}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except ValueError as exc:
        raise unreadable_number(exc, origin) from None


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
        _check_density(text, fmt, origin)
        data = parse_toml(text, origin)
    else:
        _check_density(text, "env", origin)
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
    values = {"python": sys.executable, "env": env_name, "config": str(config.path)}
    field = f"environments.{env_name}.capture.command"
    try:
        template.check(command, values, field)
        return template.fill_command(command, values, field)
    except TemplateError as exc:
        raise ConfigError(f"{config.path}: {exc}") from None


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
