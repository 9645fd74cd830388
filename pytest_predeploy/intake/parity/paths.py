"""Paths and globs of parity: a path is a tuple of mapping keys and list positions, written out
for reports and matched by the globs of rules, ignores, waivers and secret paths.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

from pydantic import AfterValidator

# -- paths and globs -------------------------------------------------------------------------
#
# A path is a tuple of mapping keys and list positions. Written out, keys join with dots, keys
# that could be misread (dots, brackets, quotes, wildcards) are quoted as ["k.e.y"], and list
# items read [name=api] (lists of mappings compared by key) or [3] (by index). Globs use the
# same syntax with * (within one segment), ? and ** (any number of segments).


@dataclass(frozen=True, slots=True)
class ListPos:
    """A list element inside a path: ``[3]`` (``key`` None) or ``[name=api]``. Rendered only
    when a difference is reported, so walking equal lists stays cheap."""

    key: str | None
    ident: Any

    @property
    def text(self) -> str:
        return f"[{self.ident}]" if self.key is None else f"[{self.key}={_ident_text(self.ident)}]"


_SEP = "\x1f"  # joins segments for glob matching; never meaningful in a configuration key
_PLAIN_KEY = re.compile(r'[^.\[\]"*?\x1f\s][^.\[\]"*?\x1f]*')


def _segment_text(segment: object) -> str:
    if isinstance(segment, ListPos):
        return segment.text
    if isinstance(segment, str):
        return segment
    return f"<{type(segment).__name__}:{segment}>"


def render_path(path: tuple[Any, ...]) -> str:
    """``("configuration", "log.level")`` -> ``configuration["log.level"]``."""
    out: list[str] = []
    for segment in path:
        text = _segment_text(segment)
        if isinstance(segment, ListPos):
            out.append(text)
        elif _PLAIN_KEY.fullmatch(text) and not text.endswith(" "):
            out.append(("." if out else "") + text)
        else:
            out.append("[" + json.dumps(text, ensure_ascii=False) + "]")
    return "".join(out)


def _match_text(path: tuple[Any, ...]) -> str:
    return _SEP.join(_segment_text(segment) for segment in path)


def _tokens(pattern: str) -> list[tuple[str, str]]:
    """Split a path or glob into ("glob"|"literal", text) segments; ValueError names the problem."""
    tokens: list[tuple[str, str]] = []
    buf = ""
    i = 0
    after_bracket = False
    while i < len(pattern):
        char = pattern[i]
        if char == ".":
            if buf:
                tokens.append(("glob", buf))
                buf = ""
            elif not after_bracket:
                raise ValueError(f"empty segment at character {i + 1} of {pattern!r}")
            after_bracket = False
            i += 1
        elif char == "[":
            if buf:
                tokens.append(("glob", buf))
                buf = ""
            if pattern.startswith('["', i):
                try:
                    key, end = json.JSONDecoder().raw_decode(pattern, i + 1)
                except json.JSONDecodeError:
                    raise ValueError(f"unterminated quoted key at character {i + 1} of {pattern!r}") from None
                if pattern[end : end + 1] != "]":
                    raise ValueError(f"expected ] after the quoted key at character {end + 1} of {pattern!r}")
                tokens.append(("literal", key))
                i = end + 1
            else:
                end = pattern.find("]", i)
                if end < 0:
                    raise ValueError(f"unclosed [ at character {i + 1} of {pattern!r}")
                tokens.append(("glob", pattern[i : end + 1]))
                i = end + 1
            after_bracket = True
        else:
            buf += char
            i += 1
    if buf:
        tokens.append(("glob", buf))
    elif pattern.endswith(".") or not tokens:
        raise ValueError(f"empty segment at the end of {pattern!r}")
    return tokens


def _segment_regex(kind: str, text: str) -> str:
    if kind == "literal":
        return re.escape(text)
    return "".join(f"[^{_SEP}]*" if c == "*" else f"[^{_SEP}]" if c == "?" else re.escape(c) for c in text)


@lru_cache(maxsize=1024)
def compile_glob(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """A path glob as a regex over ``_match_text(path)``; ``**`` matches zero or more segments."""
    parts: list[str] = []
    need_sep = False
    for kind, text in _tokens(pattern):
        if kind == "glob" and text == "**":
            parts.append(f"(?:{_SEP}[^{_SEP}]*)*" if need_sep else f"(?:[^{_SEP}]*{_SEP})*")
            # After a leading ** the next segment follows directly (the group ate the separator).
            continue
        parts.append((_SEP if need_sep else "") + _segment_regex(kind, text))
        need_sep = True
    regex = "".join(parts)
    if regex == f"(?:[^{_SEP}]*{_SEP})*":  # a lone "**" matches everything
        regex = ".*"
    return re.compile(regex, re.IGNORECASE if ignore_case else 0)


def parse_exact_path(path: str) -> tuple[str, ...]:
    """A path without wildcards or list positions (required flags name one key each)."""
    segments = []
    for kind, text in _tokens(path):
        if kind == "glob" and (any(c in text for c in "*?") or text.startswith("[")):
            raise ValueError(f"{path!r} must name one key: no wildcards or list positions")
        segments.append(text)
    return tuple(segments)


def _valid_glob(value: str) -> str:
    compile_glob(value)
    return value


PathGlob = Annotated[str, AfterValidator(_valid_glob)]


def _ident_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if re.fullmatch(r"[^\]\x1f\"]+", text) else json.dumps(text, ensure_ascii=False)
