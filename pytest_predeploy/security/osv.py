"""Offline vulnerability matching against an OSV database (a folder or zip of OSV JSON/YAML).

Version semantics follow the OSV schema's evaluation algorithm with PEP 440 ordering
(``packaging``): a version is affected when it is listed in ``versions`` or falls in an
``ECOSYSTEM``/``SEMVER`` range (events sorted; ``introduced`` opens, ``fixed`` closes at,
``last_affected`` closes after, and ``limit`` bounds the whole range). ``GIT`` ranges are
commits, not versions: the ``versions`` list covers them. Withdrawn advisories are ignored.

A database is a folder or a zip of OSV records: a checkout of the PyPA advisory database,
osv.dev's bulk export (``PyPI/all.zip``, what ``predeploy advisories update`` downloads), or the
snapshot this package ships (``bundled``). Its age is measured from when it was fetched (its
source record, written beside it) or, without one, from the newest ``modified`` timestamp in it:
that is when its content last changed, whatever the files' mtimes say after a copy or checkout.

Reading: every record is read (for the age), but only records that name a scanned distribution
are parsed, so the whole PyPI export is matched against 300 pins in well under a second.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from pytest_predeploy.core.artifacts import file_sha256
from pytest_predeploy.core.errors import ConfigError
from pytest_predeploy.core.fields import Severity, utcnow
from pytest_predeploy.core.nesting import check_nesting
from pytest_predeploy.core.yamlfile import MAX_DOCUMENT_BYTES, LimitedCBaseLoader, YamlLimitError, read_bytes_file, read_text_file

_SUFFIXES = (".json", ".yaml", ".yml")
_MODIFIED = re.compile(rb"""["']?modified["']?\s*:\s*["']?(\d{4}-\d\d-\d\d[Tt ][0-9:.]+(?:[Zz]|[+-]\d\d:?\d\d)?)""")
_NAME = re.compile(rb"""["']?name["']?\s*:\s*["']?([A-Za-z0-9][A-Za-z0-9._-]*)""")
_WITHDRAWN = re.compile(rb"""(?m)(?:^|[\s{,])["']?withdrawn["']?\s*:\s*["']?\d""")  # YAML, indented or minified JSON


#: One OSV record is a few KB; anything this large is refused before it is read or unpacked.
MAX_RECORD_BYTES = 8 << 20
#: osv.dev's whole PyPI export unpacks to about 100 MB; a zip that would unpack to more is a zip
#: bomb of many members each under MAX_RECORD_BYTES, refused before any is unpacked.
MAX_DATABASE_BYTES = 1 << 30


class DatabaseUnavailable(Exception):
    """The database cannot be used; the message says why."""


#: ``security.osv.database: bundled``: the advisory snapshot this package ships (see data/).
BUNDLED = "bundled"
BUNDLED_ZIP = Path(__file__).resolve().parents[1] / "data" / "osv-pypi-snapshot.zip"


def source_record_path(path: Path) -> Path:
    """Where the record of a database's origin lives: ``X.zip.source.json`` beside a zip, ``.source.json`` in a folder."""
    return path / ".source.json" if path.is_dir() else path.with_name(path.name + ".source.json")


def read_source_record(path: Path) -> dict[str, Any]:
    """The origin record written by ``predeploy advisories update`` (or shipped with the snapshot);
    {} when absent or not a JSON object. One too large or too deep to read is not what the update
    writes: DatabaseUnavailable."""
    record = source_record_path(path)
    if not record.is_file():
        return {}
    try:
        text = read_text_file(record, "source record", MAX_DOCUMENT_BYTES)
        check_nesting(text, "json", str(record))
    except ConfigError as exc:
        raise DatabaseUnavailable(str(exc)) from None
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


@dataclass
class OsvDatabase:
    path: Path
    total: int = 0
    withdrawn: int = 0
    newest_modified: datetime | None = None
    #: When this copy was downloaded (from its source record), when known.
    fetched_at: datetime | None = None
    #: The source record: url or upstream commit, date, licence, attribution.
    source: dict[str, Any] = field(default_factory=dict)
    #: Parsed advisories that mention a scanned distribution, by file name.
    candidates: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _by_name: dict[str, list[dict[str, Any]]] | None = field(default=None, repr=False)

    def advisories_for(self, name: str) -> list[dict[str, Any]]:
        """The parsed advisories with an ``affected`` entry for PyPI distribution ``name`` (canonical)."""
        if self._by_name is None:
            self._by_name = {}
            for _, advisory in self.candidates:
                named = {canonicalize_name(str((a.get("package") or {}).get("name", ""))) for a in advisory.get("affected") or []}
                for each in named:
                    self._by_name.setdefault(each, []).append(advisory)
        return self._by_name.get(name, [])

    @property
    def as_of(self) -> datetime | None:
        """The moment the data is current as of: its fetch time, else its newest 'modified' timestamp."""
        return self.fetched_at or self.newest_modified


@dataclass
class Match:
    advisory: dict[str, Any]
    fixed_versions: list[str]
    severity: Severity
    #: The id the finding is reported under, and every other id of the same vulnerability.
    id: str = ""
    aliases: list[str] = field(default_factory=list)


def _timestamp(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.strip().replace("z", "Z").replace(" ", "T"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _entries(path: Path) -> Iterator[tuple[str, bytes]]:
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            if file.suffix in _SUFFIXES and file.is_file() and not any(part.startswith(".") for part in file.relative_to(path).parts):
                name = str(file.relative_to(path))
                try:
                    yield name, read_bytes_file(file, "advisory", MAX_RECORD_BYTES)
                except ConfigError:
                    raise DatabaseUnavailable(f"{path}: {name} is larger than {MAX_RECORD_BYTES >> 20} MiB, more than an advisory may have") from None
    elif zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                members = [info for info in archive.infolist() if info.filename.endswith(_SUFFIXES) and not info.is_dir()]
                if sum(info.file_size for info in members) > MAX_DATABASE_BYTES:
                    raise DatabaseUnavailable(f"{path}: its advisories unpack to more than {MAX_DATABASE_BYTES} bytes: a zip bomb, not an advisory database")
                for info in members:
                    if info.file_size > MAX_RECORD_BYTES:  # a zip bomb, not an advisory (zipfile reads no more than this)
                        raise DatabaseUnavailable(
                            f"{path}: {info.filename} unpacks to {info.file_size} bytes, over the {MAX_RECORD_BYTES >> 20} MiB an advisory may have"
                        )
                    yield info.filename, archive.read(info)
        except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
            raise DatabaseUnavailable(f"{path} is a damaged zip: {exc}") from None
    elif path.exists():
        raise DatabaseUnavailable(f"{path} is neither a folder nor a zip of OSV advisories")
    else:
        raise DatabaseUnavailable(f"database not found at {path}")


def _parse(name: str, raw: bytes) -> dict[str, Any]:
    """One record, held to the limits of every document the tool reads (nesting, aliases); YAML
    with every scalar a string, so '1.10' stays '1.10'."""
    try:
        if name.endswith(".json"):
            check_nesting(raw.decode("utf-8", "replace"), "json", name)
            data = json.loads(raw)
        else:
            data = yaml.load(raw, Loader=LimitedCBaseLoader)
    except YamlLimitError as exc:
        raise DatabaseUnavailable(f"advisory {exc.at(name)} (not an OSV record)") from None
    except ConfigError as exc:
        raise DatabaseUnavailable(f"advisory {exc} (not an OSV record)") from None
    except (ValueError, yaml.YAMLError) as exc:
        raise DatabaseUnavailable(f"advisory {name} cannot be parsed: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict) or not data.get("id"):
        raise DatabaseUnavailable(f"advisory {name} is not an OSV record (no 'id')")
    return data


def _mentions(raw: bytes, wanted: set[NormalizedName]) -> bool:
    # Every "name" value in the file (JSON or YAML), PEP 503-normalised: one cheap pattern whatever
    # the number of scanned distributions (an alternation of 300 names is ten times slower). A
    # credit's name may match too: that only costs a parse, never a miss.
    return any(canonicalize_name(found.decode("utf-8", "replace")) in wanted for found in _NAME.findall(raw))


def load_database(path: Path, names: Iterable[str]) -> OsvDatabase:
    """Read the database; parse only the advisories that may concern ``names``."""
    source = read_source_record(path)
    db = OsvDatabase(path=path, source=source, fetched_at=_timestamp(str(source.get("fetched_at", ""))))
    wanted = {canonicalize_name(name) for name in names}
    for name, raw in _entries(path):
        db.total += 1
        found = _MODIFIED.search(raw)
        modified = _timestamp(found.group(1).decode()) if found else None
        data = _parse(name, raw) if (wanted and _mentions(raw, wanted)) or modified is None else None
        if data is not None:
            modified = _timestamp(str(data.get("modified", ""))) or modified
        if data.get("withdrawn") if data is not None else _WITHDRAWN.search(raw):
            db.withdrawn += 1
            data = None
        if modified is not None and (db.newest_modified is None or modified > db.newest_modified):
            db.newest_modified = modified
        if data is not None and wanted:
            db.candidates.append((name, data))
    if db.total == 0:
        raise DatabaseUnavailable(f"no OSV advisories (*.json, *.yaml) found in {path}")
    _check_plausible(db, path)
    return db


#: How far in the future a download time may lie (clocks differ a little): later is not plausible.
CLOCK_SKEW = timedelta(hours=1)


def _check_plausible(db: OsvDatabase, path: Path) -> None:
    """The data must be what its source record says was downloaded: as many advisories, the same
    bytes (a zip), and a download time that is not in the future. A database swapped for another
    (one unrelated record scans clean) or a record edited to look fresh is unavailable, never clean."""
    expected = db.source.get("advisories")
    if isinstance(expected, int) and expected != db.total:
        raise DatabaseUnavailable(
            f"{path} holds {db.total} advisories but its source record says {expected} were downloaded: it is not the database that was fetched"
        )
    sha256 = db.source.get("sha256")
    if isinstance(sha256, str) and path.is_file() and database_digest(path) != sha256:
        raise DatabaseUnavailable(f"{path} is not the file its source record describes (sha256 differs): it was replaced or changed after download")
    if db.fetched_at is not None and db.fetched_at > utcnow() + CLOCK_SKEW:
        raise DatabaseUnavailable(f"its source record says it was fetched at {db.fetched_at.isoformat()}, in the future: the record is not to be trusted")


def check_archive(path: Path) -> int:
    """Raise DatabaseUnavailable unless ``path`` is a whole, readable OSV archive; the number of advisories."""
    total = 0
    for name, raw in _entries(path):
        _parse(name, raw)
        total += 1
    if total == 0:
        raise DatabaseUnavailable(f"no OSV advisories (*.json, *.yaml) found in {path}")
    return total


@functools.lru_cache(maxsize=65536)
def _version(text: str) -> Version | None:
    # Cached: a scan asks about the same few thousand version strings of the database again and
    # again (every pin re-reads its advisories' versions lists and range events).
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _in_range(version: Version, events: list[dict[str, str]]) -> bool:
    """The OSV schema's IncludedInRanges for one range (BeforeLimits, then the sorted walk)."""
    limits = [str(e["limit"]) for e in events if "limit" in e]
    if limits and not any("*" in limit or ((bound := _version(limit)) is not None and version < bound) for limit in limits):
        return False
    ordered: list[tuple[tuple[int, Version], str]] = []
    for event in events:
        for kind in ("introduced", "fixed", "last_affected"):
            if kind in event:
                value = str(event[kind])
                if kind == "introduced" and value == "0":
                    ordered.append(((0, Version("0")), kind))
                    continue
                parsed = _version(value)
                if parsed is None:
                    return False  # a bound we cannot order: the explicit versions list decides
                ordered.append(((1, parsed), kind))
    vulnerable = False
    for (rank, bound), kind in sorted(ordered, key=lambda item: item[0]):
        if kind == "introduced" and (rank == 0 or version >= bound):
            vulnerable = True
        elif kind == "fixed" and version >= bound:
            vulnerable = False
        elif kind == "last_affected" and version > bound:
            vulnerable = False
    return vulnerable


def listed_versions(affected: dict[str, Any]) -> frozenset[Version | str]:
    """The explicit ``versions`` of an affected entry: parsed when PEP 440, else as written."""
    return frozenset(_version(text) or text for text in (str(v) for v in affected.get("versions") or []))


def affected_fixes(version_text: str, affected: dict[str, Any], listed: frozenset[Version | str] | None = None) -> list[str] | None:
    """None when ``version_text`` is not affected; else the fix versions above it (maybe none).
    ``listed``: :func:`listed_versions` of ``affected``, when the caller keeps it."""
    version = _version(version_text)
    if listed is None:
        listed = listed_versions(affected)
    hit = version_text in listed or (version is not None and version in listed)
    fixes: set[str] = set()
    for rng in affected.get("ranges") or []:
        if str(rng.get("type", "")).upper() not in ("ECOSYSTEM", "SEMVER"):
            continue
        events = [e for e in rng.get("events") or [] if isinstance(e, dict)]
        if version is not None and _in_range(version, events):
            hit = True
        for event in events:
            fixed = _version(str(event.get("fixed", "")))
            if fixed is not None and (version is None or fixed > version):
                fixes.add(str(event["fixed"]))
    if not hit:
        return None
    return sorted(fixes, key=lambda v: Version(v))


_CVSS3 = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "CIA": {"H": 0.56, "L": 0.22, "N": 0.0},
}


def _roundup(value: float) -> float:
    # CVSS v3.1 Roundup: the smallest one-decimal number >= value, robust to float error.
    scaled = round(value * 100000)
    return scaled / 100000.0 if scaled % 10000 == 0 else (math.floor(scaled / 10000) + 1) / 10.0


def cvss3_base_score(vector: str) -> float | None:
    """The CVSS v3.x base score of a vector string, or None when it is not a v3 base vector."""
    if not vector.startswith("CVSS:3."):
        return None
    metrics = dict(part.split(":", 1) for part in vector.split("/")[1:] if ":" in part)
    try:
        changed = metrics["S"] == "C"
        privileges = {"N": 0.85, "L": 0.68 if changed else 0.62, "H": 0.5 if changed else 0.27}[metrics["PR"]]
        exploitability = 8.22 * _CVSS3["AV"][metrics["AV"]] * _CVSS3["AC"][metrics["AC"]] * privileges * _CVSS3["UI"][metrics["UI"]]
        iss = 1 - math.prod(1 - _CVSS3["CIA"][metrics[m]] for m in ("C", "I", "A"))
    except KeyError:
        return None
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if changed else 6.42 * iss
    if impact <= 0:
        return 0.0
    return _roundup(min((1.08 if changed else 1.0) * (impact + exploitability), 10.0))


#: CVSS qualitative ratings onto our scale. Medium counts as major: a known, exploitable flaw in
#: a dependency should block until someone decides, which is what a waiver records.
def _from_score(score: float) -> Severity:
    if score >= 9.0:
        return Severity.critical
    if score >= 4.0:
        return Severity.major
    if score > 0:
        return Severity.minor
    return Severity.info


_RATINGS = {"CRITICAL": Severity.critical, "HIGH": Severity.major, "MODERATE": Severity.major, "MEDIUM": Severity.major, "LOW": Severity.minor}


def advisory_severity(advisory: dict[str, Any], affected: dict[str, Any], default: Severity) -> Severity:
    for entry in (affected.get("severity") or []) + (advisory.get("severity") or []):
        if isinstance(entry, dict) and str(entry.get("type")) == "CVSS_V3":
            score = cvss3_base_score(str(entry.get("score", "")))
            if score is not None:
                return _from_score(score)
    rating = str((advisory.get("database_specific") or {}).get("severity", "")).upper()
    return _RATINGS.get(rating, default)


#: Which record of an alias group names the finding: the PyPI ecosystem's own database first,
#: so the id stays the same whether the data is the PyPA database or osv.dev's export.
_ID_PREFERENCE = ("PYSEC-", "GHSA-", "CVE-")


def _preferred(ids: Iterable[str]) -> str:
    def rank(vid: str) -> tuple[int, str]:
        return next((i for i, prefix in enumerate(_ID_PREFERENCE) if vid.startswith(prefix)), len(_ID_PREFERENCE)), vid

    return min(ids, key=rank)


def merge_aliases(matches: list[Match]) -> list[Match]:
    """One match per vulnerability: records that name each other (directly or through a shared
    alias, as osv.dev's PYSEC and GHSA copies of one CVE do) become one, with the worst
    severity, every fix version and every id."""
    parent: dict[str, str] = {}

    def root(vid: str) -> str:
        while parent.setdefault(vid, vid) != vid:
            parent[vid] = parent[parent[vid]]
            vid = parent[vid]
        return vid

    for found in matches:
        ids = [str(found.advisory["id"]), *(str(a) for a in found.advisory.get("aliases") or [])]
        for other in ids[1:]:
            parent[root(other)] = root(ids[0])
    groups: dict[str, list[Match]] = {}
    for found in matches:
        groups.setdefault(root(str(found.advisory["id"])), []).append(found)
    merged = []
    for members in groups.values():
        every_id = {str(m.advisory["id"]) for m in members} | {str(a) for m in members for a in m.advisory.get("aliases") or []}
        records = [str(m.advisory["id"]) for m in members]
        chosen = _preferred(records)
        lead = next(m for m in members if str(m.advisory["id"]) == chosen)
        fixes = {v for m in members for v in m.fixed_versions}
        merged.append(
            Match(
                lead.advisory,
                sorted(fixes, key=lambda v: Version(v)),
                max((m.severity for m in members), key=lambda sev: sev.rank),
                id=chosen,
                aliases=sorted(every_id - {chosen}),
            )
        )
    return sorted(merged, key=lambda m: m.id)


class PackageIndex:
    """Matching for one scan: the database's advisories by distribution (``advisories_for``), with
    each affected entry's ``versions`` list parsed once, not once per pin."""

    def __init__(self, db: OsvDatabase) -> None:
        self.db = db
        self._listed: dict[int, frozenset[Version | str]] = {}  # by id() of an affected entry db holds

    def match(self, name: str, version: str, default: Severity) -> list[Match]:
        """Every vulnerability affecting distribution ``name`` at ``version``, one per alias group."""
        matches: list[Match] = []
        for advisory in self.db.advisories_for(name):
            for affected in advisory.get("affected") or []:
                package = affected.get("package") or {}
                if str(package.get("ecosystem", "")).split(":")[0] != "PyPI" or canonicalize_name(str(package.get("name", ""))) != name:
                    continue
                listed = self._listed.get(id(affected))
                if listed is None:
                    listed = self._listed[id(affected)] = listed_versions(affected)
                fixes = affected_fixes(version, affected, listed)
                if fixes is not None:
                    matches.append(Match(advisory, fixes, advisory_severity(advisory, affected, default), id=str(advisory["id"])))
                    break
        return merge_aliases(matches)


def match(db: OsvDatabase, name: str, version: str, default: Severity) -> list[Match]:
    """Every vulnerability of ``db`` affecting distribution ``name`` at ``version``, one per alias group."""
    return PackageIndex(db).match(name, version, default)


def database_digest(database: Path | str | None) -> str | None:
    """sha256 of the advisory data ``security.osv.database`` names (a zip's bytes; a folder's
    files, by relative path and content), so a sealed package can tell the data changed; None
    when none is configured or it cannot be read."""
    if database is None:
        return None
    path = BUNDLED_ZIP if database == BUNDLED else Path(database)
    digest = hashlib.sha256()
    try:
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink()):
                digest.update(file.relative_to(path).as_posix().encode("utf-8") + b"\0")
                digest.update(hashlib.sha256(file.read_bytes()).digest())
        else:
            return file_sha256(path)
    except OSError:
        return None
    return digest.hexdigest()
