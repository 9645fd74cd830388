"""Parity's YAML reader: libyaml's events built straight into Python values.

Baselines are large (tens of MB of manifests), so the usual compose-then-construct path costs
too much: it keeps a node (and two position marks) for every value of a document until the
whole document is built, and walks every value twice. Here each event becomes its value at once
and only the values are kept: reading a baseline of short settings costs about 7 times its size
instead of about 31 (tests/test_input_limits.py), in about half the time.

Same results as ``yaml.CSafeLoader`` for the safe schema (tests/test_input_limits.py compares
them), but for merge keys: YAML says the first mapping merged wins, and so it does here for
every key (PyYAML's loader follows that only for keys that happen to share one string object).
Parity's stricter rules apply on top: the limits every document is held to (core.yamlfile:
nesting, alias expansion per input byte), applied as the events arrive; duplicate keys and
anchors, tags other than plain mappings, lists and scalars, and values longer than
MAX_VALUE_CHARS are errors naming the line, never the value. So is a document denser in values
than configuration is (:func:`value_limit`): each value costs the comparison some 70 bytes however
short it is written, so a file of nothing but tiny values would cost 20-30 times its size.
"""

from __future__ import annotations

import re
import types
from typing import Any

import yaml
from yaml.events import AliasEvent, DocumentEndEvent, MappingEndEvent, MappingStartEvent, ScalarEvent, SequenceEndEvent, SequenceStartEvent, StreamEndEvent

