"""Shared pydantic building blocks: the strict base model and field types used across modules.

Every configuration and artifact model derives from :class:`StrictModel`, so an unknown key is
an error (a typo in ``predeploy.yaml`` must not be silently ignored).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    ValidationInfo,
)


class StrictModel(BaseModel):
    """Rejects unknown keys; every field must carry a description (the config reference is generated)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Severity(str, Enum):
    critical = "critical"
    major = "major"
    minor = "minor"
    info = "info"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.critical: 3, Severity.major: 2, Severity.minor: 1, Severity.info: 0}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object) -> timedelta:
    """'90s', '15m', '12h', '30d', '2w' or a number of seconds -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '30d', '12h', '15m' or '90s'")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    raise ValueError(f"expected a duration such as '30d', '12h', '15m' or '90s', got {value!r}")


def format_duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    for unit in ("w", "d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("a timestamp needs a time zone, e.g. 2026-11-26T12:00:00Z")
    return value.astimezone(timezone.utc)


UtcDatetime = Annotated[datetime, AfterValidator(_aware)]
"""A timestamp that must carry a zone; stored and written as UTC ISO 8601."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def base_dir(info: ValidationInfo) -> Path:
    """The folder relative paths in a config are resolved against (the config file's folder)."""
    context: Any = info.context or {}
    return Path(context.get("base_dir", "."))


def _resolve(value: Path, info: ValidationInfo) -> Path:
    return value if value.is_absolute() else base_dir(info) / value


def _existing_file(value: Path, info: ValidationInfo) -> Path:
    path = _resolve(value, info)
    if not path.is_file():
        raise ValueError(f"file not found: {path} (paths are relative to the config file's folder)")
    return path


def _existing_dir(value: Path, info: ValidationInfo) -> Path:
    path = _resolve(value, info)
    if not path.is_dir():
        raise ValueError(f"folder not found: {path} (paths are relative to the config file's folder)")
    return path


ConfigPath = Annotated[Path, AfterValidator(_resolve)]
"""A path in the config, resolved against the config file's folder; need not exist yet."""

ExistingFile = Annotated[Path, AfterValidator(_existing_file)]
"""A file the config names; it must exist when the config is loaded."""

ExistingDir = Annotated[Path, AfterValidator(_existing_dir)]
"""A folder the config names; it must exist when the config is loaded."""
