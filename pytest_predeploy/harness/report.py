"""Glue to pytest-html, pytest-json-report and pytest-metadata (untyped, private attributes,
old-style hooks): everything we do to the reports lives here, registered only for the plugins
that are present, so the rest of the code never touches their internals.

What a release reviewer gets: the title ``Pre-deployment readiness <release>``; an environment
table (release, previous release, commit, config digest, environment); the gate summary with
the verdict at the top; rows in gate order; each gate test with links to the artifacts it read
and the evidence it attached (tables, an SVG chart); halted tests with the reason.
"""

from __future__ import annotations

import html
import os
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from pytest_predeploy.core.artifacts import READINESS_APPROVAL, RUN_REPORTS
from pytest_predeploy.core.errors import PredeployError
from pytest_predeploy.core.runstate import git_commit
from pytest_predeploy.harness.banner import Decision, GateCard, Signature, VerdictKind, banner_html, summary_markdown
from pytest_predeploy.harness.gates import ExitStatus, gate_of, kind_of
from pytest_predeploy.harness.itemkeys import evidence_key
from pytest_predeploy.harness.steps import FIXTURE_ARTIFACTS
from pytest_predeploy.readiness.signing import load_signers
from pytest_predeploy.readiness.signoff import review_signoffs

if TYPE_CHECKING:
    from pytest_predeploy.config import ProjectConfig
    from pytest_predeploy.harness.context import RunContext
    from pytest_predeploy.harness.controller import GateController
    from pytest_predeploy.harness.verdict import Verdict


class ProtocolSession(Protocol):
    """The protocol session as the reports read it (the session registers these hooks, so it is
    described here rather than imported)."""

    context: RunContext
    controller: GateController
    project: ProjectConfig
    report_prefix: str
    reused_package: Any

    @property
    def package_sha256(self) -> str | None: ...

    @property
    def verdict(self) -> Verdict | None: ...


STATUS_COLOURS = {
    "passed": "#1a7f37",
    "failed": "#cf222e",
    "halted": "#8c959f",
    "interrupted": "#cf222e",
    "awaiting sign-off": "#9a6700",
    "not run": "#8c959f",
}


def which_reports(session: ProtocolSession) -> str:
    """Which report files are this run's and which are the reviewers' copy (a Gate-4-only re-check)."""
    ours = ", ".join(session.report_prefix + name for name in RUN_REPORTS)
    return f"This Gate 4 run's reports: {ours}. The run that produced the package wrote {', '.join(RUN_REPORTS)} (the reviewers' copy, sealed in the package)."


def verdict(session: ProtocolSession, exit_status: int) -> str:
    """The run's verdict line (harness.verdict decides it; the reports only show it)."""
    decided = session.verdict
    if decided is not None and int(decided.status) == exit_status:
        return decided.line
    return f"exit status {exit_status}: not a protocol verdict"


def _kind(session: ProtocolSession, exit_status: int) -> VerdictKind:
    if exit_status == ExitStatus.INTERRUPTED:
        return "interrupted"
    if exit_status == ExitStatus.AWAITING_SIGNOFF:
        return "awaiting"
    if exit_status == ExitStatus.GO and session.verdict is not None and session.verdict.status == ExitStatus.GO:
        return "go"
    if exit_status == ExitStatus.NOT_JUDGED:
        return "partial"
    # NO-GO, and any status we did not plan for (an internal error, nothing collected): never GO.
    return "no-go"


def package_digest(session: ProtocolSession) -> str | None:
    """The sha256 of the package this run sealed, or of the sealed package Gate 4 re-judged."""
    if session.package_sha256:
        return session.package_sha256
    reused = session.reused_package
    return str(reused.sha256) if reused is not None else None


def _signatures(session: ProtocolSession, digest: str | None) -> list[Signature]:
    """The sign-offs on the package's digest that count: current and signed with a key the
    signers file lists for that identity and role. None when there is no package or the record
    or the signers file cannot be read (Gate 4 says why; the banner only shows who signed)."""
    if not digest:
        return []
    try:
        signers = load_signers(session.project.readiness.signers)
        views = review_signoffs(session.context.artifact(READINESS_APPROVAL), digest, signers=signers)
    except PredeployError:
        return []
    return [
        Signature(role=v.role, by=v.approver, decision=v.decision)
        for v in views
        if v.verdict == "current" and (v.signature == "verified" or session.project.readiness.allow_unsigned)
    ]


