"""Demo refresh of staging test data and feature flags (Protocol 10, step 1.3).

    python demo/environments/refresh.py --env staging --root .staging

Seeds the demo datasets (catalogue and customer fixtures, the payments stub's canned responses)
into <root>/<env>/testdata/, replacing what an earlier rehearsal left there. A real project runs
its own data sync here (database snapshot restore, flag service sync, stub deployment).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

DATASETS = {
    "catalogue.json": [{"sku": f"SKU-{n:04d}", "price_cents": 500 + 25 * n, "stock": 10 + n % 7} for n in range(50)],
    "customers.json": [{"id": n, "email": f"customer{n}@example.test", "tier": "gold" if n % 10 == 0 else "standard"} for n in range(20)],
    "payments-stub.json": {"authorize": {"status": "approved"}, "capture": {"status": "captured"}, "refund": {"status": "refunded"}},
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="refresh.py", description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True)
    parser.add_argument("--root", type=Path, default=Path(".staging"))
    args = parser.parse_args()
    target = args.root / args.env / "testdata"
    target.mkdir(parents=True, exist_ok=True)
    for name, data in DATASETS.items():
        fd, tmp = tempfile.mkstemp(dir=target, prefix=f".{name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1)
        os.replace(tmp, target / name)
        print(f"refreshed {target / name} ({len(data)} records)")
    print(f"done at {datetime.now(UTC).isoformat()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
