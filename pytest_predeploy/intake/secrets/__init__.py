"""Where secret values come from: a ``.env``-style file and/or named environment variables.

Values are loaded only to fingerprint them (parity) and to redact them (everything we write);
they are never stored in any model that is serialised.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

from dotenv.parser import parse_stream
from pydantic import Field, field_validator

from pytest_predeploy.core.errors import ConfigError
from pytest_predeploy.core.fields import ExistingFile, StrictModel, check_env_var_names


class SecretSource(StrictModel):
    """Secrets of one environment. Names are configuration; values never leave memory."""

    file: ExistingFile | None = Field(
        None,
        description="A .env file holding this environment's secrets, read as python-dotenv reads it (export, single and double quotes, escapes, '# comment' after a value, multi-line quoted values) but without ${VAR} interpolation; a line it cannot read, a name without '=' or a name defined twice is an error naming the line.",
    )
    env_vars: list[str] = Field(
        default_factory=list, description="Names of environment variables holding secrets (read at run time; unset ones are reported missing)."
    )

    @field_validator("env_vars")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        return check_env_var_names(names)


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


# -- secret names ----------------------------------------------------------------------------
#
# Configuration keys name their secrets in every case style: adminPassword, api-key, DB_PASSWORD,
# AWS_SECRET_ACCESS_KEY, bearerToken. A key is split into lower-case words and is secret when its
# words end with one of the names below; testing the end (not anywhere) keeps password_min_length,
# token_ttl and secret_name out, and AWS_ACCESS_KEY_ID (an identifier, not a secret) too.

DEFAULT_SECRET_NAMES: tuple[str, ...] = (
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "api key",
    "apikey",
    "private key",
    "privatekey",
    "access key",
    "accesskey",
    "secret key",
    "secretkey",
    "secret key base",
    "encryption key",
    "signing key",
    "master key",
    "credential",
    "credentials",
    "auth",
    "authorization",
    "bearer",
)
#: Mappings whose every value is a secret, whatever the children are called.
DEFAULT_SECRET_MAPPINGS: tuple[str, ...] = ("secret", "secrets", "credential", "credentials")

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")


def name_words(name: str) -> tuple[str, ...]:
    """``AWS_SECRET_ACCESS_KEY``, ``aws-secret-access-key`` and ``awsSecretAccessKey`` all read
    ``("aws", "secret", "access", "key")``; digits separate words and are dropped."""
    return tuple(word.lower() for word in _WORD.findall(name))


class SecretNames:
    """Decides from a key alone whether its value is secret, or holds secrets below it."""

    def __init__(self, names: list[str] | tuple[str, ...], mappings: list[str] | tuple[str, ...]) -> None:
        self._endings = {words for words in map(name_words, names) if words}
        self._longest = max((len(words) for words in self._endings), default=0)
        self._mappings = {words for words in map(name_words, mappings) if words}
        self._cache: dict[object, tuple[bool, bool]] = {}

    def _test(self, key: object) -> tuple[bool, bool]:
        found = self._cache.get(key)
        if found is None:
            words = name_words(key) if isinstance(key, str) else ()
            named = any(words[-size:] in self._endings for size in range(1, min(self._longest, len(words)) + 1))
            found = self._cache[key] = (named, words in self._mappings)
        return found

    def flags(self, key: object) -> tuple[bool, bool]:
        """(the key's name says its value is a secret, the key names a mapping of secrets)."""
        return self._cache.get(key) or self._test(key)

    def is_secret(self, key: object) -> bool:
        """The key's name says its value is a secret (``dbPassword``, ``API_KEY``)."""
        return (self._cache.get(key) or self._test(key))[0]

    def holds_secrets(self, key: object) -> bool:
        """The key names a mapping of secrets (``secrets:``, ``credentials:``)."""
        return (self._cache.get(key) or self._test(key))[1]


_ASSIGNMENT = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.\-]*)\s*=(.*)", re.DOTALL)


def assignment_secret(text: str, names: SecretNames) -> str | None:
    """The value of a ``NAME=value`` string whose NAME says secret (a compose file's
    ``environment:`` list, a container's args), else None."""
    match = _ASSIGNMENT.fullmatch(text)
    if match is None or not match.group(2) or not names.is_secret(match.group(1)):
        return None
    return match.group(2)
