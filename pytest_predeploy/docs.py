"""Documentation generated from the models, so it cannot drift from the code:
the configuration reference (``docs/config-reference.md``) and the artifacts' JSON Schemas
(``docs/schemas/``)."""

from __future__ import annotations

import json
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from pytest_predeploy import artifacts as names


def artifact_models() -> dict[str, type[BaseModel]]:
    """Every JSON artifact's file name -> its pydantic model."""
    from pytest_predeploy.approvals import IntakeReport
    from pytest_predeploy.observability import ObservabilityResult
    from pytest_predeploy.package import Manifest
    from pytest_predeploy.parity import ParityReport
    from pytest_predeploy.readiness import ReadinessApproval
    from pytest_predeploy.rehearsal import DeploymentReport
    from pytest_predeploy.rollback import RollbackReport
    from pytest_predeploy.runstate import RunState
    from pytest_predeploy.security import SecurityReport
    from pytest_predeploy.smoke import TestResultsReport

    return {
        names.INTAKE_REPORT: IntakeReport,
        names.PARITY_REPORT: ParityReport,
        names.DEPLOYMENT_REPORT: DeploymentReport,
        names.TEST_RESULTS: TestResultsReport,
        names.OBSERVABILITY_METRICS: ObservabilityResult,
        names.ROLLBACK_REPORT: RollbackReport,
        names.SECURITY_REPORT: SecurityReport,
        names.MANIFEST: Manifest,
        names.READINESS_APPROVAL: ReadinessApproval,
        names.RUN_STATE: RunState,
    }


def write_schemas(target: Path) -> list[Path]:
    """Write one ``<artifact>.schema.json`` per JSON artifact into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, model in sorted(artifact_models().items()):
        schema = model.model_json_schema(mode="serialization")
        schema["$id"] = f"https://pytest-predeploy.dev/schemas/{file_name.removesuffix('.json')}.schema.json"
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        path = target / f"{file_name.removesuffix('.json')}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


def _type_name(annotation: Any) -> str:
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type):
        if issubclass(annotation, Enum):
            return " \\| ".join(repr(member.value) for member in annotation)
        if issubclass(annotation, BaseModel):
            return annotation.__name__
        return {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "timedelta": "duration", "PosixPath": "path", "Path": "path"}.get(annotation.__name__, annotation.__name__)
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
    if field.default_factory is not None:
        try:
            value = field.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return "(computed)"
    else:
        value = field.default
    if value is PydanticUndefined:
        return ""
    if isinstance(value, BaseModel):
        return "(see section)"
    if isinstance(value, Enum):
        value = value.value
    if hasattr(value, "total_seconds"):
        from pytest_predeploy.fields import format_duration

        value = format_duration(value)
    text = json.dumps(value, default=str)
    return f"`{text}`" if len(text) < 60 else "(long)"


def missing_descriptions(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted paths of fields without a description (the reference would have a hole there)."""
    missing: list[str] = []
    seen: set[type[BaseModel]] = set()

    def walk(current: type[BaseModel], path: str) -> None:
        if current in seen:
            return
        seen.add(current)
        for name, field in current.model_fields.items():
            if field.exclude:
                continue
            dotted = f"{path}{name}"
            if not (field.description or "").strip():
                missing.append(dotted)
            for inner in _models_in(field.annotation):
                walk(inner, dotted + ".")

    walk(model, prefix)
    return missing


def config_reference() -> str:
    """The configuration reference, as Markdown."""
    from pytest_predeploy.config import ProjectConfig

    lines = [
        "# predeploy.yaml reference",
        "",
        "Generated from the pydantic models by `predeploy docs` (a test keeps it in sync). Paths are",
        "relative to the folder of predeploy.yaml; durations are written like `90s`, `15m`, `12h`, `30d`, `2w`;",
        "timestamps need a time zone (`2026-11-26T12:00:00Z`). Unknown keys are errors.",
        "",
    ]
    done: set[type[BaseModel]] = set()
    queue: list[tuple[str, type[BaseModel]]] = [("(top level)", ProjectConfig)]
    while queue:
        path, model = queue.pop(0)
        if model in done:
            continue
        done.add(model)
        lines += [f"## `{path}` ({model.__name__})", "", (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else "", ""]
        lines += ["| key | type | default | description |", "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            if field.exclude:
                continue
            description = (field.description or "").replace("|", "\\|").replace("\n", " ")
            lines.append(f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | {description} |")
            for inner in _models_in(field.annotation):
                child = name if path == "(top level)" else f"{path}.{name}"
                if typing.get_origin(field.annotation) is dict or "mapping" in _type_name(field.annotation):
                    child += ".<name>"
                elif "list of" in _type_name(field.annotation):
                    child += "[]"
                queue.append((child, inner))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
