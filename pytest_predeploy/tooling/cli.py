"""The ``predeploy`` command: one subcommand per task, listed in :data:`SUBCOMMANDS`.

Exit statuses: 0 done / intact; 1 the package fails verification (or is refused for sign-off);
2 usage error (bad arguments, missing file, malformed config or artifact).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pytest_predeploy.config import DEFAULT_CONFIG, ENV_CONFIG, load_config
from pytest_predeploy.core.artifacts import READINESS_APPROVAL
from pytest_predeploy.core.errors import PredeployError, run_reporting_errors
from pytest_predeploy.core.fields import format_duration, parse_positive_duration
from pytest_predeploy.core.runstate import load_state
from pytest_predeploy.readiness.package import VerifyResult, verify_package
from pytest_predeploy.readiness.signing import SEALED_SIGNERS, Signer, Signers, load_signers, load_signing_key
from pytest_predeploy.readiness.signoff import ReadinessConfig, evaluate_signoffs, is_operator, record_signoff
from pytest_predeploy.tooling.doctor import doctor_checks, render

EXIT_OK = 0
EXIT_FAILED = 1


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _validity(text: str) -> object:
    # Positive: a sign-off valid for 0s would be recorded already expired.
    try:
        return parse_positive_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"predeploy.yaml whose readiness section applies (default: ${ENV_CONFIG}, else ./{DEFAULT_CONFIG} when present)",
    )


def _readiness(args: argparse.Namespace) -> ReadinessConfig | None:
    path = args.config or (Path(os.environ[ENV_CONFIG]) if os.environ.get(ENV_CONFIG) else None)
    if path is None and Path(DEFAULT_CONFIG).is_file():
        path = Path(DEFAULT_CONFIG)
    return load_config(path).readiness if path is not None else None


def _approvals(args: argparse.Namespace) -> Path:
    approvals: Path = args.approvals or args.package.parent / READINESS_APPROVAL
    return approvals


def _signers(args: argparse.Namespace, config: ReadinessConfig | None) -> Signers | None:
    """--signers, else the config's readiness.signers when it exists; None when there is none."""
    if args.signers is not None:
        return load_signers(args.signers)
    if config is not None and config.signers.is_file():
        return load_signers(config.signers)
    return None


def _add_signers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--signers", type=Path, default=None, help="the signers file to check signatures against (default: readiness.signers of the config)")


def _print_problems(result: VerifyResult) -> None:
    for problem in result.problems:
        print(f"  - {problem}")


def _print_readiness(args: argparse.Namespace, result: VerifyResult, config: ReadinessConfig | None, signers: Signers | None) -> None:
    if config is None or result.manifest is None:
        return
    if signers is None and config.required_roles and not config.allow_unsigned:
        print(f"readiness: not checked: no signers file ({config.signers}); give --signers, or create it (`predeploy init` writes a template)")
        return
    state = load_state(args.package.parent)
    status = evaluate_signoffs(result.sha256, _approvals(args), config, state.run_by if state else None, release=result.manifest.release, signers=signers)
    print(f"readiness: {status.summary()}")
    for problem in status.problems:
        print(f"  note: {problem}")


# --- verify -------------------------------------------------------------------------------------


