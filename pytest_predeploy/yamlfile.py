"""YAML loading that remembers where every value came from and refuses duplicate keys.

pydantic reports errors by path (``steps.deploy.timeout``); users fix files by line. We keep a
map from path to line so every configuration error can name both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pytest_predeploy.errors import ConfigError

Position = tuple[Any, ...]


class _Loader(yaml.SafeLoader):
    pass


def _lines(node: yaml.Node, path: Position, out: dict[Position, int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            line = key_node.start_mark.line + 1
            if key in seen and key is not None and key != "<<":
                raise ConfigError(f"{line}: duplicate key {key!r} (first defined on line {seen[key]})")
            seen[key] = line
            _lines(value_node, (*path, key), out)
            out[(*path, key)] = line
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _lines(item, (*path, index), out)


def parse_yaml(text: str, origin: str) -> tuple[Any, dict[Position, int]]:
    """Parse one YAML document; returns the data and a map from key path to line number."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines: dict[Position, int] = {}
        try:
            _lines(node, (), lines)
        except ConfigError as exc:
            raise ConfigError(f"{origin}:{exc}") from None
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise yaml_error(exc, origin) from None
    finally:
        loader.dispose()
    return data, lines


def yaml_error(exc: yaml.YAMLError, origin: str) -> ConfigError:
    """The error for unparsable YAML: file and line, what the parser expected, never the text
    around it (it may hold a value that must not be echoed)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"{origin}:{mark.line + 1}" if mark else origin
        return ConfigError(f"{where}: invalid YAML: {exc.problem or exc.context}")
    return ConfigError(f"{origin}: invalid YAML ({type(exc).__name__})")


def read_text_file(path: Path, what: str = "file") -> str:
    """Read a UTF-8 text file, turning every way it can fail into a message naming it."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, expected a {what}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    if b"\0" in raw:
        raise ConfigError(f"{path}: is a binary file, expected a {what} in text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: is not UTF-8 text (invalid byte at offset {exc.start})") from None


def load_yaml_file(path: Path, what: str = "YAML file") -> tuple[Any, dict[Position, int]]:
    return parse_yaml(read_text_file(path, what), str(path))


def line_of(lines: dict[Position, int], loc: Position) -> int | None:
    """The line of the deepest known prefix of ``loc`` (a missing field is reported at its parent)."""
    path = tuple(loc)
    while True:
        if path in lines:
            return lines[path]
        if not path:
            return None
        path = path[:-1]
