"""The parity report: its items, summary and the problems and one-line text that gates print."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field

from pytest_predeploy.core.artifacts import ArtifactModel
from pytest_predeploy.core.fields import Severity, StrictModel
from pytest_predeploy.intake.parity.config import STEP
from pytest_predeploy.intake.parity.inputs import InputRecord

Kind = Literal["added", "removed", "changed", "type-changed", "secret", "required-flag"]
ItemStatus = Literal["drift", "waiver-expired", "waived", "ignored"]


# -- the report ------------------------------------------------------------------------------


class ParityValue(StrictModel):
    """A value as shown in the report: its type, and the value unless it is secret."""

    type: str = Field(description="null, bool, int, float, str, list, mapping, date, datetime, binary ...")
    value: Any = Field(None, description="The value (JSON), shortened when long; null when redacted.")
    redacted: bool = Field(False, description="True when the value is a secret and is not shown.")
    truncated: bool = Field(False, description="True when the value shown is shortened.")


class DriftItem(StrictModel):
    """One difference between the environments."""

    path: str = Field(
        description="Where: dotted path; keys with dots are quoted as [\"a.b\"], list elements read [name=api] or [3] (staging's position; production's for a removed element); documents of a multi-document YAML file read apps/v1/Deployment/shop/api or 0, 1 ...; secrets are secrets.NAME."
    )
    kind: Kind = Field(
        description="added (only in the source, e.g. staging), removed (only in the target: staging lacks it), changed, type-changed, secret (see detail), required-flag."
    )
    detail: str = Field(description="The difference in words (e.g. 'REUSED', 'int -> str').")
    source_value: ParityValue | None = Field(description="The source's (staging's) value; null when the key is absent.")
    target_value: ParityValue | None = Field(description="The target's (production's) value, or for required-flag the required state; null when absent.")
    severity: Severity = Field(description="critical, major, minor or info.")
    status: ItemStatus = Field(description="drift, waiver-expired (counts as drift), waived or ignored.")
    rule: str | None = Field(None, description="The rule that set the severity or ignored the item.")
    waiver: str | None = Field(None, description="Id of the waiver applied (or expired).")
    remediation: str = Field(description="What to do about it.")

    @property
    def active(self) -> bool:
        return self.status in ("drift", "waiver-expired")

    @property
    def blocking(self) -> bool:
        return self.active and self.severity == Severity.critical


class SecretCheck(StrictModel):
    """One secret name: where it is set and whether the value is reused. Never the value."""

    name: str = Field(description="The secret's name.")
    status: str = Field(
        description="present (both, values differ), missing-in-<source>, missing-in-<target>, missing-in-<source>-and-<target> (named on both sides, empty on both), or REUSED (same value in both). An empty value counts as missing."
    )


class ParitySummary(StrictModel):
    """Counts of the report's items."""

    critical: int = Field(description="Active drift (unwaived or waiver expired) of critical severity.")
    major: int = Field(description="Active drift of major severity.")
    minor: int = Field(description="Active drift of minor severity.")
    info: int = Field(description="Active drift of info severity.")
    waived: int = Field(description="Drift under an unexpired waiver.")
    expired_waivers: int = Field(description="Drift whose waiver has expired (counted in the severities too).")
    ignored: int = Field(description="Expected differences matched by an ignore rule.")
    blocking: int = Field(description="Items that fail Gate 1 (critical and active).")
    secrets_reused: int = Field(description="Secrets whose staging value equals production's.")


class ParityReport(ArtifactModel):
    """staging-parity-report.json: every difference between the environments, classified."""

    step: str = Field(STEP, description="The protocol step that produced the artifact.")
    source: str = Field(description="The environment under validation (staging).")
    target: str = Field(description="The baseline environment (production).")
    passed: bool = Field(description="True when no item blocks Gate 1.")
    summary: ParitySummary = Field(description="Counts by severity and status.")
    items: list[DriftItem] = Field(description="One item per difference, blocking first, then by severity and path.")
    secrets: list[SecretCheck] = Field(description="Every secret name of either environment with its status.")
    required_flags: dict[str, Any] = Field(default_factory=dict, description="The feature flags the release requires in the source, and their required states.")
    inputs: list[InputRecord] = Field(description="Everything read, with sha256 (secret sources are named but never hashed).")
    notes: list[str] = Field(
        default_factory=list,
        description="How the comparison was bounded, when it was: a list too different to align and paired by position, items left out past parity.max_report_items or parity.max_report_bytes ('... N more', still counted in the summary).",
    )

    def summary_line(self) -> str:
        s = self.summary
        return (
            f"drift {self.source} vs {self.target}: {s.critical} critical, {s.major} major, {s.minor} minor; "
            f"{s.waived} waived, {s.ignored} ignored; secrets reused {s.secrets_reused}"
        )


def _sort_key(item: DriftItem) -> tuple[int, int, int, str]:
    order = {"waiver-expired": 0, "drift": 0, "waived": 1, "ignored": 2}
    return (0 if item.blocking else 1, order[item.status], -item.severity.rank, item.path)


def _short(view: ParityValue | None) -> str:
    if view is None:
        return "(absent)"
    if view.redacted:
        return "(secret)"
    text = json.dumps(view.value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def describe_item(item: DriftItem) -> str:
    """One line, values shown as the report shows them (secrets never)."""
    what = item.detail if item.kind in ("secret", "required-flag") else f"{item.kind}: {_short(item.source_value)} vs {_short(item.target_value)}"
    waiver = f" [waiver {item.waiver} expired]" if item.status == "waiver-expired" else ""
    return f"{item.severity.value.upper()} {item.path}: {what}{waiver} -> {item.remediation}"


def parity_problems(report: ParityReport) -> list[str]:
    """The items that block Gate 1 (critical, not waived), worst first, one line each; and, when
    the report could not list them all (``parity.max_report_items``, ``parity.max_report_bytes``),
    how many more the summary counts: a report cut short never hides blocking drift."""
    problems = [describe_item(item) for item in sorted(report.items, key=_sort_key) if item.blocking]
    unlisted = report.summary.blocking - len(problems)
    if unlisted > 0:
        problems.append(f"{unlisted} more blocking item(s) not listed in the report (cut at parity.max_report_items or parity.max_report_bytes; see its notes)")
    return problems


def summary_text(report: ParityReport) -> str:
    """The short human summary the command prints."""
    lines = [report.summary_line()]
    lines += [f"  {describe_item(item)}" for item in report.items if item.active][:10]
    checks = report.secrets
    lines.append(f"secrets: {len(checks)} names, " + ", ".join(f"{sum(c.status == s for c in checks)} {s}" for s in sorted({c.status for c in checks})))
    lines += [f"note: {note}" for note in report.notes]
    lines.append("verdict: " + ("no blocking drift" if report.passed else f"{report.summary.blocking} blocking item(s): Gate 1 fails"))
    return "\n".join(lines)
