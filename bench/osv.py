"""Benchmark: the offline OSV scan on the advisory snapshot the package ships (target: the whole
OSV scan of 300 pinned requirements under 1 s on 2 cores, warm page cache).

Three figures, each the median of ``--runs`` (the first, cold-cache run is discarded):

- load: ``load_database`` over the whole bundled zip (every record read for the age, only the
  records that name one of the 300 distributions parsed);
- match: matching the 300 pins against those records;
- scan: the whole OSV scanner of the audit, as Gate 3 runs it (requirements file parsed, database
  loaded, pins matched, findings judged, report written), with every other scanner switched off.

The 300 pins are real PyPI distributions named in the database, each pinned at a version that
its first advisory lists as affected where there is one (so the match does real work), plus a
handful of unaffected pins.

    .venv/bin/python bench/osv.py [--runs 7] [--pins 300] [--quick]

``--quick`` (CI) measures 20 pins once: it proves the benchmark still runs, its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from pytest_predeploy.config import load_config
from pytest_predeploy.core.fields import Severity
from pytest_predeploy.security import osv, run_security_audit


def _valid(version: str) -> bool:
    try:
        Version(version)
    except InvalidVersion:
        return False
    return True


def _valid_name(name: str) -> bool:
    try:
        Requirement(name)
    except InvalidRequirement:
        return False
    return True


def pins(count: int) -> list[str]:
    chosen: dict[str, str] = {}
    with zipfile.ZipFile(osv.BUNDLED_ZIP) as archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            record = json.loads(archive.read(info))
            for affected in record.get("affected") or []:
                name = str((affected.get("package") or {}).get("name", "")).lower()
                versions = affected.get("versions") or []
                valid = [str(v) for v in versions if _valid(str(v))]
                if name and name not in chosen and valid and _valid_name(name):
                    chosen[name] = valid[-1]
            if len(chosen) >= count:
                break
    return [f"{name}=={version}" for name, version in list(chosen.items())[:count]]


def timed(fn: object, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs + 1):
        started = time.perf_counter()
        result = fn()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:]), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--pins", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="20 pins, one run (CI: the benchmark still runs; no figure)")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.pins = 1, 20
    lines = pins(args.pins)
    names = {line.split("==")[0] for line in lines}
    load_s, db = timed(lambda: osv.load_database(osv.BUNDLED_ZIP, names), args.runs)
    assert isinstance(db, osv.OsvDatabase)

    def match_all() -> int:
        return sum(len(osv.match(db, line.split("==")[0], line.split("==")[1], Severity.major)) for line in lines)

    match_s, matched = timed(match_all, args.runs)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "requirements.txt").write_text("\n".join(lines) + "\n")
        off = {name: {"enabled": False} for name in ("bandit", "secrets", "pip_audit", "licenses", "sbom")}
        data = {
            "version": 1,
            "project": "bench-osv",
            "environments": {"staging": {}, "production": {}},
            "services": [{"name": "api"}],
            "approvals": {"upstream": [], "allow_none": True},
            "security": {"requirements": ["requirements.txt"], **off, "osv": {"database": "bundled", "max_age": "none"}},
        }
        (root / "predeploy.yaml").write_text(yaml.safe_dump(data))
        config = load_config(root / "predeploy.yaml")
        scan_s, report = timed(lambda: run_security_audit(config, "staging", "bench", root / "security-compliance-report.json"), args.runs)
    findings = len(report.findings)  # type: ignore[attr-defined]
    print(f"bundled snapshot: {db.total} advisories, {osv.BUNDLED_ZIP.stat().st_size / 1e6:.2f} MB; {len(lines)} pins, {len(db.candidates)} records parsed")
    print(
        f"load {load_s:.3f} s   match {match_s:.3f} s ({matched} matches)   whole OSV scan {scan_s:.3f} s ({findings} findings)   (median of {args.runs}, python {sys.version.split()[0]})"
    )
    if args.quick:
        print("quick mode: one short run to prove the benchmark still runs; its figures mean nothing")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
