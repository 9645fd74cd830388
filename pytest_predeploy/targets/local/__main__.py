"""Command line of the local staging target; ``scripts/deploy_backend.sh`` and
``scripts/rollback_backend.sh`` are thin wrappers over it.

    python -m pytest_predeploy.targets.local deploy   --env staging --release TAG [--service NAME] [--config FILE]
    python -m pytest_predeploy.targets.local rollback --env staging --release TAG [--service NAME] [--config FILE]
    python -m pytest_predeploy.targets.local status   --env staging [--service NAME] [--config FILE]
    python -m pytest_predeploy.targets.local stop     --env staging [--service NAME] [--config FILE]

Without --service every configured service is handled, in configured order. Exit statuses:
0 done; 1 a service did not start or missed its health deadline; 2 bad arguments or
configuration; rollback only: 3 the release was never deployed there, 4 the service has a
single release, 5 the release is already current and healthy (3-5 change nothing).
With several services the first non-zero status is returned, after trying every service.
"""

from __future__ import annotations

import argparse
import os
import sys

from pytest_predeploy.core.errors import run_reporting_errors
from pytest_predeploy.targets.base import print_line
from pytest_predeploy.targets.cli import command_parser, drive
from pytest_predeploy.targets.local import service_target, stop_all
from pytest_predeploy.targets.local.target import BLUE_GREEN, MAIN_SLOT, ServiceTarget
from pytest_predeploy.targets.processes import is_running
from pytest_predeploy.targets.settings import load_target_config

PROG = "python -m pytest_predeploy.targets.local"


def _parser() -> argparse.ArgumentParser:
    return command_parser(PROG, "The embedded local staging target.", deploy="build and start a release", stop="stop service processes")


def _status(target: ServiceTarget) -> None:
    print(
        f"{target.service.name}: current {target.current_release() or '(none)'} [{target.service.strategy}], releases: {', '.join(target.release_tags()) or '(none)'}"
    )
    for slot in (MAIN_SLOT, *BLUE_GREEN):
        record = target.record(slot)
        if record is not None:
            state = "running" if is_running(record.pid, record.start_ticks) else "not running"
            active = " (active)" if target.active_slot() == slot else ""
            print(f"  {slot}{active}: {record.release}, pid {record.pid}, port {record.port or '?'}, {state}")


def main() -> int:
    args = _parser().parse_args()
    config = load_target_config(args.config)
    names = args.service or [service.name for service in config.services]
    services = [(name, service_target(config, args.env, name, say=print_line)) for name in names]
    everything = None if args.service else (lambda: stop_all(config, args.env))
    return drive(args.command, getattr(args, "release", None), services, _status, everything)


def run() -> int:
    return run_reporting_errors(main, PROG)


if __name__ == "__main__":
    status = run()
    # Leave without the interpreter's teardown: freeing the config models' modules costs ~30 ms
    # of CPU (a fifth of the command), ten deploys at once each pay it, and nothing is left to
    # clean up (the service processes are meant to outlive this command; no atexit handlers).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
