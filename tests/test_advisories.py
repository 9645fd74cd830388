"""The offline advisory database: the bundled snapshot, `predeploy advisories update` against a real
HTTP server on 127.0.0.1, freshness measured from the fetch, and a demo that needs nothing outside
the repository."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from pytest_predeploy.config import load_config
from pytest_predeploy.core.fields import Severity
from pytest_predeploy.security import osv
from pytest_predeploy.tooling import cli
from tests.httpfiles import serve
from tests.security_project import audit, make_config, only, scanner, site_packages

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 26, tzinfo=UTC)


def osv_zip(records: dict[str, dict[str, Any]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, record in records.items():
            archive.writestr(name, json.dumps(record))
    return buffer.getvalue()


def record(vid: str, version: str = "1.0", modified: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    return {
        "id": vid,
        "modified": modified,
        "summary": f"{vid} summary",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "demo-lib"}, "versions": [version]}],
    }


GOOD = osv_zip({"PYSEC-1.json": record("PYSEC-1")})


def predeploy(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The ``predeploy`` command, run in this process (its entry point, ``python -m pytest_predeploy``,
    is run as a subprocess by test_init.py and test_adopt.py): what it prints and its exit status."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(list(args))
    return subprocess.CompletedProcess(["predeploy", *args], status, out.getvalue(), err.getvalue())


# -- predeploy advisories update ---------------------------------------------------------------


def test_update_downloads_checks_and_records_when_it_fetched(tmp_path: Path) -> None:
    target = tmp_path / "db" / "osv-pypi.zip"
    with serve({"/PyPI/all.zip": (200, GOOD, {})}) as url:
        done = predeploy("advisories", "update", "--url", f"{url}/PyPI/all.zip", "--to", str(target), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "1 advisories" in done.stdout
    assert target.read_bytes() == GOOD
    source = json.loads(osv.source_record_path(target).read_text())
    assert source["url"] == f"{url}/PyPI/all.zip" and source["advisories"] == 1
    fetched = datetime.fromisoformat(source["fetched_at"].replace("Z", "+00:00"))
    assert abs(fetched - datetime.now(UTC)) < timedelta(minutes=5)
    assert sorted(p.name for p in target.parent.iterdir()) == ["osv-pypi.zip", "osv-pypi.zip.source.json"]


NOT_OSV = osv_zip({"README.json": {"hello": "world"}})


def _bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("PYSEC-1.json", json.dumps(record("PYSEC-1")))
        with archive.open("BOMB.json", "w", force_zip64=True) as entry:  # 64 MiB of zeros, ~64 KB packed
            for _ in range(64):
                entry.write(bytes(1 << 20))
    return buffer.getvalue()


BOMB = _bomb()


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        ((404, b"gone", {}), "HTTP 404"),
        ((200, b"<html>captive portal</html>", {}), "not a readable OSV archive"),
        ((200, GOOD[: len(GOOD) // 2], {"Content-Length": str(len(GOOD))}), "truncated"),
        ((200, GOOD[: len(GOOD) // 2], {}), "not a readable OSV archive"),  # cut, and the server did not say how long
        ((200, NOT_OSV, {}), "not an OSV record"),
        ((200, BOMB, {}), "over the 8 MiB an advisory may have"),
    ],
    ids=["http-404", "not-a-zip", "truncated", "cut-without-length", "zip-without-osv", "zip-bomb"],
)
def test_a_failed_update_says_why_in_one_line_and_keeps_the_old_copy(tmp_path: Path, route: tuple[int, bytes, dict[str, str]], expected: str) -> None:
    target = tmp_path / "osv-pypi.zip"
    target.write_bytes(GOOD)
    record_path = osv.source_record_path(target)
    record_path.write_text('{"fetched_at": "2026-11-01T00:00:00Z"}')
    with serve({"/all.zip": route}) as url:
        done = predeploy("advisories", "update", "--url", f"{url}/all.zip", "--to", str(target), cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "the current copy is unchanged" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert target.read_bytes() == GOOD and record_path.read_text() == '{"fetched_at": "2026-11-01T00:00:00Z"}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["osv-pypi.zip", "osv-pypi.zip.source.json"]  # no partial download left


def test_an_unreachable_server_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    with serve({}) as url:
        pass  # the port is closed again: nothing listens there now
    target = tmp_path / "osv-pypi.zip"
    done = predeploy("advisories", "update", "--url", f"{url}/all.zip", "--to", str(target), "--timeout", "5", cwd=tmp_path)
    assert done.returncode == 1
    assert "cannot download" in done.stderr and "nothing was written" in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_update_without_to_writes_the_configured_database_and_never_the_bundled_one(tmp_path: Path) -> None:
    config = make_config(tmp_path, {"osv": {"database": "advisories/osv.zip"}})
    with serve({"/all.zip": (200, GOOD, {})}) as url:
        done = predeploy("advisories", "update", "--url", f"{url}/all.zip", "--config", str(config.path), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "advisories" / "osv.zip").read_bytes() == GOOD
        bundled = make_config(tmp_path, {"osv": {"database": "bundled"}})
        refused = predeploy("advisories", "update", "--url", f"{url}/all.zip", "--config", str(bundled.path), cwd=tmp_path)
    assert refused.returncode == 2 and "bundled snapshot, which is never overwritten" in refused.stderr


# -- freshness ---------------------------------------------------------------------------------


def _osv_config(tmp_path: Path, database: Path | str, max_age: str) -> Any:
    env = site_packages(tmp_path, {"demo-lib": ("1.0", [])})
    return make_config(tmp_path, {"environment": str(env), **only("osv"), "osv": {"database": str(database), "max_age": max_age}})


def test_age_is_measured_from_the_fetch_not_from_the_newest_advisory(tmp_path: Path) -> None:
    db = tmp_path / "osv.zip"
    db.write_bytes(GOOD)  # newest 'modified' 2026-01-01: 329 days before NOW
    osv.source_record_path(db).write_text(json.dumps({"fetched_at": "2026-11-25T12:00:00Z"}))
    config = _osv_config(tmp_path, db, "2d")
    report = audit(config, tmp_path, now=NOW)
    assert scanner(report, "osv").status == "findings"
    assert report.osv_database is not None and report.osv_database.age_days == pytest.approx(0.5)
    assert report.osv_database.fetched_at == datetime(2026, 11, 25, 12, tzinfo=UTC)

    osv.source_record_path(db).write_text(json.dumps({"fetched_at": "2026-11-01T00:00:00Z"}))
    stale = scanner(audit(config, tmp_path, now=NOW), "osv")
    assert stale.status == "unavailable"
    assert "stale: fetched 2026-11-01" in (stale.reason or "") and f"predeploy advisories update --to {db.name}" in (stale.reason or "")


def test_max_age_none_is_a_fixed_snapshot_that_never_expires_and_says_so(tmp_path: Path) -> None:
    report = audit(_osv_config(tmp_path, "bundled", "none"), tmp_path, now=datetime(2030, 6, 1, tzinfo=UTC))
    result = scanner(report, "osv")
    assert result.status == "passed", result.reason
    assert report.osv_database is not None and report.osv_database.max_age_days is None
    assert report.osv_database.path.startswith("bundled snapshot") and "2024-10-10" in report.osv_database.path and "CC-BY" in report.osv_database.path
    assert any("fixed snapshot as of 2024-10-10" in note for note in result.notes)


def test_the_bundled_snapshot_is_stale_under_a_real_age_limit(tmp_path: Path) -> None:
    result = scanner(audit(_osv_config(tmp_path, "bundled", "7d"), tmp_path, now=NOW), "osv")
    assert result.status == "unavailable" and "stale: fetched 2024-10-10" in (result.reason or "")


def test_the_bundled_snapshot_finds_known_advisories() -> None:
    db = osv.load_database(osv.BUNDLED_ZIP, {"requests", "pyyaml", "jinja2"})
    assert db.total > 2600 and db.fetched_at == datetime(2024, 10, 10, tzinfo=UTC)
    found = {
        name: {m.advisory["id"] for m in osv.match(db, name, version, Severity.major)}
        for name, version in (("requests", "2.19.1"), ("pyyaml", "5.3"), ("jinja2", "2.10"))
    }
    assert "PYSEC-2018-28" in found["requests"] and "PYSEC-2020-96" in found["pyyaml"] and "PYSEC-2019-217" in found["jinja2"]
    licence = osv.BUNDLED_ZIP.with_name("osv-pypi-snapshot.LICENSE").read_text()
    assert "Attribution 4.0 International" in licence


# -- the demo needs nothing outside the repository ---------------------------------------------


def _paths(value: Any) -> list[Path]:
    if isinstance(value, Path):
        return [value]
    if isinstance(value, BaseModel):
        return [p for name in type(value).model_fields for p in _paths(getattr(value, name))]
    if isinstance(value, dict):
        return [p for item in value.values() for p in _paths(item)]
    if isinstance(value, (list, tuple)):
        return [p for item in value for p in _paths(item)]
    return []


def test_every_path_the_demo_config_names_resolves_inside_the_repository() -> None:
    config = load_config(REPO / "predeploy.yaml")
    paths = _paths(config)
    assert len(paths) > 10  # the walk does reach the models' paths
    outside = [str(p) for p in paths if not p.resolve().is_relative_to(REPO)]
    assert outside == [], f"the demo config names paths outside the repository: {outside}"
    assert config.security.osv.database == "bundled" and osv.BUNDLED_ZIP.is_file()
    text = (REPO / "predeploy.yaml").read_text()
    assert "shared/" not in text
