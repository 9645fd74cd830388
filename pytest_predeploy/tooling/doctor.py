"""``predeploy doctor``: check a configuration without deploying anything.

Each check is a function returning one :class:`Check` row (what was checked, whether it holds,
what was found, and the fix when it does not), so the command prints one line per check and a
user fixes problems in one pass instead of one protocol run per problem. Checks never raise for a
problem a user can cause: a :class:`~pytest_predeploy.core.errors.PredeployError` becomes a failed
row naming the file and field, as the protocol run would.

Starting a service here is a trial deploy through the local staging target's own code (one code
path: its release source, a ``dist`` release's virtualenv, the environment services get) into a
scratch folder, on a free port of 127.0.0.1, stopped as soon as it answers its health path or
misses the deadline. Nothing is deployed to a real environment; only the service's log is kept,
in ``<staging.root>/doctor/<service>.log``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from pytest_predeploy.config import ProjectConfig
from pytest_predeploy.core.errors import PredeployError
from pytest_predeploy.core.fields import format_duration, utcnow
from pytest_predeploy.core.httpget import NoAnswer, http_get
from pytest_predeploy.intake.approvals import check_approval
from pytest_predeploy.readiness.signing import load_signers
from pytest_predeploy.security.osv import DatabaseUnavailable, read_source_record
from pytest_predeploy.targets.base import EXIT_USAGE, TargetError, quiet
from pytest_predeploy.targets.local.target import ServiceTarget
from pytest_predeploy.targets.settings import TargetSettings

#: Words that run the next word as a script: its file must exist, it need not be executable.
INTERPRETERS = frozenset({"{python}", "python", "python3", "bash", "sh", "zsh", "node", "ruby", "perl"})
#: How much of an approval record is read to find the release it names (it is at the top).
MAX_RECORD_PEEK = 64 * 1024


@dataclass(frozen=True)
class Check:
    """One row of the doctor's report."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        if self.ok:
            return f"ok    {self.name}: {self.detail}"
        return f"FAIL  {self.name}: {self.detail}" + (f" -> fix: {self.fix}" if self.fix else "")


def guarded(name: str, fix: str, check: Callable[[], Check]) -> Check:
    """Run ``check``; a user-caused error (file unreadable, field invalid) is a failed row."""
    try:
        return check()
    except PredeployError as exc:
        return Check(name, False, str(exc).splitlines()[0], fix)


def from_problems(name: str, problems: Sequence[str], passed: str, fix: str) -> Check:
    """A row from a list of problems (the same ``*_problems`` sentences the gates print)."""
    if not problems:
        return Check(name, True, passed)
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return Check(name, False, problems[0] + more, fix)


# --- scripts -------------------------------------------------------------------------------


