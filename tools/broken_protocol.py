"""Maintainer command: how many of the suite's tests fail on a deliberately broken protocol.

    .venv/bin/python tools/broken_protocol.py [--rev REV] [--break NAME ...] [-- PYTEST ARGS]

For each named break (all of them by default), a clean copy of the repository at ``REV``
(default: HEAD) has one deliberate defect written into the product's code, and the test suite of
that same copy runs against it (this checkout's virtualenv, the copy first on ``PYTHONPATH``). It
prints, per break, how many tests failed and which, and writes the list beside the copy.

Why: moving tests from subprocess runs into in-process runs (issue 31, item 7) must not lose what
the suite proves. Run it at the commit before such a change and after: each break must be caught
by at least as many tests after as before (names differ; the count and the fact of being caught
are what is compared). A break the suite does not catch at all is a hole in the suite.

The breaks are the protocol's promises, each removed in one place: the verdict ignores criteria
it did not judge; a failed gate no longer halts the later ones; the redactor returns text as it
came; a rollback says it rolled back without switching; the sealed package's per-file sha256 is
no longer compared.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: name -> (file, the text it holds exactly once, what it becomes).
BREAKS: dict[str, tuple[str, str, str]] = {
    "verdict-ignores-not-judged": (
        "pytest_predeploy/harness/verdict.py",
        "    missing = []\n    for criterion in CRITERIA:\n",
        "    return []\n    missing = []\n    for criterion in CRITERIA:\n",
    ),
    "failed-gate-does-not-halt": (
        "pytest_predeploy/harness/controller.py",
        'elif consequence == "halt":\n            self._halt(gate)\n',
        'elif consequence == "halt":\n            pass\n',
    ),
    "redactor-returns-text-as-it-came": (
        "pytest_predeploy/core/redact.py",
        "        return redact_content(redacted)\n",
        "        return text\n",
    ),
    "rollback-does-not-switch": (
        "pytest_predeploy/targets/local/target.py",
        '            if self.service.strategy == "blue_green":\n                self._activate_blue_green(tag)\n'
        "            else:\n                self._activate_restart(tag)\n",
        "            pass\n",
    ),
    "sealed-files-not-compared": (
        "pytest_predeploy/verdict/sealed.py",
        "        elif found != entry.sha256:\n",
        "        elif False:\n",
    ),
}


def _apply(copy: Path, name: str) -> None:
    relative, old, new = BREAKS[name]
    path = copy / relative
    text = path.read_text()
    if text.count(old) != 1:
        raise SystemExit(f"break {name}: {relative} does not hold its anchor exactly once; update BREAKS")
    path.write_text(text.replace(old, new))


def _run(rev: str, name: str, pytest_args: list[str], workdir: Path) -> list[str]:
    copy = workdir / name
    subprocess.run(["git", "clone", "-q", str(REPO), str(copy)], check=True)
    subprocess.run(["git", "-C", str(copy), "checkout", "-q", rev], check=True)
    _apply(copy, name)
    env = {**os.environ, "PYTHONPATH": str(copy)}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *pytest_args]
    done = subprocess.run(argv, cwd=copy, env=env, capture_output=True, text=True)
    failed = sorted(set(re.findall(r"^(?:FAILED|ERROR) (\S+)", done.stdout, re.MULTILINE)))
    (workdir / f"{name}.failed.txt").write_text("".join(f"{test}\n" for test in failed) + done.stdout[-2000:])
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="HEAD", help="the commit whose product and tests are used (default HEAD)")
    parser.add_argument("--break", dest="breaks", action="append", choices=sorted(BREAKS), help="one break (repeatable; default: all)")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest after --")
    args = parser.parse_args()
    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", args.rev], check=True, capture_output=True, text=True).stdout.strip()
    workdir = Path(tempfile.mkdtemp(prefix="broken-protocol-"))
    print(f"commit {rev[:12]}; copies and failure lists in {workdir}")
    uncaught = 0
    for name in args.breaks or sorted(BREAKS):
        failed = _run(rev, name, args.pytest_args, workdir)
        uncaught += not failed
        print(f"{name}: {len(failed)} tests fail" + ("" if failed else "  <- NOT CAUGHT"), flush=True)
    return 1 if uncaught else 0


if __name__ == "__main__":
    sys.exit(main())
