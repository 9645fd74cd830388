"""Benchmark: sealing ~1 GiB of artifacts against `sha256sum` + `zip -r -q` on the same files.

    .venv/bin/python bench/package.py [--size-mib 1024] [--keep DIR] [--quick]

Generates compressible logs (about 60%), incompressible data (about 40%) and a few hundred small
files, warms the page cache, then measures in one run: the anchor (`sha256sum` over every file,
then `zip -r -q`), and `seal_package` in a subprocess whose peak RSS is read with wait4.
Targets (SPEC section 8): at most 0.3x the anchor's wall time, under 64 MiB peak memory.
``--quick`` (CI) packages 64 MiB and asserts nothing: it proves the benchmark still runs.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1 << 20

_SEAL = """
import sys
from pathlib import Path
from pytest_predeploy.readiness.package import seal_package
result = seal_package(Path(sys.argv[1]), release="v-bench", config_digest="0" * 64, source_date_epoch=1700000000)
print(result.sha256, len(result.entries))
"""


def _log_block(rng: random.Random, size: int) -> bytes:
    levels = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"]
    paths = ["/api/v1/orders", "/api/v1/cart", "/healthz", "/metrics", "/api/v1/users/{id}", "/version"]
    lines, total = [], 0
    while total < size:
        line = (
            f"2026-11-26T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}.{rng.randrange(1000):03d}Z "
            f"{rng.choice(levels)} service={rng.choice(['api', 'worker'])} request_id={rng.getrandbits(64):016x} "
            f"method=GET path={rng.choice(paths)} status={rng.choice([200, 200, 200, 201, 404, 500])} "
            f"latency_ms={rng.expovariate(0.05):.2f} bytes={rng.randrange(100, 90000)}\n"
        ).encode()
        lines.append(line)
        total += len(line)
    return b"".join(lines)[:size]


def generate(root: Path, size_mib: int) -> None:
    rng = random.Random(20261126)
    root.mkdir(parents=True, exist_ok=True)
    (root / "transcripts").mkdir(exist_ok=True)
    blocks = [_log_block(rng, 4 * MIB) for _ in range(4)]
    log_mib = size_mib * 6 // 10
    data_mib = size_mib - log_mib
    for index in range(log_mib // 32):  # 32 MiB logs built from varied 4 MiB blocks
        with open(root / "transcripts" / f"deploy-svc{index:02d}.log", "wb") as out:
            for part in range(8):
                out.write(blocks[(index + part) % 4][part * 7 :] + blocks[(index * part) % 4][: part * 7])
    for index in range(data_mib // 64):  # 64 MiB opaque blobs (captures, images)
        with open(root / f"capture-{index:02d}.bin", "wb") as out:
            for _ in range(64):
                out.write(os.urandom(MIB))
    for index in range(300):  # small transcripts
        (root / "transcripts" / f"smoke-t{index:03d}.log").write_bytes(_log_block(rng, rng.randrange(200, 20000)))


def files_of(root: Path) -> list[str]:
    return sorted(str(path) for path in root.rglob("*") if path.is_file())


def timed(argv: list[str], cwd: Path | None = None) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in KiB (this child only, via wait4) and stdout of ``argv``."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE)
    out = process.stdout.read() if process.stdout else b""
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{argv[0]} failed with exit status {process.returncode}")
    return elapsed, usage.ru_maxrss, out.decode().strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--keep", type=Path, default=None, help="generate into (and keep) this folder")
    parser.add_argument("--quick", action="store_true", help="64 MiB, no target asserted (CI: the benchmark still runs)")
    args = parser.parse_args()
    if args.quick:
        args.size_mib = 64
    work = args.keep or Path(tempfile.mkdtemp(prefix="predeploy-bench-"))
    try:
        source = work / "artifacts"
        if not source.exists():
            generate(source, args.size_mib)
        for leftover in ("PRE-DEPLOYMENT-PACKAGE.zip", "pre-deployment-manifest.json"):
            (source / leftover).unlink(missing_ok=True)  # a kept folder's previous result
        files = files_of(source)
        total = sum(Path(path).stat().st_size for path in files)
        print(f"artifacts: {len(files)} files, {total / MIB:.0f} MiB in {source}")
        subprocess.run(["cat", *files], stdout=subprocess.DEVNULL, check=True)  # warm the page cache for both

        anchor_zip = work / "anchor.zip"
        anchor_zip.unlink(missing_ok=True)
        script = 'sha256sum "$@" > /dev/null && cd "$0" && zip -r -q ../anchor.zip .'
        anchor, anchor_rss, _ = timed(["bash", "-c", script, str(source), *files])

        ours, ours_rss, out = timed([sys.executable, "-c", _SEAL, str(source)])
        package = source / "PRE-DEPLOYMENT-PACKAGE.zip"
        print(f"anchor  sha256sum + zip -r -q : {anchor:7.2f} s   zip {anchor_zip.stat().st_size / MIB:7.1f} MiB")
        print(f"ours    seal_package          : {ours:7.2f} s   zip {package.stat().st_size / MIB:7.1f} MiB   peak RSS {ours_rss / 1024:.1f} MiB")
        print(f"package sha256 {out}")
        ratio = ours / anchor
        print(f"ratio: {ratio:.3f}x the anchor's wall time (target <= 0.3x); peak memory {ours_rss / 1024:.1f} MiB (target < 64 MiB)")
        if args.quick:
            print("quick mode: one short run to prove the benchmark still runs; its figures mean nothing")
            return 0
        met = ratio <= 0.3 and ours_rss < 64 * 1024
        print("targets met" if met else "TARGET MISSED")
        return 0 if met else 1
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