def _configure_verify(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("package", type=Path, help="the PRE-DEPLOYMENT-PACKAGE.zip to check")
    parser.add_argument(
        "--approvals", type=Path, default=None, help=f"sign-offs to check against the package digest (default: {READINESS_APPROVAL} beside the package)"
    )
    _add_signers(parser)
    _add_config(parser)


def _sealed_signers(package: Path) -> Signers | None:
    """The signers file sealed in ``package``, when it is there and every entry of the package
    matches its manifest (a copy from a package that fails verification is never trusted)."""
    if not verify_package(package).ok:
        return None
    with zipfile.ZipFile(package) as archive:
        if SEALED_SIGNERS not in archive.namelist():
            return None
        data = archive.read(SEALED_SIGNERS)
    with tempfile.TemporaryDirectory(prefix="predeploy-verify-") as scratch:
        copy = Path(scratch) / SEALED_SIGNERS
        copy.write_bytes(data)
        return load_signers(copy)


def _run_verify(args: argparse.Namespace) -> int:
    config = _readiness(args)
    signers = _signers(args, config)
    sealed = _sealed_signers(args.package) if signers is None else None
    if sealed is not None:
        signers = sealed
    result = verify_package(args.package, _approvals(args), signers=signers)
    print(f"{args.package}: sha256 {result.sha256}")
    if sealed is not None:
        print(
            f"signers: the copy of the signers file sealed in the package ({SEALED_SIGNERS}, as it stood at sealing); give --signers or --config to check against the repository's current list"
        )
    if result.manifest is not None:
        print(f"release {result.manifest.release}: {len(result.manifest.entries)} entries listed in the manifest")
    if result.signoffs and signers is None:
        print("  (no signers file: give --signers or a config whose readiness.signers exists; no signature can be checked)")
    for view in result.signoffs:
        print(f"  sign-off [{view.verdict}] {view.describe()}: {view.describe_signature()}")
    if not result.ok:
        print(f"FAILED: {len(result.problems)} problem(s):")
        _print_problems(result)
        return EXIT_FAILED
    print("OK: every entry matches the manifest")
    _print_readiness(args, result, config, signers)
    return EXIT_OK


# --- approve ------------------------------------------------------------------------------------


def _configure_approve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("package", type=Path, help="the PRE-DEPLOYMENT-PACKAGE.zip being signed off")
    parser.add_argument("--role", required=True, help="the role you sign as (one of readiness.required_roles)")
    parser.add_argument(
        "--key",
        type=Path,
        default=None,
        help="your OpenSSH ed25519 private key (ssh-keygen -t ed25519); its public key must be listed for you and the role in the signers file. "
        "A passphrase is read from $PREDEPLOY_KEY_PASSPHRASE",
    )
    parser.add_argument(
        "--by",
        default=None,
        help="your identity as the signers file names it (default: the owner of --key; without --key, free text that counts only with readiness.allow_unsigned)",
    )
    parser.add_argument("--decision", required=True, choices=["go", "no-go"], help="go or no-go")
    parser.add_argument("--conditions", default=None, help="conditions attached to the decision")
    parser.add_argument(
        "--expires", type=_validity, default=None, help="how long the sign-off stays valid, e.g. 72h or 7d (default: readiness.signoff_validity)"
    )
    parser.add_argument("--approvals", type=Path, default=None, help=f"the sign-off file (default: {READINESS_APPROVAL} beside the package)")
    _add_signers(parser)
    _add_config(parser)


def _run_approve(args: argparse.Namespace) -> int:
    result = verify_package(args.package, _approvals(args))
    if not result.ok or result.manifest is None:
        print(f"{args.package}: refusing to record a sign-off: the package fails verification:")
        _print_problems(result)
        return EXIT_FAILED
    config = _readiness(args) or ReadinessConfig()
    if args.role not in config.required_roles:
        print(
            f"note: role {args.role!r} is not one of readiness.required_roles ({', '.join(config.required_roles)}); it is recorded but not required",
            file=sys.stderr,
        )
    signers = _signers(args, config)
    key = None
    if args.key is not None:
        passphrase = os.environ.get("PREDEPLOY_KEY_PASSPHRASE") or None
        key = load_signing_key(args.key, passphrase.encode("utf-8") if passphrase else None)
        owner = _key_owner(args, config, signers, key.public)
        if isinstance(owner, str):
            print(f"{args.package}: refusing to record a sign-off: {owner}")
            return EXIT_FAILED
        approver = owner.identity
    elif not config.allow_unsigned:
        print(
            f"{args.package}: refusing to record an unsigned sign-off: it would not count. Sign with your key: "
            "--key ~/.ssh/id_ed25519 (create one with `ssh-keygen -t ed25519`; its .pub line goes into the signers file under your identity and role)"
        )
        return EXIT_FAILED
    elif not args.by:
        print(f"{args.package}: an unsigned sign-off needs --by NAME")
        return EXIT_FAILED
    else:
        approver = args.by
    expires: timedelta | None = args.expires if args.expires is not None else config.signoff_validity
    statement = record_signoff(
        _approvals(args),
        package_sha256=result.sha256,
        release=result.manifest.release,
        role=args.role,
        approver=approver,
        decision=args.decision,
        conditions=args.conditions,
        expires_in=expires,
        key=key,
    )
    until = (
        f", valid for {format_duration(expires)} (until {statement.predicate.expires_at.isoformat()})"
        if expires is not None and statement.predicate.expires_at
        else ""
    )
    how = f"signed with {key.keyid}" if key is not None else "UNSIGNED (readiness.allow_unsigned)"
    print(f"recorded: {args.role} {args.decision} by {approver} for release {result.manifest.release}, package sha256 {result.sha256}{until}, {how}")
    print(f"sign-offs: {_approvals(args)}")
    _print_readiness(args, result, config, signers)
    return EXIT_OK


def _key_owner(args: argparse.Namespace, config: ReadinessConfig, signers: Signers | None, public: Ed25519PublicKey) -> Signer | str:
    """The signer who owns the key, when their sign-off would count; else why not (so that a
    sign-off that would be ignored is not recorded)."""
    if signers is None:
        return f"no signers file ({config.signers} does not exist; give --signers or create it: `predeploy init` writes a template)"
    owner = signers.owner_of(public)
    if owner is None:
        return f"the key {args.key} is not listed in {signers.path}; add its .pub line under your identity (and have that change reviewed like any other)"
    if args.by and args.by.strip().casefold() != owner.identity.casefold():
        return f"--by {args.by!r} is not the owner of the key {args.key} ({owner.identity} in {signers.path})"
    if args.role not in owner.roles:
        return f"{owner.identity} may not sign for {args.role!r} (allowed: {', '.join(owner.roles)}; see {signers.path})"
    state = load_state(args.package.parent)
    if config.forbid_self_approval and state is not None and is_operator(owner.identity, state.run_by, signers):
        return f"{owner.identity} ran the rehearsal ({state.run_by}) and cannot sign it off (readiness.forbid_self_approval)"
    return owner


# --- schema, docs ---------------------------------------------------------------------------------


def _configure_schema(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", type=Path, default=Path("docs/schemas"), help="folder to write <artifact>.schema.json into (default: docs/schemas)")


def _run_schema(args: argparse.Namespace) -> int:
    from pytest_predeploy.tooling.docs import write_schemas

    written, removed = write_schemas(args.output)
    for path in written:
        print(f"wrote {path}")
    for path in removed:
        print(f"removed {path} (no such artifact any more)")
    return EXIT_OK


def _configure_docs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output", type=Path, default=Path("docs/config-reference.md"), help="file to write the configuration reference to (default: docs/config-reference.md)"
    )


def _run_docs(args: argparse.Namespace) -> int:
    from pytest_predeploy.core.artifacts import write_text_atomic
    from pytest_predeploy.tooling.docs import config_reference

    write_text_atomic(args.output, config_reference())
    print(f"wrote {args.output}")
    return EXIT_OK


# --- init ---------------------------------------------------------------------------------------


def _configure_init(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, default=Path("."), help="the repository to set up (default: the current folder)")
    parser.add_argument(
        "--service",
        action="append",
        default=[],
        metavar="NAME[=PATH]",
        help="a service to deploy, with the folder of its source relative to --dir (repeatable; default: app, source ./app when that folder exists)",
    )


def _run_init(args: argparse.Namespace) -> int:
    from pytest_predeploy.tooling.scaffold import init_project, next_steps

    result = init_project(args.dir, args.service)
    print(f"predeploy init: {result.project}: wrote {len(result.written)} file(s), skipped {len(result.skipped)} existing file(s)")
    for relative in result.written:
        print(f"  wrote   {relative}")
    for relative in result.skipped:
        print(f"  skipped {relative} (exists; never overwritten)")
    for relative, lines in result.appended.items():
        print(f"  added   {', '.join(lines)} to {relative} (it existed: its own lines are kept as they were)")
    print("Next steps:")
    for number, step in enumerate(next_steps(result), 1):
        print(f"  {number}. {step}")
    return EXIT_OK


# --- advisories ---------------------------------------------------------------------------------


def _configure_advisories(parser: argparse.ArgumentParser) -> None:
    from pytest_predeploy.security.advisories import DEFAULT_URL

    parser.add_argument("action", choices=["update"], help="update: download the OSV PyPI export and replace the local copy atomically")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"where to download the OSV zip from (default: {DEFAULT_URL}; file:// works for a local mirror)")
    parser.add_argument("--to", type=Path, default=None, help="the zip to write (default: security.osv.database of the config)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds the download may stall before it is abandoned (default: 60)")
    _add_config(parser)


