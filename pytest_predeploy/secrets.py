"""Where secret values come from: a ``.env``-style file and/or named environment variables.

Values are loaded only to fingerprint them (parity) and to redact them (everything we write);
they are never stored in any model that is serialised.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from dotenv.parser import parse_stream
from pydantic import Field

from pytest_predeploy.errors import ConfigError
from pytest_predeploy.fields import ExistingFile, StrictModel


class SecretSource(StrictModel):
    """Secrets of one environment. Names are configuration; values never leave memory."""

    file: ExistingFile | None = Field(None, description="A .env-style file of NAME=value lines holding this environment's secrets.")
    env_vars: list[str] = Field(default_factory=list, description="Names of environment variables holding secrets (read at run time; unset ones are reported missing).")


def parse_env_text(text: str, origin: str) -> dict[str, str]:
    """Parse a ``.env`` file as python-dotenv does (``export``, single and double quotes, escapes,
    ``# comment`` after a value, multi-line quoted values), without interpolation: a ``${VAR}``
    must not pull this process's environment into a secret. Errors name the line, never a value.

    Where python-dotenv would skip a line it cannot parse (with a warning) or keep a later
    duplicate over an earlier one, we stop: a silently dropped key is a secret nobody compares.
    """
    values: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for binding in parse_stream(io.StringIO(text)):
        # A binding's text starts with the blank lines before it; count them to name its own line.
        raw = binding.original.string
        line = binding.original.line + raw[: len(raw) - len(raw.lstrip())].count("\n")
        if binding.error:
            raise ConfigError(f"{origin}:{line}: expected NAME=value (check for an unclosed quote or a stray character on this line)")
        if binding.key is None:  # blank line or comment
            continue
        if binding.value is None:
            raise ConfigError(f"{origin}:{line}: expected NAME=value, found a name without '=' (write NAME= for an empty value)")
        if binding.key in values:
            raise ConfigError(f"{origin}:{line}: {binding.key} is defined twice (first on line {first_line[binding.key]})")
        values[binding.key] = binding.value
        first_line[binding.key] = line
    return values


def read_env_file(path: Path) -> dict[str, str]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    if b"\0" in raw:
        raise ConfigError(f"{path}: is a binary file, expected NAME=value lines")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: is not UTF-8 (byte {exc.start})") from None
    return parse_env_text(text, str(path))


def load_secrets(source: SecretSource | None) -> dict[str, str]:
    """Secret names to values; environment variables that are not set are left out."""
    if source is None:
        return {}
    values = read_env_file(source.file) if source.file else {}
    for name in source.env_vars:
        if name in os.environ:
            values[name] = os.environ[name]
    return values
