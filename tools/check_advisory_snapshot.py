"""Cross-check the advisory snapshot the product ships against the PyPA checkout it was made from.

A maintainer's command, not a test: users (and CI) do not have the upstream checkout, and a test
that skips without it proves nothing where it runs.

    python tools/check_advisory_snapshot.py CHECKOUT [--names requests,pyyaml,...]

CHECKOUT is a checkout of github.com/pypa/advisory-database (``vulns/<package>/<ID>.yaml``) at the
commit the snapshot names (``pytest_predeploy/data/osv-pypi-snapshot.zip.source.json``). Both are
read by the scanner's own loader; the command compares the advisory counts, the withdrawn ones,
the newest ``modified`` date and, for each named distribution at a spread of versions, the
advisories that match and their fixed versions. Exit status: 0 the same, 1 they differ (each
difference printed), 2 a database could not be read. After ``tools/vendor_pypa_advisories.py``
rebuilt the snapshot, run this against the same checkout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_predeploy.core.fields import Severity
from pytest_predeploy.security import osv

NAMES = ("requests", "pyyaml", "jinja2", "urllib3", "django", "flask", "pillow", "cryptography", "werkzeug", "prometheus-client")
#: Versions that fall inside and outside the ranges of the advisories of NAMES.
VERSIONS = ("0.1", "1.0", "2.0", "2.19.1", "3.0", "5.3", "2.10")


def matches(db: osv.OsvDatabase, name: str, version: str) -> list[tuple[str, tuple[str, ...]]]:
    return sorted((m.advisory["id"], tuple(m.fixed_versions)) for m in osv.match(db, name, version, Severity.major))


def differences(ours: osv.OsvDatabase, theirs: osv.OsvDatabase, names: list[str]) -> list[str]:
    found = []
    for label, mine, upstream in (
        ("advisories", ours.total, theirs.total),
        ("withdrawn", ours.withdrawn, theirs.withdrawn),
        ("newest modified", ours.newest_modified, theirs.newest_modified),
    ):
        if mine != upstream:
            found.append(f"{label}: snapshot {mine}, checkout {upstream}")
    for name in names:
        for version in VERSIONS:
            mine_matched, upstream_matched = matches(ours, name, version), matches(theirs, name, version)
            if mine_matched != upstream_matched:
                found.append(f"{name} {version}: snapshot {mine_matched}, checkout {upstream_matched}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="a checkout of github.com/pypa/advisory-database")
    parser.add_argument("--snapshot", type=Path, default=osv.BUNDLED_ZIP, help="the snapshot zip (default: the one the package ships)")
    parser.add_argument("--names", default=",".join(NAMES), help="comma-separated distributions whose matches are compared")
    args = parser.parse_args()
    names = [name.strip() for name in args.names.split(",") if name.strip()]
    try:
        ours, theirs = osv.load_database(args.snapshot, names), osv.load_database(args.checkout, names)
    except osv.DatabaseUnavailable as exc:
        print(f"check_advisory_snapshot: {exc}", file=sys.stderr)
        return 2
    found = differences(ours, theirs, names)
    for line in found:
        print(f"DIFFERS {line}")
    verdict = "differ" if found else "match"
    print(
        f"snapshot {args.snapshot.name} ({ours.total} advisories) and {args.checkout} ({theirs.total}) {verdict}: "
        f"{len(names)} distributions at {len(VERSIONS)} versions each"
    )
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
