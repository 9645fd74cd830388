"""Redaction of secret values from everything we write.

A secret can reach a transcript in more than its plain form: scripts base64-encode credentials
for HTTP headers, URL-encode them into connection strings, print them JSON-escaped (a PEM key's
newlines become ``\\n``), HTML-escaped or hex-encoded, or log a multi-line key one line at a
time. We redact each of those forms (see :func:`secret_forms`), and the streaming redactor holds
back just enough bytes that a secret split across two reads is still caught.

All forms of all secrets are found in one pass over the bytes by an Aho-Corasick automaton
(ahocorasick-rs), so the cost per byte does not grow with the number of secrets (a compiled
regex alternation of thousands of literals does: ``bench/redact.py``).

Report text (a failure's message, a gate's figures, a parity value) gets two more things the
byte streams do not: secrets recognised by their content (``core/detect.py``: a DSN's password,
a PEM block, a JWT ...) whatever name holds them, and fragments of a known secret left by
truncation (pytest's assertion messages show ``'ghp_a1WxeVpG...'``).
"""

from __future__ import annotations

import base64
import bisect
import html
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from ahocorasick_rs import MATCHKIND_LEFTMOST_LONGEST, BytesAhoCorasick, Implementation

from pytest_predeploy.core.detect import secrets_in
from pytest_predeploy.core.fragments import Fragments
from pytest_predeploy.core.nesting import json_loads

#: Base64 fragments shorter than this are too likely to occur by chance in unrelated output.
_MIN_B64_CORE = 8
#: Values this short would shred ordinary output if redacted; they are left alone and the run
#: warns about them when it loads its secrets (see ``Redactor.too_short``).
MIN_SECRET_LENGTH = 4
#: A line of a multi-line secret (a PEM key logged line by line) is redacted on its own when it
#: is at least this long; shorter lines (a blank line, ``}``) are not secret on their own.
MIN_LINE_LENGTH = 8
_TAG_PREFIX = b"[REDACTED:"
#: Up to this many bytes of forms (about 250 secrets) the automaton is a DFA (see _Matcher).
DFA_BUDGET = 64 * 1024


def _base64_cores(value: bytes) -> set[bytes]:
    """The characters of base64(value) that do not depend on the surrounding bytes, at each of
    the three possible alignments of ``value`` inside a larger encoded blob."""
    cores: set[bytes] = set()
    for offset in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * offset + value)
            start = (offset * 8 + 5) // 6
            end = ((offset + len(value)) * 8) // 6
            core = encoded[start:end]
            if len(core) >= _MIN_B64_CORE:
                cores.add(core)
    return cores


_HEX_ESCAPE = re.compile(rb"%[0-9A-F]{2}")


def _url_forms(value: str) -> set[bytes]:
    """``value`` percent-encoded the ways code commonly does it: ``quote`` with its default
    ``safe="/"`` and with ``safe=""``, ``quote_plus`` (form encoding), each with upper- and
    lower-case hex escapes (both are valid and both occur: ``%2F`` from Python, ``%2f`` from
    other encoders)."""
    forms: set[bytes] = set()
    for encoded in (quote(value), quote(value, safe=""), quote_plus(value), quote_plus(value, safe="/")):
        upper = encoded.encode("ascii")
        forms.add(upper)
        forms.add(_HEX_ESCAPE.sub(lambda match: match.group(0).lower(), upper))
    return forms


def _html_forms(value: str) -> set[bytes]:
    """``value`` HTML-escaped as Python (``&#x27;``), Jinja/MarkupSafe (``&#39;``) and escapers
    that leave quotes alone do it."""
    escaped = html.escape(value)
    return {form.encode("utf-8") for form in (escaped, escaped.replace("&#x27;", "&#39;"), html.escape(value, quote=False))}


def _single_line_forms(value: str) -> set[bytes]:
    raw = value.encode("utf-8")
    forms = {raw} | _url_forms(value) | _html_forms(value)
    forms.add(json.dumps(value)[1:-1].encode())
    forms.add(json.dumps(value, ensure_ascii=False)[1:-1].encode("utf-8"))
    forms.add(json.dumps(value)[1:-1].replace("/", "\\/").encode())  # PHP's and some JS encoders'
    forms.add(raw.hex().encode())
    forms.add(raw.hex().upper().encode())
    forms |= _base64_cores(raw)
    return forms