def _advisories_target(args: argparse.Namespace) -> Path:
    if args.to is not None:
        return Path(args.to)
    path = args.config or (Path(os.environ[ENV_CONFIG]) if os.environ.get(ENV_CONFIG) else None)
    if path is None and Path(DEFAULT_CONFIG).is_file():
        path = Path(DEFAULT_CONFIG)
    if path is None:
        raise PredeployError("no --to given and no predeploy.yaml here: pass --to PATH.zip")
    database = load_config(path).security.osv.database
    if not isinstance(database, Path):
        why = "is the bundled snapshot, which is never overwritten" if database else "is not set"
        raise PredeployError(f"{path}: security.osv.database {why}; pass --to PATH.zip, or set security.osv.database to that path")
    return database


def _run_advisories(args: argparse.Namespace) -> int:
    from pytest_predeploy.security.advisories import UpdateFailed, update_database

    target = _advisories_target(args)
    try:
        result = update_database(target, args.url, args.timeout)
    except UpdateFailed as exc:
        kept = "the current copy is unchanged" if target.exists() else "nothing was written"
        print(f"predeploy advisories: error: {exc}; {kept}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"predeploy advisories: {result.path}: {result.advisories} advisories, {result.size} bytes, sha256 {result.sha256[:16]}, fetched {result.fetched_at.isoformat()}"
    )
    return EXIT_OK


