"""Pieces of known secrets that truncation leaves in report text.

pytest shortens long values in assertion messages (``'ghp_a1WxeVpG...'``) and skips identical
leading characters in diffs; a terminal cuts long lines. What is left is a leading or trailing
piece of a secret, which whole-value redaction cannot match. A piece is redacted when it is at
least MIN_BARE characters long, or at least MIN_MARKED beside a truncation mark (``...``, ``…``).

Listing every piece of every secret as a pattern would mean ~200 patterns per secret (and
seconds to build with 1,000 secrets). Instead each secret contributes its first MIN_MARKED bytes
to an automaton, and each place those occur is looked up (a short piece before a mark) or
extended along the secret (a long piece); trailing pieces are the same on reversed bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ahocorasick_rs import BytesAhoCorasick

MIN_MARKED = 4
MIN_BARE = 12
MARKS = (b"...", "\u2026".encode())
_REVERSED_MARKS = tuple(mark[::-1] for mark in MARKS)


def _common_prefix(data: bytes, start: int, value: bytes) -> int:
    size = 0
    limit = min(len(value), len(data) - start)
    while size < limit and data[start + size] == value[size]:
        size += 1
    return size


class _Side:
    """The leading (or, on reversed bytes, trailing) pieces of the secrets: short ones (shorter
    than MIN_BARE: they count only before a mark) in a set, long ones found by their first
    MIN_BARE bytes and then extended, so each place a head occurs costs a dict look-up or two."""

    def __init__(self, secrets: list[tuple[bytes, bytes]], marks: tuple[bytes, ...]) -> None:
        self.marks = marks
        self.short: dict[bytes, bytes] = {}
        self.long: dict[bytes, list[tuple[bytes, bytes]]] = {}
        for raw, tag in secrets:
            for size in range(MIN_MARKED, min(MIN_BARE, len(raw))):
                self.short.setdefault(raw[:size], tag)
            if len(raw) > MIN_BARE:
                self.long.setdefault(raw[:MIN_BARE], []).append((raw, tag))
        heads = sorted({raw[:MIN_MARKED] for raw, _ in secrets if len(raw) > MIN_MARKED})
        self.finder = BytesAhoCorasick(heads) if heads else None

    def pieces(self, data: bytes) -> list[tuple[int, int, bytes]]:
        """(start, end, tag) of each leading piece in ``data``."""
        if self.finder is None:
            return []
        found = []
        for _, start, _ in self.finder.find_matches_as_indexes(data, overlapping=True):
            candidates = self.long.get(data[start : start + MIN_BARE])
            if candidates:
                size, tag = max(((_common_prefix(data, start, raw), tag) for raw, tag in candidates), key=lambda pair: pair[0])
                found.append((start, start + size, tag))
                continue
            for size in range(min(MIN_BARE - 1, len(data) - start), MIN_MARKED - 1, -1):
                short = self.short.get(data[start : start + size])
                if short is not None and any(data.startswith(mark, start + size) for mark in self.marks):
                    found.append((start, start + size, short))
                    break
        return found


class Fragments:
    """Finds the leading and trailing pieces of ``values`` (value -> the secret's name)."""

    def __init__(self, values: Mapping[str, str]) -> None:
        secrets = [(value.encode("utf-8"), f"[REDACTED:{name}]".encode()) for value, name in sorted(values.items())]
        self._leading = _Side(secrets, MARKS)
        # Trailing pieces are leading pieces of the reversed secrets in the reversed text.
        self._trailing = _Side([(raw[::-1], tag) for raw, tag in secrets], _REVERSED_MARKS)

    def _spans(self, data: bytes) -> list[tuple[int, int, bytes]]:
        spans = self._leading.pieces(data)
        size = len(data)
        spans += [(size - end, size - start, tag) for start, end, tag in self._trailing.pieces(data[::-1])]
        return spans

    def redact(self, data: bytes) -> bytes:
        # Merge overlapping pieces (a tail found both as one secret's and another's): one tag each.
        merged: list[list[Any]] = []
        for start, end, tag in sorted(self._spans(data)):
            if merged and start < merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end, tag])
        if not merged:
            return data
        out: list[bytes] = []
        pos = 0
        for start, end, tag in merged:
            out += [data[pos:start], tag]
            pos = end
        out.append(data[pos:])
        return b"".join(out)
