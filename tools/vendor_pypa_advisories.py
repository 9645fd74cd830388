"""Rebuild the advisory snapshot the product ships, from a checkout of the PyPA advisory database.

The PyPA database keeps one YAML file per advisory (``vulns/<package>/<ID>.yaml``); osv.dev's bulk
export for PyPI (``PyPI/all.zip``) is a zip of one ``<ID>.json`` per advisory. We ship the second
form so the scanner reads our snapshot and a real download the same way.

    python tools/vendor_pypa_advisories.py CHECKOUT --commit SHA --date YYYY-MM-DD

Every scalar is read as a string (``yaml.BaseLoader``): a version such as ``1.10`` must not become
the float ``1.1``. The zip is deterministic (sorted names, fixed timestamps), so rebuilding from
the same checkout gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import zipfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parents[1] / "pytest_predeploy" / "data"
ZIP_NAME = "osv-pypi-snapshot.zip"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="a checkout of github.com/pypa/advisory-database")
    parser.add_argument("--commit", required=True, help="the checkout's commit")
    parser.add_argument("--date", required=True, help="the commit's date, YYYY-MM-DD")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    files = sorted((args.checkout / "vulns").rglob("*.yaml"))
    target = args.out / ZIP_NAME
    tmp = target.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in files:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CBaseLoader", yaml.BaseLoader))
            info = zipfile.ZipInfo(f"{data['id']}.json", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, json.dumps(data, sort_keys=True, separators=(",", ":")), compresslevel=9)
    tmp.replace(target)
    shutil.copyfile(args.checkout / "LICENSE", args.out / "osv-pypi-snapshot.LICENSE")
    source = {
        "source": "https://github.com/pypa/advisory-database",
        "commit": args.commit,
        "date": args.date,
        "license": "CC-BY-4.0",
        "attribution": f"Python Packaging Advisory Database (PyPA), commit {args.commit} of {args.date}, CC-BY 4.0; converted from YAML to OSV JSON",
        "fetched_at": f"{args.date}T00:00:00Z",
        "advisories": len(files),
    }
    (args.out / f"{ZIP_NAME}.source.json").write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
    print(f"{target}: {len(files)} advisories, {target.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