def secret_forms(value: str) -> set[bytes]:
    """Every byte string whose presence in output would disclose ``value``: plain, URL-encoded,
    JSON-, HTML-escaped, hex (either case), base64 at any alignment, and for a multi-line value
    also each of its lines alone (a key logged line by line) and its CRLF form."""
    forms = _single_line_forms(value)
    if "\n" in value:
        forms.add(value.replace("\n", "\r\n").encode("utf-8"))
        for line in value.splitlines():
            line = line.strip()
            if len(line) >= MIN_LINE_LENGTH:
                forms |= _single_line_forms(line)
    return {form for form in forms if form}


class _Matcher:
    """Every form of every secret, found leftmost-longest in one pass."""

    def __init__(self, replacement: Mapping[bytes, bytes]) -> None:
        #: Sorted, so that Redactor.pending_start can bisect them.
        self.forms = sorted(replacement)
        self.tags = [replacement[form] for form in self.forms]
        # A DFA scans about 1.5x as fast as the contiguous NFA, but its memory grows with the
        # forms' total length (~140 MB for 1,000 secrets): past DFA_BUDGET bytes of forms, the NFA.
        size = sum(map(len, self.forms))
        implementation = Implementation.DFA if size <= DFA_BUDGET else Implementation.ContiguousNFA
        self._automaton = BytesAhoCorasick(self.forms, matchkind=MATCHKIND_LEFTMOST_LONGEST, implementation=implementation) if self.forms else None

    def __bool__(self) -> bool:
        return self._automaton is not None

    def matches(self, data: bytes | bytearray | memoryview) -> list[tuple[int, int, int]]:
        return self._automaton.find_matches_as_indexes(data) if self._automaton is not None else []

    def substitute(self, data: bytes) -> bytes:
        matches = self.matches(data)
        if not matches:
            return data
        out: list[bytes] = []
        pos = 0
        for index, start, end in matches:
            out.append(data[pos:start])
            out.append(self.tags[index])
            pos = end
        out.append(data[pos:])
        return b"".join(out)


