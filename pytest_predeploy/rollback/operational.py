"""Operational readiness (Protocol 10, step 3.3, GUIDELINE): runbooks current for the release,
on-call coverage of the deployment window, an escalation matrix. Writes
``operational-readiness-checklist.md``.

"Changed since the previous release" is decided per runbook, first rule that applies:

1. git: when the project is a git work tree and the previous release is a git tag, the runbook
   changed if a commit since that tag touches it, or it has uncommitted changes (said so).
2. front matter: otherwise the runbook's YAML front matter must say ``reviewed_for: <release>``
   (``last_reviewed`` and ``owner`` are shown when present).

The checklist is Markdown for people, with the same result as JSON in a trailing HTML comment
so Gate 3 reads back exactly what was written (``read_operational``).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import Field, ValidationError

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core.artifacts import describe_validation_error, write_text_atomic
from pytest_predeploy.core.errors import ArtifactError, ConfigError
from pytest_predeploy.core.fields import Duration, StrictModel, UtcDatetime, utcnow
from pytest_predeploy.core.git import run_git
from pytest_predeploy.core.nesting import json_loads
from pytest_predeploy.core.yamlfile import load_yaml_file, parse_yaml, read_text_file
from pytest_predeploy.rollback.settings import OperationalConfig as OperationalConfig

CheckStatus = Literal["ok", "missing", "stale", "gap", "malformed"]
CheckKind = Literal["runbook", "on-call", "escalation"]
_MARKER = "predeploy:operational-readiness"
_EMBEDDED = re.compile(r"<!-- " + re.escape(_MARKER) + r"\n(.*?)\n-->", re.DOTALL)
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)


class Rotation(StrictModel):
    """People taking turns for fixed-length shifts from ``start`` on."""

    name: str = Field("on-call", description="Name of the rotation (primary, secondary ...).")
    start: UtcDatetime = Field(description="Start of the first shift.")
    shift: Duration = Field(gt=timedelta(0), description="Length of one shift (e.g. '7d').")
    people: list[str] = Field(min_length=1, description="Who is on call, in turn.")
    until: UtcDatetime | None = Field(None, description="End of the rotation; open-ended when absent.")


class Shift(StrictModel):
    """One fixed on-call shift."""

    who: str = Field(description="Who is on call.")
    start: UtcDatetime = Field(description="Start of the shift.")
    end: UtcDatetime = Field(description="End of the shift.")


class OnCallSchedule(StrictModel):
    """The on-call schedule file."""

    team: str = Field("", description="Team owning the schedule.")
    rotations: list[Rotation] = Field(default_factory=list, description="Repeating rotations.")
    shifts: list[Shift] = Field(default_factory=list, description="Fixed shifts (overrides, holidays).")


class EscalationLevel(StrictModel):
    """One level of the escalation matrix."""

    level: int = Field(description="1 is the first responder.")
    who: str = Field(description="Role or person.")
    contact: str = Field(description="How to reach them (pager, channel, phone).")
    after: Duration = Field(timedelta(0), description="When to escalate to this level after an incident starts.")


class EscalationMatrix(StrictModel):
    """The escalation matrix file (YAML form)."""

    team: str = Field("", description="Team owning the matrix.")
    levels: list[EscalationLevel] = Field(min_length=1, description="Escalation levels, first responder first.")


class OperationalCheck(StrictModel):
    """One item of the checklist."""

    kind: CheckKind = Field(description="What was checked.")
    item: str = Field(description="The file checked.")
    status: CheckStatus = Field(description="ok, missing, stale, gap or malformed.")
    detail: str = Field(description="What was found, in a sentence.")


class OperationalResult(StrictModel):
    """The operational readiness verdict, as embedded in the checklist."""

    release: str = Field(description="The release checked.")
    previous_release: str | None = Field(description="The release runbooks must have changed since.")
    generated_at: UtcDatetime = Field(default_factory=utcnow, description="When the check ran.")
    window_start: UtcDatetime = Field(description="Start of the deployment window.")
    window_end: UtcDatetime = Field(description="End of the deployment window.")
    checks: list[OperationalCheck] = Field(description="Every check, runbooks first.")


def _load_model(path: Path, model: type[StrictModel], what: str) -> Any:
    data, _ = load_yaml_file(path, what)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {describe_validation_error(exc)}") from None


def _git_tag(base: Path, tag: str | None) -> bool:
    if not tag:
        return False
    return run_git(base, "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}", timeout=30).ok


def check_runbook(path: Path, base: Path, release: str, previous: str | None, tagged: bool) -> OperationalCheck:
    shown = _display(path, base)
    if not path.is_file():
        return OperationalCheck(kind="runbook", item=shown, status="missing", detail=f"no runbook at {shown}")
    if tagged and previous:
        log = run_git(base, "log", "--format=%h %cs", f"refs/tags/{previous}..HEAD", "--", str(path), timeout=30)
        status = run_git(base, "status", "--porcelain", "--", str(path), timeout=30)
        commits = log.stdout.split() if log.ok else []
        if commits:
            return OperationalCheck(
                kind="runbook",
                item=shown,
                status="ok",
                detail=f"changed since tag {previous}: {len(commits) // 2} commit(s), latest {commits[0]} on {commits[1]}",
            )
        if status.stdout.strip():
            return OperationalCheck(
                kind="runbook", item=shown, status="ok", detail=f"changed since tag {previous} (uncommitted changes: commit them with the release)"
            )
        return OperationalCheck(kind="runbook", item=shown, status="stale", detail=f"unchanged since tag {previous}")
    try:
        text = read_text_file(path, "runbook")
        found = _FRONT_MATTER.match(text)
        meta, _ = parse_yaml(found.group(1), str(path)) if found else (None, {})
    except ConfigError as exc:
        return OperationalCheck(kind="runbook", item=shown, status="malformed", detail=str(exc))
    why = f"previous release {previous} is not a git tag here" if previous else "no previous release is known"
    if not isinstance(meta, dict) or "reviewed_for" not in meta:
        return OperationalCheck(kind="runbook", item=shown, status="stale", detail=f"{why}, and the runbook has no 'reviewed_for:' front matter")
    reviewed = str(meta["reviewed_for"])
    extra = "".join(f", {key} {meta[key]}" for key in ("last_reviewed", "owner") if key in meta)
    if reviewed != release:
        return OperationalCheck(kind="runbook", item=shown, status="stale", detail=f"front matter says reviewed_for {reviewed}, not {release}{extra}")
    return OperationalCheck(kind="runbook", item=shown, status="ok", detail=f"front matter says reviewed_for {release}{extra}")


def _intervals(schedule: OnCallSchedule, start: datetime, end: datetime) -> list[tuple[datetime, datetime, str]]:
    """On-call intervals overlapping [start, end), with who is on call (and for which rotation)."""
    found = [(s.start, s.end, f"{s.who} (shift)") for s in schedule.shifts if s.start < end and s.end > start]
    for rotation in schedule.rotations:
        stop = min(end, rotation.until) if rotation.until else end
        index = max(0, (start - rotation.start) // rotation.shift)
        while rotation.start + index * rotation.shift < stop:
            begin = rotation.start + index * rotation.shift
            finish = begin + rotation.shift
            found.append(
                (begin, min(finish, rotation.until) if rotation.until else finish, f"{rotation.people[index % len(rotation.people)]} ({rotation.name})")
            )
            index += 1
    return sorted(found)


def _configured_file(kind: CheckKind, path: Path | None, base: Path, what: str, key: str) -> tuple[str, Path] | OperationalCheck:
    """The file (and its name as shown), or a 'missing' check when it is not configured or not there."""
    if path is None:
        return OperationalCheck(kind=kind, item="(not configured)", status="missing", detail=f"no {what} configured (operational.{key})")
    shown = _display(path, base)
    if not path.is_file():
        return OperationalCheck(kind=kind, item=shown, status="missing", detail=f"no {what} at {shown}")
    return shown, path


def check_oncall(path: Path | None, base: Path, start: datetime, end: datetime) -> OperationalCheck:
    found = _configured_file("on-call", path, base, "on-call schedule", "oncall")
    if isinstance(found, OperationalCheck):
        return found
    shown, path = found
    try:
        schedule: OnCallSchedule = _load_model(path, OnCallSchedule, "on-call schedule")
    except ConfigError as exc:
        return OperationalCheck(kind="on-call", item=shown, status="malformed", detail=str(exc))
    covered_to = start
    gaps = []
    people: list[str] = []
    for begin, finish, who in _intervals(schedule, start, end):
        if begin > covered_to:
            gaps.append(f"{covered_to.isoformat()} to {begin.isoformat()}")
        covered_to = max(covered_to, finish)
        if who not in people:
            people.append(who)
    if covered_to < end:
        gaps.append(f"{covered_to.isoformat()} to {end.isoformat()}")
    if gaps:
        return OperationalCheck(kind="on-call", item=shown, status="gap", detail=f"nobody on call {'; '.join(gaps)}")
    return OperationalCheck(kind="on-call", item=shown, status="ok", detail=f"window covered; on call: {', '.join(people)}")


def check_escalation(path: Path | None, base: Path) -> OperationalCheck:
    found = _configured_file("escalation", path, base, "escalation matrix", "escalation")
    if isinstance(found, OperationalCheck):
        return found
    shown, path = found
    try:
        if path.suffix.lower() in (".yaml", ".yml", ".json"):
            matrix: EscalationMatrix = _load_model(path, EscalationMatrix, "escalation matrix")
            return OperationalCheck(
                kind="escalation",
                item=shown,
                status="ok",
                detail=f"{len(matrix.levels)} levels, first responder: {matrix.levels[0].who} ({matrix.levels[0].contact})",
            )
        if not read_text_file(path, "escalation matrix").strip():
            return OperationalCheck(kind="escalation", item=shown, status="malformed", detail="the escalation matrix is empty")
    except ConfigError as exc:
        return OperationalCheck(kind="escalation", item=shown, status="malformed", detail=str(exc))
    return OperationalCheck(kind="escalation", item=shown, status="ok", detail="present")


def _display(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)


class OperationalProject(Protocol):
    """What the operational check needs from the project's configuration."""

    @property
    def base_dir(self) -> Path: ...

    @property
    def operational(self) -> OperationalConfig: ...


