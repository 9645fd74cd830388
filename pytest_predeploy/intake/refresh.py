"""Test data and feature flag refresh (Protocol 10, step 1.3, GUIDELINE).

Runs an environment's optional refresh command (sync datasets, flag states, service stubs), then
writes ``staging-data-refresh.md``: each dataset or flag set with its timestamp and owner, and the
staging flag states against the flags the release requires. The same facts ride along in the
Markdown as one JSON comment, so the gate reads back exactly what was written.

A required flag that is off in staging is reported here as a GUIDELINE miss, and parity reports
it as critical drift (``parity.required_flags``), so it blocks Gate 1 either way.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import Field, ValidationError

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core import template
from pytest_predeploy.core.artifacts import describe_validation_error, write_text_atomic
from pytest_predeploy.core.errors import ArtifactError, ConfigError
from pytest_predeploy.core.fields import StrictModel, UtcDatetime, utcnow
from pytest_predeploy.core.redact import Redactor
from pytest_predeploy.core.runner import RunResult, run_command
from pytest_predeploy.core.template import TemplateError

# The refresh section is part of an environment's config, so its models live beside it; they
# are re-exported here, where the refresh runs.
from pytest_predeploy.intake.parity import DatasetConfig as DatasetConfig
from pytest_predeploy.intake.parity import ParityProject, RefreshConfig, is_missing, load_section, render_path, required_flag_states
from pytest_predeploy.intake.parity.classify import REDACTED, _Policy

STEP = "data_refresh"
_BLOCK = re.compile(r"<!-- predeploy-refresh\n(.*?)\n-->", re.DOTALL)


class RefreshedDataset(StrictModel):
    """One dataset's outcome."""

    name: str = Field(description="The dataset, flag set or stub.")
    owner: str = Field(description="Its owner.")
    description: str = Field(description="Free text from the config.")
    status: Literal["refreshed", "failed", "not-run"] = Field(description="refreshed when the command succeeded.")
    refreshed_at: UtcDatetime | None = Field(description="When the refresh finished (UTC), when it succeeded.")


class RequiredFlag(StrictModel):
    """A flag the release needs, and its state in the environment."""

    flag: str = Field(description="Flag path inside the flags section.")
    required: Any = Field(description="The state the release requires.")
    actual: Any = Field(None, description="The environment's state (null when missing).")
    present: bool = Field(description="False when the environment does not set the flag.")
    ok: bool = Field(description="True when the state equals the required one (same type).")


class RefreshResult(StrictModel):
    """What the refresh did and found; written into staging-data-refresh.md."""

    release: str = Field(description="The release tag under validation.")
    env: str = Field(description="The refreshed environment.")
    generated_at: UtcDatetime = Field(default_factory=utcnow, description="When the record was written.")
    configured: bool = Field(description="False when the environment has no refresh section.")
    owner: str | None = Field(None, description="Owner of the refresh.")
    command: str | None = Field(None, description="The refresh command, as configured.")
    command_status: str = Field(description="'success', how it failed, or 'not configured'.")
    transcript: str | None = Field(None, description="The command's transcript.")
    started_at: UtcDatetime | None = Field(None, description="When the command started.")
    ended_at: UtcDatetime | None = Field(None, description="When the command ended.")
    datasets: list[RefreshedDataset] = Field(default_factory=list, description="Each dataset, flag set or stub with timestamp and owner.")
    flag_states: dict[str, Any] = Field(default_factory=dict, description="Every flag of the environment (path -> state) after the refresh.")
    required_flags: list[RequiredFlag] = Field(default_factory=list, description="The flags the release requires, against the environment's states.")


class _RunsCommands(Protocol):
    """The plugin's RunContext, as far as the refresh needs it."""

    def run_command(self, argv: list[str], *, step: str, label: str = "", timeout: float, cwd: Path, capture: bool = False) -> RunResult: ...


Runner = Callable[[list[str], str], "RunResult"] | _RunsCommands


def _argv(config: ParityProject, env: str, release: str, command: str) -> list[str]:
    values = {"python": sys.executable, "env": env, "release": release, "config": str(config.path)}
    field = f"environments.{env}.refresh.command"
    try:
        template.check(command, values, field)
        return template.fill_command(command, values, field)
    except TemplateError as exc:
        raise ConfigError(f"{config.path}: {exc}") from None


def _run(config: ParityProject, env: str, refresh: RefreshConfig, argv: list[str], artifacts: Path, run: Runner | None) -> RunResult:
    cwd = refresh.cwd if refresh.cwd.is_absolute() else config.base_dir / refresh.cwd
    timeout = refresh.timeout.total_seconds()
    if run is None:
        transcript = artifacts / names.TRANSCRIPTS_DIR / f"{STEP}-{env}.log"
        return run_command(argv, step=STEP, label=env, transcript=transcript, timeout=timeout, cwd=cwd, redactor=Redactor(config.secret_values()))
    if hasattr(run, "run_command"):
        return run.run_command(argv, step=STEP, label=env, timeout=timeout, cwd=cwd)
    return run(argv, env)


def _flatten(tree: Any, path: tuple[Any, ...], out: dict[str, Any], secret: Callable[[tuple[Any, ...]], bool]) -> None:
    """Flag path -> state; a state parity would hide (its key says secret, by parity's own rules)
    is recorded as hidden, never as its value."""
    if path and secret(("flags", *path)):
        out[render_path(path)] = REDACTED
    elif isinstance(tree, dict) and tree:
        for key, value in tree.items():
            _flatten(value, (*path, key), out, secret)
    elif path:
        out[render_path(path)] = tree if isinstance(tree, (str, int, float, bool, type(None), list)) else str(tree)