def decision(session: ProtocolSession, exit_status: int) -> Decision:
    """What the banner and the GitHub summary lead with, every text redacted."""
    redact = session.context.redactor.redact
    gates = [
        GateCard(
            number=g.number,
            name=g.name,
            status=g.status,
            figures=[redact(f) for f in g.figures],
            reason=redact(g.reason),
            advisories=[redact(a) for a in g.advisories],
            pending_roles=list(g.pending_roles),
        )
        for g in sorted(session.controller.gates.values(), key=lambda g: g.number)
    ]
    digest = package_digest(session)
    signatures = [Signature(role=s.role, by=redact(s.by), decision=s.decision) for s in _signatures(session, digest)]
    return Decision(
        kind=_kind(session, exit_status),
        detail=redact(verdict(session, exit_status)),
        release=session.context.release,
        package_sha256=digest,
        signatures=signatures,
        pending_roles=session.controller.pending_roles(),
        gates=gates,
    )


def _artifact_links(item: pytest.Item, artifacts: Path) -> list[str]:
    names: list[str] = []
    for fixture in getattr(item, "fixturenames", []):
        for name in FIXTURE_ARTIFACTS.get(fixture, []):
            if (artifacts / name).exists() and name not in names:
                names.append(name)
    return names


class ReportHooks:
    """Hooks for the reports of a protocol run; registered by the protocol session."""

    def __init__(self, session: ProtocolSession) -> None:
        self.session = session

    # -- every report ----------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.when != "call" and not (report.when == "setup" and not report.passed):
            return report
        extras = list(getattr(report, "extras", []))
        links = _artifact_links(item, self.session.context.artifacts)
        # pytest reports carry extra attributes by design (TestReport(**extra)), but pytest's types declare none.
        report.predeploy_artifacts = links  # type: ignore[attr-defined]
        for name in links:
            extras.append({"name": name, "format_type": "url", "content": name, "mime_type": None, "extension": None})
        found = item.stash.get(evidence_key, None)
        if found is not None:
            redact = self.session.context.redactor.redact
            extras.extend({"name": None, "format_type": "html", "content": redact(content), "mime_type": None, "extension": None} for _, content in found.items)
        # pytest-html reads its extras from this report attribute, which pytest's types do not declare.
        report.extras = extras  # type: ignore[attr-defined]
        return report

    def gate_summary_html(self, exit_status: int) -> str:
        session = self.session
        rows = []
        for gate in sorted(session.controller.gates.values(), key=lambda g: g.number):
            colour = STATUS_COLOURS.get(gate.status, "#57606a")
            figures = "<br>".join(html.escape(f) for f in gate.figures) or "&nbsp;"
            reason = html.escape(gate.reason).replace("\n", "<br>") if gate.status in ("failed", "halted", "interrupted") else ""
            if gate.pending_roles:
                reason = "awaiting sign-off from: " + html.escape(", ".join(gate.pending_roles))
            advisories = "<br>".join("advisory: " + html.escape(a) for a in gate.advisories)
            rows.append(
                f"<tr class='predeploy-gate' data-gate='{gate.number}' data-status='{html.escape(gate.status)}'>"
                f"<td>Gate {gate.number}</td><td>{html.escape(gate.name)}</td>"
                f"<td class='predeploy-status' style='color:{colour};font-weight:bold'>{html.escape(gate.status.upper())}</td>"
                f"<td>{figures}</td><td>{reason}{'<br>' if reason and advisories else ''}{advisories}</td></tr>"
            )
        package = ""
        if session.package_sha256:
            package = f"<p>Package: <code>PRE-DEPLOYMENT-PACKAGE.zip</code> sha256 <code id='predeploy-package-sha256'>{session.package_sha256}</code></p>"
        if session.report_prefix:
            package += f"<p id='predeploy-report-files'>{html.escape(which_reports(session))}</p>"
        return (
            "<section id='predeploy-gates'><h2>Gate summary</h2>"
            f"<p id='predeploy-verdict'><strong>{html.escape(verdict(session, exit_status))}</strong></p>"
            "<table class='predeploy-table' id='predeploy-gate-table'><thead><tr><th>Gate</th><th>Name</th><th>Status</th>"
            "<th>Key figures</th><th>Notes</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
            f"{package}</section>"
            "<style>.predeploy-table{border-collapse:collapse;margin:6px 0}.predeploy-table td,.predeploy-table th"
            "{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}"
            ".predeploy-evidence h4{margin:8px 0 2px}</style>"
        )


