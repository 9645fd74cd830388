"""Smoke step overhead: ``run_smoke_tests`` on the demo smoke suite against plain ``pytest`` on
the same suite, both against the same two running demo services.

    .venv/bin/python bench/smoke.py [--runs 7] [--quick]

Our side adds a /routes read, a metrics scrape before and after the suite, pytest-json-report,
the transcript and the report file. Prints the median wall time of both, side by side, the
ratio, and the time of one observability capture (every service's /metrics, parsed).
``--quick`` (CI) runs each side once: it proves the benchmark still runs, its figure means nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_predeploy.config import load_config
from pytest_predeploy.rehearsal.observability import capture_metrics
from pytest_predeploy.rehearsal.smoke import run_smoke_tests, url_env

REPO = Path(__file__).resolve().parents[1]


def start(folder: Path, role: str) -> tuple[subprocess.Popen[bytes], str]:
    folder.mkdir()
    (folder / "release-manifest.json").write_text(json.dumps({"service": role, "release": "v1.2"}))
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "demo/releases/v1.2/server.py"), "--role", role, "--port-file", "port"],
        cwd=folder,
        stderr=subprocess.DEVNULL,
        # v1.2's new checkout is behind this flag, on in staging (predeploy.yaml): the demo suite checks it.
        env={**os.environ, "DEMO_FLAGS": "new-checkout"},
    )
    while not (folder / "port").is_file() or not (folder / "port").read_text().strip():
        time.sleep(0.02)
    return proc, f"http://127.0.0.1:{(folder / 'port').read_text().strip()}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="one run of each side (CI: the benchmark still runs; no figure)")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        procs, urls = [], {}
        try:
            for role in ("api", "worker"):
                proc, urls[role] = start(tmp / role, role)
                procs.append(proc)
            config_file = tmp / "predeploy.yaml"
            config_file.write_text(
                json.dumps(
                    {
                        "version": 1,
                        "project": "bench",
                        "environments": {"staging": {}, "production": {}},
                        "services": [{"name": name, "url": url} for name, url in urls.items()],
                        "approvals": {"allow_none": True},
                        "smoke": {"suites": [{"name": "smoke", "path": str(REPO / "demo/smoke")}]},
                    }
                )
            )
            config = load_config(config_file)
            env = {**os.environ, **url_env(urls), "PREDEPLOY_RELEASE": "v1.2"}
            plain_argv = [
                sys.executable,
                "-m",
                "pytest",
                str(REPO / "demo/smoke"),
                "-q",
                "-p",
                "no:cacheprovider",
                "-p",
                "no:predeploy",
                "--rootdir",
                str(REPO / "demo/smoke"),
            ]
            plain, ours, capture = [], [], []
            for index in range(runs):
                started = time.perf_counter()
                subprocess.run(plain_argv, env=env, cwd=REPO / "demo/smoke", stdout=subprocess.DEVNULL, check=True)
                plain.append(time.perf_counter() - started)
                started = time.perf_counter()
                report = run_smoke_tests(config, "staging", "v1.2", tmp / f"out{index}" / "results.json")
                ours.append(time.perf_counter() - started)
                assert not report.problems, report.problems
                started = time.perf_counter()
                capture_metrics(config, "staging", "bench")
                capture.append(time.perf_counter() - started)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait()
    p, o = statistics.median(plain), statistics.median(ours)
    print(f"plain pytest demo/smoke     median {p:.3f} s over {runs} runs")
    print(f"run_smoke_tests (smoke)     median {o:.3f} s  ratio {o / p:.2f}x  (+{o - p:.3f} s)")
    print(f"capture_metrics (2 services) median {statistics.median(capture) * 1000:.1f} ms")
    if args.quick:
        print("quick mode: one short run to prove the benchmark still runs; its figures mean nothing")


if __name__ == "__main__":
    main()
