"""The command line every staging target offers (``deploy``, ``rollback``, ``status``, ``stop``) and
its one driver, so the step scripts and ``python -m pytest_predeploy.targets`` call each target the
same way and get the same exit statuses (:mod:`pytest_predeploy.targets.base`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from pytest_predeploy.targets.base import EXIT_FAILED, EXIT_OK, TargetError

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


class ServiceCommands(Protocol):
    """One service on one target, as the command line drives it."""

    def deploy(self, tag: str) -> None: ...

    def rollback(self, tag: str) -> None: ...

    def stop_all(self) -> list[str]: ...


S = TypeVar("S", bound=ServiceCommands)


def drive(
    command: str,
    release: str | None,
    services: Sequence[tuple[str, S]],
    status: Callable[[S], None],
    stop_everything: Callable[[], list[str]] | None = None,
    failures: tuple[type[Exception], ...] = (),
) -> int:
    """Run ``command`` over ``services`` (name, service) in order and return the exit status: the
    first non-zero one, after trying every service. ``stop_everything`` (``stop`` without
    ``--service``) also stops what the config no longer names; ``failures`` are the target's own
    errors that mean the service failed (exit 1)."""
    if command == "stop" and stop_everything is not None:
        try:
            lines = stop_everything()
        except TargetError as exc:
            print(f"[staging] error: {exc}", file=sys.stderr, flush=True)
            return exc.exit_status
        for line in lines:
            print(f"[staging] stopped {line}", flush=True)
        return EXIT_OK
    code = EXIT_OK
    for name, service in services:
        try:
            if command in ("deploy", "rollback"):
                assert release is not None  # argparse requires --release for both
                (service.deploy if command == "deploy" else service.rollback)(release)
            elif command == "status":
                status(service)
            else:
                for line in service.stop_all():
                    print(f"[staging] stopped {line}", flush=True)
        except TargetError as exc:
            print(f"[staging] error: {exc}", file=sys.stderr, flush=True)
            code = code or exc.exit_status
        except failures as exc:
            print(f"[staging] error: {name}: {exc}", file=sys.stderr, flush=True)
            code = code or EXIT_FAILED
    return code