def check_command(name: str, command: str, base_dir: Path, setting: str) -> Check:
    """The program a step's command runs exists, and is executable when it is run directly.

    ``setting`` names the configuration field (``steps.deploy.command``) for the fix."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        return Check(name, False, f"{setting} cannot be split like a shell line ({exc})", f"fix the quoting in {setting}")
    if not words:
        return Check(name, False, f"{setting} is empty", f"set {setting} to the step's command")
    program, script = words[0], None
    if os.path.basename(program) in INTERPRETERS or program in INTERPRETERS:
        script = next((w for w in words[1:] if not w.startswith("-")), None)
        if program != "{python}" and shutil.which(program) is None and not Path(program).is_file():
            return Check(name, False, f"interpreter {program!r} is not installed (not on PATH)", f"install {program} or change {setting}")
        if script is None or "{" in script or words[1:2] == ["-c"] or words[1:2] == ["-m"]:
            return Check(name, True, f"runs {program} {' '.join(words[1:3])}".rstrip())
        path = base_dir / script
        if not path.is_file():
            return Check(name, False, f"{path} does not exist", f"create it or correct the path in {setting} (relative to {base_dir})")
        if not os.access(path, os.R_OK):
            return Check(name, False, f"{path} is not readable", f"chmod a+r {path}")
        return Check(name, True, f"{script} exists")
    if "/" in program:
        path = base_dir / program
        if not path.is_file():
            return Check(name, False, f"{path} does not exist", f"create it or correct the path in {setting} (relative to {base_dir})")
        if not os.access(path, os.X_OK):
            return Check(name, False, f"{path} is not executable", f"chmod +x {path}, or run it through its interpreter in {setting} (e.g. 'bash {program}')")
        return Check(name, True, f"{program} exists and is executable")
    if shutil.which(program) is None:
        return Check(name, False, f"program {program!r} is not on PATH", f"install it or change {setting}")
    return Check(name, True, f"{program} is on PATH")


# --- services ------------------------------------------------------------------------------


def _health_status(url: str) -> int | None:
    try:
        return http_get(url, 1.0, max_bytes=4096).status
    except NoAnswer:
        return None


def check_service_starts(config: TargetSettings, name: str, release: str, log: Path, setting: str = "services", working_tree: bool = False) -> Check:
    """Deploy ``release`` of service ``name`` to a scratch environment of the local staging target,
    through the target's own build and start (its release source, a ``dist`` release's own
    virtualenv, the environment it gives services), on a free port; wait for its health check,
    then stop it and remove the scratch folder. ``working_tree``: the service's source folder as
    it is now, changed or not (a trial before anything is tagged). The service's output is kept
    in ``log``, which a failed row names (it is not echoed: a service may print configuration
    values)."""
    check = f"service {name} starts"
    service = config.service(name)
    placeholders = " ".join([service.command, *service.env.values()])
    # A free port, unless the command cannot be told one (the service binds a port of its own).
    port = 0 if "{port" in placeholders else service.port
    trial = service.model_copy(update={"port": port, "strategy": "restart", "inject": {}})
    releases = config.staging.releases
    if working_tree:
        releases = releases.model_copy(update={"kind": "working_tree", "allow_dirty": True})
    staging = config.staging.model_copy(update={"releases": releases})
    with tempfile.TemporaryDirectory(prefix="predeploy-doctor-") as scratch:
        target = ServiceTarget(staging, Path(scratch), "doctor", trial, say=quiet, base_dir=config.base_dir)
        started = time.monotonic()
        try:
            target.deploy(release)
            result = Check(check, True, f"release {release} answered GET {service.health_path} with 200 after {time.monotonic() - started:.1f}s")
        except TargetError as exc:
            detail = str(exc).splitlines()[0].removeprefix(f"{name}: ").rstrip(";")
            fix = (
                f"correct {setting} or staging.releases"
                if exc.exit_status == EXIT_USAGE
                else f"check {setting}.command and {setting}.health_path, and read {log}"
            )
            result = Check(check, False, f"{detail} (output in {log})", fix)
        finally:
            left = _stop_trial(target)
            _keep_log(target.dir / "logs" / "main.log", log)
        # What the trial left running is a failure of its own, said as it is (never "stopped").
        return Check(check, False, left, f"stop what it names; {setting}.command must not leave processes that outlive it") if left else result


def _stop_trial(target: ServiceTarget) -> str | None:
    """Stop the trial's processes; what is still running afterwards, or None."""
    try:
        target.stop_all()
    except TargetError as exc:
        return str(exc)
    return None


