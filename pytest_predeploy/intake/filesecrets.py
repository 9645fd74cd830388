"""Secret values held in the environments' config files, for the run's redactor.

Parity reads each environment's infrastructure, configuration and flags files and never shows a
value it recognises as secret. But a script may print the same value (a deploy script echoing
its DSN), and the redactor only knows what it is given: the secret sources and ``redact.env_vars``.
So the credentials parity recognises are handed to the redactor too: values of secret-named keys
and in mappings of secrets (parity's own rules: ``secret_names``, ``secret_mappings``,
``secret_paths``, ``not_secret_paths``), ``NAME=value`` strings whose NAME says secret, and
secrets recognised by their content under any name (``core/detect.py``: a DSN's password, a PEM
block, a token).

Files are read once per process (cached by path, size and modification time); a file that
cannot be read or parsed is left to the parity step, which reports it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_predeploy.core.detect import secrets_in
from pytest_predeploy.core.errors import PredeployError
from pytest_predeploy.core.fields import utcnow
from pytest_predeploy.intake.parity.classify import _Policy, _scalars
from pytest_predeploy.intake.parity.config import SECTIONS, EnvironmentConfig, ParityConfig
from pytest_predeploy.intake.parity.inputs import load_input_file
from pytest_predeploy.intake.parity.paths import ListPos, render_path
from pytest_predeploy.intake.parity.secretkeys import is_reference, is_weak

#: A number under a secret key is taken only from this many digits: ``port: 5432`` beside a
#: password must not turn every 5432 in the output into a redaction tag.
_MIN_NUMBER_DIGITS = 8


def _strings(tree: Any) -> Iterator[str]:
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
            stack.extend(key for key in item if isinstance(key, str))
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            yield item


def _secret_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool) and len(str(abs(value))) >= _MIN_NUMBER_DIGITS:
        return str(value)
    return None


def _leaves(tree: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    stack = [(tree, path)]
    while stack:
        item, where = stack.pop()
        if is_reference(item):
            continue  # a reference to a Secret object (secretName, items, [{name}]) holds no secret value
        if isinstance(item, dict):
            stack.extend((value, (*where, key)) for key, value in item.items())
        elif isinstance(item, list):
            stack.extend((value, (*where, ListPos(None, index))) for index, value in enumerate(item))
        else:
            yield where, item


def secrets_in_tree(tree: dict[Any, Any], section: str, parity: ParityConfig) -> list[tuple[str, str]]:
    """(where, value) of each secret value in one parsed file of ``section``."""
    policy = _Policy(parity, utcnow())
    found: dict[str, str] = {}
    for path, scalar in _leaves(tree, (section,)):
        # A credential as parity's REUSED check means it: its own key says secret, or it is in a
        # mapping of secrets; not every value beside a password (smtp.auth.user stays readable).
        text = _secret_text(scalar)
        if text is not None and policy.is_secret(path) and policy.is_reuse_candidate(path):
            found.setdefault(text, render_path(path))
    for scalar in _scalars(tree, policy.names):
        found.setdefault(str(scalar), "a NAME=value string")
    for text in _strings(tree):
        for kind, value in secrets_in(text):
            found.setdefault(value, kind)
    # A weak value (a placeholder such as "sentry") is a parity finding of its own and is shown
    # redacted only as a whole token there; as a substring it would shred every name holding it.
    return [(where, value) for value, where in found.items() if not is_weak(value)]


#: (file, section, size, mtime, parity rules) -> what it holds: each file is read once per process.
_CACHE: dict[tuple[Path, str, int, int, str], tuple[tuple[str, str], ...]] = {}


def _file_secrets(path: Path, section: str, parity: ParityConfig) -> tuple[tuple[str, str], ...]:
    try:
        stat = path.stat()
    except OSError:
        return ()  # the parity step says the file is missing
    key = (
        path,
        section,
        stat.st_size,
        stat.st_mtime_ns,
        parity.model_dump_json(include={"secret_names", "secret_mappings", "secret_paths", "not_secret_paths"}),
    )
    if key not in _CACHE:
        try:
            tree, _ = load_input_file(path, parity.max_input_size)
        except (PredeployError, OSError, ValueError):
            tree = {}
        _CACHE[key] = tuple(secrets_in_tree(tree, section, parity))
    return _CACHE[key]


def config_file_secrets(env_name: str, env: EnvironmentConfig, parity: ParityConfig) -> dict[str, str]:
    """The secret values in ``env``'s files, keyed ``<env>/<file>:<where>`` (redaction only)."""
    values: dict[str, str] = {}
    for section in SECTIONS:
        for path in getattr(env, section):
            for where, value in _file_secrets(Path(path), section, parity):
                name = f"{env_name}/{Path(path).name}: {where}"
                if name in values:  # two DSN passwords in one file: both are kept
                    name += f" #{sum(1 for known in values if known.startswith(name))}"
                values[name] = value
    return values
