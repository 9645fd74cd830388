"""YAML loading that remembers where every value came from and refuses duplicate keys, and the
limits every YAML, JSON or TOML document the tool reads is held to.

pydantic reports errors by path (``steps.deploy.timeout``); users fix files by line. We keep a
map from path to line so every configuration error can name both.

Limits (issue 30, item 9): a configuration, an approval record, a parity baseline, a flags file
and a captured state are all read through here, so each is held to the same size, nesting and
alias-expansion limits. Alias expansion is bounded per input byte (:func:`expansion_limit`):
what a document costs the steps that walk it stays proportional to its size.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pytest_predeploy.core.errors import ConfigError
from pytest_predeploy.core.fields import format_size
from pytest_predeploy.core.nesting import MAX_DEPTH as MAX_DEPTH  # re-exported: the limits are documented from here
from pytest_predeploy.core.nesting import check_nesting

Position = tuple[Any, ...]


#: Configuration files and approval records are written by hand; anything bigger is a mistake
#: (or an attack) and parsing it in full would take minutes and gigabytes before the first error.
MAX_DOCUMENT_BYTES = 1024 * 1024
#: Values a document may expand to once its aliases are followed, at least (see
#: :func:`expansion_limit`). Aliases save typing a few repeated settings; ten nested aliases of
#: ten ("billion laughs") expand to 10^9 values.
MAX_EXPANDED_VALUES = 100_000


def expansion_limit(size: int) -> int:
    """Values a document of ``size`` bytes may expand to: one per byte (a document without
    aliases never has more values than bytes), and never fewer than MAX_EXPANDED_VALUES."""
    return max(MAX_EXPANDED_VALUES, size)


class YamlLimitError(yaml.YAMLError):
    """A structural problem at a line (None: not known); the message never contains a value. A
    YAMLError, so that a caller handling PyYAML's errors handles these too."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line

    def at(self, origin: str) -> ConfigError:
        return ConfigError(f"{origin}:{self.line}: {self}" if self.line else f"{origin}: {self}")


def check_graph(node: yaml.Node, max_values: int) -> int:
    """Refuse a composed document that nests deeper than MAX_DEPTH, holds an alias inside its own
    anchor, or expands to more than ``max_values`` values once its aliases are followed; returns
    how many values it expands to. One pass over the node graph (a node an alias reaches again is
    not walked again), without recursion, so its cost is the file's, not the expansion's."""
    sizes: dict[int, tuple[int, int]] = {}  # id -> (values, height)
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    while stack:
        current, done = stack.pop()
        ident = id(current)
        if done:
            open_nodes.discard(ident)
            values, height = 1, 0
            for child in _children(current):
                child_values, child_height = sizes[id(child)]
                values += child_values
                height = max(height, child_height)
            height += 1
            line = current.start_mark.line + 1
            if height > MAX_DEPTH:
                raise YamlLimitError(line, f"nesting deeper than {MAX_DEPTH} levels")
            if values > max_values:
                raise YamlLimitError(line, f"aliases expand to more than {max_values:,} values; write the repeated settings out instead of nesting aliases")
            sizes[ident] = (values, height)
            continue
        if ident in sizes:
            continue
        if ident in open_nodes:
            raise YamlLimitError(current.start_mark.line + 1, "an alias that contains itself (it is inside its own anchor)")
        open_nodes.add(ident)
        stack.append((current, True))
        stack.extend((child, False) for child in _children(current) if id(child) not in sizes)
    return sizes[id(node)][0]


def check_depth(node: yaml.Node) -> None:
    """:func:`check_graph` for a document without aliases (a tree): only its depth."""
    stack = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise YamlLimitError(current.start_mark.line + 1, f"nesting deeper than {MAX_DEPTH} levels")
        depth += 1
        if current.__class__ is yaml.MappingNode:
            stack.extend((part, depth) for pair in current.value for part in pair if part.__class__ is not yaml.ScalarNode)
        elif current.__class__ is yaml.SequenceNode:
            stack.extend((item, depth) for item in current.value if item.__class__ is not yaml.ScalarNode)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


