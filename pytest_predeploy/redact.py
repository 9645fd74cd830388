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
from urllib.parse import quote, quote_plus

#: Base64 fragments shorter than this are too likely to occur by chance in unrelated output.
_MIN_B64_CORE = 8
#: Values this short would shred ordinary output if redacted; config loading warns about them.
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


def secret_forms(value: str) -> set[bytes]:
    """Every byte string whose presence in output would disclose ``value``."""
    raw = value.encode("utf-8")
    forms = {raw, quote(value, safe="").encode(), quote_plus(value, safe="").encode()}
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
        for name, value in sorted(secrets.items()):
            if not value or len(value) < MIN_SECRET_LENGTH:
                continue
            for form in secret_forms(value):
                replacement.setdefault(form, f"[REDACTED:{name}]".encode())
        self._replacement = replacement
        forms = sorted(replacement, key=len, reverse=True)
        self._pattern = re.compile(b"|".join(re.escape(form) for form in forms)) if forms else None
        self.max_form_length = max((len(form) for form in forms), default=0)

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

    def contains_secret(self, data: bytes) -> bool:
        return self._pattern is not None and self._pattern.search(data) is not None


class StreamRedactor:
    """Redacts a byte stream fed in arbitrary chunks, holding back at most one secret's length."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._held = b""

    def feed(self, chunk: bytes) -> bytes:
        pattern = self._redactor._pattern
        if pattern is None:
            return chunk
        buffer = self._held + chunk
        # Anything that starts before `cut` and could be a secret ends inside `buffer`, so it is
        # decided now; bytes from `cut` on might be the start of a secret the next chunk finishes.
        cut = len(buffer) - (self._redactor.max_form_length - 1)
        out: list[bytes] = []
        pos = 0
        for match in pattern.finditer(buffer):
            if match.start() >= cut:
                break
            out.append(buffer[pos : match.start()])
            out.append(self._redactor._substitute(match))
            pos = match.end()
        emit_end = max(pos, cut)
        out.append(buffer[pos:emit_end])
        self._held = buffer[emit_end:]
        return b"".join(out)

    def flush(self) -> bytes:
        rest, self._held = self._redactor.redact_bytes(self._held), b""
        return rest
