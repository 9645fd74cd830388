"""Plugin overhead: the whole protocol with instant scripts vs plain pytest running the same
number of trivial tests with the same reports (HTML self-contained, JSON, JUnit).

    .venv/bin/python bench/overhead.py [--runs 5] [--quick]

Prints the median wall time of both, side by side, and the difference (target: under 0.25 s), and
the load average before and after (other processes on the machine distort the figures).
``--quick`` (CI) runs each side once: it proves the benchmark still runs, its figure means nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

INSTANT = "sh -c 'echo {{}} > {output}'"
CONFIG = {
    "version": 1,
    "project": "bench",
    "previous_release": "v0",
    "environments": {"staging": {}, "production": {}},
    "services": [{"name": "api"}, {"name": "worker"}],
    "approvals": {"upstream": [], "allow_none": True},
    "steps": {
        "parity": {"command": INSTANT},
        "smoke": {"command": INSTANT},
        "security": {"command": INSTANT},
        "deploy": {"command": "sh -c 'echo deploy {service}'"},
        "rollback": {"command": "sh -c 'echo rollback {service}'"},
    },
}

FIXTURES = """
import pytest
from pytest_predeploy.harness.steps import run_report_step

@pytest.fixture(scope="session")
def deployed(predeploy):
    return [predeploy.run_step_script("deploy", label=s.name, service=s.name) for s in predeploy.config.services]

@pytest.fixture(scope="session")
def smoke_results(predeploy, deployed):
    return run_report_step(predeploy, "smoke")[0]

@pytest.fixture(scope="session")
def rolled_back(predeploy, deployed):
    return [predeploy.run_step_script("rollback", label=s.name, service=s.name) for s in predeploy.config.services]
"""

GATE = """
import pytest
pytestmark = pytest.mark.gate({n}, "Gate {n}")
{tests}
"""
TESTS = {
    1: ["intake", "parity", None],
    2: ["deployed", "smoke_results", None],
    3: ["rolled_back", "security", None],
    4: [None, None, None],
}


def make_protocol(root: Path) -> int:
    (root / "predeploy.yaml").write_text(yaml.safe_dump(CONFIG))
    gates = root / "gates"
    gates.mkdir()
    (gates / "conftest.py").write_text(FIXTURES)
    count = 0
    for number, fixtures in TESTS.items():
        tests = []
        for index, fixture in enumerate(fixtures):
            arg = fixture or ""
            body = f"    assert {fixture} is not None" if fixture else "    pass"
            tests.append(f"\n@pytest.mark.must\ndef test_{number}_{index}({arg}):\n{body}\n")
            count += 1
        (gates / f"test_gate{number}_g.py").write_text(GATE.format(n=number, tests="".join(tests)))
    return count


def make_plain(root: Path, count: int) -> None:
    tests = "".join(f"\ndef test_{index}():\n    pass\n" for index in range(count))
    (root / "test_plain.py").write_text(tests)


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0,):
        sys.exit(f"command failed ({done.returncode}): {' '.join(argv)}\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one run of each side (CI: the benchmark still runs; no figure)")
    args = parser.parse_args()
    if args.quick:
        args.runs = 1
    load_before = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        protocol, plain = Path(tmp, "protocol"), Path(tmp, "plain")
        protocol.mkdir()
        plain.mkdir()
        count = make_protocol(protocol)
        make_plain(plain, count)
        base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        ours_argv = base + ["--predeploy-release=v1"]
        # The anchor runs without our plugin at all (-p no:predeploy): its import is our overhead too.
        plain_argv = base + [
            "-p",
            "no:predeploy",
            "--html=report.html",
            "--self-contained-html",
            "--json-report",
            "--json-report-file=report.json",
            "--junitxml=junit.xml",
            "test_plain.py",
        ]
        ours, theirs = [], []
        for _ in range(args.runs):
            ours.append(timed(ours_argv, protocol))
            theirs.append(timed(plain_argv, plain))
    ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
    print(f"tests per run: {count}; runs: {args.runs}")
    print(f"plain pytest + same reports : {theirs_median:.3f} s (median)")
    print(f"protocol, instant scripts   : {ours_median:.3f} s (median)")
    print(f"our overhead                : {ours_median - theirs_median:+.3f} s (target <= 0.25 s)")
    load_after = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average (1, 5, 15 min): {load_before} before, {load_after} after")
    if args.quick:
        print("quick mode: one short run to prove the benchmark still runs; its figures mean nothing")


if __name__ == "__main__":
    main()
