"""Glue to pytest-html, pytest-json-report and pytest-metadata (untyped, private attributes,
old-style hooks): everything we do to the reports lives here, registered only for the plugins
that are present, so the rest of the code never touches their internals.

What a release reviewer gets: the title ``Pre-deployment readiness <release>`` and the review
page (``harness/reviewpage.py``) leading the HTML report; after the package is sealed, the
reviewer's copy of that page beside it (``PRE-DEPLOYMENT-REVIEW.html``, naming the package's
digest, which the copy sealed inside cannot); the same decision, shorter, in the GitHub step
summary; the gate outcomes in the JSON report.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Generator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from pytest_predeploy.core.artifacts import PACKAGE, READINESS_APPROVAL, RUN_REPORTS, write_text_atomic
from pytest_predeploy.core.errors import PredeployError
from pytest_predeploy.core.protocol import READINESS_GATE
from pytest_predeploy.core.runstate import git_commit, load_state
from pytest_predeploy.harness.banner import REVIEW_PAGE, Decision, GateCard, Package, Signature, TestRow, VerdictKind, summary_markdown
from pytest_predeploy.harness.gates import ExitStatus, cannot_write, gate_of, kind_of
from pytest_predeploy.harness.itemkeys import evidence_key
from pytest_predeploy.harness.reviewdata import read_evidence, sealed_manifest
from pytest_predeploy.harness.reviewpage import replace_review, review_html
from pytest_predeploy.harness.steps import FIXTURE_ARTIFACTS
from pytest_predeploy.readiness.signing import load_signers
from pytest_predeploy.readiness.signoff import review_signoffs

if TYPE_CHECKING:
    from pytest_predeploy.config import ProjectConfig
    from pytest_predeploy.harness.context import RunContext
    from pytest_predeploy.harness.gates import GateController


class ProtocolSession(Protocol):
    """The protocol session as the reports read it (the session registers these hooks, so it is
    described here rather than imported)."""

    config: pytest.Config
    context: RunContext
    controller: GateController
    project: ProjectConfig
    report_prefix: str
    package_sha256: str | None
    package_note: str | None
    reused_package: Any
    seal_requested: bool
    write_problems: list[str]


def which_reports(session: ProtocolSession) -> str:
    """Which report files are this run's and which are the reviewers' copy (a Gate-4-only re-check)."""
    ours = ", ".join(session.report_prefix + name for name in RUN_REPORTS)
    return f"This Gate 4 run's reports: {ours}. The run that produced the package wrote {', '.join(RUN_REPORTS)} (the reviewers' copy, sealed in the package)."


def verdict(session: ProtocolSession, exit_status: int) -> str:
    controller = session.controller
    if exit_status == ExitStatus.INTERRUPTED:
        return "INTERRUPTED"
    if exit_status == ExitStatus.NO_GO:
        failed = [g for g in controller.gates.values() if g.status == "failed"]
        return f"NO-GO: Gate {failed[0].number} ({failed[0].name}) failed" if failed else "NO-GO"
    if exit_status == ExitStatus.AWAITING_SIGNOFF:
        return "AWAITING SIGN-OFF from: " + ", ".join(controller.pending_roles())
    if exit_status == ExitStatus.GO:
        return "GO: protocol complete" if controller.complete() and READINESS_GATE in controller.gates else "PASSED (partial run)"
    return f"exit status {exit_status}"


def _kind(session: ProtocolSession, exit_status: int) -> VerdictKind:
    if exit_status == ExitStatus.INTERRUPTED:
        return "interrupted"
    if exit_status == ExitStatus.AWAITING_SIGNOFF:
        return "awaiting"
    if exit_status == ExitStatus.GO:
        return "go" if session.controller.complete() and READINESS_GATE in session.controller.gates else "partial"
    # NO-GO, and any status we did not plan for (an internal error, nothing collected): never GO.
    return "no-go"


def package_digest(session: ProtocolSession) -> str | None:
    """The sha256 of the package this run sealed, or of the sealed package Gate 4 re-judged."""
    if session.package_sha256:
        return session.package_sha256
    reused = session.reused_package
    return str(reused.sha256) if reused is not None else None


def _seal_pending(session: ProtocolSession) -> bool:
    """This run will seal a package after its reports are written (so its HTML report is the
    copy sealed inside it)."""
    gate = session.controller.gates.get(READINESS_GATE)
    return (
        session.seal_requested
        and not session.package_sha256
        and session.reused_package is None
        and gate is not None
        and gate.status in ("passed", "awaiting sign-off")
        and not session.controller.interrupted
    )


def package_state(session: ProtocolSession, kind: VerdictKind) -> Package:
    """What is to be signed, as this moment knows it (before sealing: the sealed copy)."""
    if session.package_sha256:
        manifest = sealed_manifest(session.context.artifacts / PACKAGE)
        return Package("digest", session.package_sha256, len(manifest.entries) if manifest is not None else None)
    if session.reused_package is not None:
        return Package("digest", str(session.reused_package.sha256), len(session.reused_package.entries))
    if _seal_pending(session):
        return Package("sealed-copy")
    if session.package_note:
        return Package("none", note=session.package_note.removeprefix("package NOT sealed: "))
    if (session.context.artifacts / PACKAGE).exists():
        # An earlier run's package that this run did not re-judge as current (a gate ran after
        # sealing, or Gate 4 found it stale): the page must not read as if it were signable.
        return Package("none", note=f"{PACKAGE} in the artifacts folder was sealed by an earlier run and this run did not find it current: do not sign it")
    if kind == "no-go":
        return Package("none", note="a run seals one only when gates 1-3 pass and Gate 4 runs")
    if kind == "interrupted":
        return Package("none", note="the run was interrupted")
    return Package("none", note="Gate 4 did not run in this run")


def _signatures(session: ProtocolSession, digest: str | None) -> list[Signature]:
    """The sign-offs on the package's digest that count: current and signed with a key the
    signers file lists for that identity and role. None when there is no package or the record
    or the signers file cannot be read (Gate 4 says why; the page only shows who signed)."""
    if not digest:
        return []
    try:
        signers = load_signers(session.project.readiness.signers)
        views = review_signoffs(session.context.artifact(READINESS_APPROVAL), digest, signers=signers)
    except PredeployError:
        return []
    return [
        Signature(role=v.role, by=v.approver, decision=v.decision, conditions=v.conditions or "", until=f"{v.expires_at:%Y-%m-%d}" if v.expires_at else "")
        for v in views
        if v.verdict == "current" and (v.signature == "verified" or session.project.readiness.allow_unsigned)
    ]


def _outcome(report: pytest.TestReport) -> tuple[str, str]:
    """Our outcome of one test report and its message in one line (never pytest's raw skip tuple)."""
    label = getattr(report, "predeploy_outcome", None)
    if report.skipped:
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else report.longreprtext
        reason = reason.removeprefix("Skipped: ")
        return label or ("halted" if reason.startswith("halted: ") else "skipped"), reason
    if report.failed:
        return label or ("error" if report.when != "call" else "failed"), report.longreprtext.strip()
    return label or "passed", str(getattr(report, "predeploy_detail", "") or "")


class ReportHooks:
    """Hooks for the reports of a protocol run; registered by the protocol session."""

    def __init__(self, session: ProtocolSession) -> None:
        self.session = session
        #: One row per test, in run order: its first phase that did not pass, else its call.
        self.rows: dict[str, TestRow] = {}

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

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        known = self.rows.get(report.nodeid)
        if known is not None and known.outcome != "passed":
            return
        if report.when == "teardown" and (known is None or not report.failed):
            return
        if report.when == "setup" and report.passed:
            return
        props = dict(report.user_properties)
        outcome, message = _outcome(report)
        first = message.strip().splitlines()[0] if message.strip() else ""
        self.rows[report.nodeid] = TestRow(
            gate=str(props.get("gate", "")),
            name=report.nodeid.split("::", 1)[-1],
            requirement=str(props.get("requirement", "")),
            outcome=outcome,
            seconds=(known.seconds if known else 0.0) + report.duration,
            message=self.session.context.redactor.redact(first[:300]),
        )

    # After the session's own sessionfinish wrapper (``trylast``, so inside this one): the package
    # is sealed by then, and the page can say what was sealed.
    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, None, None]:
        result = yield
        try:
            self.write_final_pages(int(session.exitstatus))
        except OSError as exc:
            self.session.write_problems.append(f"review page: {cannot_write(exc, self.session.context.artifacts)}")
        return result

    def write_final_pages(self, exit_status: int) -> None:
        """The reviewer's copy (this run's page as the run ended: naming the digest of the
        package it sealed or re-judged, or saying why there is none to sign), and this run's
        report brought up to date where no package holds it (a seal that failed after it was
        written). The reviewer's copy is rewritten by every run, so it never outlives the
        judgement it shows (a later partial run makes an earlier package unsignable)."""
        session = self.session
        path = getattr(session.config.option, "htmlpath", None)
        if not path or not Path(path).is_file():
            return
        page = Path(path).read_text(encoding="utf-8")
        final = session.context.redactor.redact(replace_review(page, decision(session, exit_status)))
        write_text_atomic(session.context.artifacts / REVIEW_PAGE, final)
        if not session.package_sha256 and final != page:
            write_text_atomic(Path(path), final)


