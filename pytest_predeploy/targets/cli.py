"""The command line every staging target offers (``deploy``, ``rollback``, ``status``, ``stop``), so
the step scripts and ``python -m pytest_predeploy.targets`` call each target the same way."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

# The variables scriptkit defines (ENV_CONFIG, ENV_ENVIRONMENT), spelled out: importing scriptkit
# loads the whole config model, which the targets' command lines avoid so that they start fast.
ENV_CONFIG = "PREDEPLOY_CONFIG"
ENV_ENVIRONMENT = "PREDEPLOY_ENV"


def command_parser(prog: str, description: str, *, deploy: str, stop: str) -> argparse.ArgumentParser:
    """``deploy|rollback --release TAG``, ``status``, ``stop``, each with ``--env``, ``--service``
    (repeatable) and ``--config``; ``deploy`` and ``stop`` say what they do on this target."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("deploy", deploy), ("rollback", "return to an earlier release"), ("status", "show what runs"), ("stop", stop)):
        command = commands.add_parser(name, help=text)
        command.add_argument("--env", default=os.environ.get(ENV_ENVIRONMENT, "staging"), help=f"environment (default: ${ENV_ENVIRONMENT} or staging)")
        if name in ("deploy", "rollback"):
            command.add_argument("--release", required=True, help="release tag")
        command.add_argument("--service", action="append", help="service name (repeatable; default: every service)")
        command.add_argument(
            "--config",
            type=Path,
            default=Path(os.environ.get(ENV_CONFIG, "predeploy.yaml")),
            help=f"predeploy.yaml to use (default: ${ENV_CONFIG} or ./predeploy.yaml)",
        )
    return parser
