"""Benchmark: peak memory of a protocol run whose scripts each print a flood of output, and the
size of every file it writes (SPEC section 8; target: peak RSS under 200 MB, every file under its
documented cap).

A throw-away project runs the real plugin (``pytest --predeploy-release``) over three small
gates whose steps are real scripts: parity and security print ``--mb`` MB each and write their
report; each of ``--services`` services is deployed to the local staging target by a wrapper
that prints ``--mb`` MB and then runs the real ``scripts/deploy_backend.sh``. One secret is
configured, so every byte read goes through the redactor as in a real run.

    .venv/bin/python bench/memory.py [--mb 500] [--services 4] [--quick]

Peak RSS is the pytest process's ``VmHWM`` (its high-water mark, read from ``/proc`` just
before it exits) and, as an upper bound over every process it waited for, ``ru_maxrss`` from
``wait4``. The anchor is the output the scripts printed: memory must not grow with it.
``--quick`` (CI) prints 2 MB per script with one service and asserts nothing: it proves the
benchmark still runs (the protocol run itself must still pass).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import yaml

from pytest_predeploy.core.runner import TRANSCRIPT_LIMIT
from pytest_predeploy.rehearsal.deploy import DEPLOYMENT_LOG_LIMIT

REPO = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024
#: A transcript's footer (status, duration, notes, the truncation line) comes on top of its cap.
FOOTER_ALLOWANCE = 4 * 1024
#: Files with no cap of their own (reports, JSON artifacts, staging state) stay small here.
SMALL = 4 * MiB
TARGET_RSS_MB = 200

FLOOD = 'yes "2026-01-01T00:00:00Z INFO worker[1234]: processed request id=5f1c status=200 latency_ms=12" | head -c {size}'

GATES = {
    "test_gate1_intake.py": """
        import pytest
        pytestmark = pytest.mark.gate(1, "Intake Confirmation")

        @pytest.mark.must
        def test_parity(parity):
            assert parity.exists()
    """,
    "test_gate2_rehearsal.py": """
        import json, pytest
        pytestmark = pytest.mark.gate(2, "Deployment Rehearsal")

        @pytest.mark.must
        def test_deployed(deployment):
            assert json.loads(deployment.read_text())["outcome"] == "succeeded"
    """,
    "test_gate3_rollback_security.py": """
        import pytest
        pytestmark = pytest.mark.gate(3, "Rollback & Security")

        @pytest.mark.must
        def test_security(security):
            assert security.exists()
    """,
}


def make_project(root: Path, size: int, services: int) -> None:
    report_script = root / "report.sh"
    report_script.write_text(f'{FLOOD.format(size=size)}\necho \'{{"findings": []}}\' > "$1"\n')
    deploy = root / "deploy.sh"
    deploy.write_text(f'{FLOOD.format(size=size)}\nexec bash {REPO / "scripts" / "deploy_backend.sh"} "$@"\n')
    (root / "staging.env").write_text("DB_PASSWORD=Bench-Secret-Value-0001\n")
    config = {
        "version": 1,
        "project": "bench-memory",
        "environments": {"staging": {"secrets": {"file": "staging.env"}}, "production": {}},
        "approvals": {"upstream": [], "allow_none": True},
        "services": [
            {
                "name": f"svc{i}",
                "source": str(REPO / "demo" / "releases" / "v1.2"),
                "command": "{python} server.py --role api --port {port} --port-file {port_file}",
            }
            for i in range(services)
        ],
        "steps": {
            "parity": {"command": f"bash {report_script} {{output}}", "timeout": "10m"},
            "security": {"command": f"bash {report_script} {{output}}", "timeout": "10m"},
            "deploy": {"command": f"bash {deploy} --env {{env}} --release {{release}} --service {{service}} --config {{config}}", "timeout": "10m"},
        },
        "staging": {"progress_interval": "60s"},
    }
    (root / "predeploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    gates = root / "gates"
    gates.mkdir()
    for name, body in GATES.items():
        (gates / name).write_text(textwrap.dedent(body))


def _hwm_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def run_protocol(root: Path) -> tuple[int, int, int, float, str]:
    """Run pytest in ``root``; returns (exit status, VmHWM KiB, ru_maxrss KiB, seconds, output)."""
    started = time.monotonic()
    log = root / "pytest-output.txt"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "--predeploy-release=v2", "-p", "no:cacheprovider", "-q"], cwd=root, stdout=out, stderr=subprocess.STDOUT
        )
        hwm = 0
        while True:
            # Reap only once exited: /proc/<pid>/status holds the high-water mark until then.
            waited, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if waited:
                break
            hwm = max(hwm, _hwm_kib(proc.pid) or 0)
            time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, hwm, usage.ru_maxrss, time.monotonic() - started, log.read_text(errors="replace")


def cap_of(path: Path, root: Path) -> tuple[int, str]:
    if path.parent.name == "transcripts":
        return TRANSCRIPT_LIMIT + FOOTER_ALLOWANCE, "transcript cap (64 MiB) + footer"
    if path.name == "staging-deployment-run.log":
        return DEPLOYMENT_LOG_LIMIT + FOOTER_ALLOWANCE, "deployment log cap (64 MiB of transcripts) + its own lines"
    return SMALL, "small file (4 MiB)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=500, help="MB each script prints (default 500)")
    parser.add_argument("--services", type=int, default=4, help="services deployed (default 4: with parity and security, 6 scripts)")
    parser.add_argument("--quick", action="store_true", help="2 MB per script, one service, no target asserted (CI: the benchmark still runs)")
    args = parser.parse_args()
    if args.quick:
        args.mb, args.services = 2, 1
    size = args.mb * 1000 * 1000
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:
        root = Path(folder)
        make_project(root, size, args.services)
        scripts = 2 + args.services
        print(f"protocol run: {scripts} scripts printing {args.mb} MB each ({scripts * args.mb} MB of output)")
        status, hwm, maxrss, seconds, output = run_protocol(root)
        # Its three small gates bind none of the protocol's declared criteria: passing, the run's
        # verdict is NOT JUDGED (exit 11); any failed test shows in the JSON report.
        summary = json.loads((root / ".artifacts" / "pre-deployment" / "pytest-report.json").read_text()).get("summary", {}) if status == 11 else {}
        if status not in (0, 11) or summary.get("failed") or summary.get("error"):
            print(output[-3000:])
            print(f"the protocol run failed (exit {status})")
            return 1
        print(f"  wall time: {seconds:.1f}s")
        print(
            f"  peak RSS of pytest (VmHWM): {hwm / 1024:.1f} MB; ru_maxrss of it and what it waited for: {maxrss / 1024:.1f} MB (target < {TARGET_RSS_MB} MB)"
        )
        print(f"  ratio peak RSS / output printed: {hwm * 1024 / (scripts * size):.4f}")
        over = []
        files = sorted((p for p in root.rglob("*") if p.is_file() and p.name != "pytest-output.txt"), key=lambda p: p.stat().st_size, reverse=True)
        print("  largest files written:")
        for path in files[:12]:
            cap, what = cap_of(path, root)
            size_now = path.stat().st_size
            print(f"    {size_now / MiB:8.2f} MiB  {path.relative_to(root)}  (cap: {what})")
        for path in files:
            cap, what = cap_of(path, root)
            if path.stat().st_size > cap:
                over.append(f"{path.relative_to(root)}: {path.stat().st_size} bytes > {what}")
        total = sum(p.stat().st_size for p in files)
        print(f"  {len(files)} files, {total / MiB:.1f} MiB in all")
        ok = hwm / 1024 < TARGET_RSS_MB and not over
        for line in over:
            print(f"  OVER CAP: {line}")
        if args.quick:
            print("quick mode: one short run to prove the benchmark still runs; its figures mean nothing")
            return 0
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