class _Loader(yaml.SafeLoader):
    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                # types-PyYAML leaves the pure-Python parser's peek_event unannotated.
                line = self.peek_event().start_mark.line + 1  # type: ignore[no-untyped-call]
                raise YamlLimitError(line, f"nesting deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # PyYAML lets a scalar's own conversion errors escape as plain exceptions with no line:
        # 2026-02-30 (ValueError), an integer of 5,000 digits (ValueError past Python's limit).
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:
            if not isinstance(node, yaml.ScalarNode):
                raise
            kind = node.tag.rsplit(":", 1)[-1]
            raise YamlLimitError(node.start_mark.line + 1, f"a value that cannot be read as {kind} ({type(exc).__name__})") from None


class _LimitedComposer:
    """Holds a libyaml loader to the configuration's limits: each document is checked by
    :func:`check_graph` as it is composed, against one budget of values for the whole stream
    (:func:`expansion_limit` of its size)."""

    def __init__(self, stream: str | bytes) -> None:
        super().__init__(stream)  # type: ignore[call-arg]  # the libyaml loader this is mixed into
        self._budget = expansion_limit(len(stream))
        # An alias is written with "*": without one the document is a tree, never bigger than
        # the file, and only its depth needs checking (the cheaper walk, for large baselines).
        self._aliases = ("*" in stream) if isinstance(stream, str) else (b"*" in stream)

    def _checked(self, node: yaml.Node | None) -> yaml.Node | None:
        if node is not None:
            if self._aliases:
                self._budget -= check_graph(node, self._budget)
            else:
                check_depth(node)
        return node

    def get_node(self) -> yaml.Node | None:
        return self._checked(super().get_node())  # type: ignore[misc]

    def get_single_node(self) -> yaml.Node | None:
        return self._checked(super().get_single_node())  # type: ignore[misc]


class LimitedCLoader(_LimitedComposer, yaml.CSafeLoader):
    """libyaml's safe loader (fast, for large baselines) held to the configuration's limits."""


class LimitedCBaseLoader(_LimitedComposer, yaml.CBaseLoader):
    """libyaml's base loader (every scalar a string) held to the configuration's limits."""


class _LineMap:
    """One pass over the node graph (checked by :func:`check_graph` first): the line of every
    key path, and duplicate keys. A node reached again through an alias is not walked again (its
    paths under the alias fall back to the alias's line, see :func:`line_of`), so the pass is
    linear in the file, not in the expansion."""

    def __init__(self) -> None:
        self.lines: dict[Position, int] = {}
        self._seen: set[int] = set()

    def visit(self, node: yaml.Node, path: Position) -> None:
        """Record lines under ``path``."""
        self.lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in self._seen:
            return
        self._seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                line = key_node.start_mark.line + 1
                if key in seen and key is not None and key != "<<":
                    raise YamlLimitError(line, f"duplicate key {key!r} (first defined on line {seen[key]})")
                seen[key] = line
                self.lines[(*path, key)] = line
                self.visit(key_node, (*path, key))
                self.visit(value_node, (*path, key))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.visit(item, (*path, index))


def parse_yaml(text: str, origin: str) -> tuple[Any, dict[Position, int]]:
    """Parse one YAML document; returns the data and a map from key path to line number."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        check_graph(node, expansion_limit(len(text)))
        line_map = _LineMap()
        line_map.visit(node, ())
        data = loader.construct_document(node)
    except YamlLimitError as exc:
        raise exc.at(origin) from None
    except yaml.YAMLError as exc:
        raise yaml_error(exc, origin) from None
    finally:
        loader.dispose()
    return data, line_map.lines


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return data


def parse_json(text: str | bytes, origin: str) -> Any:
    """A JSON document we read in full (approval records, sign-offs): duplicate keys refused as
    the YAML loader refuses them, nesting bounded; errors name the file and line, never a value."""
    check_nesting(text.decode("utf-8", "replace") if isinstance(text, bytes) else text, "json", origin)
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        # json gives no position; the YAML composer reads JSON too and names the line (only
        # for documents small enough to parse again quickly).
        if len(text) <= MAX_DOCUMENT_BYTES:
            try:
                parse_yaml(text.decode("utf-8", "replace") if isinstance(text, bytes) else text, origin)
            except ConfigError as located:
                if "duplicate key" in str(located):
                    raise located from None
        raise ConfigError(f"{origin}: duplicate key {exc.key!r}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{origin}:{exc.lineno}: invalid JSON: {exc.msg}") from None


def unreadable_number(exc: ValueError, origin: str) -> ConfigError:
    """A number a parser could not convert (an integer of thousands of digits is refused by
    Python itself, to keep conversion time bounded): the file, never the digits."""
    return ConfigError(
        f"{origin}: a value that cannot be read (an integer of more than {sys.get_int_max_str_digits()} digits, or a number out of range); "
        "write it as a string if it is an identifier"
    )


def _deeper_than(data: Any, limit: int) -> bool:
    stack = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((value, depth + 1) for value in item.values())
        elif isinstance(item, list):
            stack.extend((value, depth + 1) for value in item)
    return False


def parse_toml(text: str, origin: str) -> Any:
    """A TOML document, held to the YAML loader's nesting limit; every way it can fail is one
    message naming ``origin``. Brackets are checked up front (:func:`check_nesting`); dotted keys
    and table headers nest without recursing, so the tree is checked too."""
    check_nesting(text, "toml", origin)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: invalid TOML: {exc}") from None
    except ValueError as exc:
        raise unreadable_number(exc, origin) from None
    if _deeper_than(data, MAX_DEPTH):
        raise ConfigError(f"{origin}: nesting deeper than {MAX_DEPTH} levels")
    return data


def yaml_error(exc: yaml.YAMLError, origin: str) -> ConfigError:
    """The error for unparsable YAML: file and line, what the parser expected, never the text
    around it (it may hold a value that must not be echoed)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"{origin}:{mark.line + 1}" if mark else origin
        return ConfigError(f"{where}: invalid YAML: {exc.problem or exc.context}")
    return ConfigError(f"{origin}: invalid YAML ({type(exc).__name__})")


def read_bytes_file(path: Path, what: str = "file", max_bytes: int | None = None, setting: str | None = None) -> bytes:
    """Read a regular file, turning every way it can fail into a message naming it. With
    ``max_bytes``, a bigger file is refused (only that much is ever read); ``setting`` names
    the configuration field that raises the limit, when there is one."""
    try:
        # Without blocking: opening a FIFO for reading waits for a writer, for ever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, expected a {what}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        kind = os.fstat(fd).st_mode
        if stat.S_ISDIR(kind):
            raise ConfigError(f"{path}: is a folder, expected a {what}")
        if not stat.S_ISREG(kind):
            raise ConfigError(f"{path}: is not a regular file (a FIFO, socket or device), expected a {what}; point at the file itself")
        with os.fdopen(fd, "rb") as stream:
            fd = -1
            raw = stream.read() if max_bytes is None else stream.read(max_bytes + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    finally:
        if fd >= 0:
            os.close(fd)
    if max_bytes is not None and len(raw) > max_bytes:
        remedy = f"check it is the right file, or raise {setting}" if setting else "check it is the right file"
        raise ConfigError(f"{path}: {what} is larger than {format_size(max_bytes)}; it is parsed in full, so a bigger one is refused ({remedy})")
    return raw


def read_text_file(path: Path, what: str = "file", max_bytes: int | None = None, setting: str | None = None) -> str:
    """:func:`read_bytes_file` of a UTF-8 text file: a binary or non-UTF-8 one is refused by name."""
    raw = read_bytes_file(path, what, max_bytes, setting)
    if b"\0" in raw:
        raise ConfigError(f"{path}: is a binary file, expected a {what} in text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: is not UTF-8 text (invalid byte at offset {exc.start})") from None


def load_yaml_file(path: Path, what: str = "YAML file", max_bytes: int = MAX_DOCUMENT_BYTES) -> tuple[Any, dict[Position, int]]:
    return parse_yaml(read_text_file(path, what, max_bytes), str(path))


def line_of(lines: dict[Position, int], loc: Position) -> int | None:
    """The line of the deepest known prefix of ``loc`` (a missing field is reported at its parent)."""
    path = tuple(loc)
    while True:
        if path in lines:
            return lines[path]
        if not path:
            return None
        path = path[:-1]


def format_validation_errors(path: Path, error: ValidationError, lines: dict[tuple[object, ...], int]) -> str:
    """A pydantic validation error of a YAML file as usage-error text: ``file:line: field: message``
    per problem (one line when there is one)."""
    problems = []
    for item in error.errors():
        loc = tuple(item["loc"])
        field = ".".join(str(part) for part in loc) or "(top level)"
        line = line_of(lines, loc)
        where = f"{path}:{line}" if line else str(path)
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; see docs/config-reference.md)"
        elif item["type"] == "missing":
            message = "required field is missing"
        problems.append(f"{where}: {field}: {message}")
    if len(problems) == 1:
        return problems[0]  # one line, file:line first, as every other usage error
    return "invalid configuration:\n  " + "\n  ".join(problems)