def run_data_refresh(config: ParityProject, env: str, release: str, artifacts: Path, run: Runner | None = None) -> RefreshResult:
    """Refresh ``env``'s test data and flags, record it in staging-data-refresh.md, return the record.

    ``run`` runs the command: the plugin's RunContext, or a ``(argv, label) -> RunResult``
    callable; None runs it here with its transcript under ``artifacts/transcripts``.
    """
    refresh = config.environment(env).refresh
    result = RefreshResult(release=release, env=env, configured=refresh is not None, command_status="not configured")
    if refresh is not None:
        result.owner = refresh.owner
        result.command = refresh.command
        status: Literal["refreshed", "failed", "not-run"] = "not-run"
        finished: datetime | None = None
        if refresh.command:
            outcome = _run(config, env, refresh, _argv(config, env, release, refresh.command), artifacts, run)
            result.command_status = outcome.describe()
            result.transcript = str(outcome.transcript)
            result.started_at, result.ended_at = outcome.started_at, outcome.ended_at
            status, finished = ("refreshed", outcome.ended_at) if outcome.ok else ("failed", None)
        result.datasets = [
            RefreshedDataset(name=d.name, owner=d.owner, description=d.description, status=status, refreshed_at=finished) for d in refresh.datasets
        ]
    flags, _ = load_section(config, env, "flags", transcripts=artifacts / names.TRANSCRIPTS_DIR)
    _flatten(flags or {}, (), result.flag_states, _Policy(config.parity, utcnow()).is_secret)
    result.required_flags = [
        RequiredFlag(flag=flag, required=wanted, actual=None if is_missing(actual) else actual, present=not is_missing(actual), ok=ok)
        for flag, wanted, actual, ok in required_flag_states(config.parity, flags or {})
    ]
    # Known secrets (a flag's value may be one under an innocent name) and secrets recognised by
    # their content are redacted as in every other record we write.
    write_text_atomic(artifacts / names.DATA_REFRESH, Redactor(config.secret_values()).redact(render_refresh(result)))
    return result


def _cell(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text.replace("|", "\\|").replace("\n", " ")


def render_refresh(result: RefreshResult) -> str:
    """The Markdown record, with the facts as a JSON comment at the end for the gate."""
    lines = [
        f"# {result.env.capitalize()} data refresh: {result.release}",
        "",
        f"- Environment: {result.env}",
        f"- Recorded: {result.generated_at.isoformat()}",
        f"- Refresh owner: {result.owner or '(none: no refresh configured)'}",
        f"- Command: `{result.command}`: {result.command_status}" if result.command else f"- Command: none ({result.command_status})",
    ]
    if result.transcript:
        lines.append(f"- Transcript: {result.transcript}")
    lines += ["", "## Datasets, flag sets and stubs", ""]
    if result.datasets:
        lines += ["| Dataset | Owner | Status | Refreshed at (UTC) |", "|---|---|---|---|"]
        lines += [f"| {d.name} | {d.owner} | {d.status} | {d.refreshed_at.isoformat() if d.refreshed_at else '-'} |" for d in result.datasets]
    else:
        lines.append("None recorded.")
    lines += ["", "## Feature flags the release requires", ""]
    if result.required_flags:
        lines += [f"| Flag | Required | {result.env.capitalize()} | Verdict |", "|---|---|---|---|"]
        for flag in result.required_flags:
            actual = _cell(flag.actual) if flag.present else "(missing)"
            verdict = "ok" if flag.ok else "CRITICAL: does not match"
            lines.append(f"| {flag.flag} | {_cell(flag.required)} | {actual} | {verdict} |")
    else:
        lines.append("None (parity.required_flags is empty).")
    lines += ["", f"## {result.env.capitalize()} flag states", ""]
    if result.flag_states:
        lines += ["| Flag | State |", "|---|---|"]
        lines += [f"| {path} | {_cell(value)} |" for path, value in result.flag_states.items()]
    else:
        lines.append("No flags declared.")
    payload = result.model_dump_json(indent=1).replace("-->", "--\\u003e")  # keep the comment closed
    lines += ["", "<!-- predeploy-refresh", payload, "-->", ""]
    return "\n".join(lines)


def read_refresh(path: Path) -> RefreshResult:
    """Read staging-data-refresh.md back; a missing or edited-beyond-reading record names the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ArtifactError(path, "missing: the data refresh step did not write it") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(path, f"cannot be read ({exc})") from None
    match = _BLOCK.search(text)
    if not match:
        raise ArtifactError(path, "has no predeploy-refresh record (the JSON comment at its end)")
    try:
        return RefreshResult.model_validate_json(match.group(1))
    except ValidationError as exc:
        raise ArtifactError(path, f"record does not match RefreshResult: {describe_validation_error(exc)}") from None


def refresh_problems(result: RefreshResult) -> list[str]:
    """GUIDELINE misses: nothing refreshed, a failed refresh, unrecorded data, required flags off."""
    where = f"environments.{result.env}.refresh"
    if not result.configured:
        problems = [f"no test data / feature flag refresh configured for {result.env} ({where})"]
    elif not result.command:
        problems = [f"{where} has no command: datasets were not refreshed"]
    elif result.command_status != "success":
        problems = [f"refresh command {result.command_status}; not refreshed: {', '.join(d.name for d in result.datasets) or '(no datasets listed)'}"]
    elif not result.datasets:
        problems = [f"{where}.datasets is empty: record what the refresh syncs and who owns it"]
    else:
        problems = []
    for flag in result.required_flags:
        if not flag.ok:
            actual = _cell(flag.actual) if flag.present else "missing"
            problems.append(f"flag {flag.flag} is {actual} in {result.env}; the release requires {_cell(flag.required)} (critical drift in the parity report)")
    return problems
