"""Benchmark: the wall time of the test suite as the README runs it (``python -m pytest -rs`` in the
repository, what ``.ci/run`` runs; SPEC section 8: under 4 minutes on the 2-core CI machine).

    .venv/bin/python bench/suite.py [--quick]

The command is read from the README (the line under "Install and run the test suite"), so the figure
is always that command's. Runs it once in this checkout and prints its wall time, its summary line and the load
average before and after (other processes on the machine distort the figure; measure on a quiet
machine). Nothing is asserted: the figure goes into the README's benchmark table. ``--quick`` (CI)
runs the same command on one small test file: it proves the benchmark still runs, its figure means
nothing. The exit status is pytest's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The README's test command ends with this; its arguments follow.
PYTEST = ".venv/bin/python -m pytest"


def readme_test_arguments(readme: Path = REPO / "README.md") -> list[str]:
    """The arguments of the README's test command (what ``.ci/run`` runs)."""
    text = readme.read_text()
    block = text[text.index("Install and run the test suite") :]
    line = next(line for line in block.splitlines() if PYTEST in line)
    return line.split(PYTEST, 1)[1].split("#")[0].split()


#: One small, fast test file for --quick.
QUICK_PATH = "tests/test_api_surface.py"


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"run only {QUICK_PATH} (CI: the benchmark still runs; no figure)")
    args = parser.parse_args()
    argv = [sys.executable, "-m", "pytest", *readme_test_arguments(), *([QUICK_PATH] if args.quick else [])]
    load_before = load_average()
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - started
    lines = done.stdout.strip().splitlines()
    summary = lines[-1] if lines else "(no output)"
    print(f"command: {' '.join(['python', *argv[1:]])} (in {REPO})")
    print(f"summary: {summary}; exit status {done.returncode}")
    print(f"wall time: {wall:.1f} s ({wall / 60:.2f} min; target < 4 min on the 2-core CI machine)")
    print(f"load average (1, 5, 15 min): {load_before} before, {load_average()} after; {os.cpu_count()} CPUs")
    if done.returncode != 0:
        print(done.stdout[-3000:])
        print(done.stderr[-2000:], file=sys.stderr)
    if args.quick:
        print("quick mode: one short run to prove the benchmark still runs; its figures mean nothing")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