def decision(session: ProtocolSession, exit_status: int) -> Decision:
    """What the review page and the GitHub summary say, every text redacted."""
    redact = session.context.redactor.redact
    hooks: ReportHooks | None = session.config.pluginmanager.get_plugin("predeploy-report")
    tests = list(hooks.rows.values()) if hooks is not None else []
    project = session.project
    found = read_evidence(session.context.artifacts, project.parity.waivers)
    kind = _kind(session, exit_status)
    package = package_state(session, kind)
    halted: dict[str, int] = {}
    for row in tests:
        if row.outcome == "halted":
            halted[row.gate] = halted.get(row.gate, 0) + 1
    gates = [
        GateCard(
            number=g.number,
            name=g.name,
            status=g.status,
            figures=[redact(f) for f in (_package_figures(g.figures, package) if g.number == READINESS_GATE else g.figures)],
            reason=redact(g.reason),
            advisories=[redact(a) for a in g.advisories],
            pending_roles=list(g.pending_roles),
            root_causes=found.root_causes.get(g.number, []) if g.status == "failed" else [],
            halted_tests=halted.get(str(g.number), 0),
        )
        for g in sorted(session.controller.gates.values(), key=lambda g: g.number)
    ]
    gates = sorted(gates + _sealed_gates(session, {g.number for g in gates}), key=lambda g: g.number)
    digest = package_digest(session)
    signatures = [replace(s, by=redact(s.by), conditions=redact(s.conditions)) for s in _signatures(session, digest)]
    return Decision(
        kind=kind,
        detail=redact(verdict(session, exit_status)),
        release=session.context.release,
        previous_release=session.context.previous_release,
        package=package,
        signatures=signatures,
        pending_roles=session.controller.pending_roles(),
        gates=gates,
        changes=found.changes,
        dependencies=found.dependencies,
        dependency_note=found.dependency_note,
        risks=found.risks,
        approvals=found.approvals,
        scanners_not_run=found.scanners_not_run,
        timings=found.timings,
        charts=found.charts,
        tests=tests,
        environment={key: str(value) for key, value in environment(session).items()},
        notes=found.notes,
        report_files=which_reports(session) + f" {REVIEW_PAGE} beside the package is the reviewer's copy of this page." if session.report_prefix else "",
    )


