"""Command line of the staging target the configuration names (``staging.target``):

    python -m pytest_predeploy.targets deploy|rollback|status|stop --env ENV [--release TAG] [--service NAME] [--config FILE]

runs ``python -m pytest_predeploy.targets.local`` or ``python -m pytest_predeploy.targets.kube`` with
the same arguments; ``scripts/deploy_backend.sh`` and ``scripts/rollback_backend.sh`` call it, so one
pair of step scripts serves every target. Options and exit statuses are those of the target's own
command line.
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

from pytest_predeploy.core.errors import run_reporting_errors
from pytest_predeploy.targets.cli import ENV_CONFIG
from pytest_predeploy.targets.settings import load_target_config

PROG = "python -m pytest_predeploy.targets"


def config_path(argv: list[str]) -> Path:
    """The ``--config`` the target's command line will use (last one wins, as argparse does)."""
    path = Path(os.environ.get(ENV_CONFIG, "predeploy.yaml"))
    for index, arg in enumerate(argv):
        if arg == "--config" and index + 1 < len(argv):
            path = Path(argv[index + 1])
        elif arg.startswith("--config="):
            path = Path(arg.partition("=")[2])
    return path


def target_kind(argv: list[str]) -> str:
    """``staging.target`` of the config; ``local`` when there is no file to read (the target's
    command line then says which file is missing, with its usage)."""
    path = config_path(argv)
    if not path.is_file():
        return "local"
    status: list[str] = []

    def read() -> int:
        status.append(load_target_config(path).staging.target)
        return 0

    code = run_reporting_errors(read, PROG)
    if code:
        raise SystemExit(code)
    return status[0]


if __name__ == "__main__":
    runpy.run_module(f"pytest_predeploy.targets.{target_kind(sys.argv[1:])}", run_name="__main__", alter_sys=True)