class Redactor:
    """Replaces every known secret form with ``[REDACTED:<name>]``."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        replacement: dict[bytes, bytes] = {}
        #: Names of secrets too short to redact (empty ones are not secrets at all).
        self.too_short: list[str] = []
        self._values: dict[str, str] = {}
        for name, value in sorted(secrets.items()):
            if not value:
                continue
            if len(value) < MIN_SECRET_LENGTH:
                self.too_short.append(name)
                continue
            self._values.setdefault(value, name)
            for form in secret_forms(value):
                replacement.setdefault(form, f"[REDACTED:{name}]".encode())
        self._matcher = _Matcher(replacement)
        self._fragments: Fragments | None = None
        self.max_form_length = max(map(len, replacement), default=0)
        # Where a secret could begin at the end of a stream (see pending_start): the forms' first
        # four bytes, and every shorter start of a form.
        self._heads = {form[:4] for form in replacement}
        self._short_heads = {form[:size] for form in replacement for size in range(1, 4)}

    @classmethod
    def from_values(cls, values: Iterable[tuple[str, str]]) -> Redactor:
        return cls(dict(values))

    @property
    def knows_secrets(self) -> bool:
        return bool(self._matcher)

    def redact_bytes(self, data: bytes) -> bytes:
        return self._matcher.substitute(data)

    def redact(self, text: str) -> str:
        """Report text: known secrets in every form, then secrets recognised by their content."""
        redacted = self.redact_bytes(text.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape")
        return redact_content(redacted)

    def redact_report(self, text: str) -> str:
        """A pytest report's text: as :meth:`redact`, and also the pieces of known secrets that
        truncation leaves (``'ghp_a1WxeVpG...'``; pytest shortens long values in assertion
        messages and skips identical leading characters in diffs)."""
        text = self.redact(text)
        if not self._values:
            return text
        if self._fragments is None:
            self._fragments = Fragments(self._values)
        return self._fragments.redact(text.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape")

    def stream(self) -> StreamRedactor:
        return StreamRedactor(self)

    def hits(self, data: bytes) -> Iterator[tuple[str, int, int]]:
        """(secret name, start, end) of each secret form in ``data``."""
        tags = self._matcher.tags
        for index, start, end in self._matcher.matches(data):
            yield tags[index].decode()[len(_TAG_PREFIX) : -1], start, end

    def names_in(self, data: bytes) -> list[str]:
        """Names of the secrets whose values occur in ``data``."""
        found = {self._matcher.tags[index] for index, _, _ in self._matcher.matches(data)}
        return sorted(tag.decode()[len(_TAG_PREFIX) : -1] for tag in found)

    def pending_start(self, data: bytes) -> int:
        """The first position from which the rest of ``data`` could be the beginning of a secret
        form still being written (``len(data)`` when none could be): only that much needs to be
        held back until more output arrives."""
        if not self._matcher or not data:
            return len(data)
        heads, forms, end = self._heads, self._matcher.forms, len(data)
        for start in range(max(0, end - (self.max_form_length - 1)), end):
            if end - start >= 4:
                if data[start : start + 4] not in heads:
                    continue
                rest = data[start:]
                # The forms are sorted: the first one not less than ``rest`` starts with it if any does.
                index = bisect.bisect_left(forms, rest)
                if index < len(forms) and forms[index].startswith(rest):
                    return start
            elif data[start:] in self._short_heads:
                return start
        return end

    def contains_secret(self, data: bytes) -> bool:
        return bool(self._matcher.matches(data))

    def short_secret_warning(self) -> str | None:
        """The warning a run gives when it loads secrets it cannot redact, or None."""
        if not self.too_short:
            return None
        return (
            f"secret {', '.join(self.too_short)} {'is' if len(self.too_short) == 1 else 'are'} shorter than {MIN_SECRET_LENGTH} characters: "
            "too short to redact without shredding ordinary output, so such a value is NOT redacted anywhere; use a longer secret"
        )

    def locate(self, data: bytes) -> list[str]:
        """Where secrets occur in ``data``: ``the value of NAME at <json path>`` for a JSON document
        (a test id, a message, a config value...), ``at line N`` otherwise; so a message can say
        which part of a file holds the secret, not only which file."""
        if not self.contains_secret(data):
            return []
        try:
            document = json_loads(data)
        except ValueError:
            document = None
        found: dict[str, list[str]] = {}
        if document is not None:
            self._walk(document, "", found)
        if not found:
            for number, line in enumerate(data.splitlines(), 1):
                for name in self.names_in(line):
                    found.setdefault(name, []).append(f"line {number}")
        return describe_places(found)

    def _walk(self, node: Any, path: str, found: dict[str, list[str]]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                child = f"{path}.{key}" if path else str(key)
                for name in self.names_in(str(key).encode("utf-8", "surrogateescape")):
                    found.setdefault(name, []).append(f"{child} (a key)")
                self._walk(value, child, found)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                self._walk(value, f"{path}[{index}]", found)
        elif node is not None and not isinstance(node, bool):
            for name in self.names_in(str(node).encode("utf-8", "surrogateescape")):
                found.setdefault(name, []).append(path or "(top level)")


def describe_places(found: Mapping[str, list[str]], counts: Mapping[str, int] | None = None) -> list[str]:
    """``the value of NAME at A, B`` for each secret name and the places it was found (``counts``:
    how many places there were in all, when ``found`` keeps only the first few)."""
    lines = []
    for name, places in sorted(found.items()):
        total = (counts or {}).get(name, len(places))
        lines.append(f"the value of {name} at {', '.join(places[:5])}" + (f" (and {total - 5} more places)" if total > 5 else ""))
    return lines


def redact_content(text: str) -> str:
    """``text`` with every secret recognised by its content replaced by ``[REDACTED:<kind>]``."""
    found = {value: kind for kind, value in secrets_in(text)}
    for value in sorted(found, key=len, reverse=True):
        text = text.replace(value, f"[REDACTED:{found[value]}]")
    return text


class StreamRedactor:
    """Redacts a byte stream fed in arbitrary chunks, holding back only a tail that could be the
    start of a secret form (at most the longest form minus one byte)."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._matcher = redactor._matcher
        self._held = b""

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def feed(self, chunk: bytes) -> bytes:
        if not self._matcher:
            return chunk
        buffer = self._held + chunk if self._held else chunk
        # From `hold` on, the buffer could be the start of a secret the next chunk finishes. Before
        # it, no suffix of the buffer is the start of a form, so a match starting there is whole
        # and final (and may run past `hold`: a complete secret is never held back).
        hold = self._redactor.pending_start(buffer)
        out: list[bytes] = []
        pos = 0
        tags = self._matcher.tags
        for index, start, end in self._matcher.matches(buffer):
            if start >= hold:
                break
            out.append(buffer[pos:start])
            out.append(tags[index])
            pos = end
        emit_end = max(pos, hold)
        out.append(buffer[pos:emit_end])
        self._held = buffer[emit_end:]
        return b"".join(out)

    def flush(self) -> bytes:
        rest, self._held = self._redactor.redact_bytes(self._held), b""
        return rest