def _sealed_gates(session: ProtocolSession, shown: set[int]) -> list[GateCard]:
    """The gates a Gate-4-only run did not run, as the run that sealed the package recorded them
    (that run's state, beside the package): a reviewer of the GO page sees every gate."""
    if session.reused_package is None:
        return []
    state = load_state(session.context.artifacts)
    if state is None or state.release != session.context.release:
        return []
    redact = session.context.redactor.redact
    cards = []
    for key, record in state.gates.items():
        number = key.removeprefix("gate")
        if not number.isdigit() or int(number) in shown:
            continue
        cards.append(
            GateCard(
                number=int(number),
                name=record.name,
                status=record.status,
                figures=[redact(f) for f in record.figures],
                reason=redact(record.reason),
                advisories=[redact(a) for a in record.advisories],
                note=f"as the run that sealed the package recorded them ({state.generated_at:%Y-%m-%d %H:%M} UTC); this run re-judged their sealed evidence",
            )
        )
    return cards


#: Gate 4's figure counts the manifest as it stood when its test ran, before this run's own
#: reports joined it at sealing; the page counts what `predeploy verify` counts.
_INDEXED = re.compile(r"^(\d+) artifacts indexed$")


def _package_figures(figures: list[str], package: Package) -> list[str]:
    shown = []
    for figure in figures:
        found = _INDEXED.match(figure)
        if found and package.state == "digest" and package.entries is not None:
            figure = f"{package.entries} entries in the sealed package's manifest"
        elif found and package.state == "sealed-copy":
            figure = f"{found.group(1)} evidence files indexed; this run's reports join them at sealing"
        shown.append(figure)
    return shown


def _artifact_links(item: pytest.Item, artifacts: Path) -> list[str]:
    names: list[str] = []
    for fixture in getattr(item, "fixturenames", []):
        for name in FIXTURE_ARTIFACTS.get(fixture, []):
            if (artifacts / name).exists() and name not in names:
                names.append(name)
    return names


class HtmlHooks:
    """pytest-html: title, the review page, outcome labels."""

    def __init__(self, hooks: ReportHooks) -> None:
        self.hooks = hooks

    def pytest_html_report_title(self, report: Any) -> None:
        report.title = f"Pre-deployment readiness {self.hooks.session.context.release}"

    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session) -> None:
        ours = self.hooks.session
        prefix.append(ours.context.redactor.redact(review_html(decision(ours, int(session.exitstatus)))))

    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        # pytest-html filters rows by the text of the result cell (an outcome name of its own: a
        # row saying "Awaiting sign-off" there would be filtered out of its table), so that cell
        # keeps pytest's word and ours (advisory, no data, awaiting sign-off, halted) is a badge
        # by the test's name.
        label = getattr(report, "predeploy_outcome", None)
        if label is None and report.skipped and "halted: Gate" in report.longreprtext:
            label = "halted"
        if label and len(cells) > 1:
            badge = f' <strong class="predeploy-badge">{html.escape(label.upper())}</strong>'
            cells[1] = cells[1].replace("</td>", badge + "</td>", 1)

    def pytest_html_results_table_html(self, report: pytest.TestReport, data: list[str]) -> None:
        # A skip's longrepr is pytest's (path, line, reason) tuple, which pytest-html prints as
        # Python text: the reason alone says it.
        if report.skipped and isinstance(report.longrepr, tuple) and data:
            data[0] = html.escape(_outcome(report)[1]) + "\n"


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
