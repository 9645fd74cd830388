"""Benchmark: the deployment rehearsal of 10 services with ``max_parallel: 10`` against the
slowest single service deployed alone, measured in one run (SPEC section 8; target: within 1.5x).

Every service is the demo service deployed by the real ``scripts/deploy_backend.sh`` to the
local staging target. Like real services, each takes a while to warm up before it reports
healthy (``DEMO_WARMUP_SECONDS``, spread over ``--warmup MIN MAX``), so a deploy is mostly
waiting; what the benchmark shows is that the rehearsal overlaps that waiting, and what it
costs to run ten deploy scripts at once on this machine.

    .venv/bin/python bench/rehearsal.py [--services 10] [--warmup 1.0 2.0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from pytest_predeploy.config import load_config
from pytest_predeploy.context import RunContext
from pytest_predeploy.rehearsal import DeploymentReport, deployment_problems, rehearse_deployment
from pytest_predeploy.staging import stop_all

REPO = Path(__file__).resolve().parents[1]


def write_config(folder: Path, name: str, services: list[dict[str, Any]], max_parallel: int) -> Path:
    step = "bash {script} --env {{env}} --release {{{release}}} --service {{service}} --config {{config}}"
    data = {
        "version": 1,
        "project": "bench-rehearsal",
        "environments": {"staging": {}, "production": {}},
        "approvals": {"upstream": []},
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--warmup", type=float, nargs=2, default=(1.0, 2.0), metavar=("MIN", "MAX"), help="warm-up seconds of the fastest and slowest service")
    args = parser.parse_args()
    count, (low, high) = args.services, args.warmup
    services = [
        {
            "name": f"svc{i}",
            "source": str(REPO / "demo" / "service"),
            "command": f"{{python}} server.py --role {'api' if i % 2 == 0 else 'worker'} --port {{port}} --port-file {{port_file}}",
            "env": {"DEMO_WARMUP_SECONDS": f"{low + (high - low) * i / max(1, count - 1):.2f}"},
            "health_timeout": "60s",
        }
        for i in range(count)
    ]
    os.environ["PREDEPLOY_PYTHON"] = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-rehearsal-") as tmp:
        folder = Path(tmp)
        everything = write_config(folder, "all.yaml", services, max_parallel=count)
        try:
            # Staging on v2 everywhere (bootstrap of v1 included); not measured.
            rehearse(everything, "v2", "v1")
            singles: list[tuple[str, float]] = []
            for service in services:
                alone = write_config(folder, f"{service['name']}.yaml", [service], max_parallel=1)
                report = rehearse(alone, "v3", "v2")
                singles.append((service["name"], report.duration_seconds))
            parallel = rehearse(everything, "v4", "v3")
        finally:
            stop_all(load_config(everything), "staging")

    slowest_name, slowest = max(singles, key=lambda item: item[1])
    print(f"deployment rehearsal, {count} services (demo service, warm-up {low:g}-{high:g}s), {os.cpu_count()} CPUs")
    for name, seconds in singles:
        print(f"  {name} alone: {seconds:6.2f}s")
    print(f"slowest single service ({slowest_name}): {slowest:6.2f}s")
    print(f"all {count} with max_parallel {count}:     {parallel.duration_seconds:6.2f}s")
    per_service = ", ".join(f"{s.service} {s.duration_seconds:.2f}s" for s in parallel.services)
    print(f"  per service in the parallel run: {per_service}")
    ratio = parallel.duration_seconds / slowest
    print(f"ratio parallel / slowest single: {ratio:.2f}x (target <= 1.5x: {'met' if ratio <= 1.5 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
