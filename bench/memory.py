"""Benchmark: peak memory of a protocol run whose scripts each print a flood of output, and the
size of every file it writes (SPEC section 8; target: peak RSS under 200 MB, every file under its
documented cap).

A throw-away project runs the real plugin (``pytest --predeploy-release``) over three small
gates whose steps are real scripts: parity and security print ``--mb`` MB each and write their
report; each of ``--services`` services is deployed to the local staging target by a wrapper
that prints ``--mb`` MB and then runs the real ``scripts/deploy_backend.sh``. One secret is
configured, so every byte read goes through the redactor as in a real run.

    .venv/bin/python bench/memory.py [--mb 500] [--services 4] [--quick]
    .venv/bin/python bench/memory.py --parity-mb 3,20,50 [--quick]

Peak RSS is the pytest process's ``VmHWM`` (its high-water mark, read from ``/proc`` just
before it exits) and, as an upper bound over every process it waited for, ``ru_maxrss`` from
``wait4``. The anchor is the output the scripts printed: memory must not grow with it.
``--quick`` (CI) prints 2 MB per script with one service, then runs the parity mode below on
0.5 MB, and asserts nothing: it proves the benchmark still runs (the protocol run itself and
the parity step must still pass).

``--parity-mb`` instead measures the real parity step (``scripts/compare_environments.py``) on
generated baselines of about that many MB each (a comma-separated list), YAML and JSON, in two
shapes: staging differing from production in every service (half of its settings and its host
list: tens of thousands of items) and the two equal. It prints the peak RSS of the script and
its ratio to the bytes of both inputs, the report's size, and fails when the peak passes
PARITY_RSS_PER_INPUT_BYTE x the input bytes + PARITY_RSS_CONSTANT_MB or the report passes its
byte cap (parity.max_report_bytes, 16 MiB, plus the rest of the report). With ``--quick`` it
runs 0.5 MB of each format once and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
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
#: The parity step's documented bound (docs/parity.md): peak RSS <= this x the bytes of both
#: inputs + the constant (the interpreter, the plugin, the listed items' shown values).
PARITY_RSS_PER_INPUT_BYTE = 12
PARITY_RSS_CONSTANT_MB = 150
#: The report: the items' byte cap plus the summary, inputs, secret names and notes.
PARITY_REPORT_CAP = 16 * MiB + MiB

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
        status, hwm, maxrss = watch(proc)
    return status, hwm, maxrss, time.monotonic() - started, log.read_text(errors="replace")


def watch(proc: subprocess.Popen[bytes]) -> tuple[int, int, int]:
    """Wait for ``proc``; returns (exit status, its VmHWM in KiB, ru_maxrss of it and what it waited for)."""
    hwm = 0
    while True:
        # Reap only once exited: /proc/<pid>/status holds the high-water mark until then.
        waited, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if waited:
            break
        hwm = max(hwm, _hwm_kib(proc.pid) or 0)
        time.sleep(0.02)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, hwm, usage.ru_maxrss


def cap_of(path: Path, root: Path) -> tuple[int, str]:
    if path.parent.name == "transcripts":
        return TRANSCRIPT_LIMIT + FOOTER_ALLOWANCE, "transcript cap (64 MiB) + footer"
    if path.name == "staging-deployment-run.log":
        return DEPLOYMENT_LOG_LIMIT + FOOTER_ALLOWANCE, "deployment log cap (64 MiB of transcripts) + its own lines"
    return SMALL, "small file (4 MiB)"


def parity_baselines(root: Path, mb: float, shape: str, fmt: str) -> int:
    """Write staging and production baselines of about ``mb`` MB each and a config comparing
    them; returns the bytes of both."""
    import random

    rnd = random.Random(1)
    production, staging = {}, {}
    size, index = 0, 0
    while size < mb * 1_000_000:
        service: dict[str, object] = {f"setting_{k:03d}": f"value-{rnd.random():.12f}-{k}" for k in range(60)}
        service["hosts"] = [f"h{i}.svc{index}.example.com" for i in range(4)]
        service["ports"] = [{"name": f"p{i}", "port": 8000 + i} for i in range(3)]
        service["nested"] = {"a": {"b": {"c": [f"x{i}" for i in range(10)]}}}
        copy = json.loads(json.dumps(service))
        if shape == "differs":
            for k in range(0, 60, 2):
                copy[f"setting_{k:03d}"] = f"staging-{rnd.random():.12f}"
            copy["hosts"] = [f"h{i}.stg{index}.example.com" for i in range(4)]
        production[f"svc-{index:05d}"], staging[f"svc-{index:05d}"] = service, copy
        size += len(json.dumps(service))
        index += 1
    total = 0
    for name, tree in (("staging", staging), ("production", production)):
        path = root / f"{name}.{fmt}"
        path.write_text(json.dumps(tree, indent=1) if fmt == "json" else yaml.dump(tree, Dumper=yaml.CSafeDumper, sort_keys=False))
        total += path.stat().st_size
    config = {
        "version": 1,
        "project": "bench-parity",
        "environments": {"staging": {"configuration": [f"staging.{fmt}"]}, "production": {"configuration": [f"production.{fmt}"]}},
        "services": [{"name": "api"}],
        "approvals": {"upstream": [], "allow_none": True},
    }
    (root / "predeploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return total


def run_parity(root: Path) -> tuple[int, int, float]:
    """The real parity script in ``root``; returns (exit status, VmHWM KiB, seconds)."""
    started = time.monotonic()
    argv = [sys.executable, str(REPO / "scripts" / "compare_environments.py"), "--config", "predeploy.yaml", "--output", "out/report.json"]
    with open(root / "parity-output.txt", "wb") as out:
        status, hwm, maxrss = watch(subprocess.Popen(argv, cwd=root, stdout=out, stderr=subprocess.STDOUT))
    return status, max(hwm, maxrss), time.monotonic() - started


def parity_memory(sizes: list[float], quick: bool) -> int:
    failed = False
    print(f"parity step: peak RSS and report size (bound: {PARITY_RSS_PER_INPUT_BYTE} x input bytes + {PARITY_RSS_CONSTANT_MB} MB)")
    for mb in sizes:
        for fmt in ("yaml", "json"):
            for shape in ("differs",) if quick else ("differs", "equal"):
                with tempfile.TemporaryDirectory(prefix="bench-parity-memory-") as folder:
                    root = Path(folder)
                    # Generated in a child: a process's peak (ru_maxrss) starts at its parent's
                    # at fork, so this process must stay small for the step's figure to be its own.
                    writer = multiprocessing.get_context("fork").Process(target=parity_baselines, args=(root, mb, shape, fmt))
                    writer.start()
                    writer.join()
                    total = sum((root / f"{name}.{fmt}").stat().st_size for name in ("staging", "production"))
                    status, hwm, seconds = run_parity(root)
                    report = root / "out" / "report.json"
                    if status not in (0, 1) or not report.is_file():
                        print((root / "parity-output.txt").read_text(errors="replace")[-2000:])
                        print(f"  the parity step failed (exit {status})")
                        return 1
                    items = json.loads(report.read_text())["summary"]
                    peak = hwm * 1024
                    bound = PARITY_RSS_PER_INPUT_BYTE * total + PARITY_RSS_CONSTANT_MB * MiB
                    over = peak > bound or report.stat().st_size > PARITY_REPORT_CAP
                    failed |= over
                    print(
                        f"  {mb:g} MB {fmt} {shape:7s}: inputs {total / MiB:6.1f} MiB, peak RSS {peak / MiB:7.1f} MiB "
                        f"({peak / total:5.1f} x input bytes), report {report.stat().st_size / MiB:5.2f} MiB, "
                        f"{items['major']} major items, {seconds:5.1f} s{'  OVER' if over else ''}"
                    )
    if quick:
        print("quick mode: one small run to prove the benchmark still runs; its figures mean nothing")
        return 0
    print("FAIL" if failed else "PASS")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=500, help="MB each script prints (default 500)")
    parser.add_argument("--services", type=int, default=4, help="services deployed (default 4: with parity and security, 6 scripts)")
    parser.add_argument("--quick", action="store_true", help="2 MB per script, one service, no target asserted (CI: the benchmark still runs)")
    parser.add_argument("--parity-mb", default=None, help="measure the parity step instead, on baselines of these MB each (e.g. 3,20,50)")
    args = parser.parse_args()
    if args.parity_mb is not None:
        return parity_memory([0.5] if args.quick else [float(mb) for mb in args.parity_mb.split(",")], args.quick)
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
            return parity_memory([0.5], quick=True)  # and its parity mode
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
