"""The ``predeploy`` command: one subcommand per task, listed in :data:`SUBCOMMANDS`.

Exit statuses: 0 done / intact; 1 the package fails verification (or is refused for sign-off);
2 usage error (bad arguments, missing file, malformed config or artifact).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_predeploy.artifacts import READINESS_APPROVAL
from pytest_predeploy.config import DEFAULT_CONFIG, load_config
from pytest_predeploy.errors import PredeployError
from pytest_predeploy.fields import format_duration, parse_duration
from pytest_predeploy.package import VerifyResult, verify_package
from pytest_predeploy.readiness import ReadinessConfig, evaluate_signoffs, record_signoff
from pytest_predeploy.runstate import load_state
from pytest_predeploy.scriptkit import ENV_CONFIG, EXIT_USAGE

EXIT_OK = 0
EXIT_FAILED = 1


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _duration(text: str) -> object:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, default=None,
        help=f"predeploy.yaml whose readiness section applies (default: ${ENV_CONFIG}, else ./{DEFAULT_CONFIG} when present)",
    )


def _readiness(args: argparse.Namespace) -> ReadinessConfig | None:
    path = args.config or (Path(os.environ[ENV_CONFIG]) if os.environ.get(ENV_CONFIG) else None)
    if path is None and Path(DEFAULT_CONFIG).is_file():
        path = Path(DEFAULT_CONFIG)
    return load_config(path).readiness if path is not None else None


def _approvals(args: argparse.Namespace) -> Path:
    return args.approvals or args.package.parent / READINESS_APPROVAL


def _print_problems(result: VerifyResult) -> None:
    for problem in result.problems:
        print(f"  - {problem}")


def _print_readiness(args: argparse.Namespace, result: VerifyResult) -> None:
    config = _readiness(args)
    if config is None or result.manifest is None:
        return
    state = load_state(args.package.parent)
    status = evaluate_signoffs(result.sha256, _approvals(args), config, state.run_by if state else None, release=result.manifest.release)
    print(f"readiness: {status.summary()}")
    for problem in status.problems:
        print(f"  note: {problem}")


# --- verify -------------------------------------------------------------------------------------


def _configure_verify(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("package", type=Path, help="the PRE-DEPLOYMENT-PACKAGE.zip to check")
    parser.add_argument("--approvals", type=Path, default=None, help=f"sign-offs to check against the package digest (default: {READINESS_APPROVAL} beside the package)")
    _add_config(parser)


def _run_verify(args: argparse.Namespace) -> int:
    result = verify_package(args.package, _approvals(args))
    print(f"{args.package}: sha256 {result.sha256}")
    if result.manifest is not None:
        print(f"release {result.manifest.release}: {len(result.manifest.entries)} entries listed in the manifest")
    for view in result.signoffs:
        print(f"  sign-off [{view.verdict}] {view.describe()}")
    if not result.ok:
        print(f"FAILED: {len(result.problems)} problem(s):")
        _print_problems(result)
        return EXIT_FAILED
    print("OK: every entry matches the manifest")
    _print_readiness(args, result)
    return EXIT_OK


# --- approve ------------------------------------------------------------------------------------


def _configure_approve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("package", type=Path, help="the PRE-DEPLOYMENT-PACKAGE.zip being signed off")
    parser.add_argument("--role", required=True, help="the role you sign as (one of readiness.required_roles)")
    parser.add_argument("--by", required=True, help="your name")
    parser.add_argument("--decision", required=True, choices=["go", "no-go"], help="go or no-go")
    parser.add_argument("--conditions", default=None, help="conditions attached to the decision")
    parser.add_argument("--expires", type=_duration, default=None, help="how long the sign-off stays valid, e.g. 72h or 7d (default: readiness.signoff_validity)")
    parser.add_argument("--approvals", type=Path, default=None, help=f"the sign-off file (default: {READINESS_APPROVAL} beside the package)")
    _add_config(parser)


def _run_approve(args: argparse.Namespace) -> int:
    result = verify_package(args.package, _approvals(args))
    if not result.ok or result.manifest is None:
        print(f"{args.package}: refusing to record a sign-off: the package fails verification:")
        _print_problems(result)
        return EXIT_FAILED
    config = _readiness(args) or ReadinessConfig()
    if args.role not in config.required_roles:
        print(f"note: role {args.role!r} is not one of readiness.required_roles ({', '.join(config.required_roles)}); it is recorded but not required", file=sys.stderr)
    expires = args.expires if args.expires is not None else config.signoff_validity
    statement = record_signoff(
        _approvals(args), package_sha256=result.sha256, release=result.manifest.release, role=args.role,
        approver=args.by, decision=args.decision, conditions=args.conditions, expires_in=expires,
    )
    until = f", valid for {format_duration(expires)} (until {statement.predicate.expires_at.isoformat()})" if statement.predicate.expires_at else ""
    print(f"recorded: {args.role} {args.decision} by {args.by} for release {result.manifest.release}, package sha256 {result.sha256}{until}")
    print(f"sign-offs: {_approvals(args)}")
    _print_readiness(args, result)
    return EXIT_OK


#: The subcommands, in help order. Add one by appending a Subcommand.
SUBCOMMANDS: list[Subcommand] = [
    Subcommand("verify", "re-hash a package against its manifest and check its sign-offs", _configure_verify, _run_verify),
    Subcommand("approve", "record a go/no-go sign-off bound to the package's sha256", _configure_approve, _run_approve),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="predeploy", description="pytest-predeploy: the go/no-go package and its sign-offs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in SUBCOMMANDS:
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        command.configure(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except PredeployError as exc:
        print(f"predeploy {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"predeploy {args.command}: interrupted", file=sys.stderr)
        return 130