def _keep_log(source: Path, log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copyfile(source, log)
    except OSError:
        log.write_text("")


# --- data ----------------------------------------------------------------------------------


def check_fresh(name: str, as_of: datetime | None, max_age: timedelta | None, now: datetime, fix: str) -> Check:
    """Data recorded at ``as_of`` is no older than ``max_age`` (None: any age is accepted)."""
    if as_of is None:
        return Check(name, False, "its date cannot be read (no download record and no dates in the data)", fix)
    age = now - as_of
    if max_age is not None and age > max_age:
        return Check(name, False, f"{_age(age)} old, older than max_age {format_duration(max_age)}", fix)
    limit = f" (max_age {format_duration(max_age)})" if max_age is not None else " (no max_age)"
    return Check(name, True, f"as of {as_of:%Y-%m-%d %H:%M} UTC{limit}")


def _age(age: timedelta) -> str:
    """An age as people say it (3.2 days, 5 hours), not in exact seconds."""
    hours = age.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"


def render(checks: Iterable[Check]) -> tuple[list[str], int]:
    """The lines to print (one per check and a count) and the exit status: 0 all pass, 1 not."""
    rows = list(checks)
    failed = sum(not row.ok for row in rows)
    lines = [row.line() for row in rows]
    lines.append(f"doctor: {len(rows) - failed}/{len(rows)} checks passed" + (f"; fix the {failed} above and run it again" if failed else ""))
    return lines, 1 if failed else 0


# --- a whole configuration ------------------------------------------------------------------


def _step_checks(config: ProjectConfig) -> list[Check]:
    rows = []
    for name in type(config.steps).model_fields:
        step = getattr(config.steps, name)
        rows.append(check_command(f"step {name}", step.command, config.path.parent / step.cwd, f"steps.{name}.command"))
    return rows


def _service_checks(config: ProjectConfig, release: str | None) -> list[Check]:
    rows = []
    for index, service in enumerate(config.services):
        setting = f"services[{index}]"
        log = config.staging.root / "doctor" / f"{service.name}.log"
        if service.url:
            url = service.url.rstrip("/") + service.health_path
            status = _health_status(url)
            rows.append(
                Check(f"service {service.name} answers", True, f"GET {url} -> 200")
                if status == 200
                else Check(
                    f"service {service.name} answers",
                    False,
                    f"GET {url} -> {f'HTTP {status}' if status else 'no answer'}",
                    f"check {setting}.url and {setting}.health_path",
                )
            )
        elif config.staging.releases.kind in ("folder", "dist"):
            tag = release or config.previous_release
            if tag is None:
                rows.append(
                    Check(f"service {service.name} starts", False, "no release to start", "run predeploy doctor --release TAG, or set previous_release")
                )
            else:
                rows.append(check_service_starts(config, service.name, tag, log, setting))
        elif service.source is None:
            rows.append(
                Check(
                    f"service {service.name} starts",
                    False,
                    f"{setting} has neither source (for the local staging target) nor url",
                    f"set {setting}.source to its folder, or {setting}.url where your deploy puts it",
                )
            )
        else:
            rows.append(check_service_starts(config, service.name, release or "doctor", log, setting, working_tree=True))
    return rows


def _approval_checks(config: ProjectConfig, release: str | None, now: datetime) -> list[Check]:
    rows = []
    for item in config.approvals.upstream:
        # Without a release every record is judged as if for the release it names itself.
        result = check_approval(item, release or "", config.approvals.max_age, now)
        if result.status == "wrong-release" and release is None:
            result = check_approval(item, _named_release(item.file) or "", config.approvals.max_age, now)
        ok = result.status == "ok"
        fix = {
            "missing": f"write the record at {item.file} (see the *.example.yaml beside it)",
            "expired": f"ask for a renewed {item.title or item.name} record",
            "wrong-release": f"record the approval for release {release}",
        }.get(result.status, f"correct {item.file}")
        rows.append(Check(f"approval {item.name}", ok, result.detail if ok else f"{result.status}: {result.detail}", "" if ok else fix))
    return rows


def _named_release(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")[:MAX_RECORD_PEEK]
    except OSError:
        return None
    match = re.search(r"""^\s*"?release"?\s*:\s*"?([^"\s,#]+)""", text, re.MULTILINE)
    return match.group(1) if match else None


def _advisory_check(config: ProjectConfig, now: datetime) -> Check | None:
    osv = config.security.osv
    if not osv.enabled or osv.database is None:
        return None
    if osv.database == "bundled":
        return Check("advisory data", True, "the bundled fixed snapshot (age not checked; not for real releases)")
    database = Path(osv.database)
    if not database.exists():
        return Check("advisory data", False, f"{database} does not exist", "run `predeploy advisories update` (and in CI before every protocol run)")
    try:
        record = read_source_record(database)
    except DatabaseUnavailable as exc:
        return Check("advisory data", False, str(exc), "run `predeploy advisories update`")
    fetched = record.get("fetched_at")
    try:
        as_of = datetime.fromisoformat(str(fetched).replace("Z", "+00:00")) if fetched else None
    except ValueError:
        as_of = None
    max_age = None if osv.max_age == "none" else osv.max_age
    return check_fresh("advisory data", as_of, max_age, now, "run `predeploy advisories update`")


def _signers_check(config: ProjectConfig) -> Check:
    """The signers file loads (identities, keys, roles), and each required role has someone to
    sign it: without separation of duties relaxed, as many different people as there are roles."""
    readiness = config.readiness
    path = readiness.signers

    def loaded() -> Check:
        signers = load_signers(path)
        unsigned = [role for role in readiness.required_roles if not any(role in s.roles for s in signers.entries)]
        if unsigned:
            return Check("signers file", False, f"{path}: nobody may sign {', '.join(unsigned)}", f"add a signer with that role to {path}")
        able = {s.identity for s in signers.entries if set(s.roles) & set(readiness.required_roles)}
        if len(able) < len(readiness.required_roles) and not readiness.allow_one_signer_many_roles:
            return Check(
                "signers file",
                False,
                f"{path}: {len(readiness.required_roles)} required roles but only {len(able)} people may sign them (one person counts for one role)",
                f"add another signer to {path}",
            )
        return Check("signers file", True, f"{path}: {len(signers.entries)} signer(s); every required role has someone to sign it")

    return guarded("signers file", f"correct {path} (each entry: identity, roles, keys as 'ssh-ed25519 AAAA...' lines)", loaded)


def doctor_checks(config: ProjectConfig, release: str | None = None, now: datetime | None = None) -> list[Check]:
    """Every check of ``config``, in the order a user fixes them."""
    now = now or utcnow()
    rows = _step_checks(config) + _service_checks(config, release) + _approval_checks(config, release, now)
    rows += [row for row in (_advisory_check(config, now),) if row is not None] + [_signers_check(config)]
    return rows