from pytest_predeploy.core.yamlfile import MAX_DEPTH, YamlLimitError, expansion_limit
from pytest_predeploy.intake.parity.config import MAX_VALUE_CHARS
from pytest_predeploy.intake.parity.paths import _segment_text

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_MERGE = "tag:yaml.org,2002:merge"
# PyYAML's stubs leave the resolver table untyped; it maps a first character to (tag, pattern) pairs.
_IMPLICIT: dict[str, tuple[tuple[str, re.Pattern[str]], ...]] = {
    first: tuple(resolvers) for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_PLAIN = (None, "!")
_MERGE_KEY = object()  # the key of a "<<: *defaults" pair while its value is read


#: Values an input may hold without question, and beyond that at most one per BYTES_PER_VALUE bytes
#: of the file: configuration holds a value every 10 to 20 bytes; a mapping of ``{},`` holds one
#: every 3. Each value costs the comparison some 70 bytes (a Python object, its slot, its path
#: when reported), so this keeps peak memory within about 12 times an input's size (docs/parity.md).
VALUES_FLOOR = 1_000_000
BYTES_PER_VALUE = 6


def value_limit(size: int) -> int:
    """How many values (keys and containers included) an input of ``size`` bytes may hold."""
    return max(VALUES_FLOOR, size // BYTES_PER_VALUE)


def too_dense(values: int, size: int) -> str:
    return (
        f"more than {value_limit(size):,} values in {size:,} bytes (at most one per {BYTES_PER_VALUE} bytes beyond the first"
        f" {VALUES_FLOOR:,}: each costs the comparison memory however short it is written); parity inputs are configuration,"
        " not data: compare a summary of the data instead"
    )


class Unreadable(Exception):
    """A YAML problem at a line; the message never contains a value."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


class _Open:
    """A mapping or list being built, with what the limits need to know of it."""

    __slots__ = ("anchor", "data", "height", "key", "key_lines", "line", "merges", "values")

    def __init__(self, data: dict[Any, Any] | list[Any], anchor: str | None, line: int) -> None:
        self.data = data
        self.anchor = anchor
        self.line = line
        self.key: Any = None  # for a mapping: the key read, until its value arrives
        self.key_lines: list[int] = []  # for a mapping: the line of each key, in order
        self.merges: list[Any] | None = None
        self.values = 1  # itself and everything in it, aliases expanded
        self.height = 1  # levels of mappings and lists, itself included


class _Loader(yaml.CSafeLoader):
    """libyaml's parser, and the safe schema's constructors for the scalars we do not build."""


def load_documents(text: str | bytes) -> list[tuple[int, Any]]:
    """Every document of the stream with the line it starts on; empty documents are left out."""
    loader = _Loader(text)
    try:
        return _Builder(loader, expansion_limit(len(text)), len(text)).documents()
    finally:
        loader.dispose()


class _Builder:
    def __init__(self, loader: _Loader, budget: int, size: int) -> None:
        self._loader = loader
        self._limit = self._budget = budget
        self._size = size
        self._built = value_limit(size)  # values built (not aliases) the document may still hold
        self._stack: list[_Open] = []
        self._anchors: dict[str, tuple[Any, int, int]] = {}  # name -> (value, values, height)
        self._open_anchors: set[str] = set()
        self._anchor_lines: dict[str, int] = {}
        self._root_line = 0

    def documents(self) -> list[tuple[int, Any]]:
        documents: list[tuple[int, Any]] = []
        get = self._loader.get_event
        stack = self._stack
        root: Any = None
        root_line = 0
        while True:
            event: Any = get()  # never None before the stream's end
            kind = event.__class__
            if kind is ScalarEvent:
                value, values, height = self._scalar(event), 1, 0
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                self._open(event, kind is MappingStartEvent)
                continue
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                value, values, height = self._close()
            elif kind is AliasEvent:
                value, values, height = self._alias(event)
            elif kind is DocumentEndEvent:
                if root is not None:
                    documents.append((root_line, root))
                root = None
                self._anchors.clear()
                self._anchor_lines.clear()
                continue
            elif kind is StreamEndEvent:
                return documents
            else:  # stream and document starts
                continue
            if stack:
                self._add(stack[-1], value, values, height, event)
            else:
                root = value
                closed = kind is MappingEndEvent or kind is SequenceEndEvent
                root_line = self._root_line if closed else event.start_mark.line + 1

    def _count(self, values: int, line: int) -> None:
        """Spend ``values`` of the stream's budget (core.yamlfile.expansion_limit of its size)."""
        self._budget -= values
        if self._budget < 0:
            raise YamlLimitError(line, f"aliases expand to more than {self._limit:,} values; write the repeated settings out instead of nesting aliases")

    def _build(self, line: int) -> None:
        """One more value built (an alias builds nothing: it is the same object again)."""
        self._built -= 1
        if self._built < 0:
            raise Unreadable(line, too_dense(value_limit(self._size) + 1, self._size))

    def _scalar(self, event: Any) -> Any:  # a ScalarEvent (libyaml's always carry marks)
        self._count(1, event.start_mark.line + 1)
        self._build(event.start_mark.line + 1)
        tag, value = event.tag, event.value
        if tag in _PLAIN:
            tag = _STR
            if event.implicit[0]:
                for candidate, regexp in _IMPLICIT.get(value[:1], ()):
                    if regexp.match(value):
                        tag = candidate
                        break
        if tag == _STR:
            if len(value) > MAX_VALUE_CHARS:
                raise Unreadable(event.start_mark.line + 1, f"a value longer than {MAX_VALUE_CHARS} characters (parity inputs are configuration, not data)")
            built: Any = value
        elif tag == _NULL:
            built = None
        elif tag == _BOOL:
            built = self._loader.bool_values[value.lower()]
        elif tag == _MERGE and self._stack and self._stack[-1].merges is not None and self._stack[-1].key is _NO_KEY:
            built = _MERGE_KEY
        else:
            built = self._construct(tag, event)
        if event.anchor is not None:
            self._name_anchor(event.anchor, event.start_mark.line + 1)
            self._anchors[event.anchor] = (built, 1, 0)
        return built

    def _name_anchor(self, name: str, line: int) -> None:
        """An anchor is defined once a document, as PyYAML's composer requires."""
        first = self._anchor_lines.setdefault(name, line)
        if first != line or name in self._anchors or name in self._open_anchors:
            raise Unreadable(line, f"anchor &{name} is defined twice (first on line {first})")

    def _construct(self, tag: str, event: Any) -> Any:
        constructor = self._loader.yaml_constructors.get(tag)
        what = f"a value that cannot be read as {tag.rsplit(':', 1)[-1]}"
        if constructor is None:
            raise Unreadable(event.start_mark.line + 1, what)
        try:
            built = constructor(self._loader, yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style))
        except (ValueError, TypeError, OverflowError, yaml.YAMLError):
            raise Unreadable(event.start_mark.line + 1, what) from None
        if isinstance(built, types.GeneratorType):  # a mapping or list tag on a scalar
            raise Unreadable(event.start_mark.line + 1, f"unsupported tag {tag} (only plain mappings, lists and scalars)")
        return built

    def _open(self, event: Any, mapping: bool) -> None:
        line = event.start_mark.line + 1
        if event.tag not in _PLAIN and event.tag != (_MAP if mapping else _SEQ):
            raise Unreadable(line, f"unsupported tag {event.tag} (only plain mappings, lists and scalars)")
        if len(self._stack) >= MAX_DEPTH:
            raise YamlLimitError(line, f"nesting deeper than {MAX_DEPTH} levels")
        self._count(1, line)
        self._build(line)
        if not self._stack:
            self._root_line = line
        opened = _Open({} if mapping else [], event.anchor, line)
        if mapping:
            opened.merges = []
            opened.key = _NO_KEY
        if event.anchor is not None:
            self._name_anchor(event.anchor, line)
            self._open_anchors.add(event.anchor)
        self._stack.append(opened)

    def _close(self) -> tuple[Any, int, int]:
        closed = self._stack.pop()
        data = closed.data
        if closed.merges:
            # YAML's merge keys: the first mapping merged that has a key gives its value (in a
            # list, earlier mappings win), and the mapping's own keys win over every merged one.
            merged: dict[Any, Any] = {}
            for source in closed.merges:
                for each in [source] if isinstance(source, dict) else source:
                    for key, value in each.items():
                        merged.setdefault(key, value)
            merged.update(data)
            data = merged
        if closed.anchor is not None:
            self._open_anchors.discard(closed.anchor)
            self._anchors[closed.anchor] = (data, closed.values, closed.height)
        return data, closed.values, closed.height

    def _alias(self, event: Any) -> tuple[Any, int, int]:
        line = event.start_mark.line + 1
        name = event.anchor
        if name in self._open_anchors:
            raise YamlLimitError(line, "an alias that contains itself (it is inside its own anchor)")
        if name not in self._anchors:
            raise Unreadable(line, f"an alias to an anchor that is not defined before it ({name!r})")
        value, values, height = self._anchors[name]
        if len(self._stack) + height > MAX_DEPTH:
            raise YamlLimitError(line, f"nesting deeper than {MAX_DEPTH} levels")
        self._count(values, line)
        return value, values, height

    def _add(self, parent: _Open, value: Any, values: int, height: int, event: Any) -> None:
        parent.values += values
        if height >= parent.height:
            parent.height = height + 1
        data = parent.data
        if parent.merges is None:
            data.append(value)  # type: ignore[union-attr]
            return
        key = parent.key
        if key is _NO_KEY:
            if isinstance(value, (dict, list)):
                raise Unreadable(parent.line, "a mapping key that is a list or mapping")
            parent.key = value
            if value is not _MERGE_KEY:
                parent.key_lines.append(event.start_mark.line + 1)
            return
        parent.key = _NO_KEY
        if key is _MERGE_KEY:
            if not (isinstance(value, dict) or (isinstance(value, list) and all(isinstance(each, dict) for each in value))):
                raise Unreadable(event.start_mark.line + 1, "a merge key (<<) whose value is not a mapping or a list of mappings")
            parent.merges.append(value)
            return
        if key in data:
            lines = parent.key_lines
            first = lines[list(data).index(key)]
            raise Unreadable(lines[-1], f"duplicate key {_segment_text(key)!r} (first defined on line {first})")
        data[key] = value


_NO_KEY = object()  # a mapping waiting for its next key
