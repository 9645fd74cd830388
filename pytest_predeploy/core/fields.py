"""Shared pydantic building blocks: the strict base model and field types used across modules.

Every configuration and artifact model derives from :class:`StrictModel`, so an unknown key is
an error (a typo in ``predeploy.yaml`` must not be silently ignored).
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import UTC, datetime, timedelta
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

    # defer_build: a model's validator is built when it is first used, not when its module is
    # imported. A protocol run imports every step's models (some 125) and uses about a third;
    # building the rest was most of the plugin's start-up (tests/test_plugin_startup.py).
    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


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
#: The longest duration we accept: far beyond any real wait ('100000d' is a common "never"), far
#: short of what overflows timedelta or the dates computed from it (an expiry past the year 9999).
MAX_DURATION = timedelta(days=365_000)
_DURATION_EXAMPLE = "a duration such as '30d', '12h', '15m' or '90s'"


def is_blank(text: str) -> bool:
    """True when ``text`` shows nothing: only spaces, separators, control or format characters
    (a zero-width space is as blank as an empty string, so it can name no one)."""
    return all(unicodedata.category(char)[0] in ("Z", "C") or char.isspace() for char in text)


def identity_key(text: str) -> str:
    """How two names of a person compare: NFKC-normalised, format characters (zero-width joiners
    and spaces) removed, outer white space stripped, case folded."""
    normal = unicodedata.normalize("NFKC", text)
    return "".join(char for char in normal if unicodedata.category(char) != "Cf").strip().casefold()


def parse_duration(value: object) -> timedelta:
    """'90s', '15m', '12h', '30d', '2w' or a number of seconds -> timedelta (0 to 1000 years)."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError(f"expected {_DURATION_EXAMPLE}")
    elif isinstance(value, float) and math.isnan(value):
        raise ValueError(f"expected {_DURATION_EXAMPLE}, got .nan (not a number)")
    elif isinstance(value, (int, float)):
        seconds = float(value) if abs(value) < 1e300 else float("inf")  # float() of a huge int raises
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"expected {_DURATION_EXAMPLE}, got {value!r}")
    # Checked on the float: timedelta itself raises OverflowError (not a ValueError, so no
    # message) for infinity and anything past 999,999,999 days.
    if math.isnan(seconds):
        raise ValueError(f"expected {_DURATION_EXAMPLE}, got NaN")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"a duration cannot be longer than {format_duration(MAX_DURATION)} (1000 years)")
    return value if isinstance(value, timedelta) else timedelta(seconds=seconds)


def parse_positive_duration(value: object) -> timedelta:
    """A duration that must be longer than zero (a validity period, a timeout)."""
    duration = parse_duration(value)
    if duration <= timedelta(0):
        raise ValueError("must be longer than zero, e.g. '72h' or '7d'")
    return duration


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

_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$")
_UNIT_BYTES = {"B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
_SIZE_EXAMPLE = "a size such as '64MiB', '500KB' or a number of bytes"


def parse_size(value: object) -> int:
    """'64MiB', '500KB', '2GiB' or a number of bytes -> bytes (at least one)."""
    if isinstance(value, bool):
        raise ValueError(f"expected {_SIZE_EXAMPLE}")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (match := _SIZE.match(value)):
        size = int(match.group(1)) * _UNIT_BYTES[match.group(2) or "B"]
    else:
        raise ValueError(f"expected {_SIZE_EXAMPLE}, got {value!r}")
    if size < 1:
        raise ValueError("a size must be at least one byte")
    return size


def format_size(size: int) -> str:
    for unit in ("GiB", "MiB", "KiB"):
        if size >= _UNIT_BYTES[unit] and size % _UNIT_BYTES[unit] == 0:
            return f"{size // _UNIT_BYTES[unit]}{unit}"
    return f"{size}B"


ByteSize = Annotated[int, BeforeValidator(parse_size), PlainSerializer(format_size, return_type=str)]
"""A size in bytes written as '64MiB', '500KB' or a number; serialized in the same form."""


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("a timestamp needs a time zone, e.g. 2026-11-26T12:00:00Z")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:00:00-05:00 is past the last datetime once in UTC.
        raise ValueError("a timestamp past the year 9999") from None


UtcDatetime = Annotated[datetime, AfterValidator(_aware)]
"""A timestamp that must carry a zone; stored and written as UTC ISO 8601."""


def utcnow() -> datetime:
    return datetime.now(UTC)


#: What the name of an environment variable read by name may be (POSIX shells' rule).
ENV_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_env_var_names(names: list[str]) -> list[str]:
    """Names of environment variables to read: each one a shell could set, so a typo (an empty
    entry, ``NAME=value`` pasted whole) is refused at load instead of silently reading nothing."""
    for index, name in enumerate(names):
        if not ENV_VAR_NAME.fullmatch(name):
            raise ValueError(f"entry {index} is not an environment variable name (letters, digits and '_', not starting with a digit)")
    return names


def check_environment(env: dict[str, str]) -> dict[str, str]:
    """Variables to set in a process's environment: what the operating system cannot hold (an
    empty name, '=' in a name, a NUL anywhere) is refused at load, not when the process starts.
    Values are never echoed."""
    for name, value in env.items():
        if not name or "=" in name or "\0" in name:
            raise ValueError(f"{name!r} is not an environment variable name (it must not be empty or hold '=' or a NUL byte)")
        if "\0" in value:
            raise ValueError(f"the value of environment variable {name} holds a NUL byte, which no environment variable can")
    return env


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
