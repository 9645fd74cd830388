"""What each gate test shows a reviewer in the HTML report, drawn from the artifact it read:
tables of drift, timings, findings, and SVG charts of deploy and recovery times.

Gate tests call ``show_<artifact>(evidence, report)``; nothing here decides an outcome.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import pytest

from pytest_predeploy.harness.itemkeys import evidence_key

if TYPE_CHECKING:
    from pytest_predeploy.intake.approvals import IntakeReport
    from pytest_predeploy.intake.parity import ParityReport
    from pytest_predeploy.rehearsal.deploy import DeploymentReport
    from pytest_predeploy.rehearsal.observability import ObservabilityResult
    from pytest_predeploy.rehearsal.smoke import TestResultsReport
    from pytest_predeploy.rollback.rollback import RollbackReport
    from pytest_predeploy.security import SecurityReport


class Evidence:
    """What a gate test shows the reviewer besides pass/fail: tables, charts, links."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []  # (kind, content)
        self.figures: list[str] = []

    def figure(self, text: str) -> None:
        """A key figure of the gate (shown in the gate summary of the terminal, HTML and JSON)."""
        self.figures.append(text)

    def html(self, title: str, markup: str) -> None:
        self.items.append(("html", f"<div class='predeploy-evidence'><h4>{html.escape(title)}</h4>{markup}</div>"))

    def table(self, title: str, headers: list[str], rows: list[list[Any]]) -> None:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
        self.html(title, f"<table class='predeploy-table'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def svg(self, title: str, svg_markup: str) -> None:
        self.html(title, svg_markup)


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Evidence:
    """Attach evidence to the current gate test (shown in the HTML report, listed in JSON)."""
    found = Evidence()
    request.node.stash[evidence_key] = found
    return found


#: More rows than this are summarised; the artifact link has them all.
MAX_ROWS = 40


def bar_chart_svg(rows: list[tuple[str, float]], unit: str = "s", target: float | None = None, target_label: str = "target") -> str:
    """A horizontal bar chart as inline SVG (no script, no external resource: the report stays self-contained)."""
    if not rows:
        return "<p>no data</p>"
    width, label_width, bar_height, gap = 560, 170, 18, 6
    scale_max = max([value for _, value in rows] + ([target] if target else [])) or 1.0
    plot = width - label_width - 70
    height = len(rows) * (bar_height + gap) + (24 if target is not None else 6)  # room for the target label
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="predeploy-chart" width="{width}" height="{height}" role="img">']
    for index, (label, value) in enumerate(rows):
        y = 4 + index * (bar_height + gap)
        length = max(1.0, plot * value / scale_max)
        over = target is not None and value > target
        parts.append(f'<text x="{label_width - 6}" y="{y + 13}" text-anchor="end" font-size="12">{html.escape(label)}</text>')
        parts.append(f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="{bar_height}" fill="{"#cf222e" if over else "#2f81f7"}"/>')
        parts.append(f'<text x="{label_width + length + 4:.1f}" y="{y + 13}" font-size="12">{value:.2f} {unit}</text>')
    if target is not None:
        x = label_width + plot * target / scale_max
        parts.append(f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - 18}" stroke="#9a6700" stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{x:.1f}" y="{height - 4}" font-size="11" text-anchor="middle">{html.escape(target_label)} {target:g} {unit}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _rows(items: list[Any]) -> tuple[list[Any], str]:
    more = f" (first {MAX_ROWS} of {len(items)}; all in the artifact)" if len(items) > MAX_ROWS else ""
    return items[:MAX_ROWS], more


def _value(shown: Any) -> str:
    if shown is None:
        return "(missing)"
    if getattr(shown, "redacted", False):
        return "(secret)"
    return str(getattr(shown, "value", shown))


def show_intake(evidence: Evidence, report: IntakeReport) -> None:
    for warning in report.warnings:
        evidence.figure(warning)
        evidence.html("Warning", f"<p style='color:#cf222e;font-weight:bold'>{html.escape(warning)}</p>")
    evidence.table(
        "Upstream approvals",
        ["approval", "status", "by", "approved", "expires", "detail"],
        [[c.title, c.status, c.approved_by or "", c.approved_at or "", c.expires_at or "", c.detail] for c in report.checks],
    )


def show_parity(evidence: Evidence, report: ParityReport) -> None:
    order = {"critical": 0, "major": 1, "minor": 2, "info": 3}
    items = sorted(
        report.items,
        key=lambda item: (item.status not in ("drift", "waiver-expired"), order.get(str(getattr(item.severity, "value", item.severity)), 9), item.path),
    )
    shown, more = _rows(items)
    evidence.table(
        f"Drift, staging vs production{more}",
        ["path", "kind", "severity", "status", "staging", "production", "rule / waiver", "remediation"],
        [
            [
                i.path,
                i.kind,
                getattr(i.severity, "value", i.severity),
                i.status,
                _value(i.source_value),
                _value(i.target_value),
                i.waiver or i.rule or "",
                i.remediation or "",
            ]
            for i in shown
        ],
    )
    evidence.table("Secrets (compared by keyed fingerprint; no value is ever shown)", ["name", "status"], [[s.name, s.status] for s in report.secrets])


def show_deployment(evidence: Evidence, report: DeploymentReport) -> None:
    rows = [(s.service, s.duration_seconds or 0.0) for s in report.services]
    evidence.svg("Deploy time per service (script + verification)", bar_chart_svg(rows))
    evidence.table(
        "Deployment rehearsal",
        ["service", "release", "status", "seconds", "healthy", "reports", "transcript"],
        [
            [
                s.service,
                s.release,
                s.status,
                s.duration_seconds or "",
                s.verification.healthy if s.verification else "",
                s.verification.reported_release if s.verification else "",
                s.script.transcript if s.script else "",
            ]
            for s in report.services
        ],
    )
    if report.bootstrap:
        evidence.table(
            "Bootstrap of the previous release", ["service", "release", "status", "why"], [[b.service, b.release, b.status, b.reason] for b in report.bootstrap]
        )


def show_smoke(evidence: Evidence, report: TestResultsReport) -> None:
    evidence.table(
        "Suites",
        ["suite", "status", "passed", "failed", "errors", "seconds", "coverage"],
        [
            [s.name, s.status, s.totals.passed, s.totals.failed, s.totals.errors, f"{s.duration:.2f}", f"{s.coverage.exercised}/{s.coverage.declared}"]
            for s in report.suites
        ],
    )
    failing = [t for s in report.suites for t in s.tests if t.outcome in ("failed", "error")]
    if failing:
        evidence.table("Failing tests", ["test", "outcome", "message"], [[t.nodeid, t.outcome, t.message or ""] for t in failing])
    unexercised = [e for e in report.coverage.endpoints if not e.exercised]
    if unexercised:
        evidence.table("Endpoints not exercised", ["service", "method", "path"], [[e.service, e.method, e.path] for e in unexercised])


def show_observability(evidence: Evidence, result: ObservabilityResult) -> None:
    """The PromQL checks asked of Prometheus: values per point and one time series per query."""
    if result.prometheus is None:
        return
    from pytest_predeploy.rehearsal.prometheus import query_chart  # here: most runs ask Prometheus nothing

    rows = []
    for query in result.prometheus.queries:
        for point in query.points:
            values = ", ".join("NaN" if s.value is None else f"{s.value:g}" for s in point.series) or "-"
            detail = "; ".join(s.detail for s in point.series if s.detail) or point.detail
            rows.append([query.name, query.promql, point.phase, values, point.state, detail])
    evidence.table(f"Prometheus queries ({result.prometheus.url})", ["query", "PromQL", "point", "values", "verdict", "detail"], rows)
    for query in result.prometheus.queries:
        evidence.svg(f"{query.name}: {query.promql}", query_chart(query))
    if result.prometheus.alerts_state != "ok" or result.prometheus.alerts:
        alert_rows = [[a.name, a.service, a.active_at, a.value] for a in result.prometheus.alerts] or [["no data", "", "", result.prometheus.alerts_detail]]
        evidence.table("Prometheus alerts firing for the staging services", ["alert", "service", "active since", "value"], alert_rows)


def show_rollback(evidence: Evidence, report: RollbackReport) -> None:
    rows = [(s.service, s.recovery_seconds or 0.0) for s in report.services]
    evidence.svg("Recovery time per service against the target", bar_chart_svg(rows, target=report.recovery_target_seconds))
    evidence.table(
        "Rollback rehearsal",
        ["service", "strategy", "to", "switch s", "recovery s", "target s", "smoke", "rolled forward", "final", "status"],
        [
            [
                s.service,
                s.strategy,
                s.to_release,
                s.switch_seconds or "",
                s.recovery_seconds or "",
                s.recovery_target_seconds,
                s.smoke,
                s.rolled_forward,
                s.final.release if s.final else "",
                s.status,
            ]
            for s in report.services
        ],
    )
    builds = [(s.service, role, build) for s in report.services for role, build in (("candidate", s.from_build), ("previous", s.to_build)) if build is not None]
    if builds:
        evidence.table(
            "Releases rehearsed (what each release's code is)",
            ["service", "role", "deployed as", "source", "ref", "commit", "digest", "working tree"],
            [
                [
                    service,
                    role,
                    b.deployed_as,
                    b.kind,
                    b.ref or "",
                    (b.commit or "")[:12],
                    b.digest[:12],
                    {True: "DIRTY", False: "clean", None: "unknown"}[b.dirty],
                ]
                for service, role, b in builds
            ],
        )


def show_security(evidence: Evidence, report: SecurityReport) -> None:
    evidence.table(
        "Scanners",
        ["scanner", "status", "version", "seconds", "findings", "reason"],
        [
            [
                s.name,
                "could not run" if s.status == "unavailable" else s.status,
                s.version or "",
                f"{s.duration_seconds:.2f}",
                s.findings,
                (s.reason or "") + (f"; to fix: {s.action}" if s.action and s.action not in (s.reason or "") else ""),
            ]
            for s in report.scanners
        ],
    )
    shown, more = _rows(sorted(report.findings, key=lambda f: (not f.blocking, f.severity.rank * -1)))
    if shown:
        evidence.table(
            f"Findings{more}",
            ["id", "severity", "where", "fixed in", "waiver", "blocking"],
            [[f.id, f.severity.value, f.where(), ", ".join(f.fixed_versions), f.waiver.id if f.waiver else "", f.blocking] for f in shown],
        )
    if report.skipped_requirements:
        evidence.table(f"Requirement lines skipped by their marker ({report.target_python})", ["line"], [[line] for line in report.skipped_requirements])


def show_signoffs(evidence: Evidence, status: Any) -> None:
    rows = [[role, ", ".join(who)] for role, who in sorted(status.approved.items())]
    evidence.table("Sign-offs on this package", ["role", "approved by"], rows or [["(none)", ""]])
    # Every recorded sign-off, counted or not, and why: a forged or unsigned one is visible here.
    recorded = [[v.role, v.decision, v.approver, v.signed_at.isoformat(), v.verdict, v.describe_signature()] for v in status.views]
    if recorded:
        evidence.table("Sign-offs recorded for this release", ["role", "decision", "by", "signed at", "verdict", "signature"], recorded)