def check_operational_readiness(
    config: OperationalProject, release: str, previous_release: str | None, artifacts: Path, window_start: datetime | None = None
) -> OperationalResult:
    """Check runbooks, on-call and escalation; write operational-readiness-checklist.md."""
    options = config.operational
    base = config.base_dir
    start = window_start or options.window_start or utcnow()
    end = start + options.window
    tagged = _git_tag(base, previous_release)
    checks = [check_runbook(path, base, release, previous_release, tagged) for path in options.runbooks]
    if not options.runbooks:
        checks.append(OperationalCheck(kind="runbook", item="(not configured)", status="missing", detail="no runbooks configured (operational.runbooks)"))
    checks.append(check_oncall(options.oncall, base, start, end))
    checks.append(check_escalation(options.escalation, base))
    result = OperationalResult(release=release, previous_release=previous_release, window_start=start, window_end=end, checks=checks)
    write_text_atomic(artifacts / names.OPERATIONAL_CHECKLIST, render_checklist(result, tagged))
    return result


def render_checklist(result: OperationalResult, tagged: bool) -> str:
    rule = (
        f"git history since tag {result.previous_release}" if tagged else "'reviewed_for: <release>' front matter (the previous release is not a git tag here)"
    )
    lines = [
        f"# Operational readiness checklist: {result.release}",
        "",
        f"- Generated: {result.generated_at.isoformat()}",
        f"- Previous release: {result.previous_release or '(none)'}",
        f"- Deployment window: {result.window_start.isoformat()} to {result.window_end.isoformat()}",
        f"- Runbooks count as updated by: {rule}",
        "",
        "| | Check | File | Status | Detail |",
        "|---|---|---|---|---|",
    ]
    for check in result.checks:
        box = "[x]" if check.status == "ok" else "[ ]"
        detail = check.detail.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {box} | {check.kind} | `{check.item}` | {check.status} | {detail} |")
    problems = operational_problems(result)
    lines += ["", f"**{'All items current.' if not problems else f'{len(problems)} item(s) need attention before Protocol 11.'}**", ""]
    # "--" can only occur inside JSON strings, where an escape keeps the comment well formed.
    payload = result.model_dump_json(indent=1).replace("--", "-\\u002d")
    lines += [f"<!-- {_MARKER}", payload, "-->", ""]
    return "\n".join(lines)


def read_operational(path: Path) -> OperationalResult:
    """The result embedded in a checklist written by check_operational_readiness."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ArtifactError(path, "missing: the operational readiness step did not produce it") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(path, f"cannot be read: {exc}") from None
    found = _EMBEDDED.search(text)
    if not found:
        raise ArtifactError(path, f"has no embedded result (<!-- {_MARKER} ... -->)")
    try:
        return OperationalResult.model_validate(json_loads(found.group(1)))
    except json.JSONDecodeError as exc:
        raise ArtifactError(path, f"embedded result is not valid JSON ({exc})") from None
    except ValidationError as exc:
        raise ArtifactError(path, f"embedded result does not match OperationalResult: {describe_validation_error(exc)}") from None


def operational_problems(result: OperationalResult) -> list[str]:
    """One line per checklist item that is not current."""
    return [f"{c.kind} {c.item}: {c.status}: {c.detail}" for c in result.checks if c.status != "ok"]
