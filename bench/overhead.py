"""Plugin overhead: the whole protocol with instant scripts vs plain pytest running the same
number of trivial tests with the same reports (HTML self-contained, JSON, JUnit).

    .venv/bin/python bench/overhead.py [--runs 5] [--quick]

Prints the median wall time of both, side by side, and the difference (target: under 0.25 s), and
the load average before and after (other processes on the machine distort the figures). Also the
median CPU time (user + system, of pytest and every process it waited for, from ``wait4``): other
load inflates it far less than the wall time, so it compares two versions on a busy machine.

``--bytecode-cache`` runs both sides with a warm bytecode cache of their own (``PYTHONPYCACHEPREFIX``
in a temporary folder, filled by one unmeasured run of each), as after a normal install. Without it
the environment decides: where ``PYTHONDONTWRITEBYTECODE=1`` is set and the plugin is installed
editable, our modules are compiled from source in every run while pytest's come precompiled.
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


#: Exit statuses of a run that went through: the plain tests pass (0); the protocol's trivial gates
#: pass but bind none of the protocol's declared criteria, so its verdict is NOT JUDGED (11).
OK_STATUSES = (0, 11)


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of ``argv`` (CPU: user + system of it and the processes it waited for)."""
    with tempfile.TemporaryFile() as output:
        start = time.perf_counter()
        process = subprocess.Popen(argv, cwd=cwd, stdout=output, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode not in OK_STATUSES:
            output.seek(0)
            sys.exit(f"command failed ({process.returncode}): {' '.join(argv)}\n{output.read()[-5000:].decode(errors='replace')}")
    return elapsed, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one run of each side (CI: the benchmark still runs; no figure)")
    parser.add_argument("--bytecode-cache", action="store_true", help="both sides with a warm bytecode cache of their own (as after a normal install)")
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
        env = dict(os.environ)
        if args.bytecode_cache:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(Path(tmp, "pycache"))
            timed(ours_argv, protocol, env)  # fills the cache; not measured
            timed(plain_argv, plain, env)
        ours, theirs = [], []
        for _ in range(args.runs):
            ours.append(timed(ours_argv, protocol, env))
            theirs.append(timed(plain_argv, plain, env))
    ours_median, theirs_median = statistics.median(w for w, _ in ours), statistics.median(w for w, _ in theirs)
    ours_cpu, theirs_cpu = statistics.median(c for _, c in ours), statistics.median(c for _, c in theirs)
    cache = "a warm bytecode cache of their own" if args.bytecode_cache else f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '(unset)')}"
    print(f"tests per run: {count}; runs: {args.runs}; both sides with {cache}")
    print(f"plain pytest + same reports : {theirs_median:.3f} s (median; CPU {theirs_cpu:.3f} s)")
    print(f"protocol, instant scripts   : {ours_median:.3f} s (median; CPU {ours_cpu:.3f} s)")
    print(f"our overhead                : {ours_median - theirs_median:+.3f} s (target <= 0.25 s; CPU {ours_cpu - theirs_cpu:+.3f} s)")
    load_after = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average (1, 5, 15 min): {load_before} before, {load_after} after")
    if args.quick:
        print("quick mode: one short run to prove the benchmark still runs; its figures mean nothing")


if __name__ == "__main__":
    main()
