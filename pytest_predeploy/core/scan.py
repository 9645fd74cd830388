"""The pre-seal scan of one file: are known secret values in it, and can it be redacted?

A script may write anything into the artifacts folder, and it is sealed as evidence. Each file is
read in chunks (memory bounded whatever its size), matched against every form of every known
secret, and checked for being UTF-8 text. Only text is redacted in place; a file we cannot parse
as text (a zip, an image) is never rewritten byte-wise: a hit there refuses the seal and the file
stays as written. Compressed files (gzip, bzip2, xz, zip) are looked into, within bounds (total
bytes unpacked, members); one that cannot be opened, or is too large to look through, is refused
too, since we cannot say it holds no secret.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import lzma
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_predeploy.core.redact import Redactor, describe_places

CHUNK = 1024 * 1024
NEWLINE = b"\n"
#: Text files up to this size are redacted with the places named by JSON path (parsed whole).
WHOLE_FILE_LIMIT = 16 * 1024 * 1024
#: Most bytes unpacked from one archive, and most members: past either, it is refused unscanned.
ARCHIVE_LIMIT = 1024 * 1024 * 1024
ARCHIVE_MEMBERS = 10_000

_STREAM_FORMATS: dict[bytes, tuple[str, Callable[[Any], Any]]] = {
    b"\x1f\x8b": ("gzip", lambda raw: gzip.GzipFile(fileobj=raw)),
    b"BZh": ("bzip2", lambda raw: bz2.BZ2File(raw)),
    b"\xfd7zXZ\x00": ("xz", lambda raw: lzma.LZMAFile(raw)),
}
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


class Unscannable(Exception):
    """The file cannot be looked through (a damaged or encrypted archive, one too large)."""


@dataclass
class Scan:
    """What the scan of one file found."""

    #: Secret name -> where (``line N``, ``member NAME``): the first five places.
    found: dict[str, list[str]] = field(default_factory=dict)
    #: Secret name -> in how many places it was found.
    counts: dict[str, int] = field(default_factory=dict)
    text: bool = True
    #: The kind of archive it is, when it is one.
    archive: str | None = None

    def add(self, name: str, place: str) -> None:
        places = self.found.setdefault(name, [])
        if place not in places:
            self.counts[name] = self.counts.get(name, 0) + 1
            if len(places) < 5:
                places.append(place)

    def places(self) -> list[str]:
        return describe_places(self.found, self.counts)


def _chunks(handle: Any, budget: list[int] | None = None) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK):
        if budget is not None:
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise Unscannable(f"unpacks to more than {ARCHIVE_LIMIT // (1024 * 1024)} MiB")
        yield chunk


def _match(redactor: Redactor, chunks: Iterator[bytes], scan: Scan, where: str | None) -> None:
    """Feed ``chunks`` through the redactor's matcher, keeping the last bytes of each chunk so that
    a secret split between two reads is found; note each hit's line (or ``where``)."""
    keep = max(redactor.max_form_length - 1, 0)
    decoder = codecs.getincrementaldecoder("utf-8")()
    tail = b""
    lines = 1  # line number at the start of ``tail``
    for chunk in chunks:
        if scan.text:
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                scan.text = False
            if b"\0" in chunk:
                scan.text = False
        buffer = tail + chunk
        line, counted = lines, 0  # the line at ``counted``; hits come in order, so count onwards
        for name, start, end in redactor.hits(buffer):
            if end <= len(tail):
                continue  # wholly in the bytes kept from the last read: found there already
            if where is None:
                line += buffer.count(NEWLINE, counted, start)
                counted = start
            scan.add(name, where or f"line {line}")
        cut = max(len(buffer) - keep, 0)
        lines += buffer.count(NEWLINE, 0, cut)
        tail = buffer[cut:]
    if scan.text:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            scan.text = False


def _archive_kind(head: bytes) -> str | None:
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    return next((kind for magic, (kind, _) in _STREAM_FORMATS.items() if head.startswith(magic)), None)


def _scan_stream(redactor: Redactor, handle: Any, scan: Scan, where: str, budget: list[int], depth: int) -> None:
    """A member or a compressed stream: matched as it is, or unpacked when it is compressed."""
    head = handle.peek(8)[:8] if hasattr(handle, "peek") else b""
    kind = _archive_kind(head)
    if kind is None:
        _match(redactor, _chunks(handle, budget), scan, where)
    elif kind == "zip" or depth >= 3:
        raise Unscannable(f"{where} is a {kind} inside an archive (not looked into)")
    else:
        opener = next(open_ for magic, (_, open_) in _STREAM_FORMATS.items() if head.startswith(magic))
        with opener(handle) as inner:
            _scan_stream(redactor, inner, scan, f"{where} ({kind})", budget, depth + 1)


def scan_file(redactor: Redactor, path: Path) -> Scan:
    """Scan ``path``; raise Unscannable when it is an archive that cannot be looked through."""
    scan = Scan()
    with open(path, "rb") as handle:
        head = handle.read(8)
        handle.seek(0)
        scan.archive = _archive_kind(head)
        if scan.archive is None:
            _match(redactor, _chunks(handle), scan, None)
            return scan
        scan.text = False
        budget = [ARCHIVE_LIMIT]
        try:
            if scan.archive == "zip":
                with zipfile.ZipFile(handle) as archive:
                    members = archive.infolist()
                    if len(members) > ARCHIVE_MEMBERS:
                        raise Unscannable(f"has more than {ARCHIVE_MEMBERS} members")
                    for info in members:
                        for name, _, _ in redactor.hits(info.filename.encode("utf-8", "surrogateescape")):
                            scan.add(name, "a member's name")
                        if not info.is_dir():
                            with archive.open(info) as member:
                                _scan_stream(redactor, member, scan, f"member {info.filename}", budget, 1)
            else:
                _scan_stream(redactor, handle, scan, f"its {scan.archive} content", budget, 0)
        except (OSError, EOFError, zipfile.BadZipFile, lzma.LZMAError, NotImplementedError, RuntimeError, ValueError) as exc:
            # Damaged, truncated, encrypted (RuntimeError), an unsupported method (NotImplementedError).
            raise Unscannable(f"cannot be opened as {scan.archive} ({exc})") from None
    return scan


def redact_in_place(redactor: Redactor, path: Path, scan: Scan) -> list[str]:
    """Redact a text file whose ``scan`` found secrets; return where they were (never the values).

    Up to WHOLE_FILE_LIMIT the file is read whole so a JSON document's places are named by path
    (``the value of X at suites[0].tests[0].nodeid``); a bigger one is rewritten streaming, its
    places the scan's lines."""
    if path.stat().st_size <= WHOLE_FILE_LIMIT:
        data = path.read_bytes()
        places = redactor.locate(data)
        if places:
            _replace(path, [redactor.redact_bytes(data)])
        return places
    stream = redactor.stream()
    with open(path, "rb") as handle:
        _replace(path, (stream.feed(chunk) for chunk in _chunks(handle)), stream.flush)
    return scan.places()


def _replace(path: Path, pieces: Iterator[bytes] | list[bytes], last: Callable[[], bytes] | None = None) -> None:
    """Write ``pieces`` to a temporary file beside ``path``, then rename it over ``path``."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            for piece in pieces:
                out.write(piece)
            if last is not None:
                out.write(last())
        os.chmod(temporary, path.stat().st_mode & 0o777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
