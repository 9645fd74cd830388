"""Benchmark: what a local Prometheus costs the rehearsal. Starts the real server (``prometheus``
on PATH; apt-get install prometheus) beside two real demo services and measures, ``--runs``
times: start until ``/-/ready``; a retarget (a deploy moving a service to a new port) until the
new process has been scraped; one capture of the demo's PromQL checks; the range queries and
alerts at the end; stop.

    .venv/bin/python bench/prometheus.py [--runs 3] [--quick]

``--quick`` (CI) measures once and, without the server installed, says so and exits 0: it proves
the benchmark still runs where Prometheus is, its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from pytest_predeploy.rehearsal.prometheus import PrometheusConfig, PrometheusObserver
from pytest_predeploy.targets.prometheus import INSTALL_HINT, PrometheusServer, find_binary

REPO = Path(__file__).resolve().parents[1]


def service(folder: Path, role: str, release: str) -> tuple[subprocess.Popen[bytes], str]:
    folder.mkdir(parents=True)
    (folder / "release-manifest.json").write_text(json.dumps({"service": role, "release": release}))
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "demo" / "releases" / release / "server.py"), "--role", role, "--port", "0", "--port-file", "port"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while not (folder / "port").is_file() or not (folder / "port").read_text().strip():
        if time.monotonic() > deadline:
            raise SystemExit(f"demo {role} did not start")
        time.sleep(0.05)
    return proc, f"http://127.0.0.1:{(folder / 'port').read_text().strip()}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one run; exit 0 without the server (CI: the benchmark still runs; no figure)")
    args = parser.parse_args()
    if args.quick:
        args.runs = 1
    if find_binary("prometheus") is None:
        print(f"needs the Prometheus server: {INSTALL_HINT}")
        return 0 if args.quick else 2
    overlay = yaml.safe_load((REPO / "demo" / "prometheus" / "overlay.yaml").read_text())
    timings: dict[str, list[float]] = {"start": [], "retarget until settled": [], "capture": [], "finish": [], "stop": []}
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            procs = []
            try:
                api_proc, api = service(root / "api-old", "api", "v1.1")
                worker_proc, worker = service(root / "worker", "worker", "v1.1")
                procs += [api_proc, worker_proc]
                server = PrometheusServer(root / "prometheus")
                started = time.monotonic()
                url = server.start(
                    "prometheus",
                    {"api": api, "worker": worker},
                    scrape_interval=timedelta(seconds=1),
                    timeout=timedelta(seconds=30),
                    rule_files=[REPO / "demo" / "prometheus" / "rules.yml"],
                )
                timings["start"].append(time.monotonic() - started)
                try:
                    new_proc, new_api = service(root / "api-new", "api", "v1.2")
                    procs.append(new_proc)
                    moved = datetime.now(UTC)
                    started = time.monotonic()
                    server.set_targets({"api": new_api, "worker": worker})
                    stale = server.wait_for_scrapes(moved, {"api": new_api, "worker": worker}, timeout=30)
                    timings["retarget until settled"].append(time.monotonic() - started)
                    assert not stale, stale
                    observer = PrometheusObserver(PrometheusConfig.model_validate(overlay["observability"]["prometheus"]), url=url)
                    started = time.monotonic()
                    observer.capture("after deploy")
                    timings["capture"].append(time.monotonic() - started)
                    started = time.monotonic()
                    observer.finish(["api", "worker"])
                    timings["finish"].append(time.monotonic() - started)
                finally:
                    started = time.monotonic()
                    server.stop()
                    timings["stop"].append(time.monotonic() - started)
            finally:
                for proc in procs:
                    proc.terminate()
                    proc.wait(timeout=10)
        print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in timings.items()))
    print("median: " + ", ".join(f"{k} {statistics.median(v):.2f} s" for k, v in timings.items()))
    if args.quick:
        print("quick mode: one short run to prove the benchmark still runs; its figures mean nothing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
