"""Redaction of secret values from everything we write.

A secret can reach a transcript in more than its plain form: scripts base64-encode credentials
for HTTP headers, URL-encode them into connection strings, or print them JSON-escaped (a PEM
key's newlines become ``\\n``). We redact each of those forms, and the streaming redactor holds
back just enough bytes that a secret split across two reads is still caught.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

#: Base64 fragments shorter than this are too likely to occur by chance in unrelated output.
_MIN_B64_CORE = 8
#: Values this short would shred ordinary output if redacted; they are left alone and the run
#: warns about them when it loads its secrets (see ``Redactor.too_short``).
MIN_SECRET_LENGTH = 4


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


def secret_forms(value: str) -> set[bytes]:
    """Every byte string whose presence in output would disclose ``value``."""
    raw = value.encode("utf-8")
    forms = {raw} | _url_forms(value)
    forms.add(json.dumps(value)[1:-1].encode())
    forms.add(json.dumps(value, ensure_ascii=False)[1:-1].encode("utf-8"))
    forms |= _base64_cores(raw)
    if "\n" in value:
        forms.add(value.replace("\n", "\r\n").encode("utf-8"))
    return {form for form in forms if form}


class Redactor:
    """Replaces every known secret form with ``[REDACTED:<name>]``."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        replacement: dict[bytes, bytes] = {}
        #: Names of secrets too short to redact (empty ones are not secrets at all).
        self.too_short: list[str] = []
        for name, value in sorted(secrets.items()):
            if not value:
                continue
            if len(value) < MIN_SECRET_LENGTH:
                self.too_short.append(name)
                continue
            for form in secret_forms(value):
                replacement.setdefault(form, f"[REDACTED:{name}]".encode())
        self._replacement = replacement
        forms = sorted(replacement, key=len, reverse=True)
        self._pattern = re.compile(b"|".join(re.escape(form) for form in forms)) if forms else None
        self.max_form_length = max((len(form) for form in forms), default=0)
        # Where a secret could begin at the end of a stream: the forms by their first two bytes,
        # and a pattern finding those two bytes (in C, not a Python loop over every position).
        self._forms_by_start: dict[bytes, list[bytes]] = {}
        for form in forms:
            self._forms_by_start.setdefault(form[:2], []).append(form)
        self._first_bytes = frozenset(form[:1] for form in forms)
        starts = sorted(self._forms_by_start, key=len, reverse=True)
        self._start_pattern = re.compile(b"(?=(" + b"|".join(re.escape(start) for start in starts) + b"))") if starts else None

    @classmethod
    def from_values(cls, values: Iterable[tuple[str, str]]) -> Redactor:
        return cls(dict(values))

    def __bool__(self) -> bool:
        return self._pattern is not None

    def _substitute(self, match: re.Match[bytes]) -> bytes:
        return self._replacement[match.group(0)]

    def redact_bytes(self, data: bytes) -> bytes:
        if self._pattern is None:
            return data
        return self._pattern.sub(self._substitute, data)

    def redact(self, text: str) -> str:
        return self.redact_bytes(text.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape")

    def stream(self) -> StreamRedactor:
        return StreamRedactor(self)

    def names_in(self, data: bytes) -> list[str]:
        """Names of the secrets whose values occur in ``data``."""
        if self._pattern is None:
            return []
        found = {self._replacement[m.group(0)] for m in self._pattern.finditer(data)}
        return sorted(tag.decode()[len("[REDACTED:") : -1] for tag in found)

    def pending_start(self, data: bytes) -> int:
        """The first position from which the rest of ``data`` could be the beginning of a secret
        form still being written (``len(data)`` when none could be): only that much needs to be
        held back until more output arrives."""
        if self._start_pattern is None or not data:
            return len(data)
        start = max(0, len(data) - (self.max_form_length - 1))
        for match in self._start_pattern.finditer(data, start):
            tail = data[match.start() :]
            if any(form.startswith(tail) for form in self._forms_by_start[match.group(1)]):
                return match.start()
        return len(data) - 1 if data[-1:] in self._first_bytes else len(data)

    def contains_secret(self, data: bytes) -> bool:
        return self._pattern is not None and self._pattern.search(data) is not None

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
        if self._pattern is None or not self.contains_secret(data):
            return []
        try:
            document = json.loads(data)
        except ValueError:
            document = None
        found: dict[str, list[str]] = {}
        if document is not None:
            self._walk(document, "", found)
        if not found:
            for number, line in enumerate(data.splitlines(), 1):
                for name in self.names_in(line):
                    found.setdefault(name, []).append(f"line {number}")
        return [
            f"the value of {name} at {', '.join(places[:5])}" + (f" (and {len(places) - 5} more places)" if len(places) > 5 else "")
            for name, places in sorted(found.items())
        ]

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


class StreamRedactor:
    """Redacts a byte stream fed in arbitrary chunks, holding back only a tail that could be the
    start of a secret form (at most the longest form minus one byte)."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._held = b""

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def feed(self, chunk: bytes) -> bytes:
        pattern = self._redactor._pattern
        if pattern is None:
            return chunk
        buffer = self._held + chunk
        # From `hold` on, the buffer could be the start of a secret the next chunk finishes. Before
        # it, no suffix of the buffer is the start of a form, so a match starting there is whole
        # and final (and may run past `hold`: a complete secret is never held back).
        hold = self._redactor.pending_start(buffer)
        out: list[bytes] = []
        pos = 0
        for match in pattern.finditer(buffer):
            if match.start() >= hold:
                break
            out.append(buffer[pos : match.start()])
            out.append(self._redactor._substitute(match))
            pos = match.end()
        emit_end = max(pos, hold)
        out.append(buffer[pos:emit_end])
        self._held = buffer[emit_end:]
        return b"".join(out)

    def flush(self) -> bytes:
        rest, self._held = self._redactor.redact_bytes(self._held), b""
        return rest
