"""How deep a JSON or TOML document nests, found without parsing it: the parsers recurse once a
level and are bounded only by Python's recursion limit, so a document 100,000 levels deep is
refused here, before any of them sees it (issue 30). YAML is checked as it is composed
(core.yamlfile). No third-party import: the plugin reads artifacts in plain pytest runs too.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from pytest_predeploy.core.errors import ConfigError

#: Hand-written settings nest a few levels; PyYAML composes recursively and would hit Python's
#: recursion limit (a traceback) a few hundred levels down.
MAX_DEPTH = 64

#: What cannot hold a bracket that nests: JSON strings; TOML strings (all four kinds) and comments.
#: Leftmost match first, so a quote inside a comment or a '#' inside a string is read right.
_NOT_NESTING = {
    "json": re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"'),
    "toml": re.compile(r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"[^"\\\n]*(?:\\.[^"\\\n]*)*"|\'[^\'\n]*\'|#[^\n]*'),
}
#: A TOML key of more than MAX_DEPTH dotted parts (``a.b.c...``, bare or quoted: quoted parts are
#: gone with the strings). tomllib builds a key's prefixes one by one, so 100,000 parts (a 200 KB
#: file) cost it gigabytes. Found on the text with each bare word made one "w" and blanks removed,
#: and only from a key's start, so the scan stays linear.
_WORDS = re.compile(r"[\w-]+")
_BLANKS = re.compile(r"[ \t]+")
_DOTTED_KEY = re.compile(rf"(?<![w.])(?:w?+\.){{{MAX_DEPTH},}}")
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_NOT_BRACKETS_OR_NEWLINES = re.compile(r"[^\[\]{}\n]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1, "\n": 0}


def _keys(text: str) -> str:
    return _BLANKS.sub("", _WORDS.sub("w", text))


def _newlines(skipped: re.Match[str]) -> str:
    return "\n" * skipped.group().count("\n")


def nesting_line(text: str, fmt: str) -> int | None:
    """The line where a JSON or TOML ``text`` nests deeper than MAX_DEPTH, None when it does not.
    A scan of its brackets outside strings and comments, without recursion, so a document
    100,000 levels deep is refused before a parser recurses into it (their recursion is
    bounded only by Python's recursion limit)."""
    outside = _NOT_NESTING[fmt].sub("", text)
    if fmt == "toml" and _DOTTED_KEY.search(_keys(outside)):
        keys = _keys(_NOT_NESTING[fmt].sub(_newlines, text))
        dotted = _DOTTED_KEY.search(keys)
        assert dotted is not None  # the same text, its skipped parts as newlines instead of nothing
        return keys.count("\n", 0, dotted.start()) + 1
    brackets = _NOT_BRACKETS.sub("", outside)
    if len(brackets) <= MAX_DEPTH or max(accumulate(map(_STEP.__getitem__, brackets))) <= MAX_DEPTH:
        return None
    # Rare (the file is refused): again, keeping the newlines of what is skipped, for the line.
    outside = _NOT_NESTING[fmt].sub(_newlines, text)
    kept = _NOT_BRACKETS_OR_NEWLINES.sub("", outside)
    depths = accumulate(map(_STEP.__getitem__, kept))
    deepest = next(index for index, depth in enumerate(depths) if depth > MAX_DEPTH)
    return kept.count("\n", 0, deepest) + 1


def json_loads(raw: str | bytes) -> Any:
    """``json.loads`` of a document a step or a tool wrote, its nesting checked first without
    recursion: deeper than MAX_DEPTH is a JSONDecodeError at the line where it happens, like any
    other malformed JSON (callers already name the file for those)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    line = nesting_line(text, "json")
    if line is not None:
        start = 0
        for _ in range(line - 1):
            start = text.index("\n", start) + 1
        raise json.JSONDecodeError(f"nesting deeper than {MAX_DEPTH} levels", text, start)
    return json.loads(raw)


def check_nesting(text: str, fmt: str, origin: str) -> None:
    """Refuse a JSON or TOML document nested deeper than MAX_DEPTH (see :func:`nesting_line`)."""
    line = nesting_line(text, fmt)
    if line is not None:
        raise ConfigError(f"{origin}:{line}: nesting deeper than {MAX_DEPTH} levels")
