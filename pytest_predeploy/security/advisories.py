"""``predeploy advisories update``: download osv.dev's PyPI export and replace the local copy atomically.

The download goes to a temporary file beside the target; only a whole, readable OSV archive (every
record parses and has an id) replaces the old copy, with ``os.replace``, so a reader sees the old
or the new database and never a mix. The source record (``<zip>.source.json``) is written after
the zip: if the run dies between the two, the old record understates the data's freshness (the
scan errs towards "stale"), never the reverse.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from pytest_predeploy.core.artifacts import write_text_atomic
from pytest_predeploy.core.errors import PredeployError
from pytest_predeploy.core.fields import utcnow
from pytest_predeploy.security.osv import DatabaseUnavailable, check_archive, source_record_path

#: osv.dev's bulk export of every PyPI advisory (one OSV JSON file per advisory).
DEFAULT_URL = "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip"
#: A download larger than this is refused (the whole PyPI export is a few tens of MB).
MAX_BYTES = 1 << 30
_CHUNK = 1 << 20


class UpdateFailed(PredeployError):
    """The download or its check failed; the old copy is untouched."""


@dataclass(frozen=True)
class UpdateResult:
    path: Path
    advisories: int
    size: int
    sha256: str
    fetched_at: datetime


def _download(url: str, handle: BinaryIO, timeout: float) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (the URL is the user's choice, http(s) or file)
            expected = response.headers.get("Content-Length")
            while chunk := response.read(_CHUNK):
                size += len(chunk)
                if size > MAX_BYTES:
                    raise UpdateFailed(f"{url}: download larger than {MAX_BYTES >> 20} MiB; refusing it")
                digest.update(chunk)
                handle.write(chunk)
    except urllib.error.HTTPError as exc:
        raise UpdateFailed(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise UpdateFailed(f"{url}: cannot download: {exc.reason}") from None
    except (OSError, ValueError, http.client.HTTPException) as exc:  # reset or cut mid-body, timeouts, bad URL
        raise UpdateFailed(f"{url}: download failed: {exc}") from None
    if expected is not None and expected.isdigit() and int(expected) != size:
        raise UpdateFailed(f"{url}: download truncated: {size} of {expected} bytes")
    return size, digest.hexdigest()


def update_database(target: Path, url: str = DEFAULT_URL, timeout: float = 60.0) -> UpdateResult:
    """Download ``url`` into ``target`` (a zip path); raise UpdateFailed, leaving ``target`` as it was."""
    if target.is_dir():
        raise UpdateFailed(f"{target} is a folder; give the path of the zip to write (e.g. {target / 'osv-pypi.zip'})")
    target.parent.mkdir(parents=True, exist_ok=True)
    fetched_at = utcnow()
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".download")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            size, sha256 = _download(url, handle, timeout)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            advisories = check_archive(tmp)
        except DatabaseUnavailable as exc:
            raise UpdateFailed(f"{url}: not a readable OSV archive: {str(exc).replace(str(tmp), 'the download')}") from None
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    record = {"url": url, "fetched_at": fetched_at.isoformat().replace("+00:00", "Z"), "sha256": sha256, "size": size, "advisories": advisories}
    write_text_atomic(source_record_path(target), json.dumps(record, indent=2) + "\n")
    return UpdateResult(target, advisories, size, sha256, fetched_at)
