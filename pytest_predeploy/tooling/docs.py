"""Documentation generated from the models, so it cannot drift from the code:
the configuration reference (``docs/config-reference.md``) and the artifacts' JSON Schemas
(``docs/schemas/``). ``predeploy docs`` and ``predeploy schema`` write them; tests/test_docs.py
fails when the checked-in copies differ from what the models say."""

from __future__ import annotations

import importlib
import json
import types
import typing
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core.artifacts import write_text_atomic

SCHEMA_SUFFIX = ".schema.json"
SCHEMA_BASE_URL = "https://pytest-predeploy.dev/schemas/"
#: Defaults longer than this are described as "(N items)" rather than printed in the table.
_DEFAULT_WIDTH = 200


def artifact_models() -> dict[str, type[BaseModel]]:
    """Every JSON artifact's file name -> its pydantic model (from the artifact registry)."""
    models: dict[str, type[BaseModel]] = {}
    for artifact in names.ARTIFACTS:
        if artifact.model is not None:
            module, _, cls = artifact.model.partition(":")
            models[artifact.name] = getattr(importlib.import_module(module), cls)
    return models


def schema_file(artifact: str) -> str:
    """``staging-parity-report.json`` -> ``staging-parity-report.schema.json``."""
    return artifact.removesuffix(".json") + SCHEMA_SUFFIX


def schemas() -> dict[str, str]:
    """Every artifact's JSON Schema: schema file name -> its text (what :func:`write_schemas` writes)."""
    result = {}
    for file_name, model in sorted(artifact_models().items()):
        schema = model.model_json_schema(mode="serialization")
        schema["$id"] = SCHEMA_BASE_URL + schema_file(file_name)
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        result[schema_file(file_name)] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return result


def write_schemas(target: Path) -> tuple[list[Path], list[Path]]:
    """Write one ``<artifact>.schema.json`` per JSON artifact into ``target`` and remove schema
    files of artifacts that no longer exist (the folder is generated). Returns (written, removed)."""
    target.mkdir(parents=True, exist_ok=True)
    current = schemas()
    written = []
    for file_name, text in current.items():
        path = target / file_name
        write_text_atomic(path, text)
        written.append(path)
    removed = [path for path in sorted(target.glob("*" + SCHEMA_SUFFIX)) if path.name not in current]
    for path in removed:
        path.unlink()
    return written, removed


# --- walking the models ------------------------------------------------------------------------


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


def _documented_fields(model: type[BaseModel]) -> Iterator[tuple[str, FieldInfo]]:
    """The fields a file can hold (``exclude`` marks ones set in code, not read from a file)."""
    for name, field in model.model_fields.items():
        if not field.exclude:
            yield name, field


def _child_path(path: str, name: str, annotation: Any) -> str:
    child = name if not path else f"{path}.{name}"
    kind = _type_name(annotation)
    if kind.startswith("mapping"):
        return child + ".<name>"
    if kind.startswith("list"):
        return child + "[]"
    return child


def model_tree(root: type[BaseModel]) -> dict[type[BaseModel], list[str]]:
    """Every model reachable from ``root`` (breadth first) -> the dotted paths where it appears
    (``""`` is the root itself; ``services[]``, ``environments.<name>`` ... for the others)."""
    tree: dict[type[BaseModel], list[str]] = {}
    queue: list[tuple[str, type[BaseModel]]] = [("", root)]
    while queue:
        path, model = queue.pop(0)
        known = model in tree
        tree.setdefault(model, []).append(path)
        if known:
            continue
        for name, field in _documented_fields(model):
            for inner in _models_in(field.annotation):
                queue.append((_child_path(path, name, field.annotation), inner))
    return tree


def missing_descriptions(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted paths of fields without a description, in ``model`` and every model it contains
    (the reference would have a hole there)."""
    missing = []
    for inner, paths in model_tree(model).items():
        where = prefix + (paths[0] + "." if paths[0] else "")
        missing += [where + name for name, field in _documented_fields(inner) if not (field.description or "").strip()]
    return missing


# --- the configuration reference ---------------------------------------------------------------


def _type_name(annotation: Any) -> str:
    if annotation is type(None):
        return "null"
    if annotation is Any:
        return "any"
    if isinstance(annotation, type):
        if issubclass(annotation, Enum):
            return " \\| ".join(repr(member.value) for member in annotation)
        if issubclass(annotation, BaseModel):
            return annotation.__name__
        return {
            "str": "string",
            "int": "integer",
            "float": "number",
            "bool": "boolean",
            "timedelta": "duration",
            "datetime": "timestamp",
            "PosixPath": "path",
            "Path": "path",
        }.get(annotation.__name__, annotation.__name__)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(repr(arg) for arg in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(arg) for arg in args)
    if origin in (list, tuple, set, frozenset):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping of {_type_name(args[0])} to {_type_name(args[1])}" if args else "mapping"
    return str(annotation).replace("typing.", "")


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    value = field.get_default(call_default_factory=True)
    if value is PydanticUndefined:
        return ""
    if isinstance(value, BaseModel):
        # A section: only what its default differs in from the section's own defaults (the
        # command of each step, say); the rest is in that section's table.
        value = value.model_dump(mode="json", exclude_defaults=True)
        if not value:
            return "(see section)"
    else:
        # The field's own serialisers (durations as '30s', paths as text) live in its metadata.
        # A type expression built at run time: mypy can only know it as Any (TypeAdapter takes any).
        annotation: Any = typing.Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        value = TypeAdapter(annotation).dump_python(value, mode="json")
    text = json.dumps(value)
    if len(text) > _DEFAULT_WIDTH and isinstance(value, (list, dict)):
        return f"({len(value)} items)"
    return "`" + text.replace("|", "\\|") + "`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def config_reference() -> str:
    """The configuration reference, as Markdown: one table per section, in the order a reader
    meets them in predeploy.yaml (breadth first from the top level)."""
    from pytest_predeploy.config import ProjectConfig
    from pytest_predeploy.core.fields import MAX_DURATION, format_duration, format_size
    from pytest_predeploy.core.yamlfile import MAX_DEPTH, MAX_DOCUMENT_BYTES, MAX_EXPANDED_VALUES

    lines = [
        "# predeploy.yaml reference",
        "",
        "Generated from the pydantic models by `predeploy docs` (a test keeps it in sync). Paths are",
        "relative to the folder of predeploy.yaml; durations are written like `90s`, `15m`, `12h`, `30d`, `2w`;",
        "timestamps need a time zone (`2026-11-26T12:00:00Z`). Unknown keys are errors.",
        f"Durations are at most {format_duration(MAX_DURATION)} (1000 years); sizes are written like `64MiB`, `500KB` or a number of bytes.",
        f"predeploy.yaml and approval records are refused when larger than {format_size(MAX_DOCUMENT_BYTES)}, nested deeper than {MAX_DEPTH}",
        f"levels, or when their YAML aliases expand to more than {MAX_EXPANDED_VALUES:,} values (aliases are for repeating a few settings).",
        "`services[]` means each element of the list `services`, `environments.<name>` each value of the mapping.",
        "",
    ]
    for model, paths in model_tree(ProjectConfig).items():
        where = ", ".join(f"`{path}`" for path in paths) if paths != [""] else "(top level)"
        doc = (model.__doc__ or "").strip()
        lines += [f"## {where} ({model.__name__})", ""]
        if doc:
            lines += [" ".join(doc.split("\n\n")[0].split()), ""]
        lines += ["| key | type | default | description |", "|---|---|---|---|"]
        for name, field in _documented_fields(model):
            lines.append(f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | {_cell(field.description or '')} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
