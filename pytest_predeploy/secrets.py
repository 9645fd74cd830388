"""Where secret values come from: a ``.env``-style file and/or named environment variables.

Values are loaded only to fingerprint them (parity) and to redact them (everything we write);
they are never stored in any model that is serialised.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import Field

from pytest_predeploy.errors import ConfigError
from pytest_predeploy.fields import ExistingFile, StrictModel

_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.\-]*)\s*=\s*(.*?)\s*$")


class SecretSource(StrictModel):
    """Secrets of one environment. Names are configuration; values never leave memory."""

    file: ExistingFile | None = Field(None, description="A .env-style file of NAME=value lines holding this environment's secrets.")
    env_vars: list[str] = Field(default_factory=list, description="Names of environment variables holding secrets (read at run time; unset ones are reported missing).")


def parse_env_text(text: str, origin: str) -> dict[str, str]:
    """Parse ``NAME=value`` lines (``export``, quotes and ``#`` comments allowed); errors name the line, never the value."""
    values: dict[str, str] = {}
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ENV_LINE.match(line)
        if not match:
            raise ConfigError(f"{origin}:{index}: expected NAME=value")
        name, value = match.group(1), match.group(2)
        if value[:1] in {'"', "'"}:
            quote = value[0]
            # A quoted value may span lines (PEM keys).
            while not (len(value) > 1 and value.endswith(quote)):
                if index >= len(lines):
                    raise ConfigError(f"{origin}:{index}: unterminated quoted value for {name}")
                value += "\n" + lines[index]
                index += 1
            value = value[1:-1]
            if quote == '"':
                value = value.replace("\\n", "\n")
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        if name in values:
            raise ConfigError(f"{origin}:{index}: {name} is defined twice")
        values[name] = value
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
