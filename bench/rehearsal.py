"""Benchmark: the deployment rehearsal of 10 services with ``max_parallel: 10`` against the
slowest single service deployed alone, measured in one run (SPEC section 8; target: within 1.5x).

Every service is the demo service deployed by the real ``scripts/deploy_backend.sh`` to the
local staging target. Like real services, each takes a while to warm up before it reports
healthy (``DEMO_WARMUP_SECONDS``, spread over ``--warmup MIN MAX``), so a deploy is mostly
waiting; what the benchmark shows is that the rehearsal overlaps that waiting, and what it
costs to run ten deploy scripts at once on this machine.

    .venv/bin/python bench/rehearsal.py [--services 10] [--warmup 1.0 2.0] [--runs 1] [--quick]

With ``--runs N`` the whole measurement (every service alone, then all together) is repeated on
the same staging N times and the medians are reported: other work on the machine moves single
runs by several percent. Also printed: the CPU time the deploy scripts of the parallel run used
(the scripts and the services they start compete for the cores) and how busy the machine was.
``--quick`` (CI) rehearses two services without warm-up, once: it proves the benchmark still runs,
its ratio means nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pytest_predeploy.config import load_config
from pytest_predeploy.harness.context import RunContext
from pytest_predeploy.rehearsal.deploy import DeploymentReport, deployment_problems, rehearse_deployment
from pytest_predeploy.targets.local import stop_all

REPO = Path(__file__).resolve().parents[1]


def write_config(folder: Path, name: str, services: list[dict[str, Any]], max_parallel: int) -> Path:
    step = "bash {script} --env {{env}} --release {{{release}}} --service {{service}} --config {{config}}"
    data = {
        "version": 1,
        "project": "bench-rehearsal",
        "environments": {"staging": {}, "production": {}},
        "approvals": {"upstream": [], "allow_none": True},
        "services": services,
        "steps": {
            "deploy": {"command": step.format(script=REPO / "scripts" / "deploy_backend.sh", release="release"), "timeout": "120s"},
            "rollback": {"command": step.format(script=REPO / "scripts" / "rollback_backend.sh", release="previous_release"), "timeout": "120s"},
        },
        "staging": {"max_parallel": max_parallel, "progress_interval": "60s"},
    }
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def rehearse(config_path: Path, release: str, previous: str) -> DeploymentReport:
    config = load_config(config_path)
    artifacts = config_path.parent / f"artifacts-{config_path.stem}-{release}"
    artifacts.mkdir(exist_ok=True)
    ctx = RunContext(config=config, release=release, previous_release=previous, env="staging", artifacts=artifacts)
    ctx.announcer = lambda line: None
    report = rehearse_deployment(ctx)
    problems = deployment_problems(report)
    if problems:
        raise SystemExit(f"rehearsal of {release} failed: {problems}")
    return report


def _busy_cpu_seconds() -> float | None:
    """CPU time the whole machine has spent busy since boot (Linux), to show other load."""
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Run:
    singles: list[tuple[str, float]]
    parallel: DeploymentReport
    scripts_cpu: float  # the deploy scripts of the parallel run (not the services they start)
    machine_busy: float | None  # the whole machine during the parallel run

    @property
    def slowest(self) -> tuple[str, float]:
        return max(self.singles, key=lambda item: item[1])

    @property
    def ratio(self) -> float:
        return self.parallel.duration_seconds / self.slowest[1]


def measure(folder: Path, everything: Path, services: list[dict[str, Any]], number: int) -> Run:
    """Every service alone (max_parallel 1), then all of them with max_parallel = their count."""
    single_tag, parallel_tag = f"v{3 + 2 * number}", f"v{4 + 2 * number}"
    singles: list[tuple[str, float]] = []
    for service in services:
        alone = write_config(folder, f"{service['name']}.yaml", [service], max_parallel=1)
        report = rehearse(alone, single_tag, f"v{2 + 2 * number}")
        singles.append((service["name"], report.duration_seconds))
    busy, children = _busy_cpu_seconds(), _children_cpu_seconds()
    parallel = rehearse(everything, parallel_tag, single_tag)
    busy_after = _busy_cpu_seconds()
    machine = busy_after - busy if busy is not None and busy_after is not None else None
    return Run(singles, parallel, _children_cpu_seconds() - children, machine)


def report_run(run: Run, count: int) -> None:
    slowest_name, slowest = run.slowest
    for name, seconds in run.singles:
        print(f"  {name} alone: {seconds:6.2f}s")
    print(f"slowest single service ({slowest_name}): {slowest:6.2f}s")
    print(f"all {count} with max_parallel {count}:     {run.parallel.duration_seconds:6.2f}s")
    per_service = ", ".join(f"{s.service} {s.duration_seconds:.2f}s" for s in run.parallel.services)
    print(f"  per service in the parallel run: {per_service}")
    cpus = os.cpu_count() or 1
    busy = f"; machine busy {run.machine_busy:.2f} of {cpus * run.parallel.duration_seconds:.2f} CPU-s" if run.machine_busy is not None else ""
    print(f"  CPU of the {count} deploy scripts in the parallel run: {run.scripts_cpu:.2f}s ({run.scripts_cpu / count:.3f}s each){busy}")
    print(f"ratio parallel / slowest single: {run.ratio:.2f}x (target <= 1.5x: {'met' if run.ratio <= 1.5 else 'MISSED'})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--warmup", type=float, nargs=2, default=(1.0, 2.0), metavar=("MIN", "MAX"), help="warm-up seconds of the fastest and slowest service")
    parser.add_argument("--runs", type=int, default=1, help="repeat the whole measurement and report medians")
    parser.add_argument("--quick", action="store_true", help="two services, no warm-up, one run (CI: the benchmark still runs; no figure)")
    args = parser.parse_args()
    if args.quick:
        args.services, args.warmup, args.runs = 2, (0.0, 0.0), 1
    count, (low, high) = args.services, args.warmup
    services = [
        {
            "name": f"svc{i}",
            "source": str(REPO / "demo" / "releases" / "v1.2"),
            "command": f"{{python}} server.py --role {'api' if i % 2 == 0 else 'worker'} --port {{port}} --port-file {{port_file}}",
            "env": {"DEMO_WARMUP_SECONDS": f"{low + (high - low) * i / max(1, count - 1):.2f}"},
            "health_timeout": "60s",
        }
        for i in range(count)
    ]
    os.environ["PREDEPLOY_PYTHON"] = sys.executable
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-rehearsal-") as tmp:
        folder = Path(tmp)
        everything = write_config(folder, "all.yaml", services, max_parallel=count)
        try:
            # Staging on v2 everywhere (bootstrap of v1 included); not measured.
            rehearse(everything, "v2", "v1")
            for number in range(args.runs):
                runs.append(measure(folder, everything, services, number))
        finally:
            stop_all(load_config(everything), "staging")

    print(f"deployment rehearsal, {count} services (demo service, warm-up {low:g}-{high:g}s), {os.cpu_count()} CPUs")
    for number, run in enumerate(runs, 1):
        if len(runs) > 1:
            print(f"run {number} of {len(runs)}:")
        report_run(run, count)
    if len(runs) > 1:
        ratio = statistics.median(run.ratio for run in runs)
        print(
            f"medians over {len(runs)} runs: slowest single {statistics.median(run.slowest[1] for run in runs):.2f}s, "
            f"all {count} in parallel {statistics.median(run.parallel.duration_seconds for run in runs):.2f}s, "
            f"deploy-script CPU {statistics.median(run.scripts_cpu for run in runs) / count:.3f}s each"
        )
        print(
            f"median ratio parallel / slowest single: {ratio:.2f}x (per run: {', '.join(f'{run.ratio:.2f}' for run in runs)}; target <= 1.5x: {'met' if ratio <= 1.5 else 'MISSED'})"
        )
    if args.quick:
        print("quick mode: one short run to prove the benchmark still runs; its figures mean nothing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
