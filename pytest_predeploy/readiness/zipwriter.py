"""The package's zip writer: canonical, reproducible bytes, written fast.

Every timestamp is one given time, every permission 0644, entries in the order given, and no
field comes from the host (time zone, umask, file owner), so the same files give the same bytes
with the same zlib. The headers functions are also what verification compares a package against.

Speed: the main thread reads each file once, hashing (sha256 and the zip CRC) as it goes, while
a thread pool deflates 1 MiB chunks (raw deflate, each chunk primed with the 32 KiB before it
and ended with a sync flush, so the chunks join into one stream: the pigz technique). Entries
whose first bytes do not compress are stored. Memory stays bounded by the chunks in flight.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import zipfile
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from pytest_predeploy.core.errors import PredeployError

#: 1980-01-01T00:00:00Z, the earliest time a zip entry can carry.
EARLIEST_TIME = 315532800


class SourceChanged(PredeployError):
    """A file given to the writer is no longer the readable regular file it was when listed."""


def dos_time(epoch: int) -> tuple[int, int]:
    # Computed in UTC (zip has no zone), clamped to the range a zip can hold.
    when = datetime.fromtimestamp(min(max(epoch, EARLIEST_TIME), 4354819199), UTC)
    return (when.hour << 11) | (when.minute << 5) | (when.second // 2), ((when.year - 1980) << 9) | (when.month << 5) | when.day


CHUNK = 1 << 20
_WINDOW = 32 << 10
_SAMPLE = 64 << 10
_ZIP64_LIMIT = 0xFFFFFFFF  # sizes and offsets from here on need zip64 fields
_MARKER = 0xFFFFFFFF  # what a 32-bit field holds when the real value is in the zip64 extra
_UTF8 = 0x0800
_ATTR = (stat.S_IFREG | 0o644) << 16
_MADE_BY = (3 << 8) | 45  # Unix, spec 4.5
_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_END = struct.Struct("<4sHHHHIIH")
_END64 = struct.Struct("<4sQHHIIQQQQ")
_LOCATOR64 = struct.Struct("<4sIQI")


def needs_zip64_local(size: int) -> bool:
    # Decided before the data is written (the header's length depends on it); compressed size
    # may exceed the input a little, hence the margin (the same rule as CPython's zipfile).
    return size * 1.05 > _ZIP64_LIMIT


@dataclass
class Entry:
    name: str
    method: int
    size: int = 0
    csize: int = 0
    crc: int = 0
    offset: int = 0
    sha256: str = ""


def local_header(entry: Entry, dos: tuple[int, int], zip64: bool) -> bytes:
    name = entry.name.encode("utf-8")
    extra = struct.pack("<HHQQ", 1, 16, entry.size, entry.csize) if zip64 else b""
    sizes = (_MARKER, _MARKER) if zip64 else (entry.csize, entry.size)
    version = 45 if zip64 else 20
    return _LOCAL.pack(b"PK\x03\x04", version, _UTF8, entry.method, dos[0], dos[1], entry.crc, *sizes, len(name), len(extra)) + name + extra


def central_header(entry: Entry, dos: tuple[int, int]) -> bytes:
    name = entry.name.encode("utf-8")
    big = [value for value in (entry.size, entry.csize, entry.offset) if value >= _ZIP64_LIMIT]
    extra = struct.pack(f"<HH{len(big)}Q", 1, 8 * len(big), *big) if big else b""
    size, csize, offset = (_MARKER if value >= _ZIP64_LIMIT else value for value in (entry.size, entry.csize, entry.offset))
    version = 45 if big or needs_zip64_local(entry.size) else 20
    return (
        _CENTRAL.pack(
            b"PK\x01\x02",
            _MADE_BY,
            version,
            _UTF8,
            entry.method,
            dos[0],
            dos[1],
            entry.crc,
            csize,
            size,
            len(name),
            len(extra),
            0,
            0,
            0,
            _ATTR,
            offset,
        )
        + name
        + extra
    )


def end_records(count: int, cd_offset: int, cd_size: int) -> bytes:
    out = b""
    if count >= 0xFFFF or cd_offset >= _ZIP64_LIMIT or cd_size >= _ZIP64_LIMIT:
        end64_offset = cd_offset + cd_size
        out += _END64.pack(b"PK\x06\x06", 44, _MADE_BY, 45, 0, 0, count, count, cd_size, cd_offset)
        out += _LOCATOR64.pack(b"PK\x06\x07", 0, end64_offset, 1)
    small = count < 0xFFFF and cd_offset < _ZIP64_LIMIT and cd_size < _ZIP64_LIMIT
    out += _END.pack(
        b"PK\x05\x06", 0, 0, count if small else 0xFFFF, count if small else 0xFFFF, cd_size if small else _MARKER, cd_offset if small else _MARKER, 0
    )
    return out


def _deflate(chunk: bytes, primer: bytes | None, final: bool, level: int) -> bytes:
    if primer:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, primer)
    else:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return compressor.compress(chunk) + compressor.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)


def _compresses(sample: bytes) -> bool:
    return len(zlib.compress(sample, 1)) < len(sample) * 0.9


def _read_full(handle: BinaryIO, size: int) -> bytes:
    # Chunk boundaries shape the compressed bytes, so a short read must not move them.
    data = handle.read(size)
    while data and len(data) < size:
        more = handle.read(size - len(data))
        if not more:
            break
        data += more
    return data


class ZipWriter:
    """Writes entries in order; chunks are deflated in a pool while the main thread reads and hashes."""

    def __init__(self, out: BinaryIO, epoch: int, level: int, pool: ThreadPoolExecutor, inflight: int) -> None:
        self._out = out
        self._dos = dos_time(epoch)
        self._level = level
        self._pool = pool
        self._inflight = inflight
        # Items in output order: an Entry (write its header), bytes or a Future of bytes (data),
        # or None (the entry before is complete: patch its header).
        self._queue: deque[Entry | bytes | Future[bytes] | None] = deque()
        self._pending = 0
        self._current: Entry | None = None
        self.entries: list[Entry] = []

    def add_file(self, name: str, path: Path) -> Entry:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise SourceChanged(f"{path}: cannot be read ({exc.strerror}); it changed while the package was built?") from None
        with os.fdopen(fd, "rb", buffering=0) as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise SourceChanged(f"{path}: is not a regular file any more; rebuild the package")
            chunk = _read_full(handle, CHUNK)
            entry = Entry(name, zipfile.ZIP_DEFLATED if chunk and _compresses(chunk[:_SAMPLE]) else zipfile.ZIP_STORED)
            self._push(entry)
            digest, crc, primer = hashlib.sha256(), 0, None
            while chunk:
                following = _read_full(handle, CHUNK)
                digest.update(chunk)
                crc = zlib.crc32(chunk, crc)
                entry.size += len(chunk)
                if entry.method == zipfile.ZIP_DEFLATED:
                    self._push(self._pool.submit(_deflate, chunk, primer, not following, self._level))
                    primer = chunk[-_WINDOW:]
                else:
                    self._push(chunk)
                chunk = following
        entry.crc, entry.sha256 = crc, digest.hexdigest()
        self._push(None)
        return entry

    def add_bytes(self, name: str, data: bytes) -> Entry:
        entry = Entry(name, zipfile.ZIP_DEFLATED, size=len(data), crc=zlib.crc32(data), sha256=hashlib.sha256(data).hexdigest())
        self._push(entry)
        self._push(_deflate(data, None, True, self._level))
        self._push(None)
        return entry

    def _push(self, item: Entry | bytes | Future[bytes] | None) -> None:
        self._queue.append(item)
        if isinstance(item, (bytes, Future)):
            self._pending += 1
            while self._pending > self._inflight:
                self._drain_one()

    def _drain_one(self) -> None:
        item = self._queue.popleft()
        if isinstance(item, Entry):
            item.offset = self._out.tell()
            self._out.write(local_header(item, self._dos, needs_zip64_local(item.size)))
            self._current = item
            return
        assert self._current is not None
        if item is None:
            entry, self._current = self._current, None
            end = self._out.tell()
            self._out.seek(entry.offset)
            self._out.write(local_header(entry, self._dos, needs_zip64_local(entry.size)))
            self._out.seek(end)
            self.entries.append(entry)
            return
        self._pending -= 1
        if isinstance(item, Future):
            item = item.result()
        self._current.csize += len(item)
        self._out.write(item)

    def finish(self) -> None:
        while self._queue:
            self._drain_one()
        cd_offset = self._out.tell()
        central = b"".join(central_header(entry, self._dos) for entry in self.entries)
        self._out.write(central)
        self._out.write(end_records(len(self.entries), cd_offset, len(central)))