# --- doctor -------------------------------------------------------------------------------------


def _configure_doctor(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--release", default=None, help="check the upstream approvals are for this release (default: each for the release it names)")
    _add_config(parser)


def _run_doctor(args: argparse.Namespace) -> int:
    path = args.config or (Path(os.environ[ENV_CONFIG]) if os.environ.get(ENV_CONFIG) else Path(DEFAULT_CONFIG))
    lines, status = render(doctor_checks(load_config(path), args.release))
    for line in lines:
        print(line)
    return EXIT_OK if status == 0 else EXIT_FAILED


#: The subcommands, in help order. Add one by appending a Subcommand.
SUBCOMMANDS: list[Subcommand] = [
    Subcommand("verify", "re-hash a package against its manifest and check its sign-offs", _configure_verify, _run_verify),
    Subcommand("approve", "record a go/no-go sign-off bound to the package's sha256", _configure_approve, _run_approve),
    Subcommand("init", "set up another repository: predeploy.yaml, gate modules, scripts and templates (never overwrites)", _configure_init, _run_init),
    Subcommand(
        "doctor", "check a configuration without deploying: scripts, services start and answer health, approvals, advisory data", _configure_doctor, _run_doctor
    ),
    Subcommand("advisories", "update the offline OSV advisory database (download, check, replace atomically)", _configure_advisories, _run_advisories),
    Subcommand("schema", "write the JSON Schema of every artifact", _configure_schema, _run_schema),
    Subcommand("docs", "write the configuration reference generated from the models", _configure_docs, _run_docs),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="predeploy", description="pytest-predeploy: set up a repository, seal and sign off the go/no-go package, write the generated docs."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in SUBCOMMANDS:
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        command.configure(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_reporting_errors(lambda: args.run(args), f"predeploy {args.command}")