class HtmlHooks:
    """pytest-html: title, gate summary, outcome labels."""

    def __init__(self, hooks: ReportHooks) -> None:
        self.hooks = hooks

    def pytest_html_report_title(self, report: Any) -> None:
        report.title = f"Pre-deployment readiness {self.hooks.session.context.release}"

    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session) -> None:
        # The banner moves itself to the top of the page (see harness/banner.py); the gate table
        # stays here, beside pytest-html's own counts.
        prefix.append(banner_html(decision(self.hooks.session, int(session.exitstatus))))
        prefix.append(self.hooks.gate_summary_html(int(session.exitstatus)))

    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        # pytest-html filters rows by its own outcome names, so the result cell keeps its value
        # and our outcome (advisory, no data, awaiting sign-off, halted) is a badge by the name.
        label = getattr(report, "predeploy_outcome", None)
        if label is None and report.skipped and "halted: Gate" in report.longreprtext:
            label = "halted"
        if label and len(cells) > 1:
            badge = f' <strong class="predeploy-badge">{html.escape(label.upper())}</strong>'
            cells[1] = cells[1].replace("</td>", badge + "</td>", 1)


class JsonHooks:
    """pytest-json-report: per-test and report-level metadata, and the environment section."""

    def __init__(self, hooks: ReportHooks) -> None:
        self.hooks = hooks

    def pytest_json_runtest_metadata(self, item: pytest.Item, call: pytest.CallInfo[None]) -> dict[str, Any]:
        gate = gate_of(item)
        if gate is None:
            return {}
        return {
            "gate": gate[0],
            "gate_name": gate[1],
            "requirement": kind_of(item).upper(),
            "artifacts": _artifact_links(item, self.hooks.session.context.artifacts),
        }

    def pytest_json_modifyreport(self, json_report: dict[str, Any]) -> None:
        session = self.hooks.session
        json_report["environment"] = environment(session)
        json_report["predeploy"] = {
            "release": session.context.release,
            "previous_release": session.context.previous_release,
            "verdict": verdict(session, int(json_report.get("exitcode", 0))),
            "report_files": which_reports(session) if session.report_prefix else "this run's reports",
            "gates": {
                f"gate{g.number}": {"name": g.name, "status": g.status, "reason": g.reason, "figures": g.figures, "advisories": g.advisories}
                for g in sorted(session.controller.gates.values(), key=lambda g: g.number)
            },
        }


class MetadataHooks:
    """pytest-metadata: the environment table of the HTML report."""

    def __init__(self, hooks: ReportHooks) -> None:
        self.hooks = hooks

    def pytest_metadata(self, metadata: dict[str, Any], config: pytest.Config) -> None:
        metadata.update(environment(self.hooks.session))


def environment(session: ProtocolSession) -> dict[str, Any]:
    ctx = session.context
    return {
        "Release": ctx.release,
        "Previous release": ctx.previous_release or "unknown",
        "Commit": git_commit(session.project.base_dir) or "unknown",
        "Config digest": f"sha256:{session.project.digest}",
        "Environment": ctx.env,
        "Project": session.project.project,
    }


def register(config: pytest.Config, session: ProtocolSession) -> ReportHooks:
    hooks = ReportHooks(session)
    manager = config.pluginmanager
    manager.register(hooks, "predeploy-report")
    if manager.hasplugin("html"):
        # Rows in gate order (execution order), not pytest-html's default "failures first".
        # pytest has no public way to set an ini value; pytest-html reads it with getini, whose
        # cache this is (setting it before the report is written is enough).
        config._inicache["initial_sort"] = "original"
        manager.register(HtmlHooks(hooks), "predeploy-report-html")
    if manager.hasplugin("pytest_jsonreport"):
        manager.register(JsonHooks(hooks), "predeploy-report-json")
    if manager.hasplugin("metadata"):
        manager.register(MetadataHooks(hooks), "predeploy-report-metadata")
    return hooks


def github_step_summary(session: ProtocolSession, exit_status: int) -> None:
    """Append the verdict and a gate table to $GITHUB_STEP_SUMMARY when GitHub Actions provides one."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    text = summary_markdown(decision(session, exit_status))
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(session.context.redactor.redact(text))
