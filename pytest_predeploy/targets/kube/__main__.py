"""Command line of the kube staging target; ``python -m pytest_predeploy.targets`` runs it when
``staging.target`` is ``kube`` (so ``scripts/deploy_backend.sh`` and ``rollback_backend.sh`` do).

    python -m pytest_predeploy.targets.kube deploy   --env staging --release TAG [--service NAME] [--config FILE]
    python -m pytest_predeploy.targets.kube rollback --env staging --release TAG [--service NAME] [--config FILE]
    python -m pytest_predeploy.targets.kube status   --env staging [--service NAME] [--config FILE]
    python -m pytest_predeploy.targets.kube stop     --env staging [--service NAME] [--config FILE]

Options and exit statuses are those of every target (:mod:`pytest_predeploy.targets.base`, one
driver in :mod:`pytest_predeploy.targets.cli`): 0 done; 1 a service did not start, crashed or missed its
health deadline (its pods are removed, the log tail is in the message); 2 bad arguments or
configuration; rollback only: 3 the release was never deployed there, 4 the service has a single
release, 5 the release is already current and healthy (3-5 change nothing). With several
services the first non-zero status is returned, after trying every service.
"""

from __future__ import annotations

import argparse
import sys

from pytest_predeploy.core.errors import run_reporting_errors
from pytest_predeploy.targets.base import print_line
from pytest_predeploy.targets.cli import command_parser, drive
from pytest_predeploy.targets.kube.cluster import ClusterService
from pytest_predeploy.targets.kube.engine import EngineError
from pytest_predeploy.targets.kube.environment import KubeTarget
from pytest_predeploy.targets.kube.target import KubeService
from pytest_predeploy.targets.settings import TargetConfig, load_target_config

PROG = "python -m pytest_predeploy.targets.kube"


def _parser() -> argparse.ArgumentParser:
    return command_parser(
        PROG, "The kube staging target (Kubernetes manifests on podman or a cluster).", deploy="build and run a release", stop="remove the pods"
    )


def _status(service: KubeService) -> None:
    found = service.serving()
    print(
        f"{service.service.name}: current {found[0].release if found else '(none)'} [{service.service.strategy}], releases: {', '.join(service.release_names()) or '(none)'}"
    )
    if isinstance(service, ClusterService):
        print(f"  deployment/{service.service.name} in namespace {service.namespace()}" + (" (rollout complete)" if found else " (absent or rolling out)"))
        return
    for pod in service.pods.find(service.service.name):
        labels = pod.get("Labels") or {}
        active = " (active)" if found and found[1].get("Id") == pod.get("Id") else ""
        print(
            f"  pod {pod.get('Name')}{active}: {labels.get('io.predeploy.release')}, {labels.get('io.predeploy.slot')} slot, port {labels.get('io.predeploy.port')}, {pod.get('Status')}"
        )


def run_command(config: TargetConfig, command: str, env: str, release: str | None, names: list[str] | None) -> int:
    """One command over the named services (default: all); returns the exit status."""
    target = KubeTarget(config, say=print_line)
    services = [(name, target.service(env, name)) for name in names or [s.name for s in config.services]]
    everything = None if names else (lambda: target.stop_all(env))
    return drive(command, release, services, _status, everything, failures=(EngineError,))


def main() -> int:
    args = _parser().parse_args()
    config = load_target_config(args.config)
    return run_command(config, args.command, args.env, getattr(args, "release", None), args.service)


def run() -> int:
    return run_reporting_errors(main, PROG)


if __name__ == "__main__":
    sys.exit(run())
