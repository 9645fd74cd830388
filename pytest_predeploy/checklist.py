"""Deployment checklist updates (Protocol 10, step 4.3, GUIDELINE).

Each run appends a dated revision to ``deployment-checklist.md`` drawn from the rehearsal's
evidence: measured deploy durations per service, recovery time against its target, failed or
slow steps, and findings worth carrying into production, each item with its owner from
``readiness.checklist_owners``. Earlier revisions are kept: the file is the checklist's history.

The evidence files are read as plain JSON, defensively: a revision is drawn from whatever the
reports hold, and a file that is missing or unreadable is named rather than fatal (this is a
GUIDELINE; the MUST gates already judged those files).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pytest_predeploy import artifacts as names
from pytest_predeploy.artifacts import write_text_atomic
from pytest_predeploy.fields import utcnow

_SOURCES = (names.DEPLOYMENT_REPORT, names.ROLLBACK_REPORT, names.TEST_RESULTS, names.SECURITY_REPORT, names.PARITY_REPORT)
_FAILED = {"failed", "failure", "error", "errored", "timeout", "timed_out", "timed-out", "unhealthy", "killed", "crashed"}


@dataclass(frozen=True)
class ChecklistItem:
    area: str
    text: str
    owner: str | None


@dataclass
class ChecklistResult:
    path: Path
    revision: str
    figures: list[tuple[str, str]] = field(default_factory=list)
    items: list[ChecklistItem] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def _load(path: Path) -> Any | None:
    try:
        return json.loads(path.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def _records(data: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    """Per-service records: dicts that carry a service or name, in lists up to two levels down."""
    if depth > 2:
        return
    values = data.values() if isinstance(data, dict) else data if isinstance(data, list) else ()
    for value in values:
        if isinstance(value, dict) and isinstance(value.get("service", value.get("name")), str) and isinstance(data, list):
            yield value
        elif isinstance(value, (dict, list)):
            yield from _records(value, depth + 1)


def _name(record: Mapping[str, Any]) -> str:
    return str(record.get("service", record.get("name")))


def _number(record: Mapping[str, Any], *hints: str, avoid: tuple[str, ...] = ()) -> float | None:
    for key, value in record.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and any(h in key for h in hints) and not any(a in key for a in avoid):
            return float(value)
    return None


def _failed(record: Mapping[str, Any]) -> bool:
    for key in ("status", "outcome", "result", "state"):
        if isinstance(record.get(key), str) and record[key].lower() in _FAILED:
            return True
    if any(record.get(key) is False for key in ("ok", "success", "healthy", "passed")):
        return True
    code = record.get("returncode", record.get("exit_code"))
    return isinstance(code, int) and not isinstance(code, bool) and code != 0


def _findings(data: Any) -> list[dict[str, Any]]:
    found = data.get("findings") if isinstance(data, dict) else None
    if isinstance(found, list):
        return [item for item in found if isinstance(item, dict)]
    return [item for value in (data.values() if isinstance(data, dict) else ()) for item in _findings(value)]


def _seconds(value: float) -> str:
    return f"{value:.1f} s"


class _Revision:
    def __init__(self, owners: Mapping[str, str], result: ChecklistResult) -> None:
        self._owners = owners
        self.result = result

    def item(self, area: str, text: str) -> None:
        self.result.items.append(ChecklistItem(area, text, self._owners.get(area) or self._owners.get("default")))

    def figure(self, what: str, value: str) -> None:
        self.result.figures.append((what, value))


def _deployment(data: Any, rev: _Revision, slow: timedelta) -> None:
    order, total = [], 0.0
    for record in _records(data):
        service, seconds = _name(record), _number(record, "duration", "elapsed", "seconds")
        order.append(service)
        if seconds is not None:
            total += seconds
            rev.figure(f"deploy {service}", _seconds(seconds))
        if _failed(record):
            rev.item("deploy", f"The rehearsal deploy of {service} failed: fix it and rehearse again before production.")
        elif seconds is not None and seconds > slow.total_seconds():
            rev.item("deploy", f"Deploy of {service} took {_seconds(seconds)} on staging (over {_seconds(slow.total_seconds())}): plan its production window for it.")
    if order:
        rev.item("deploy", f"Deploy to production in the rehearsed order: {', '.join(order)} (staging took {_seconds(total)} in all).")
        rev.item("communication", f"Announce the production window for {', '.join(order)}, with the rollback plan and its measured recovery time.")


def _rollback(data: Any, rev: _Revision, slow: timedelta) -> None:
    default_target = _number(data, "target") if isinstance(data, dict) else None
    for record in _records(data):
        service = _name(record)
        recovery = _number(record, "recovery", avoid=("target",))
        target = _number(record, "target") or default_target
        if _failed(record):
            rev.item("rollback", f"The rollback rehearsal of {service} failed: the production rollback path is not proven.")
        if recovery is None:
            continue
        rev.figure(f"rollback {service} recovery", _seconds(recovery) + (f" (target {_seconds(target)})" if target else ""))
        if target and recovery > target:
            rev.item("rollback", f"Recovery of {service} took {_seconds(recovery)}, over its {_seconds(target)} target: shorten it or agree a new target.")
        elif recovery > slow.total_seconds():
            rev.item("rollback", f"Rollback of {service} needs {_seconds(recovery)}: keep that time free in the production window.")


def _tests(data: Any, rev: _Revision) -> None:
    coverage = _number(data, "coverage") if isinstance(data, dict) else None
    if coverage is None and isinstance(data, dict) and isinstance(data.get("coverage"), dict):
        coverage = _number(data["coverage"], "ratio", "percent", "coverage")
    if coverage is not None:
        rev.figure("smoke coverage", f"{coverage:g}")
    failed = [_name(r) for r in _records(data) if _failed(r)]
    if failed:
        rev.item("smoke", f"Smoke/acceptance tests that failed on staging: {', '.join(failed)}; re-run them right after the production deploy.")


def _security(data: Any, rev: _Revision) -> None:
    waived = [f for f in _findings(data) if f.get("waiver") or f.get("waived") or f.get("waiver_id")]
    if waived:
        ids = ", ".join(str(f.get("id", "?")) for f in waived[:10])
        rev.item("security", f"{len(waived)} security finding(s) go to production under waivers ({ids}): confirm their owners and expiry.")


def _parity(data: Any, rev: _Revision) -> None:
    drift = _findings(data) or [item for key in ("drift", "differences") for item in (data.get(key) or [] if isinstance(data, dict) else []) if isinstance(item, dict)]
    if drift:
        keys = ", ".join(str(d.get("path", d.get("key", "?"))) for d in drift[:10])
        rev.item("parity", f"{len(drift)} accepted staging/production difference(s) ({keys}): check they hold on production.")


def write_deployment_checklist(
    artifacts: Path, release: str, owners: Mapping[str, str], *, slow_step: timedelta = timedelta(seconds=60), now: datetime | None = None,
) -> ChecklistResult:
    """Append a revision for ``release`` to ``deployment-checklist.md`` (atomically) and return it."""
    now = now or utcnow()
    artifacts = Path(artifacts)
    path = artifacts / names.DEPLOYMENT_CHECKLIST
    result = ChecklistResult(path=path, revision=f"Revision {now.strftime('%Y-%m-%dT%H:%M:%SZ')}: release {release}")
    rev = _Revision(owners, result)
    readers = {
        names.DEPLOYMENT_REPORT: lambda d: _deployment(d, rev, slow_step),
        names.ROLLBACK_REPORT: lambda d: _rollback(d, rev, slow_step),
        names.TEST_RESULTS: lambda d: _tests(d, rev),
        names.SECURITY_REPORT: lambda d: _security(d, rev),
        names.PARITY_REPORT: lambda d: _parity(d, rev),
    }
    for name in _SOURCES:
        data = _load(artifacts / name)
        if data is None:
            result.missing.append(name)
            continue
        result.sources.append(name)
        readers[name](data)
    previous = path.read_text(encoding="utf-8") if path.is_file() else "# Deployment checklist\n\nRevisions drawn from each staging rehearsal, newest last.\n"
    write_text_atomic(path, previous.rstrip("\n") + "\n\n" + render(result))
    return result


def render(result: ChecklistResult) -> str:
    lines = [f"## {result.revision}", ""]
    lines.append("Drawn from: " + (", ".join(f"`{s}`" for s in result.sources) or "no rehearsal evidence") + ".")
    if result.missing:
        lines.append("Not available: " + ", ".join(f"`{s}`" for s in result.missing) + ".")
    if result.figures:
        lines += ["", "| Measured on staging | Figure |", "| --- | --- |", *(f"| {what} | {value} |" for what, value in result.figures)]
    lines.append("")
    for item in result.items:
        lines.append(f"- [ ] **{item.area}** (owner: {item.owner or 'unassigned'}): {item.text}")
    if not result.items:
        lines.append("- Nothing new from this rehearsal.")
    return "\n".join(lines) + "\n"


def checklist_problems(result: ChecklistResult) -> list[str]:
    """GUIDELINE misses: no evidence to draw from, or items nobody owns."""
    problems = []
    if not result.sources:
        problems.append(f"{result.path.name}: no rehearsal evidence to draw revisions from ({', '.join(result.missing)} missing or unreadable)")
    unowned = sorted({item.area for item in result.items if item.owner is None})
    if unowned:
        problems.append(f"{result.path.name}: no owner for {', '.join(unowned)} items; set readiness.checklist_owners.<area> (or .default)")
    return problems
